"""The core runner through pytester: collection, order, policy, selection, dry run."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.procs import alive


def write_config(pytester: pytest.Pytester, data: dict, name: str = "deploy.yaml") -> Path:
    data = {"targets": {"t": {}}, **data}
    path = pytester.path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def recorded(pytester: pytest.Pytester) -> list[str]:
    log = pytester.path / "order.log"
    return log.read_text().split() if log.exists() else []


def rec(word: str) -> str:
    return f"echo {word} >> order.log"


FULL = {
    "project": "p",
    "groups": [
        {
            "name": "second",
            "order": 2,
            "file_patterns": ["fns/*/index.ts"],
            "pre_deploy": [rec("g2-pre")],
            "deploy_command": "echo fn-{function_name} >> order.log",
            "post_deploy": [rec("g2-post")],
        },
        {
            "name": "first",
            "order": 1,
            "pre_deploy": [rec("g1-pre0"), rec("g1-pre1")],
            "build_command": rec("g1-build"),
            "test_command": rec("g1-test"),
            "deploy_command": rec("g1-deploy"),
            "post_deploy": [rec("g1-post")],
        },
    ],
}


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    for fn in ("b", "a"):
        (pytester.path / "fns" / fn).mkdir(parents=True)
        (pytester.path / "fns" / fn / "index.ts").write_text("export {}\n")
    write_config(pytester, FULL)
    return pytester


def test_without_target_a_config_only_validates(project: pytest.Pytester) -> None:
    result = project.runpytest("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["deploy.yaml::validate PASSED*"])
    assert recorded(project) == []
    assert not (project.path / ".deploy").exists()


def test_collect_only_shows_the_plan_in_order(project: pytest.Pytester) -> None:
    result = project.runpytest("--deploy-target=t", "--collect-only", "-q")
    ids = [line for line in result.stdout.lines if line.startswith("deploy.yaml::")]
    assert ids == [
        "deploy.yaml::t::preflight::lock",
        "deploy.yaml::t::preflight::env",
        "deploy.yaml::t::preflight::files",
        "deploy.yaml::t::first::pre_deploy[0]",
        "deploy.yaml::t::first::pre_deploy[1]",
        "deploy.yaml::t::first::build",
        "deploy.yaml::t::first::test",
        "deploy.yaml::t::first::deploy",
        "deploy.yaml::t::first::post_deploy[0]",
        "deploy.yaml::t::second::pre_deploy[0]",
        "deploy.yaml::t::second::deploy[fns/a/index.ts]",
        "deploy.yaml::t::second::deploy[fns/b/index.ts]",
        "deploy.yaml::t::second::post_deploy[0]",
    ]


def test_deploy_runs_every_step_in_order(project: pytest.Pytester) -> None:
    result = project.runpytest("--deploy-target=t")
    result.assert_outcomes(passed=13)
    assert recorded(project) == [
        "g1-pre0", "g1-pre1", "g1-build", "g1-test", "g1-deploy", "g1-post",
        "g2-pre", "fn-a", "fn-b", "g2-post",
    ]  # fmt: skip
    result.stdout.fnmatch_lines(["*deployment summary*", "p → t: SUCCESS*"])


def test_first_failure_stops_the_deployment(pytester: pytest.Pytester) -> None:
    data = json.loads(json.dumps(FULL))
    data["groups"][1]["build_command"] = "echo building; exit 3"
    data["groups"][0]["file_patterns"] = []
    data["groups"][0]["deploy_command"] = rec("g2-deploy")
    write_config(pytester, data)
    result = pytester.runpytest("--deploy-target=t", "-rs")
    result.assert_outcomes(passed=5, failed=1, skipped=6)
    assert recorded(pytester) == ["g1-pre0", "g1-pre1"]
    result.stdout.fnmatch_lines(
        [
            "*build command of group first `echo building; exit 3` failed: exit status 3."
            " Last output: building*",
            "*not run: deploy.yaml::t::first::build failed*",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert result.ret == 1


def test_continue_on_failure_goes_on_with_the_next_group(pytester: pytest.Pytester) -> None:
    data = json.loads(json.dumps(FULL))
    data["groups"][1]["build_command"] = "exit 1"
    data["groups"][0]["file_patterns"] = []
    data["groups"][0]["deploy_command"] = rec("g2-deploy")
    data["health_check"] = {"url": "http://127.0.0.1:1/never", "timeout_seconds": 1}
    write_config(pytester, data)
    result = pytester.runpytest("--deploy-target=t", "--continue-on-failure", "-rs")
    assert recorded(pytester) == ["g1-pre0", "g1-pre1", "g2-pre", "g2-deploy", "g2-post"]
    # the rest of the failed group and the health check are "not run"
    result.assert_outcomes(passed=8, failed=1, skipped=4)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED [[]3[]] deploy.yaml:*: not run: deploy.yaml::t::first::build failed",
            "SKIPPED [[]1[]] deploy.yaml:*: not run: deploy.yaml::t::first::build failed",
        ]
    )


def test_group_and_skip_group_select_whole_groups(project: pytest.Pytester) -> None:
    project.runpytest("--deploy-target=t", "--group=second").assert_outcomes(passed=7)
    assert recorded(project) == ["g2-pre", "fn-a", "fn-b", "g2-post"]
    (project.path / "order.log").unlink()
    project.runpytest("--deploy-target=t", "--skip-group=second").assert_outcomes(passed=9)
    assert recorded(project) == [
        "g1-pre0",
        "g1-pre1",
        "g1-build",
        "g1-test",
        "g1-deploy",
        "g1-post",
    ]


def test_k_keeps_preflight_and_health_check(project: pytest.Pytester, http_server) -> None:
    data = {**FULL, "health_check": {"url": http_server.url_for("/health"), "timeout_seconds": 2}}
    write_config(project, data)
    result = project.runpytest("--deploy-target=t", "-k", "build", "-v")
    result.stdout.fnmatch_lines(
        [
            "*preflight::lock PASSED*",
            "*preflight::env PASSED*",
            "*preflight::files PASSED*",
            "*first::build PASSED*",
            "*health_check PASSED*",
        ]
    )
    assert recorded(project) == ["g1-build"]
    assert http_server.count("/health") >= 1


def test_unknown_group_is_a_usage_error(project: pytest.Pytester) -> None:
    result = project.runpytest("--deploy-target=t", "--group=secnd")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown group(s) 'secnd'*first, second*"])
    assert recorded(project) == []


@pytest.mark.parametrize("flag", ["--dry-run", "--group=first", "--deploy-env=A=b"])
def test_deploy_options_need_a_target(project: pytest.Pytester, flag: str) -> None:
    result = project.runpytest(flag)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{flag.split('=')[0]} needs --deploy-target=NAME*"])


def test_missing_config_path_is_reported(project: pytest.Pytester) -> None:
    result = project.runpytest("--deploy-target=t", "no/such/dir")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*file or directory not found: no/such/dir*"])


def test_unknown_target_lists_the_known_ones(project: pytest.Pytester) -> None:
    result = project.runpytest("--deploy-target=prod")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*unknown target 'prod'*t (config)*", "FAILED deploy.yaml::prod::preflight::target*"]
    )
    assert recorded(project) == []


def test_invalid_config_fails_its_validate_item_without_traceback(
    pytester: pytest.Pytester,
) -> None:
    (pytester.path / "deploy.yaml").write_text("groups:\n  - name: a\n    order: first\n")
    for args in ([], ["--deploy-target=t"]):
        result = pytester.runpytest(*args)
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            ["*line 3: groups[[]0[]].order*", "FAILED deploy.yaml::validate*"]
        )
        assert "Traceback" not in result.stdout.str()
        assert result.ret == 1


def test_pattern_matching_nothing_is_a_skipped_step(pytester: pytest.Pytester) -> None:
    write_config(
        pytester,
        {"groups": [{"name": "fns", "order": 1, "file_patterns": ["fns/*/index.ts"],
                     "deploy_command": "echo {file}"}]},
    )  # fmt: skip
    result = pytester.runpytest("--deploy-target=t", "-rs")
    result.assert_outcomes(passed=3, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*deploy.yaml:*no file under*matches fns/*/index.ts*"])


def test_command_not_found_is_explained(pytester: pytest.Pytester) -> None:
    write_config(
        pytester, {"groups": [{"name": "b", "order": 1, "build_command": "no-such-tool --x"}]}
    )
    result = pytester.runpytest("--deploy-target=t")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*exit status 127: command not found*"])


NASTY = ["with space.txt", "quote'single.txt", 'dq"uote.txt', "$(touch INJECTED).txt",
         "semi;colon.txt", "back`tick`.txt"]  # fmt: skip


def test_file_names_are_passed_literally(pytester: pytest.Pytester) -> None:
    (pytester.path / "files").mkdir()
    for name in NASTY:
        (pytester.path / "files" / name).write_text("x")
    write_config(
        pytester,
        {"groups": [{"name": "f", "order": 1, "file_patterns": ["files/*.txt"],
                     "deploy_command": "printf '%s\\n' {name} >> names.log"}]},
    )  # fmt: skip
    result = pytester.runpytest("--deploy-target=t")
    result.assert_outcomes(passed=3 + len(NASTY))
    assert (pytester.path / "names.log").read_text().splitlines() == sorted(NASTY)
    assert not list(pytester.path.rglob("INJECTED"))


def test_timeout_kills_the_whole_process_group(pytester: pytest.Pytester) -> None:
    write_config(
        pytester,
        {"groups": [{"name": "slow", "order": 1, "timeout_seconds": 0.5,
                     "build_command": "sleep 30 & echo $! > child.pid; wait"}]},
    )  # fmt: skip
    result = pytester.runpytest("--deploy-target=t")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*timed out after 0.5 s*"])
    pid = int((pytester.path / "child.pid").read_text())
    assert not alive(pid)


def test_required_env_vars_are_checked_before_anything_runs(pytester: pytest.Pytester) -> None:
    write_config(
        pytester,
        {"project": "p", "groups": [
            {"name": "a", "order": 1, "build_command": rec("a"),
             "required_env_vars": ["DEPLOY_TEST_NEEDED", "DEPLOY_TEST_EMPTY"]},
            {"name": "b", "order": 2, "build_command": rec("b"),
             "required_env_vars": ["DEPLOY_TEST_NEEDED"]},
        ]},
    )  # fmt: skip
    result = pytester.runpytest("--deploy-target=t", "--deploy-env=DEPLOY_TEST_EMPTY=")
    result.assert_outcomes(passed=2, failed=1, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*2 required environment variable(s) missing or empty for target 't':"
            " DEPLOY_TEST_NEEDED (needed by a, b; set it with `pytest-deploy env set p"
            " DEPLOY_TEST_NEEDED - --target t`*DEPLOY_TEST_EMPTY (needed by a*",
        ]
    )
    assert recorded(pytester) == []
    skipped = pytester.runpytest("--deploy-target=t", "--skip-validation")
    skipped.assert_outcomes(passed=4, skipped=1)
    assert recorded(pytester) == ["a", "b"]


def test_dry_run_runs_nothing_and_calls_no_url(pytester: pytest.Pytester, http_server) -> None:
    write_config(
        pytester,
        {"project": "p",
         "groups": [
             {"name": "a", "order": 1, "pre_deploy": ["touch pre.made"],
              "build_command": "mkdir built", "deploy_command": "touch {file}.deployed",
              "file_patterns": ["*.txt"]},
         ],
         "health_check": {"url": http_server.url_for("/health")}},
    )  # fmt: skip
    (pytester.path / "one.txt").write_text("1")
    before = sorted(p.name for p in pytester.path.iterdir())
    result = pytester.runpytest("--deploy-target=t", "--dry-run", "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(
        [
            "*plan:*",
            "*deploy.yaml::t::a::pre_deploy[[]0[]]: touch pre.made",
            "*deploy.yaml::t::a::build: mkdir built",
            "*deploy.yaml::t::a::deploy[[]one.txt[]]: touch one.txt.deployed",
            f"*deploy.yaml::t::health_check: GET {http_server.url_for('/health')} expecting 200",
        ]
    )
    assert sorted(p.name for p in pytester.path.iterdir()) == before
    assert http_server.count() == 0


def test_health_check_against_a_real_server(pytester: pytest.Pytester, http_server) -> None:
    http_server.set_route("/health", status=200, healthy_after=2)
    write_config(
        pytester,
        {"groups": [{"name": "a", "order": 1, "build_command": "true"}],
         "health_check": {"url": "http://127.0.0.1:1/wrong", "timeout_seconds": 5}},
    )  # fmt: skip
    good = pytester.runpytest(
        "--deploy-target=t", f"--deploy-health-url={http_server.url_for('/health')}"
    )
    good.assert_outcomes(passed=5)
    assert http_server.count("/health") == 3
    bad = pytester.runpytest("--deploy-target=t")
    bad.assert_outcomes(passed=4, failed=1)
    bad.stdout.fnmatch_lines(["*http://127.0.0.1:1/wrong did not answer 200*connection refused*"])
    pytester.runpytest("--deploy-target=t", "--no-health-check").assert_outcomes(passed=4)


def test_deploy_env_values_are_masked(pytester: pytest.Pytester) -> None:
    write_config(
        pytester,
        {"groups": [{"name": "a", "order": 1, "build_command": "echo token=$TOKEN; exit 1"}]},
    )
    report = pytester.path / "report.json"
    result = pytester.runpytest(
        "--deploy-target=t", "--deploy-env=TOKEN=canary-s3cr3t", f"--deploy-report={report}",
        "--junitxml=out.xml", "-o", "junit_logging=system-out",
    )  # fmt: skip
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*token=[*][*][*]*"])
    for text in (result.stdout.str(), report.read_text(), (pytester.path / "out.xml").read_text()):
        assert "canary-s3cr3t" not in text
    for log in (pytester.path / ".deploy").rglob("*.log"):
        assert "canary-s3cr3t" not in log.read_text()


def test_json_report_has_the_shared_shape(project: pytest.Pytester) -> None:
    project.runpytest("--deploy-target=t", "--deploy-report=out/report.json")
    data = json.loads((project.path / "out" / "report.json").read_text())
    (deployment,) = data["deployments"]
    assert deployment["project"] == "p" and deployment["target"] == "t"
    assert deployment["status"] == "success" and deployment["dry_run"] is False
    assert set(deployment) >= {"who", "started_at", "ended_at", "duration_ms", "steps"}
    steps = deployment["steps"]
    assert [s["node_id"].rsplit("::", 1)[-1] for s in steps][:4] == [
        "lock", "env", "files", "pre_deploy[0]",
    ]  # fmt: skip
    fn = next(s for s in steps if s["file"] == "fns/a/index.ts")
    assert fn["command"] == "echo fn-a >> order.log"
    assert fn["outcome"] == "passed" and fn["group"] == "second" and fn["kind"] == "deploy"


def test_lf_and_sw_are_refused(project: pytest.Pytester) -> None:
    for flag in ("--lf", "--sw"):
        result = project.runpytest("--deploy-target=t", flag)
        assert result.ret == pytest.ExitCode.USAGE_ERROR, flag


def test_a_plugin_that_reorders_items_cannot_break_the_order(project: pytest.Pytester) -> None:
    project.makeconftest(
        textwrap.dedent(
            """
            def pytest_collection_modifyitems(items):
                items.reverse()
            """
        )
    )
    project.runpytest("--deploy-target=t").assert_outcomes(passed=13)
    assert recorded(project)[:2] == ["g1-pre0", "g1-pre1"]
