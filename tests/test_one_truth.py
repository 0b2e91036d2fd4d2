"""Issue 20 ("one truth"): the target database's ledger decides what is applied.

Real pytest processes against a real PostgreSQL target (a throw-away database per test),
with the embedded SQLite store unless a test names another. The store's history is the
record of what the database holds; where the two disagree the database wins:

* a database that lacks files the store records as applied (recreated, restored, another
  database) stops at preflight naming them, with the ways on; ``--deploy-reapply-missing``
  applies them again;
* a dry run (and so a saved plan) reads the ledger, read-only, so the pending set it shows
  is the one the real run applies, whichever store it uses; the server's own counters show
  that it wrote nothing;
* rows the ledger has and the store lacks are recovered into the history with a warning
  that says what happened.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import psycopg
import pytest

from tests.pg import ADMIN_URL, database_url
from tests.test_faults import (
    CANARY,
    Started,
    assert_no_secret,
    assert_no_traceback,
    claims_applied,
    history,
    make_project,
    migrations_group,
    query,
    run,
    sessions_on,
    table_exists,
    wait_for,
    with_password,
)

FILES = {
    "001_a.sql": "CREATE TABLE a (id int);\n",
    "002_b.sql": "CREATE TABLE b (id int);\n",
    "003_c.sql": "CREATE TABLE c (id int);\n",
}


@pytest.fixture
def db(pg_database: str) -> tuple[str, str]:
    """The test's throw-away target database: (its name, its URL with a password-looking
    canary)."""
    return pg_database.rsplit("/", 1)[1], with_password(pg_database, CANARY)


def recreate(dbname: str) -> None:
    """Drop and create ``dbname`` again, empty (a restore, a recreated dev database)."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{dbname}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{dbname}"')


def ledger_files(dbname: str) -> list[str]:
    if not table_exists(dbname, "pytest_deploy.applied"):
        return []
    return [r[0] for r in query(dbname, "SELECT file FROM pytest_deploy.applied ORDER BY 1")]


def report(path: Path) -> dict[str, dict[str, object]]:
    (deployment,) = json.loads(path.read_text())["deployments"]
    return {step["node_id"].rsplit("::", 2)[-1]: step for step in deployment["steps"]}


def test_a_recreated_database_stops_at_preflight(tmp_path: Path, db: tuple[str, str]) -> None:
    name, url = db
    project = make_project(tmp_path, FILES)
    first = run(project, database=url)
    assert first.returncode == 0, first
    recreate(name)

    again = run(project, database=url)
    assert again.returncode == 1, again
    assert "preflight::migrations-drift failed" in again.output, again
    for rel in FILES:
        assert f"migrations/{rel}" in again.output, again
    assert name in again.output, again  # the database is named
    assert "--deploy-reapply-missing" in again.output, again
    assert "mark-applied" in again.output, again
    assert not table_exists(name, "a"), "nothing may run after a failed preflight"
    assert ledger_files(name) == []
    assert_no_traceback(again.output)
    assert_no_secret(again.output)

    reapplied = run(project, "--deploy-reapply-missing", database=url)
    assert reapplied.returncode == 0, reapplied
    assert all(table_exists(name, t) for t in ("a", "b", "c"))
    assert ledger_files(name) == [f"migrations/{rel}" for rel in FILES]
    applied = history(project, None)
    assert all(claims_applied(applied, f"migrations/{rel}") for rel in FILES)
    from deploy_plugin.store import open_store

    store = open_store(None, project, create=False)
    assert store is not None
    audit = store.migration_audit("faults", "t")
    store.close()
    assert sorted((a.file, a.action) for a in audit) == [
        (f"migrations/{rel}", "reapply") for rel in FILES
    ]
    assert all(name in (a.reason or "") and CANARY not in (a.reason or "") for a in audit)
    # the store and the database agree again: a plain run has nothing to do
    quiet = run(project, database=url)
    assert quiet.returncode == 0, quiet
    assert "3 skipped" in quiet.output or "skipped" in quiet.output, quiet


def test_one_more_file_after_a_recreate_is_not_applied_on_a_missing_schema(
    tmp_path: Path, db: tuple[str, str]
) -> None:
    """The issue's second run: one more file, which needs what the lost ones made."""
    name, url = db
    project = make_project(tmp_path, {"001_schema.sql": "CREATE SCHEMA woofs;\n"})
    assert run(project, database=url).returncode == 0
    recreate(name)
    (project / "migrations" / "002_dogs.sql").write_text("CREATE TABLE woofs.dogs (id int);\n")
    again = run(project, database=url)
    assert again.returncode == 1, again
    assert "migrations/001_schema.sql" in again.output, again
    assert 'schema "woofs" does not exist' not in again.output, again  # stopped before
    assert ledger_files(name) == []


def test_dry_run_reads_the_ledger_whichever_store(tmp_path: Path, db: tuple[str, str]) -> None:
    name, url = db
    project = make_project(tmp_path, FILES)
    store_a = f"sqlite:///{tmp_path / 'a.sqlite3'}"
    store_b_path = tmp_path / "b.sqlite3"
    store_b = f"sqlite:///{store_b_path}"
    assert run(project, store=store_a, database=url).returncode == 0

    dry = run(project, "--dry-run", f"--deploy-report={tmp_path / 'r.json'}", store=store_b,
              database=url)  # fmt: skip
    assert dry.returncode == 0, dry
    steps = report(tmp_path / "r.json")
    for rel in FILES:
        step = steps[f"deploy[migrations/{rel}]"]
        assert step["outcome"] == "skipped", dry
        assert "ledger" in str(step["message"]), step
    assert not store_b_path.exists(), "a dry run never creates a store"

    real = run(project, store=store_b, database=url)
    assert real.returncode == 0, real
    assert "between its commit and its history row" not in real.output, real
    assert "not recorded" in real.output, real  # what happened: another store applied them
    assert all(claims_applied(history(project, store_b), f"migrations/{r}") for r in FILES)


def _write_counters(dbname: str) -> tuple[int, int, int]:
    (row,) = query(
        "test",
        "SELECT tup_inserted, tup_updated, tup_deleted FROM pg_stat_database WHERE datname = %s",
        dbname,
    )
    return row[0], row[1], row[2]


def test_dry_run_is_inert_by_the_servers_counters(tmp_path: Path, db: tuple[str, str]) -> None:
    name, url = db
    project = make_project(tmp_path, {"001_a.sql": FILES["001_a.sql"]})
    assert run(project, database=url).returncode == 0
    (project / "migrations" / "002_b.sql").write_text(FILES["002_b.sql"])
    wait_for("the first run's sessions to end", lambda: sessions_on(name) == 0)
    before = _write_counters(name)
    dry = run(project, "--dry-run", f"--deploy-report={tmp_path / 'r.json'}", database=url)
    assert dry.returncode == 0, dry
    steps = report(tmp_path / "r.json")
    assert steps["deploy[migrations/001_a.sql]"]["outcome"] == "skipped"
    assert steps["deploy[migrations/002_b.sql]"]["outcome"] == "passed"  # would apply
    wait_for("the dry run's session to end", lambda: sessions_on(name) == 0)
    assert _write_counters(name) == before
    assert not table_exists(name, "b")
    assert ledger_files(name) == ["migrations/001_a.sql"]


def test_dry_run_against_a_fresh_database_creates_nothing(
    tmp_path: Path, db: tuple[str, str]
) -> None:
    name, url = db
    project = make_project(tmp_path, FILES)
    dry = run(project, "--dry-run", database=url)
    assert dry.returncode == 0, dry
    assert query(name, "SELECT to_regnamespace('pytest_deploy')")[0][0] is None
    wait_for("the dry run's session to end", lambda: sessions_on(name) == 0)


@pytest.mark.parametrize("absent", ["database", "server"])
def test_dry_run_names_a_ledger_it_cannot_read(
    tmp_path: Path, db: tuple[str, str], absent: str
) -> None:
    """A database that does not exist has applied nothing (the dry run says so); a server
    that cannot be reached leaves the pending set unknown: the dry run fails naming it."""
    name, url = db
    project = make_project(tmp_path, FILES)
    if absent == "database":
        target = url.rsplit("/", 1)[0] + "/deploy_no_such_database"
    else:
        target = url.replace("127.0.0.1", "127.0.0.1:1", 1)
    dry = run(project, "--dry-run", "-rA", database=target)
    assert_no_traceback(dry.output)
    assert_no_secret(dry.output)
    if absent == "database":
        assert dry.returncode == 0, dry
        assert "does not exist" in dry.output, dry
    else:
        assert dry.returncode == 1, dry
        assert "ledger" in dry.output, dry


# --------------------------------------------------------------------------- psql-applied


def psql_group(command: str) -> dict[str, object]:
    return migrations_group(deploy_command=command)


def test_a_psql_file_committed_before_its_runner_died_is_settled_from_the_ledger(
    tmp_path: Path, db: tuple[str, str]
) -> None:
    """psql commits the file with its ledger row; the runner is killed before its history
    row: the next run finds the row and records the file, no manual repair, not run twice."""
    name, url = db
    files = {"001_a.sql": "CREATE TABLE a (id int);\n"}
    group = psql_group('psql "$DATABASE_URL" -q -f {file} && kill -9 $PPID')
    project = make_project(tmp_path, files, group)
    first = run(project, database=url)
    assert first.returncode != 0, first  # killed
    assert ledger_files(name) == ["migrations/001_a.sql"]
    assert not claims_applied(history(project, None), "migrations/001_a.sql")

    again = run(project, "-rA", database=url)
    assert again.returncode == 0, again
    assert "psql committed it with the file" in again.output, again
    assert "mark-applied" not in again.output, again
    assert claims_applied(history(project, None), "migrations/001_a.sql")
    assert_no_secret(first.output, again.output)


SLEEPY = (
    "CREATE TABLE a (id int);\n"
    "SELECT pg_sleep(CASE WHEN to_regclass('public.go') IS NULL THEN 60 ELSE 0 END);\n"
)


def test_a_psql_file_stopped_by_sigterm_is_applied_by_the_next_run(
    tmp_path: Path, db: tuple[str, str]
) -> None:
    name, url = db
    group = psql_group('psql "$DATABASE_URL" -q -f {file}')
    project = make_project(tmp_path, {"001_a.sql": SLEEPY}, group)
    runner = Started(project, tmp_path / "runner.log", database=url)
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        def sleeping() -> int | None:
            row = admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND state = 'active'"
                " AND query LIKE %s",
                (name, "%pg_sleep(CASE%"),
            ).fetchone()
            return row[0] if row else None

        backend = wait_for("psql's backend to sleep", sleeping, runner)
        os.kill(runner.pid, signal.SIGTERM)
        ended = runner.wait()
        assert ended.returncode != 0, ended
        # the server ends the orphaned backend (its client is gone): its transaction,
        # with the file's ledger row, rolls back
        admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
        wait_for("the backend to end", lambda: sessions_on(name) == 0)
        admin.execute("SELECT 1")
    assert ledger_files(name) == []
    assert not table_exists(name, "a")
    with psycopg.connect(database_url(name), autocommit=True) as conn:
        conn.execute("CREATE TABLE go ()")

    again = run(project, "-rA", database=url)
    assert again.returncode == 0, again
    assert "mark-applied" not in again.output and "forget-intent" not in again.output, again
    assert table_exists(name, "a")
    assert ledger_files(name) == ["migrations/001_a.sql"]
    assert claims_applied(history(project, None), "migrations/001_a.sql")
    assert_no_traceback(again.output)


def test_an_in_memory_sqlite_target_is_refused_before_anything_runs(tmp_path: Path) -> None:
    """Issue 21 #10: ``sqlite:///:memory:`` forgets everything when the run ends, so the
    history would say applied while nothing persists: refused at preflight, dry run or not."""
    project = make_project(tmp_path, FILES)
    for args in ((), ("--dry-run",)):
        result = run(project, *args, database="sqlite:///:memory:")
        assert result.returncode == 1, result
        assert ":memory:" in result.output and "in-memory" in result.output, result
        assert "migrations-drift failed" in result.output, result
        assert_no_traceback(result.output)
    assert history(project, None) == {}


# --------------------------------------------------------------------------- review findings


def test_a_psql_file_rolled_back_is_applied_again(tmp_path: Path, db: tuple[str, str]) -> None:
    """The down of a psql-applied file removes its ledger row in the down's own psql
    transaction: the next deployment applies the file again (it was skipped "per the
    ledger", and its history rewritten to success)."""
    name, url = db
    group = migrations_group(
        deploy_command='psql "$DATABASE_URL" -q -f {file}', down_file="rollbacks/{stem}.sql"
    )
    project = make_project(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);\n"}, group)
    (project / "rollbacks").mkdir()
    (project / "rollbacks" / "001_a.sql").write_text("DROP TABLE a;\n")
    assert run(project, database=url).returncode == 0
    assert ledger_files(name) == ["migrations/001_a.sql"]
    rolled = run(project, "--deploy-rollback=1", database=url)
    assert rolled.returncode == 0, rolled
    assert ledger_files(name) == [] and not table_exists(name, "a")
    again = run(project, database=url)
    assert again.returncode == 0, again
    assert table_exists(name, "a")
    assert ledger_files(name) == ["migrations/001_a.sql"]
    assert not list((project / ".deploy" / "psql").glob("ledger/*.sql"))  # removed after use


@pytest.mark.parametrize(
    ("command", "marker"),
    [
        ('psql "$DATABASE_URL" -q < {file} && kill -9 $PPID', ""),
        ('psql "$DATABASE_URL" -q -f {file} && kill -9 $PPID', "-- deploy:no-transaction\n"),
    ],
    ids=["stdin", "no-transaction"],
)
def test_an_intent_the_ledger_cannot_settle_stays_in_doubt(
    tmp_path: Path, db: tuple[str, str], command: str, marker: str
) -> None:
    """Where psql ran the file without its ledger row (the file on stdin, or marked
    no-transaction), the database cannot tell: the intent is never settled from the ledger
    (it would apply the file twice); the run stops "in doubt" as before."""
    name, url = db
    sql = marker + "CREATE TABLE log (id int);\n"
    project = make_project(tmp_path, {"001_a.sql": sql}, migrations_group(deploy_command=command))
    assert run(project, database=url).returncode != 0  # killed after psql committed
    assert table_exists(name, "log")
    again = run(project, database=url)
    assert again.returncode == 1, again
    assert "a migration is in doubt: migrations/001_a.sql" in again.output, again


def test_a_ledger_that_cannot_be_read_is_one_paragraph(
    tmp_path: Path, db: tuple[str, str]
) -> None:
    name, url = db
    with psycopg.connect(database_url(name), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA pytest_deploy")
        conn.execute(
            "CREATE VIEW pytest_deploy.applied AS SELECT 'p'::text AS project, 't'::text AS"
            " target, 'f'::text AS file, 'c'::text AS checksum, now() AS applied_at,"
            " 'x'::text AS applied_by WHERE 1 / 0 = 1"
        )
    project = make_project(tmp_path, FILES)
    dry = run(project, "--dry-run", database=url)
    assert dry.returncode == 1, dry
    assert "cannot read the ledger pytest_deploy.applied" in dry.output, dry
    assert_no_traceback(dry.output)
    assert_no_secret(dry.output)
