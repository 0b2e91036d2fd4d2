"""Bugs found in review, each with the test that failed before its fix."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml


def write(pytester: pytest.Pytester, data: dict, name: str = "deploy.yaml") -> Path:
    path = pytester.path / name
    path.write_text(yaml.safe_dump({"project": "p", "targets": {"t": {}}, **data}))
    return path


def test_a_not_run_step_never_shows_a_url_password(pytester: pytest.Pytester) -> None:
    write(
        pytester,
        {"groups": [
            {"name": "first", "order": 1, "build_command": "exit 3"},
            {"name": "second", "order": 2,
             "build_command": "psql postgresql://admin:hunter2pw@127.0.0.1:1/db -c 'select 1'"},
        ]},
    )  # fmt: skip
    result = pytester.runpytest(
        "--deploy-target=t", "--junitxml=out.xml", "-o", "junit_logging=system-out",
        "--deploy-report=r.json",
    )  # fmt: skip
    result.assert_outcomes(passed=3, failed=1, skipped=1)
    for text in (
        result.stdout.str(),
        (pytester.path / "out.xml").read_text(),
        (pytester.path / "r.json").read_text(),
    ):
        assert "hunter2pw" not in text
    steps = json.loads((pytester.path / "r.json").read_text())["deployments"][0]["steps"]
    assert steps[-1]["command"].startswith("psql postgresql://admin:***@127.0.0.1:1/db")


def test_a_smoke_test_never_shows_a_secret(pytester: pytest.Pytester) -> None:
    write(pytester, {"groups": [{"name": "a", "order": 1, "build_command": "true"}]})
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


def test_an_invalid_glob_class_fails_validation_not_collection(pytester: pytest.Pytester):
    write(
        pytester,
        {"groups": [{"name": "m", "order": 1, "file_patterns": ["m/[z-a].sql"]}]},
    )
    result = pytester.runpytest("--deploy-target=t")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*groups[[]0[]].file_patterns[[]0[]]*invalid character class*"])
    assert "Traceback" not in result.stdout.str() and "re.error" not in result.stdout.str()


def test_a_tracked_group_cannot_run_in_parallel(pytester: pytest.Pytester) -> None:
    write(
        pytester,
        {"groups": [{"name": "m", "order": 1, "file_patterns": ["m/*.sql"], "max_parallel": 4}]},
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*groups[[]0[]].max_parallel*one at a time*"])


def test_a_config_with_nothing_selected_is_not_deployed(pytester: pytest.Pytester, http_server):
    write(pytester, {"groups": [{"name": "mig", "order": 1, "build_command": "true"}]}, "a.yaml")
    pytester.path.joinpath("a.yaml").rename(pytester.path / "a.deploy.yaml")
    write(
        pytester,
        {"project": "b", "groups": [{"name": "web", "order": 1, "build_command": "true"}],
         "health_check": {"url": http_server.url_for("/b-health")}},
        "b.deploy.yaml",
    )  # fmt: skip
    result = pytester.runpytest("--deploy-target=t", "--group=mig", "--deploy-report=r.json")
    result.assert_outcomes(passed=4)
    assert http_server.count() == 0
    report = json.loads((pytester.path / "r.json").read_text())
    assert [d["project"] for d in report["deployments"]] == ["p"]


def test_loadfile_is_refused(pytester: pytest.Pytester) -> None:
    write(pytester, {"groups": [{"name": "a", "order": 1, "build_command": "true"}]})
    result = pytester.runpytest("--deploy-target=t", "-n", "2", "--dist", "loadfile")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--dist loadfile would split a deployment*"])


def test_group_hooks_are_not_told_about_groups_that_never_ran(pytester: pytest.Pytester):
    pytester.makeconftest(
        textwrap.dedent(
            """
            def pytest_deploy_before_group(deployment, group):
                open("hooks.log", "a").write(f"before {group.name}\\n")

            def pytest_deploy_after_group(deployment, group, status):
                open("hooks.log", "a").write(f"after {group.name} {status}\\n")
            """
        )
    )
    write(
        pytester,
        {"groups": [
            {"name": "first", "order": 1, "build_command": "exit 1"},
            {"name": "second", "order": 2, "build_command": "true"},
        ]},
    )  # fmt: skip
    pytester.runpytest("--deploy-target=t").assert_outcomes(passed=3, failed=1, skipped=1)
    assert (pytester.path / "hooks.log").read_text().split("\n")[:-1] == [
        "before first",
        "after first failure",
    ]


def test_deploy_after_an_unselected_group_keeps_its_place(pytester: pytest.Pytester) -> None:
    write(
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
    write(pytester, {"groups": [{"name": "a", "order": 1, "build_command": "true"}]})
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


def test_every_step_has_its_own_log(pytester: pytest.Pytester) -> None:
    (pytester.path / "f").mkdir()
    for name in ("a_b.txt", "a b.txt"):
        (pytester.path / "f" / name).write_text("")
    write(
        pytester,
        {"groups": [
            {"name": "one", "order": 1, "build_command": "echo built one"},
            {"name": "two", "order": 2, "build_command": "echo built two",
             "file_patterns": ["f/*.txt"], "deploy_command": "echo deployed {name}"},
        ]},
    )  # fmt: skip
    pytester.runpytest("--deploy-target=t").assert_outcomes(passed=7)
    logs = {
        str(p.relative_to(p.parents[2])): p.read_text()
        for p in (pytester.path / ".deploy" / "logs").rglob("*.log")
    }
    assert sorted(v.strip() for v in logs.values()) == [
        "built one", "built two", "deployed a b.txt", "deployed a_b.txt",
    ]  # fmt: skip


def test_an_unwritable_report_path_is_refused_before_deploying(pytester: pytest.Pytester):
    write(pytester, {"groups": [{"name": "a", "order": 1, "build_command": "touch ran"}]})
    (pytester.path / "file").write_text("")
    result = pytester.runpytest("--deploy-target=t", "--deploy-report=file/r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--deploy-report file/r.json*not a writable folder*"])
    assert not (pytester.path / "ran").exists()


def test_a_target_given_twice_deploys_once(pytester: pytest.Pytester) -> None:
    write(pytester, {"groups": [{"name": "a", "order": 1, "build_command": "echo x >> ran"}]})
    pytester.runpytest("--deploy-target=t", "--deploy-target=t").assert_outcomes(passed=4)
    assert (pytester.path / "ran").read_text() == "x\n"


def test_k_does_not_count_restored_items_as_deselected(pytester: pytest.Pytester) -> None:
    write(
        pytester,
        {"groups": [{"name": "a", "order": 1, "build_command": "true", "test_command": "true"}]},
    )
    result = pytester.runpytest("--deploy-target=t", "-k", "build")
    result.assert_outcomes(passed=4, deselected=1)


def test_suite_properties_under_xdist(pytester: pytest.Pytester) -> None:
    write(pytester, {"groups": [{"name": "a", "order": 1, "build_command": "true"}]})
    pytester.runpytest_subprocess(
        "--deploy-target=t", "-n", "2", "--junitxml=out.xml", "-p", "no:cacheprovider"
    ).assert_outcomes(passed=4)
    assert 'name="deploy.targets" value="t"' in (pytester.path / "out.xml").read_text()
