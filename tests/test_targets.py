"""Several targets in one run: one deployment each, xdist workers, dist modes."""

from __future__ import annotations

import json

import pytest

from tests.projects import write_config, write_project


def test_each_target_is_its_own_deployment(pytester: pytest.Pytester) -> None:
    write_config(
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
    write_config(
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
    write_config(pytester, {"targets": {"t": {}}, "groups": [{"name": "a", "order": 1,
                                                       "build_command": "true"}]})  # fmt: skip
    result = pytester.runpytest("--deploy-target=t", "-n", "2", "--dist", "loadscope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--dist loadscope would split a deployment*"])


def test_loadfile_is_refused(pytester: pytest.Pytester) -> None:
    write_project(pytester, {"groups": [{"name": "a", "order": 1, "build_command": "true"}]})
    result = pytester.runpytest("--deploy-target=t", "-n", "2", "--dist", "loadfile")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--dist loadfile would split a deployment*"])


def test_a_target_given_twice_deploys_once(pytester: pytest.Pytester) -> None:
    write_project(
        pytester, {"groups": [{"name": "a", "order": 1, "build_command": "echo x >> ran"}]}
    )
    pytester.runpytest("--deploy-target=t", "--deploy-target=t").assert_outcomes(passed=4)
    assert (pytester.path / "ran").read_text() == "x\n"


def test_suite_properties_under_xdist(pytester: pytest.Pytester) -> None:
    write_project(pytester, {"groups": [{"name": "a", "order": 1, "build_command": "true"}]})
    pytester.runpytest_subprocess(
        "--deploy-target=t", "-n", "2", "--junitxml=out.xml", "-p", "no:cacheprovider"
    ).assert_outcomes(passed=4)
    assert 'name="deploy.targets" value="t"' in (pytester.path / "out.xml").read_text()
