"""Atomic deployments: a failure undoes the deployment, in reverse order."""

from __future__ import annotations

import pytest

from deploy_plugin.store import open_store
from tests.httpserver import closed_port
from tests.projects import write_project
from tests.test_downs import tables_pg, tables_sqlite


def atomic_project(pytester: pytest.Pytester, *, fail: bool = True, atomic_key: bool = True):
    root = pytester.path
    (root / "m").mkdir()
    for i in (1, 2):
        (root / "m" / f"00{i}.up.sql").write_text(f"CREATE TABLE t{i} (id int);\n")
        (root / "m" / f"00{i}.down.sql").write_text(f"DROP TABLE t{i};\n")
    (root / "fn").mkdir()
    for name in ("a", "b"):
        (root / "fn" / f"{name}.txt").write_text(name)
    groups = [
        {"name": "db", "order": 1, "file_patterns": ["m/*.up.sql"]},
        {"name": "files", "order": 2, "file_patterns": ["fn/*.txt"],
         "deploy_command": "echo deploy {stem} >> log",
         "rollback_command": "echo undo {stem} >> log"},
        {"name": "build", "order": 3, "build_command": "echo build >> log",
         "rollback_command": "echo undo build >> log"},
        {"name": "boom", "order": 4, "build_command": "exit 3" if fail else "true"},
    ]  # fmt: skip
    write_project(pytester, {"groups": groups, **({"atomic": True} if atomic_key else {})})


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_failure_in_a_later_group_undoes_the_earlier_ones_in_reverse(
    pytester: pytest.Pytester, request: pytest.FixtureRequest, database: str
) -> None:
    url = "sqlite:///app.db" if database == "sqlite" else request.getfixturevalue("pg_database")
    atomic_project(pytester)
    result = pytester.runpytest("--deploy-target=t", f"--deploy-env=DATABASE_URL={url}", "-v")
    result.assert_outcomes(passed=15, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*t::boom::build FAILED*",
            "*t::build::undo PASSED*",
            "*t::files::undo[[]fn/b.txt[]] PASSED*",
            "*t::files::undo[[]fn/a.txt[]] PASSED*",
            "*t::db::undo[[]m/002.up.sql[]] PASSED*",
            "*t::db::undo[[]m/001.up.sql[]] PASSED*",
        ]
    )
    log = (pytester.path / "log").read_text().splitlines()
    assert log == ["deploy a", "deploy b", "build", "undo build", "undo b", "undo a"]
    result.stdout.fnmatch_lines([
        "  migrations applied: 2, then undone: 2",
        "  undone after the failure (atomic): 5 step(s), in this order: build::undo,"
        " files::undo[[]fn/b.txt[]], files::undo[[]fn/a.txt[]], db::undo[[]m/002.up.sql[]],"
        " db::undo[[]m/001.up.sql[]]",
    ])  # fmt: skip
    got = tables_sqlite(pytester.path / "app.db") if database == "sqlite" else tables_pg(url)
    assert got == set()
    with open_store(None, pytester.path) as store:  # type: ignore[union-attr]
        rows = store.applied_migrations("p", "t")
        [run] = store.deployments("p", "t")
    assert {r.status for r in rows.values()} == {"rolled_back"}
    assert run.status == "failure"


def test_success_skips_the_undo_items(pytester: pytest.Pytester) -> None:
    atomic_project(pytester, fail=False, atomic_key=False)
    args = ["--deploy-target=t", "--deploy-env=DATABASE_URL=sqlite:///app.db", "--deploy-atomic"]
    collected = pytester.runpytest(*args, "--collect-only", "-q")
    collected.stdout.fnmatch_lines(["*t::build::undo", "*t::db::undo[[]m/001.up.sql[]]"])
    result = pytester.runpytest(*args, "-rs")
    result.assert_outcomes(passed=11, skipped=5)
    result.stdout.fnmatch_lines(["*deployment succeeded: nothing to undo*"])
    assert result.ret == 0
    assert "undo" not in (pytester.path / "log").read_text()
    assert tables_sqlite(pytester.path / "app.db") == {"t1", "t2"}


def test_only_this_deployments_migrations_are_undone(pytester: pytest.Pytester) -> None:
    atomic_project(pytester)
    (pytester.path / "m" / "002.up.sql").rename(pytester.path / "m" / "002.later")
    args = ["--deploy-target=t", "--deploy-env=DATABASE_URL=sqlite:///app.db"]
    pytester.runpytest(*args, "--group=db").assert_outcomes(passed=6, skipped=1)
    (pytester.path / "m" / "002.later").rename(pytester.path / "m" / "002.up.sql")
    result = pytester.runpytest(*args, "--group=db", "--group=boom", "-rs")
    result.assert_outcomes(passed=7, failed=1, skipped=2)
    result.stdout.fnmatch_lines(["*m/001.up.sql was not applied by this deployment*"])
    assert tables_sqlite(pytester.path / "app.db") == {"t1"}


def test_a_failing_health_check_undoes_the_deployment(pytester: pytest.Pytester) -> None:
    atomic_project(pytester, fail=False)
    config = pytester.path / "deploy.yaml"
    config.write_text(
        config.read_text()
        + f"health_check: {{url: 'http://127.0.0.1:{closed_port()}/', timeout_seconds: 1}}\n"
    )
    result = pytester.runpytest("--deploy-target=t", "--deploy-env=DATABASE_URL=sqlite:///app.db")
    result.assert_outcomes(passed=16, failed=1)  # boom passes this time; the check fails
    assert (pytester.path / "log").read_text().splitlines()[-3:] == [
        "undo build", "undo b", "undo a",
    ]  # fmt: skip
    assert tables_sqlite(pytester.path / "app.db") == set()


def test_a_migration_without_a_down_is_refused_before_anything_runs(
    pytester: pytest.Pytester,
) -> None:
    """An atomic deployment must be able to undo what it applies: preflight names each
    pending migration without a down, and nothing runs (before: it deployed, and the
    undo failed at the end with 'no down file')."""
    atomic_project(pytester)
    (pytester.path / "m" / "002.down.sql").unlink()
    result = pytester.runpytest("--deploy-target=t", "--deploy-env=DATABASE_URL=sqlite:///app.db")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "*1 migration(s) this atomic deployment would apply have no down: m/002.up.sql"
        " (group db). An atomic deployment undoes*Nothing was run.",
    ])  # fmt: skip
    assert not (pytester.path / "log").exists()
    assert not (pytester.path / "app.db").exists()


def test_groups_that_cannot_be_undone_are_named_before_and_after(
    pytester: pytest.Pytester,
) -> None:
    """Issue 21 #9: --deploy-atomic says what it cannot do. Preflight names each selected
    group that has no way back (no rollback_command, not a tracked group), and the summary
    after a failure names what stayed deployed."""
    (pytester.path / "m").mkdir()
    (pytester.path / "m" / "001.up.sql").write_text("CREATE TABLE t1 (id int);\n")
    (pytester.path / "m" / "001.down.sql").write_text("DROP TABLE t1;\n")
    groups = [
        {"name": "db", "order": 1, "file_patterns": ["m/*.up.sql"]},
        {"name": "assets", "order": 2, "build_command": "echo built >> log"},
        {"name": "cache", "order": 3, "build_command": "echo warmed >> log"},
        {"name": "boom", "order": 4, "build_command": "exit 3"},
    ]
    write_project(pytester, {"groups": groups, "atomic": True})
    result = pytester.runpytest("--deploy-target=t", "--deploy-env=DATABASE_URL=sqlite:///app.db")
    result.assert_outcomes(passed=9, failed=1)
    out = result.stdout.str()
    assert "atomic deployment: group(s) assets, cache, boom have no rollback_command" in out
    result.stdout.fnmatch_lines(
        ["  stayed deployed (no rollback_command, nothing to undo): assets, cache"]
    )
    assert tables_sqlite(pytester.path / "app.db") == set()  # the migration was undone
