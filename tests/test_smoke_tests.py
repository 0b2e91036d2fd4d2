"""Smoke tests: plain tests using the deployment fixtures, run inside the deployment."""

from __future__ import annotations

import textwrap

import pytest

from tests.projects import write_config, write_project

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
    write_config(
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


def test_a_smoke_test_never_shows_a_secret(pytester: pytest.Pytester) -> None:
    write_project(pytester, {"groups": [{"name": "a", "order": 1, "build_command": "true"}]})
    pytester.makepyfile(
        test_smoke="""
        def test_token(deploy_env):
            print("token:", deploy_env["API_TOKEN"])
            assert deploy_env["API_TOKEN"] == "nope"
        """
    )
    result = pytester.runpytest(
        "--deploy-target=t", "--deploy-env=API_TOKEN=s3cr3t-smoke", "--junitxml=out.xml",
        "-o", "junit_logging=all", "--deploy-report=r.json",
    )  # fmt: skip
    result.assert_outcomes(passed=4, failed=1)
    for text in (
        result.stdout.str(),
        (pytester.path / "out.xml").read_text(),
        (pytester.path / "r.json").read_text(),
    ):
        assert "s3cr3t-smoke" not in text
    result.stdout.fnmatch_lines(["*token: ****"])


def test_deploy_after_an_unselected_group_keeps_its_place(pytester: pytest.Pytester) -> None:
    write_project(
        pytester,
        {"groups": [
            {"name": "a", "order": 1, "build_command": "echo a >> order.log"},
            {"name": "b", "order": 2, "build_command": "echo b >> order.log"},
            {"name": "c", "order": 3, "build_command": "echo c >> order.log"},
        ]},
    )  # fmt: skip
    pytester.makepyfile(
        test_smoke="""
        import pytest

        @pytest.mark.deploy_after("b")
        def test_after_b(deploy_target):
            open("order.log", "a").write("smoke\\n")
        """
    )
    pytester.runpytest("--deploy-target=t", "--skip-group=b").assert_outcomes(passed=6)
    assert (pytester.path / "order.log").read_text().split() == ["a", "smoke", "c"]


def test_smoke_tests_do_not_run_in_a_dry_run(pytester: pytest.Pytester) -> None:
    write_project(pytester, {"groups": [{"name": "a", "order": 1, "build_command": "true"}]})
    pytester.makepyfile(
        test_smoke="""
        def test_writes(deploy_target):
            open("smoke.ran", "w").write("x")
        """
    )
    result = pytester.runpytest("--deploy-target=t", "--dry-run", "-rs")
    result.assert_outcomes(passed=3, skipped=1)
    result.stdout.fnmatch_lines(["*dry run: smoke tests are not run*"])
    assert not (pytester.path / "smoke.ran").exists()
