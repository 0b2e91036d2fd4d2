"""Schema drift: the fingerprint recorded after a successful run, and preflight's warning
(or failure with --deploy-strict-schema) when the live schema changed outside pytest-deploy."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from deploy_plugin.store import open_store
from tests.projects import write_project


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_change_outside_is_a_warning_or_with_strict_a_failure(
    pytester: pytest.Pytester, request: pytest.FixtureRequest, database: str
) -> None:
    url = "sqlite:///app.db" if database == "sqlite" else request.getfixturevalue("pg_database")
    (pytester.path / "m").mkdir()
    (pytester.path / "m" / "001.sql").write_text("CREATE TABLE t1 (id int);\n")
    write_project(pytester, {"groups": [{"name": "db", "order": 1, "file_patterns": ["m/*.sql"]}]})
    # a file, not --deploy-env: that one warns (a value in argv), and -W error below
    (pytester.path / "db.env").write_text(f"DATABASE_URL={url}\n")
    args = ["--deploy-target=t", "--deploy-env-file=db.env"]
    pytester.runpytest(*args, "--dry-run").assert_outcomes(passed=4)
    assert not (pytester.path / ".deploy").exists()  # a dry run records nothing
    pytester.runpytest(*args).assert_outcomes(passed=5)
    with open_store(None, pytester.path) as store:  # type: ignore[union-attr]
        recorded = store.fingerprint_of("p", "t", "db")
    assert recorded is not None and "t1.id" in recorded[1]["column"]
    quiet = pytester.runpytest(*args, "-W", "error::UserWarning")  # unchanged: no warning
    quiet.assert_outcomes(passed=4, skipped=1)

    change = "ALTER TABLE t1 ADD COLUMN extra int"
    if database == "sqlite":
        with sqlite3.connect(pytester.path / "app.db") as conn:
            conn.execute(change)
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(change)
    strict = pytester.runpytest(*args, "--deploy-strict-schema")
    strict.assert_outcomes(passed=3, failed=1, skipped=1)
    strict.stdout.fnmatch_lines(["*column t1.extra left behind. --deploy-strict-schema*"])
    warned = pytester.runpytest(*args)
    warned.assert_outcomes(passed=4, skipped=1)
    warned.stdout.fnmatch_lines(
        ["*the schema of group db's database changed outside pytest-deploy since deployment *:"
         " column t1.extra left behind*"]
    )  # fmt: skip
    # a successful run records the schema it leaves: the next run is quiet again
    pytester.runpytest(*args, "-W", "error::UserWarning").assert_outcomes(passed=4, skipped=1)


def test_no_database_file_is_created_to_read_it(pytester: pytest.Pytester) -> None:
    write_project(
        pytester,
        {"groups": [{"name": "db", "order": 1, "file_patterns": ["m/*.sql"]},
                    {"name": "b", "order": 2, "build_command": "true"}]},
    )  # fmt: skip
    result = pytester.runpytest("--deploy-target=t", "--deploy-env=DATABASE_URL=sqlite:///app.db")
    result.assert_outcomes(passed=5, skipped=1)  # no migration file: nothing to deploy
    assert not (pytester.path / "app.db").exists()


def one_migration_on_sqlite(pytester: pytest.Pytester) -> list[str]:
    """Group db tracking m/*.sql (m/001.sql creates t1) on app.db; the args to deploy it
    (its URL from a file: a --deploy-env value warns, and some runs use -W error)."""
    (pytester.path / "m").mkdir()
    (pytester.path / "m" / "001.sql").write_text("CREATE TABLE t1 (id int);\n")
    write_project(pytester, {"groups": [{"name": "db", "order": 1, "file_patterns": ["m/*.sql"]}]})
    (pytester.path / "db.env").write_text("DATABASE_URL=sqlite:///app.db\n")
    return ["--deploy-target=t", "--deploy-env-file=db.env"]


def test_a_run_that_only_checked_keeps_the_recorded_fingerprint(pytester: pytest.Pytester) -> None:
    """Issue 14: a re-run with nothing to apply does not read the schema again at its end
    (preflight just found it as recorded); a change made after that preflight is still
    named by the next run, as a change outside pytest-deploy."""
    args = one_migration_on_sqlite(pytester)
    pytester.runpytest(*args).assert_outcomes(passed=5)

    def recorded() -> int | None:
        with open_store(None, pytester.path) as store:  # type: ignore[union-attr]
            row = store.fingerprint_of("p", "t", "db")
        assert row is not None
        return row[2]

    first = recorded()
    pytester.runpytest(*args, "-W", "error::UserWarning").assert_outcomes(passed=4, skipped=1)
    assert recorded() == first  # not rewritten by a run that only checked
    # a smoke test that changes the schema ran: the run records what it left
    pytester.makepyfile(
        test_smoke="""
        import sqlite3
        import pytest

        @pytest.mark.deploy_after("db")
        def test_adds_a_table(deploy_target):
            with sqlite3.connect("app.db") as conn:
                conn.execute("CREATE TABLE t2 (id int)")
        """
    )
    pytester.runpytest(*args).assert_outcomes(passed=5, skipped=1)
    assert recorded() != first
    (pytester.path / "test_smoke.py").unlink()
    pytester.runpytest(*args, "-W", "error::UserWarning").assert_outcomes(passed=4, skipped=1)


def test_a_failed_run_records_what_it_changed(pytester: pytest.Pytester) -> None:
    """A run that applied a migration and then failed on the next one changed the schema
    itself: the next run must not call that a change outside pytest-deploy (before, only
    a successful run recorded the fingerprint, and --deploy-strict-schema then refused)."""
    args = one_migration_on_sqlite(pytester)
    pytester.runpytest(*args).assert_outcomes(passed=5)
    (pytester.path / "m" / "002.sql").write_text("CREATE TABLE t2 (id int);\n")
    (pytester.path / "m" / "003.sql").write_text("INSERT INTO nowhere VALUES (1);\n")
    failed = pytester.runpytest(*args)
    failed.assert_outcomes(passed=5, failed=1, skipped=1)
    (pytester.path / "m" / "003.sql").write_text("CREATE TABLE t3 (id int);\n")
    strict = pytester.runpytest(*args, "--deploy-strict-schema", "-W", "error::UserWarning")
    assert "changed outside pytest-deploy" not in strict.stdout.str(), strict.stdout.str()
    strict.assert_outcomes(passed=5, skipped=1)  # 001 and 002: one item
