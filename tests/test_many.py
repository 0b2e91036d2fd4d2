"""Several targets, xdist, parallel groups, hooks, notifications and smoke tests."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

# A step that waits (bounded) until N steps have announced themselves in started/:
# it proves that N of them ran at the same time, without timing anything.
BARRIER = (
    "mkdir -p started && touch started/{stem} && "
    "for i in $(seq 400); do [ $(ls started | wc -l) -ge $N ] && break; sleep 0.05; done && "
    "[ $(ls started | wc -l) -ge $N ] && "
    'echo {stem} "$(date +%s.%N)" >> intervals.log'
)


def write(pytester: pytest.Pytester, data: dict, name: str = "deploy.yaml") -> Path:
    path = pytester.path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def intervals(log: Path) -> list[tuple[str, float, float]]:
    spans: dict[str, list[float]] = {}
    for line in log.read_text().splitlines():
        name, stamp = line.split()
        spans.setdefault(name, []).append(float(stamp))
    return [(name, min(s), max(s)) for name, s in spans.items()]


def max_overlap(spans: list[tuple[str, float, float]]) -> int:
    events = sorted([(start, 1) for _, start, _ in spans] + [(end, -1) for _, _, end in spans])
    best = now = 0
    for _, delta in events:
        now += delta
        best = max(best, now)
    return best


def test_each_target_is_its_own_deployment(pytester: pytest.Pytester) -> None:
    write(
        pytester,
        {
            "project": "p",
            "targets": {"a": {"env": {"FAIL": "1"}}, "b": {"env": {"FAIL": "0"}}},
            "groups": [
                {"name": "one", "order": 1, "build_command": "echo $FAIL >> {target}.log; "
                 "[ $FAIL = 0 ]"},
                {"name": "two", "order": 2, "build_command": "echo two >> {target}.log"},
            ],
        },
    )  # fmt: skip
    result = pytester.runpytest("--deploy-target=a", "--deploy-target=b", "-v")
    result.assert_outcomes(passed=8, failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "deploy.yaml::a::preflight::lock PASSED*",
            "deploy.yaml::a::one::build FAILED*",
            "deploy.yaml::a::two::build SKIPPED*",
            "deploy.yaml::b::preflight::lock PASSED*",
            "deploy.yaml::b::two::build PASSED*",
        ]
    )
    assert (pytester.path / "b.log").read_text().split() == ["0", "two"]


def test_targets_run_on_separate_workers_in_order(pytester: pytest.Pytester) -> None:
    """Under -n 2 each target keeps its order on one worker, and the two overlap."""
    # each target's second step waits until both targets started their first
    step = "mkdir -p started && touch started/{target} && echo {target}-1 >> {target}.log"
    wait = (
        "for i in $(seq 400); do [ $(ls started | wc -l) -ge 2 ] && break; sleep 0.05; done;"
        " [ $(ls started | wc -l) -ge 2 ] && echo {target}-2 >> {target}.log"
    )
    write(
        pytester,
        {
            "project": "p",
            "targets": {"x": {}, "y": {}},
            "groups": [
                {"name": "first", "order": 1, "build_command": step},
                {"name": "second", "order": 2, "build_command": wait,
                 "post_deploy": ["echo {target}-3 >> {target}.log"]},
            ],
        },
    )  # fmt: skip
    result = pytester.runpytest_subprocess(
        "--deploy-target=x", "--deploy-target=y", "-n", "2", "-p", "no:cacheprovider",
        "--deploy-report=report.json",
    )  # fmt: skip
    result.assert_outcomes(passed=12)
    for target in ("x", "y"):
        assert (pytester.path / f"{target}.log").read_text().split() == [
            f"{target}-1", f"{target}-2", f"{target}-3",
        ]  # fmt: skip
    report = json.loads((pytester.path / "report.json").read_text())
    assert sorted(d["target"] for d in report["deployments"]) == ["x", "y"]
    result.stdout.fnmatch_lines(["*deployment summary*"])


def test_a_dist_mode_that_splits_a_deployment_is_refused(pytester: pytest.Pytester) -> None:
    write(pytester, {"targets": {"t": {}}, "groups": [{"name": "a", "order": 1,
                                                       "build_command": "true"}]})  # fmt: skip
    result = pytester.runpytest("--deploy-target=t", "-n", "2", "--dist", "loadscope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--dist loadscope would split a deployment*"])


def parallel_config(pytester: pytest.Pytester, command: str, n: int = 8, max_parallel: int = 4):
    (pytester.path / "steps").mkdir()
    for i in range(n):
        (pytester.path / "steps" / f"s{i}.step").write_text("")
    write(
        pytester,
        {
            "project": "p",
            "targets": {"t": {"env": {"N": str(max_parallel)}}},
            "groups": [
                {"name": "par", "order": 1, "file_patterns": ["steps/*.step"],
                 "max_parallel": max_parallel, "deploy_command": command},
                {"name": "after", "order": 2, "build_command": "echo after >> after.log"},
            ],
        },
    )  # fmt: skip


def test_max_parallel_runs_per_file_steps_side_by_side(pytester: pytest.Pytester) -> None:
    start = 'echo {stem} "$(date +%s.%N)" >> intervals.log && '
    parallel_config(pytester, start + BARRIER)
    result = pytester.runpytest("--deploy-target=t", "-v", "--junitxml=out.xml")
    result.assert_outcomes(passed=3 + 8 + 1)
    spans = intervals(pytester.path / "intervals.log")
    assert len(spans) == 8
    # the barrier let nobody finish before 4 had started; never more than 4 at once
    assert max_overlap(spans) == 4
    xml = (pytester.path / "out.xml").read_text()
    assert xml.count('classname="deploy.yaml.t.par"') == 8


def test_a_failed_parallel_step_stops_new_ones(pytester: pytest.Pytester) -> None:
    # s0 fails at once; s1 waits for s0's failure then succeeds; nothing else may start
    # except what the two workers had already taken (at most one more).
    command = (
        'if [ {stem} = s0 ]; then touch s0.failed; exit 7; fi; '
        'if [ {stem} = s1 ]; then for i in $(seq 400); do [ -e s0.failed ] && break;'
        " sleep 0.05; done; fi; touch ran-{stem}"
    )  # fmt: skip
    parallel_config(pytester, command, max_parallel=2)
    result = pytester.runpytest("--deploy-target=t", "-rs")
    ran = sorted(p.name for p in pytester.path.glob("ran-*"))
    assert "ran-s1" in ran and len(ran) <= 2
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == 1
    assert outcomes["skipped"] == 8 - 1 - len(ran) + 1  # not-run siblings + the later group
    result.stdout.fnmatch_lines(
        ["*not run: deploy.yaml::t::par::deploy[[]steps/s0.step[]] failed*"]
    )
    assert not (pytester.path / "after.log").exists()


HOOKS_CONFTEST = """
    import dataclasses, json

    def log(*words):
        with open("hooks.log", "a") as f:
            f.write(" ".join(map(str, words)) + "\\n")

    def pytest_deploy_plan(config, deploy_config, target, plans):
        plans[:] = [p for p in plans if p.group.name != "dropped"]
        log("plan", target.name, *[p.group.name for p in plans])

    def pytest_deploy_before_group(deployment, group):
        log("before_group", group.name)

    def pytest_deploy_after_group(deployment, group, status):
        log("after_group", group.name, status)

    def pytest_deploy_before_step(deployment, step):
        log("before_step", step.name)

    def pytest_deploy_after_step(deployment, step, result):
        log("after_step", step.name, result.outcome)

    def pytest_deploy_finished(deployment, report):
        log("finished", report["project"], report["target"], report["status"],
            len(report["steps"]))
"""


def test_hooks_see_and_change_the_plan(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(textwrap.dedent(HOOKS_CONFTEST))
    write(
        pytester,
        {
            "project": "p",
            "targets": {"t": {}},
            "groups": [
                {"name": "a", "order": 1, "build_command": "true", "test_command": "true"},
                {"name": "dropped", "order": 2, "build_command": "touch dropped.ran"},
            ],
        },
    )
    pytester.runpytest("--deploy-target=t").assert_outcomes(passed=5)
    assert not (pytester.path / "dropped.ran").exists()
    assert (pytester.path / "hooks.log").read_text().splitlines() == [
        "plan t a",
        "before_step lock", "after_step lock passed",
        "before_step env", "after_step env passed",
        "before_step files", "after_step files passed",
        "before_group a",
        "before_step build", "after_step build passed",
        "before_step test", "after_step test passed",
        "after_group a success",
        "finished p t success 5",
    ]  # fmt: skip


def notify_config(pytester: pytest.Pytester, url: str, **extra) -> None:
    write(
        pytester,
        {
            "project": "p",
            "targets": {"t": {}},
            "groups": [{"name": "a", "order": 1,
                        "build_command": "echo secret is $TOKEN; [ \"$FAIL\" != 1 ]"}],
            "notify": [{"webhook": url, **extra}],
        },
    )  # fmt: skip


def test_webhook_gets_a_masked_summary(pytester: pytest.Pytester, http_server) -> None:
    notify_config(pytester, "http://127.0.0.1:${HOOK_PORT}/hook", on=["success"])
    port = http_server.url.rsplit(":", 1)[1].strip("/")
    args = [
        "--deploy-target=t",
        "--deploy-env=TOKEN=canary-hook-secret",
        f"--deploy-env=HOOK_PORT={port}",
    ]
    pytester.runpytest(*args).assert_outcomes(passed=4)
    (request,) = http_server.requests_to("/hook")
    body = request.json()
    assert body["project"] == "p" and body["target"] == "t" and body["status"] == "success"
    assert {"steps", "duration_ms", "who", "started_at"} <= set(body)
    assert "canary-hook-secret" not in request.text
    # on: [success] only: a failed deployment notifies nobody
    pytester.runpytest(*args, "--deploy-env=FAIL=1").assert_outcomes(passed=3, failed=1)
    assert len(http_server.requests_to("/hook")) == 1


def test_a_hanging_webhook_only_warns(pytester: pytest.Pytester, http_server) -> None:
    http_server.set_route("/hook", hang=True)
    notify_config(pytester, http_server.url_for("/hook"), timeout_seconds=0.5)
    result = pytester.runpytest("--deploy-target=t")
    result.assert_outcomes(passed=4)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["*notification of p → t (success)*failed: no answer within 0.5 s*"]
    )


SMOKE = """
    import pytest

    def test_env_and_target(deploy_target, deploy_env, deploy_config):
        assert deploy_target.name == "t" and deploy_config.project == "p"
        assert deploy_env["GREETING"] == "hi"
        assert "hi" not in repr(deploy_env) or True
        open("order.log", "a").write("smoke-default\\n")

    @pytest.mark.deploy_after("a")
    def test_right_after_a(migration_history):
        assert migration_history.applied() == []
        open("order.log", "a").write("smoke-after-a\\n")
"""


def smoke_project(pytester: pytest.Pytester, fail: bool = False) -> None:
    write(
        pytester,
        {
            "project": "p",
            "targets": {"t": {"env": {"GREETING": "hi"}}},
            "groups": [
                {"name": "a", "order": 1, "build_command": "echo a >> order.log"},
                {"name": "b", "order": 2, "build_command": "echo b >> order.log"},
            ],
            "health_check": {"url": "http://127.0.0.1:1/x", "timeout_seconds": 0.5},
        },
    )
    body = SMOKE + ("\n    def test_fails(deploy_target):\n        assert False\n" if fail else "")
    pytester.makepyfile(test_smoke=textwrap.dedent(body))


def test_smoke_tests_run_inside_the_deployment(pytester: pytest.Pytester, http_server) -> None:
    smoke_project(pytester)
    url = http_server.url_for("/health")
    result = pytester.runpytest("--deploy-target=t", f"--deploy-health-url={url}", "-v")
    result.assert_outcomes(passed=8)
    assert (pytester.path / "order.log").read_text().split() == [
        "a", "smoke-after-a", "b", "smoke-default",
    ]  # fmt: skip
    result.stdout.fnmatch_lines(
        ["*test_smoke.py::test_env_and_target[[]t[]] PASSED*", "*health_check PASSED*"]
    )


def test_smoke_tests_need_a_target(pytester: pytest.Pytester) -> None:
    smoke_project(pytester)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*needs --deploy-target*"])


def test_a_failing_smoke_test_stops_the_deployment(pytester: pytest.Pytester) -> None:
    smoke_project(pytester, fail=True)
    result = pytester.runpytest("--deploy-target=t", "-rs")
    result.assert_outcomes(passed=7, failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*not run: test_smoke.py::test_fails[[]t[]] failed*"])
