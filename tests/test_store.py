"""Behaviour of the store, one suite run against SQLite and against PostgreSQL."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest

from deploy_plugin.migrate.executor import MigrationError, SqlExecutor
from deploy_plugin.migrate.runner import MigrationRunner
from deploy_plugin.plan import file_checksum
from deploy_plugin.store import (
    LockHeld,
    MigrationRecord,
    Store,
    StoreError,
    describe_url,
    open_store,
)
from deploy_plugin.store import schema as store_schema
from deploy_plugin.store.schema import SchemaStep, current_version, steps_for
from tests.pg import database_url, temporary_database

CURRENT = current_version("sqlite")  # both kinds are at the same version
# versions need not be contiguous (branches take numbers apart): every step is applied
VERSIONS = [step.version for step in steps_for("sqlite")]

NOW = datetime(2026, 2, 23, 10, 0, tzinfo=timezone.utc)
WAIT_S = 30.0  # upper bound when waiting for another process; never a fixed sleep

# Run by subprocesses: take the lock of shop/production, say so, then wait (or vanish).
HOLD_LOCK = """
import os, sys
from pathlib import Path
from deploy_plugin.store import open_store
store = open_store(sys.argv[1] or None, Path(sys.argv[2]))
lock = store.acquire_lock("shop", "production", holder="other-runner")
print("locked", flush=True)
if sys.argv[3] == "vanish":
    os._exit(0)  # no release: the lock row stays behind
sys.stdin.readline()
"""

# Run by subprocesses: wait for "go" on stdin, then open (create) the store.
OPEN_ON_GO = """
import sys
from pathlib import Path
from deploy_plugin.store import open_store
print("ready", flush=True)
sys.stdin.readline()
store = open_store(sys.argv[1] or None, Path(sys.argv[2]))
print(store.schema_version(), flush=True)
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    """The store URL under test: None (default SQLite file) or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("pg_database")


@pytest.fixture
def open_(store_url: str | None, tmp_path: Path) -> Iterator[Callable[..., Store | None]]:
    """Open the store under test (rootdir = tmp_path); every store is closed afterwards."""
    opened: list[Store] = []

    def open_again(create: bool = True) -> Store | None:
        store = open_store(store_url, tmp_path, create=create)
        if store is not None:
            opened.append(store)
        return store

    yield open_again
    for store in opened:
        store.close()


@pytest.fixture
def store(open_: Callable[..., Store]) -> Store:
    return open_()


def rows(store: Store, sql: str, params: tuple = ()) -> list[tuple]:
    """Raw rows from the store's own connection (shared SQL: `?` and `{s}` prefix)."""
    with store.driver.reader("test query") as db:
        return [tuple(row) for row in db.execute(sql, params).fetchall()]


def migration(file: str, checksum: str = "c1", *, minutes: int = 0, **fields) -> MigrationRecord:
    return MigrationRecord(file, checksum, NOW + timedelta(minutes=minutes), **fields)


def python(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def expect_line(proc: subprocess.Popen[str], expected: str) -> None:
    """Read one line of ``proc``'s output (killing it if nothing comes in WAIT_S)."""
    watchdog = threading.Timer(WAIT_S, proc.kill)
    watchdog.start()
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
    finally:
        watchdog.cancel()
    if line.strip() != expected:
        proc.kill()
        pytest.fail(f"expected {expected!r}, got {line!r}; stderr: {proc.stderr.read()}")  # type: ignore[union-attr]


def wait_until(check: Callable[[], bool], what: str) -> None:
    """Poll ``check`` until true; fail after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


# -- schema -------------------------------------------------------------------------------


def record_step(store: Store, deployment_id: int, **step: Any) -> None:
    """One step row (the runner writes them in batches with ``record_steps``)."""
    store.record_steps(deployment_id, [step])


def test_schema_created_once_and_reopened(open_: Callable[..., Store], store_url: str | None):
    store = open_()
    assert store.kind == ("sqlite" if store_url is None else "postgresql")
    assert store.schema_version() == current_version(store.kind) == CURRENT
    store.set_env("shop", "production", "API_URL", "http://127.0.0.1:1")
    store.close()

    again = open_()
    assert again.schema_version() == CURRENT
    assert again.get_env("shop", "production", "API_URL") == "http://127.0.0.1:1"
    versions = rows(again, "SELECT version, description FROM {s}schema_version")
    # every step once (versions need not be contiguous: branches take numbers apart)
    assert [version for version, _ in versions] == [s.version for s in steps_for(again.kind)]
    tables = {
        "projects",
        "deployment_targets",
        "env_vars",
        "migration_history",
        "deployments",
        "deployment_steps",
        "deploy_locks",
        "schema_version",
        "migration_audit",
        "used_plans",
    }
    if store_url is None:
        found = rows(again, "SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        found = rows(again, "SELECT tablename FROM pg_tables WHERE schemaname = 'deploy'")
    assert tables <= {name for (name,) in found}


def test_create_false_on_missing_store_creates_nothing(
    store_url: str | None, tmp_path: Path
) -> None:
    assert open_store(store_url, tmp_path, create=False) is None
    assert list(tmp_path.iterdir()) == []
    if store_url is None:
        assert open_store("sqlite:///sub/state.db", tmp_path, create=False) is None
        assert list(tmp_path.iterdir()) == []
    else:
        with psycopg.connect(store_url) as conn:
            schemas = conn.execute("SELECT nspname FROM pg_namespace").fetchall()
        assert ("deploy",) not in schemas
        missing_db = store_url.rsplit("/", 1)[0] + "/deploy_test_no_such_database"
        assert open_store(missing_db, tmp_path, create=False) is None
        with pytest.raises(StoreError, match="does not exist.*Create the database"):
            open_store(missing_db, tmp_path)


def test_create_false_opens_a_current_store_read_write(open_: Callable[..., Store]):
    open_().close()
    store = open_(create=False)
    assert store is not None
    deployment = store.start_deployment(
        "shop", "production", who="ci", config_snapshot="{}", config_sha256="ab", dry_run=True
    )
    assert store.deployments("shop")[0].id == deployment
    assert store.deployments("shop")[0].dry_run is True


def test_older_schema_reads_as_missing_until_upgraded(
    open_: Callable[..., Store], store_url: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_()
    store.record_migration("shop", "production", migration("001.sql"))
    store.close()
    if store_url is None:
        step = SchemaStep(CURRENT + 1, "a note", ("ALTER TABLE deployments ADD COLUMN note TEXT",))
        monkeypatch.setattr(store_schema, "SQLITE_STEPS", [*store_schema.SQLITE_STEPS, step])
    else:
        step = SchemaStep(
            CURRENT + 1, "a note", ("ALTER TABLE deploy.deployments ADD COLUMN note text",)
        )
        monkeypatch.setattr(store_schema, "POSTGRES_STEPS", [*store_schema.POSTGRES_STEPS, step])

    assert open_(create=False) is None  # a dry run never upgrades
    upgraded = open_()
    assert upgraded.schema_version() == CURRENT + 1
    assert list(upgraded.applied_migrations("shop", "production")) == ["001.sql"]
    assert open_(create=False) is not None

    monkeypatch.undo()  # this pytest-deploy is now older than the store
    newer = f"schema version {CURRENT + 1}, newer than this pytest-deploy"
    with pytest.raises(StoreError, match=newer):
        open_()


def test_concurrent_first_opens_all_succeed(store_url: str | None, tmp_path: Path) -> None:
    procs = [python(OPEN_ON_GO, store_url or "", str(tmp_path)) for _ in range(4)]
    try:
        for proc in procs:
            expect_line(proc, "ready")
        for proc in procs:  # release them together
            proc.stdin.write("go\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
        for proc in procs:
            out, err = proc.communicate(timeout=WAIT_S)
            assert (proc.returncode, out.strip()) == (0, str(CURRENT)), err
    finally:
        for proc in procs:
            proc.kill()
    with open_store(store_url, tmp_path) as store:
        assert rows(store, "SELECT version FROM {s}schema_version ORDER BY 1") == [
            (s.version,) for s in steps_for(store.kind)
        ]


# -- SQLite files -------------------------------------------------------------------------


def test_sqlite_default_file_is_private_and_ignored(tmp_path: Path) -> None:
    with open_store(None, tmp_path) as store:
        store.set_env("shop", "production", "TOKEN", "s3cret-value")
    folder = tmp_path / ".deploy"
    assert (folder / ".gitignore").read_text() == "*\n"
    assert (folder / "state.sqlite3").stat().st_mode & 0o777 == 0o600


def test_sqlite_urls_relative_to_rootdir_or_absolute(tmp_path: Path) -> None:
    with open_store("sqlite:///stores/team.db", tmp_path) as store:
        assert Path(store.describe()) == tmp_path / "stores" / "team.db"
    absolute = tmp_path / "abs" / "x.sqlite3"
    with open_store(f"sqlite:///{absolute}", tmp_path / "elsewhere") as store:
        assert Path(store.describe()) == absolute
    assert absolute.stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "stores" / ".gitignore").exists()
    with pytest.raises(StoreError, match="not supported"):
        open_store("mysql://127.0.0.1/x", tmp_path)


def test_sqlite_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / ".deploy" / "state.sqlite3"
    path.parent.mkdir()
    path.write_text("these are my notes, not a database\n" * 50)
    for create in (True, False):
        with pytest.raises(StoreError) as caught:
            open_store(None, tmp_path, create=create)
        message = str(caught.value)
        assert str(path) in message and "not a usable SQLite database" in message
        assert "move it away" in message and "\n" not in message


def test_sqlite_store_folder_that_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / ".deploy").write_text("a file where the store folder should be")
    with pytest.raises(StoreError, match=r"Cannot create the SQLite store .*\.deploy"):
        open_store(None, tmp_path)


def test_sqlite_empty_file_reads_as_no_store_in_dry_runs(tmp_path: Path) -> None:
    path = tmp_path / ".deploy" / "state.sqlite3"
    path.parent.mkdir()
    path.touch()  # e.g. left by a run killed before it wrote the schema
    assert open_store(None, tmp_path, create=False) is None
    assert path.read_bytes() == b""


# -- PostgreSQL connections ----------------------------------------------------------------


def test_unreachable_postgres_is_a_store_error(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that was just free, so nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://deployer:hunter2-secret@127.0.0.1:{port}/app"
    with pytest.raises(StoreError) as caught:
        open_store(url, tmp_path)
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message and "connection refused" in message
    assert "hunter2-secret" not in message and "deployer:***@" in message


def test_postgres_connection_settings(tmp_path: Path) -> None:
    with temporary_database() as url, open_store(url, tmp_path) as store:
        conn = store.driver.connection
        assert conn.execute("SHOW client_connection_check_interval").fetchone() == ("1s",)
        assert conn.info.get_parameters()["keepalives"] == "1"
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_postgres_role_without_create_privilege(pg_database: str, tmp_path: Path) -> None:
    role = f"deploy_test_role_{os.getpid()}"
    url = pg_database.replace("postgresql://postgres@", f"postgresql://{role}@")
    with psycopg.connect(database_url("test"), autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
    try:
        with pytest.raises(StoreError) as caught:
            open_store(url, tmp_path)
        assert "permission denied" in str(caught.value)
        assert "CREATE SCHEMA deploy AUTHORIZATION" in str(caught.value)
        # once an administrator made the schema, the role needs no CREATE on the database
        with psycopg.connect(pg_database, autocommit=True) as owner:
            owner.execute(f"CREATE SCHEMA deploy AUTHORIZATION {role}")
        with open_store(url, tmp_path) as store:
            store.set_env("shop", "production", "A", "1")
    finally:
        with psycopg.connect(pg_database, autocommit=True) as owner:
            owner.execute("DROP SCHEMA IF EXISTS deploy CASCADE")
        with psycopg.connect(database_url("test"), autocommit=True) as admin:
            admin.execute(f"DROP ROLE IF EXISTS {role}")


def test_describe_url_masks_passwords() -> None:
    assert describe_url("postgresql://u:pw@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert describe_url("postgres://u@h/db?password=pw&x=1") == "postgres://u@h/db?password=***&x=1"
    assert describe_url("sqlite:///x.db") == "sqlite:///x.db"


# -- migration history ---------------------------------------------------------------------


def test_migration_history_is_per_project_and_target(store: Store) -> None:
    store.record_migration("shop", "production", migration("001.sql", "a", applied_by="ann"))
    store.record_migration("shop", "production", migration("002.sql", "b", minutes=1))
    store.record_migration("shop", "staging", migration("001.sql", "s"))
    store.record_migration("blog", "production", migration("001.sql", "z"))

    production = store.applied_migrations("shop", "production")
    assert sorted(production) == ["001.sql", "002.sql"]
    first = production["001.sql"]
    assert (first.checksum, first.applied_by, first.status) == ("a", "ann", "success")
    assert first.applied_at == NOW and first.applied_at.tzinfo is not None
    assert store.applied_migrations("shop", "staging")["001.sql"].checksum == "s"
    assert store.applied_migrations("blog", "production")["001.sql"].checksum == "z"
    assert store.applied_migrations("blog", "staging") == {}
    assert store.applied_migrations("unknown", "production") == {}
    assert store.projects() == ["blog", "shop"]

    # upsert on (project, target, file): a re-record replaces, never duplicates
    store.record_migration("shop", "production", migration("001.sql", "a2", minutes=5))
    history = store.migration_history("shop", "production")
    assert [(r.file, r.checksum) for r in history] == [("001.sql", "a2"), ("002.sql", "b")]
    assert [r.file for r in store.migration_history("shop", "production", limit=1)] == ["001.sql"]


def test_failed_record_then_success_replaces_it(store: Store) -> None:
    failed = migration("003.sql", status="failed", error_message="syntax error at line 3")
    store.record_migration("shop", "production", failed)
    record = store.applied_migrations("shop", "production")["003.sql"]
    assert (record.status, record.error_message) == ("failed", "syntax error at line 3")

    store.record_migration("shop", "production", migration("003.sql", execution_time_ms=12))
    records = store.migration_history("shop", "production")
    assert len(records) == 1
    assert (records[0].status, records[0].error_message) == ("success", None)
    assert records[0].execution_time_ms == 12

    store.record_migration("shop", "production", migration("003.sql", status="rolled_back"))
    assert store.applied_migrations("shop", "production")["003.sql"].status == "rolled_back"
    with pytest.raises(ValueError, match="not one of"):
        store.record_migration("shop", "production", migration("003.sql", status="done"))


def test_history_row_commits_with_the_migration_when_the_store_is_the_target(
    store: Store, store_url: str | None, tmp_path: Path
) -> None:
    """The store as the target's own database: the migration runner sends the history row
    (Store.history_statement) in the migration's transaction, so both commit or neither."""
    url = store_url or f"sqlite:///{tmp_path / '.deploy' / 'state.sqlite3'}"
    failing = tmp_path / "001_fails.sql"
    failing.write_text("CREATE TABLE app_table (x INTEGER);\nSELECT x FROM no_such_table;\n")
    good = tmp_path / "001.sql"
    good.write_text("CREATE TABLE app_table (x INTEGER);\n")
    with SqlExecutor(url) as executor:
        runner = MigrationRunner(executor, store, "shop", "production")
        assert runner.same_database
        with pytest.raises(MigrationError, match="no_such_table"):
            runner.apply("001.sql", failing, checksum=file_checksum(failing), who="ann")
        assert store.applied_migrations("shop", "production") == {}
        done = runner.apply("001.sql", good, checksum=file_checksum(good), who="ann")
        assert done.recorded
    (record,) = store.applied_migrations("shop", "production").values()
    assert (record.file, record.checksum, record.applied_by) == (
        "001.sql",
        file_checksum(good),
        "ann",
    )
    assert record.status == "success" and isinstance(record.execution_time_ms, int)

    other = f"sqlite:///{tmp_path / 'other.db'}" if store_url is None else database_url("test")
    with SqlExecutor(other) as executor:
        assert store.is_store_connection(executor.connection) is False
        assert MigrationRunner(executor, store, "shop", "production").same_database is False


# -- targets and env vars ------------------------------------------------------------------


def test_targets_crud(store: Store) -> None:
    added = store.add_target(
        "shop",
        "production",
        type="database",
        provider="supabase",
        host="db.local",
        region="eu",
        protected=True,
    )
    assert (added.name, added.type, added.provider, added.host, added.region) == (
        "production",
        "database",
        "supabase",
        "db.local",
        "eu",
    )
    assert added.protected is True and added.health_check_url is None
    store.add_target("shop", "staging")
    with pytest.raises(StoreError, match="'production' already exists for project 'shop'"):
        store.add_target("shop", "production")

    updated = store.update_target(
        "shop",
        "production",
        host="db2.local",
        protected=False,
        health_check_url="http://127.0.0.1:8000/health",
    )
    assert (updated.host, updated.protected, updated.region) == ("db2.local", False, "eu")
    assert updated.health_check_url == "http://127.0.0.1:8000/health"
    assert updated.updated_at >= added.updated_at and updated.created_at == added.created_at
    assert store.get_target("shop", "production") == updated
    assert [t.name for t in store.list_targets("shop")] == ["production", "staging"]
    with pytest.raises(TypeError, match="colour"):
        store.update_target("shop", "production", colour="red")
    with pytest.raises(
        StoreError, match=r"No target 'prod' .* \(stored targets: production, staging\)"
    ):
        store.update_target("shop", "prod", host="x")

    store.record_migration("shop", "staging", migration("001.sql"))
    store.set_env("shop", "staging", "KEY", "value")
    store.remove_target("shop", "staging")
    assert store.get_target("shop", "staging") is None
    assert [t.name for t in store.list_targets("shop")] == ["production"]
    # history and env vars are keyed by target name and survive the target row
    assert list(store.applied_migrations("shop", "staging")) == ["001.sql"]
    assert store.get_env("shop", "staging", "KEY") == "value"
    with pytest.raises(StoreError, match="No target 'staging'"):
        store.remove_target("shop", "staging")
    assert store.list_targets("nobody") == [] and store.get_target("nobody", "x") is None


def test_env_vars_crud(store: Store) -> None:
    store.set_env("shop", "production", "DATABASE_URL", "postgresql://127.0.0.1/prod")
    store.set_env("shop", "production", "API_KEY", "k1")
    store.set_env("shop", "staging", "API_KEY", "k-staging")
    store.set_env("shop", "production", "API_KEY", "k2")  # overwrite

    assert store.get_env("shop", "production", "API_KEY") == "k2"
    assert store.get_env("shop", "production", "MISSING") is None
    assert [r.name for r in store.list_env("shop", "production")] == ["API_KEY", "DATABASE_URL"]
    assert "k2" not in repr(store.list_env("shop", "production"))
    assert store.env_values("shop", "production") == {
        "API_KEY": "k2",
        "DATABASE_URL": "postgresql://127.0.0.1/prod",
    }
    assert store.env_values("shop", "staging") == {"API_KEY": "k-staging"}
    assert store.delete_env("shop", "production", "API_KEY") is True
    assert store.delete_env("shop", "production", "API_KEY") is False
    assert store.env_values("shop", "production") == {"DATABASE_URL": "postgresql://127.0.0.1/prod"}
    assert store.env_values("nobody", "production") == {}


# -- deployment runs -----------------------------------------------------------------------


def test_deployments_and_steps(store: Store) -> None:
    first = store.start_deployment(
        "shop",
        "production",
        who="ann",
        config_snapshot='{"groups": []}',
        config_sha256="f00d",
        dry_run=False,
        started_at=NOW,
    )
    record_step(
        store,
        first,
        node_id="deploy.json::production::db::deploy[001.sql]",
        group="db",
        kind="deploy",
        file="001.sql",
        checksum="c1",
        command="psql -f 001.sql",
        outcome="passed",
        duration_ms=42,
        message=None,
    )
    record_step(
        store,
        first,
        node_id="deploy.json::production::health_check",
        group=None,
        kind="health_check",
        file=None,
        checksum=None,
        command=None,
        outcome="failed",
        duration_ms=7,
        message="status 500",
    )
    store.finish_deployment(first, "failure")
    second = store.start_deployment(
        "shop",
        "staging",
        who="bob",
        config_snapshot="{}",
        config_sha256="beef",
        dry_run=True,
        started_at=NOW + timedelta(minutes=1),
    )

    runs = store.deployments("shop")
    assert [r.id for r in runs] == [second, first]
    done = runs[1]
    assert (done.project, done.target, done.who, done.status) == (
        "shop",
        "production",
        "ann",
        "failure",
    )
    assert done.started_at == NOW and done.ended_at is not None and done.ended_at >= NOW
    assert done.dry_run is False and done.config_sha256 == "f00d"
    assert (runs[0].status, runs[0].ended_at, runs[0].dry_run) == ("running", None, True)
    assert [r.id for r in store.deployments("shop", "production")] == [first]
    assert [r.id for r in store.deployments("shop", limit=1)] == [second]
    assert store.deployment_config(first) == '{"groups": []}'

    steps = store.deployment_steps(first)
    assert [(s.kind, s.outcome, s.duration_ms) for s in steps] == [
        ("deploy", "passed", 42),
        ("health_check", "failed", 7),
    ]
    assert (steps[0].group, steps[0].file, steps[0].command) == ("db", "001.sql", "psql -f 001.sql")
    assert steps[1].message == "status 500"
    with pytest.raises(StoreError, match="Deployment 999999 is not in store"):
        store.finish_deployment(999999, "success")


def test_steps_from_several_threads(store: Store) -> None:
    run = store.start_deployment(
        "shop", "production", who="ann", config_snapshot="{}", config_sha256="x", dry_run=False
    )

    def record(n: int) -> None:
        for i in range(10):
            record_step(
                store,
                run,
                node_id=f"n{n}-{i}",
                group="g",
                kind="deploy",
                file=None,
                checksum=None,
                command=None,
                outcome="passed",
                duration_ms=1,
                message=None,
            )

    threads = [threading.Thread(target=record, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store.deployment_steps(run)) == 40


# -- deployment lock -----------------------------------------------------------------------


def test_lock_held_then_released(store: Store) -> None:
    lock = store.acquire_lock("shop", "production", holder="ann")
    assert (lock.holder, lock.host, lock.pid, lock.warning) == (
        "ann",
        socket.gethostname(),
        os.getpid(),
        None,
    )
    with pytest.raises(LockHeld) as caught:
        store.acquire_lock("shop", "production", holder="bob")
    held = caught.value
    assert (held.holder, held.host, held.pid) == ("ann", socket.gethostname(), os.getpid())
    assert held.started_at == lock.started_at
    message = str(held)
    for part in ("ann", socket.gethostname(), str(os.getpid()), held.started_at.strftime("%H:%M")):
        assert part in message
    assert store.lock_info("shop", "production").holder == "ann"

    with store.acquire_lock("shop", "staging", holder="bob"):  # another target: independent
        pass
    lock.release()
    lock.release()  # idempotent
    assert store.lock_info("shop", "production") is None
    with store.acquire_lock("shop", "production", holder="bob") as again:
        assert again.holder == "bob"
    assert store.lock_info("shop", "production") is None


def test_lock_held_by_another_process_until_it_is_killed(
    store: Store, store_url: str | None, tmp_path: Path
) -> None:
    proc = python(HOLD_LOCK, store_url or "", str(tmp_path), "wait")
    try:
        expect_line(proc, "locked")
        with pytest.raises(LockHeld) as caught:
            store.acquire_lock("shop", "production", holder="me")
        assert (caught.value.holder, caught.value.pid) == ("other-runner", proc.pid)
        assert f"pid {proc.pid}" in str(caught.value)
        if store_url is not None:
            with pytest.raises(StoreError, match="held by a live session"):
                store.break_lock("shop", "production")
    finally:
        proc.kill()  # SIGKILL: no cleanup in the holder
        proc.wait()

    if store_url is None:
        # the row stays, but its pid is dead on this host: taken over with a warning
        lock = store.acquire_lock("shop", "production", holder="me")
        assert "other-runner" in lock.warning and str(proc.pid) in lock.warning
    else:
        # the server ends the killed runner's session and frees its advisory lock
        def free() -> bool:
            try:
                store.acquire_lock("shop", "production", holder="me").release()
            except LockHeld:
                return False
            return True

        wait_until(free, "the killed runner's advisory lock to be freed")
        lock = store.acquire_lock("shop", "production", holder="me")
        assert lock.warning is None
    assert store.lock_info("shop", "production").holder == "me"
    lock.release()


def test_sqlite_lock_removed_then_taken_by_another_run_is_lost(tmp_path: Path) -> None:
    """A run asks its lock before each step (DeployLock.lost): once ``pytest-deploy unlock``
    removed its row, and while another run holds the lock, the answer says it is gone."""
    with open_store(None, tmp_path) as store:
        lock = store.acquire_lock("shop", "production", holder="me")
        assert lock.lost() is None
        removed = store.break_lock("shop", "production")  # what `pytest-deploy unlock` does
        assert removed is not None and removed.holder == "me"
        assert lock.lost() == "its lock row was removed (pytest-deploy unlock?)"
        other = python(HOLD_LOCK, "", str(tmp_path), "wait")
        try:
            expect_line(other, "locked")  # the lock is free: another run takes it
            assert lock.lost() == "its lock row was removed (pytest-deploy unlock?)"
            lock.release()  # removes only its own row, never the new holder's
            info = store.lock_info("shop", "production")
            assert info is not None and (info.holder, info.pid) == ("other-runner", other.pid)
        finally:
            other.kill()
            other.wait()


def test_sqlite_stale_lock_of_finished_process_is_taken_over(tmp_path: Path) -> None:
    proc = python(HOLD_LOCK, "", str(tmp_path), "vanish")
    out, err = proc.communicate(timeout=WAIT_S)
    assert out.strip() == "locked", err
    with open_store(None, tmp_path) as store:
        assert store.lock_info("shop", "production").pid == proc.pid
        with store.acquire_lock("shop", "production", holder="me") as lock:
            assert lock.warning is not None
            assert "stale" in lock.warning and "other-runner" in lock.warning
            assert f"pid {proc.pid}" in lock.warning
        assert store.lock_info("shop", "production") is None


def test_sqlite_break_lock(tmp_path: Path) -> None:
    with open_store(None, tmp_path) as store:
        store.acquire_lock("shop", "production", holder="ann")
        broken = store.break_lock("shop", "production")
        assert broken is not None and broken.holder == "ann"
        assert store.break_lock("shop", "production") is None
        store.acquire_lock("shop", "production", holder="bob").release()


# -- issue 9 #9: files the store does not own are left alone ----------------------------


def test_a_foreign_sqlite_database_is_refused_unchanged(tmp_path: Path) -> None:
    other = tmp_path / "other-app.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    other.chmod(0o644)
    before = (other.read_bytes(), other.stat().st_mode)
    for create in (True, False):
        with pytest.raises(StoreError, match="of something else .tables: customers"):
            open_store(f"sqlite:///{other}", tmp_path, create=create)
    assert (other.read_bytes(), other.stat().st_mode) == before
    assert not (tmp_path / "other-app.db-wal").exists()


def test_a_special_file_is_refused_unchanged(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    fifo.chmod(0o644)
    with pytest.raises(StoreError, match="is not a regular file"):
        open_store(f"sqlite:///{fifo}", tmp_path)
    assert fifo.stat().st_mode & 0o777 == 0o644
