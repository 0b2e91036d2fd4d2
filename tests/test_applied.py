"""A group's applied files are run and reported by one item (issue 22: fewer items, as
every item runs through pytest's own protocol), while every report and the store keep one
step per file (deploy_plugin/plugin/applied.py)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from tests.projects import write_project

GROUP = {
    "name": "migrations",
    "order": 1,
    "file_patterns": ["migrations/*.sql"],
    "deploy_command": "cat {file} >> applied.log",
}


def project(pytester: pytest.Pytester, files: int = 3) -> None:
    write_project(pytester, {"groups": [GROUP]})
    add_files(pytester, files)


def add_files(pytester: pytest.Pytester, upto: int) -> None:
    (pytester.path / "migrations").mkdir(exist_ok=True)
    for i in range(1, upto + 1):
        pytester.path.joinpath("migrations", f"00{i}.sql").write_text(f"-- {i}\n")


def applied_log(pytester: pytest.Pytester) -> list[str]:
    return pytester.path.joinpath("applied.log").read_text().splitlines()


def test_applied_files_are_one_skipped_item_and_one_step_each(pytester: pytest.Pytester) -> None:
    from deploy_plugin.plan import file_checksum
    from deploy_plugin.store import open_store

    project(pytester)
    pytester.runpytest("--deploy-target=t").assert_outcomes(passed=7)
    add_files(pytester, 4)
    result = pytester.runpytest(
        "--deploy-target=t", "-rs", "--junitxml=deploy.xml", "-o", "junit_logging=system-out",
        "--deploy-report=report.json",
    )  # fmt: skip
    result.assert_outcomes(passed=5, skipped=1)
    result.stdout.fnmatch_lines(
        ["SKIPPED [[]1[]] deploy.yaml:*: 3 files already applied: migrations/001.sql,*"]
    )
    assert applied_log(pytester) == ["-- 1", "-- 2", "-- 3", "-- 4"]  # nothing again
    # JUnit: one skipped testcase naming the count and the files, each in its output
    cases = {c.get("name"): c for c in ET.parse(pytester.path / "deploy.xml").iter("testcase")}
    case = next(c for name, c in cases.items() if name and name.endswith("migrations · applied"))
    skipped = case.find("skipped")
    assert skipped is not None
    assert skipped.get("message", "").startswith("3 files already applied: migrations/001.sql")
    out = case.find("system-out")
    assert out is not None and out.text is not None
    for i in (1, 2, 3):
        assert f"migrations/00{i}.sql: applied 20" in out.text
    # the JSON report and the store: one step per file, as each file's own item recorded
    (deployment,) = json.loads((pytester.path / "report.json").read_text())["deployments"]
    steps = {s["node_id"].split("::t::")[1]: s for s in deployment["steps"]}
    store = open_store(None, pytester.path)
    run = store.deployments("p", "t")[0]
    assert run.status == "success"
    rows = {r.node_id.split("::t::")[1]: r for r in store.deployment_steps(run.id)}
    store.close()
    for i in (1, 2, 3):
        name = f"migrations::deploy[migrations/00{i}.sql]"
        step, row = steps[name], rows[name]
        assert (step["kind"], step["group"], step["file"]) == (
            "deploy",
            "migrations",
            f"migrations/00{i}.sql",
        )
        assert step["outcome"] == row.outcome == "skipped"
        assert step["message"].startswith(f"migrations/00{i}.sql: applied 20")
        assert step["message"] == row.message
        assert step["checksum"] == row.checksum == file_checksum(pytester.path / step["file"])
        assert step["command"] == row.command == f"cat migrations/00{i}.sql >> applied.log"
    assert steps["migrations::deploy[migrations/004.sql]"]["outcome"] == "passed"
    assert list(steps)[4:] == [f"migrations::deploy[migrations/00{i}.sql]" for i in range(1, 5)]


def test_k_file_selects_the_item_carrying_it(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.runpytest("--deploy-target=t").assert_outcomes(passed=7)
    result = pytester.runpytest("--deploy-target=t", "-k", "002", "-v")
    result.assert_outcomes(passed=4, skipped=1)
    result.stdout.fnmatch_lines(["*::t::migrations::applied SKIPPED*"])
    dry = pytester.runpytest("--deploy-target=t", "--dry-run", "-v")
    dry.assert_outcomes(passed=3, skipped=1)  # a dry run skips them as a real run does
    dry.stdout.fnmatch_lines(["*::t::migrations::applied SKIPPED*"])


def test_a_node_id_naming_an_applied_file_finds_its_own_item(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.runpytest("--deploy-target=t").assert_outcomes(passed=7)
    result = pytester.runpytest(
        "--deploy-target=t", "deploy.yaml::t::migrations::deploy[migrations/002.sql]", "-v", "-rs"
    )
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*::t::preflight::lock PASSED*",
            "*::t::migrations::deploy[[]migrations/002.sql[]] SKIPPED*",
            "*migrations/002.sql: applied 20*",
        ]
    )
    result.assert_outcomes(passed=4, skipped=1)


@pytest.mark.parametrize("files, args", [(1, ()), (3, ("--deploy-reapply-missing",))])
def test_one_file_or_reapplying_keeps_each_files_own_item(
    pytester: pytest.Pytester, files: int, args: tuple[str, ...]
) -> None:
    project(pytester, files)
    pytester.runpytest("--deploy-target=t").assert_outcomes(passed=4 + files)
    result = pytester.runpytest("--deploy-target=t", "-v", *args)
    result.assert_outcomes(passed=4, skipped=files)
    result.stdout.fnmatch_lines(["*::t::migrations::deploy[[]migrations/001.sql[]] SKIPPED*"])


def test_a_file_no_longer_applied_when_it_runs_fails_the_item(pytester: pytest.Pytester) -> None:
    project(pytester)
    write_project(
        pytester,
        {"groups": [GROUP, {"name": "later", "order": 2, "deploy_command": "echo later"}]},
    )
    pytester.runpytest("--deploy-target=t").assert_outcomes(passed=8)
    # another run rolls 002 back between this run's collection and its lock
    pytester.makeconftest("""
        import sqlite3

        def pytest_collection_finish(session):
            db = sqlite3.connect(session.config.rootpath / ".deploy" / "state.sqlite3")
            with db:
                db.execute(
                    "DELETE FROM migration_history WHERE migration_file = 'migrations/002.sql'"
                )
            db.close()
    """)
    result = pytester.runpytest("--deploy-target=t", "-rs")
    result.assert_outcomes(passed=4, failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*migrations/002.sql of group migrations: recorded as applied when this run was"
            " collected, and not applied now*",
            "*not run: deploy.yaml::t::migrations::applied failed*",
        ]
    )
    assert applied_log(pytester) == ["-- 1", "-- 2", "-- 3"]  # nothing ran again
    pytester.path.joinpath("conftest.py").unlink()
    again = pytester.runpytest("--deploy-target=t", "-v")  # 002 is pending: its own step
    again.stdout.fnmatch_lines(["*::t::migrations::deploy[[]migrations/002.sql[]] PASSED*"])
    assert applied_log(pytester)[-1] == "-- 2"


def test_step_hooks_see_each_applied_file(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.runpytest("--deploy-target=t").assert_outcomes(passed=7)
    pytester.makeconftest(
        "def pytest_deploy_before_step(deployment, step):\n"
        "    open('hooks.log', 'a').write('before ' + step.name + '\\n')\n"
        "def pytest_deploy_after_step(deployment, step, result):\n"
        "    open('hooks.log', 'a').write(f'after {step.name} {result.outcome}\\n')\n"
    )
    pytester.runpytest("--deploy-target=t").assert_outcomes(passed=4, skipped=1)
    lines = pytester.path.joinpath("hooks.log").read_text().splitlines()
    for i in (1, 2, 3):
        assert f"before deploy[migrations/00{i}.sql]" in lines
        assert f"after deploy[migrations/00{i}.sql] skipped" in lines
