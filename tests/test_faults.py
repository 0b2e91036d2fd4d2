"""Fault tests of issue 3: crashes, races and broken stores, through real pytest processes.

Every test writes a small project (``deploy.yaml`` declaring target ``t``) into its own tmp
folder and runs ``python -m pytest`` there as a subprocess against real PostgreSQL (a
throw-away database per test): a runner killed with SIGKILL mid-migration, two runners
started together, a migration failing in its third statement, stores that can't be
opened, and psql-driven migrations. Nothing here waits a fixed time: each wait polls an
observable state (pg_stat_activity, pg_locks, the process) with a deadline.

The target's ``DATABASE_URL`` carries a password-looking value (the test server trusts
every connection, so it is ignored there); no output may ever show it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
import yaml

from tests.pg import ADMIN_URL, database_url, temporary_database
from tests.scram_cluster import ScramCluster

PROJECT = "faults"
TARGET = "t"
#: A password-looking value in every DATABASE_URL; it must never be printed.
CANARY = "pw-canary-7c1e9"
WAIT_S = 30.0  # deadline for every poll: generous, only reached when something is wrong
STORE_KINDS = ["postgresql", "sqlite"]

T = TypeVar("T")


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def db(pg_database: str) -> tuple[str, str]:
    """The test's throw-away database: (its name, its URL with the canary password)."""
    return pg_database.rsplit("/", 1)[1], with_password(pg_database, CANARY)


def with_password(url: str, password: str) -> str:
    """``postgresql://user@host/db`` with ``password`` added to the user."""
    return url.replace("postgres@", f"postgres:{password}@", 1)


def migrations_group(**extra: Any) -> dict[str, Any]:
    """A tracked group of ``migrations/*.sql`` (built-in executor unless extra says)."""
    return {
        "name": "migrations",
        "order": 1,
        "file_patterns": ["migrations/*.sql"],
        "required_env_vars": ["DATABASE_URL"],
        **extra,
    }


def make_project(root: Path, files: dict[str, str], group: dict[str, Any] | None = None) -> Path:
    """A project folder with its own pytest.ini, deploy.yaml and ``migrations/<files>``."""
    project = root / "proj"
    (project / "migrations").mkdir(parents=True)
    (project / "pytest.ini").write_text("[pytest]\n")
    config = {
        "project": PROJECT,
        "targets": {TARGET: {"type": "database", "host": "127.0.0.1"}},
        "groups": [group or migrations_group()],
    }
    (project / "deploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    for name, text in files.items():
        (project / "migrations" / name).write_text(text)
    return project


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a runner: ours without pytest's, the store's or libpq's vars."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_", "PG", "DEPLOY_")) and key != "DATABASE_URL"
    }
    env.update(extra)
    return env


def pytest_command(*args: str, store: str | None = None, database: str | None = None) -> list[str]:
    command = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs",
        f"--deploy-target={TARGET}",
    ]  # fmt: skip
    if store is not None:
        command.append(f"--deploy-store={store}")
    if database is not None:
        command.append(f"--deploy-env=DATABASE_URL={database}")
    return command + list(args)


def run(project: Path, *args: str, env: dict[str, str] | None = None, **kw: Any) -> Run:
    """Run pytest in ``project`` to the end."""
    proc = subprocess.run(
        pytest_command(*args, **kw),
        cwd=project,
        env=env or child_env(),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    return Run(proc.returncode, proc.stdout + proc.stderr)


class Run:
    """A finished runner: exit code and everything it printed."""

    def __init__(self, returncode: int, output: str) -> None:
        self.returncode = returncode
        self.output = output

    def __repr__(self) -> str:  # what an assertion failure shows
        return f"<Run exit {self.returncode}>\n{self.output}"


class Started:
    """A runner started in the background, in its own process group; output to a file."""

    def __init__(self, project: Path, log: Path, *args: str, **kw: Any) -> None:
        self.log = log
        with open(log, "w") as handle:
            self.proc = subprocess.Popen(
                pytest_command(*args, **kw),
                cwd=project,
                env=child_env(),
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killpg reaches everything
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text()

    def wait(self) -> Run:
        try:
            code = self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        return Run(code, self.output())

    def kill(self) -> None:
        """SIGKILL the runner and its whole process group, and reap it."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)


def wait_for(what: str, check: Callable[[], T], runner: Started | None = None) -> T:
    """Poll ``check`` until it returns something truthy; fail after WAIT_S, or at once
    when ``runner`` ended meanwhile (with its output)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        value = check()
        if value:
            return value
        if runner is not None and runner.proc.poll() is not None:
            pytest.fail(f"the runner ended before {what}:\n{runner.output()}")
        if time.monotonic() > deadline:
            if runner is not None:
                runner.kill()
            pytest.fail(f"gave up waiting {WAIT_S:.0f} s for {what}")
        time.sleep(0.05)  # a poll interval, not a wait for state


def history(project: Path, store: str | None) -> dict[str, Any]:
    """The migration history of faults/t by file (empty when there is no store yet)."""
    from deploy_plugin.store import open_store

    opened = open_store(store, project, create=False)
    if opened is None:
        return {}
    try:
        return opened.applied_migrations(PROJECT, TARGET)
    finally:
        opened.close()


def claims_applied(applied: dict[str, Any], rel: str) -> bool:
    return rel in applied and applied[rel].status == "success"


def query(dbname: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url(dbname), autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def table_exists(dbname: str, table: str) -> bool:
    return query(dbname, "SELECT to_regclass(%s)", table)[0][0] is not None


def sessions_on(dbname: str) -> int:
    """Backends connected to ``dbname`` (the test's own admin connection is on ``test``)."""
    return query("test", "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", dbname)[0][0]


def advisory_locks_on(dbname: str) -> int:
    return query(
        "test",
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database ="
        " (SELECT oid FROM pg_database WHERE datname = %s)",
        dbname,
    )[0][0]


def sleeping_backend(admin: psycopg.Connection, dbname: str, seconds: str) -> int | None:
    """The backend running ``pg_sleep(<seconds>)`` in ``dbname`` now, if any."""
    row = admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND state = 'active'"
        " AND query LIKE %s AND pid <> pg_backend_pid()",
        (dbname, f"%pg_sleep({seconds})%"),
    ).fetchone()
    return row[0] if row else None


def report_steps(path: Path) -> dict[str, dict[str, Any]]:
    """Steps of the one deployment in a --deploy-report file, by node id after the target."""
    (deployment,) = json.loads(path.read_text())["deployments"]
    return {step["node_id"].split(f"::{TARGET}::", 1)[1]: step for step in deployment["steps"]}


def assert_no_traceback(output: str) -> None:
    assert "Traceback" not in output, output
    assert "INTERNALERROR" not in output, output
    assert not re.search(r"^E {3}", output, re.M), output  # pytest's traceback lines
    assert not re.search(r"^\S+\.py:\d+: \w+", output, re.M), output  # "file.py:12: Error"


def assert_no_secret(*outputs: str) -> None:
    for output in outputs:
        assert CANARY not in output, output


def summary_line(output: str) -> str:
    return [line for line in output.splitlines() if line.startswith("=")][-1]


# --------------------------------------------------------------------------- 1. kill -9

LOG_TABLE = "CREATE TABLE applied_log (migration text PRIMARY KEY);\n"
SLOW = "CREATE TABLE two (id int);\nINSERT INTO applied_log VALUES ('002');\nSELECT pg_sleep({});\n"


@pytest.mark.parametrize("store_kind", STORE_KINDS)
def test_kill_9_during_a_slow_migration(
    tmp_path: Path, db: tuple[str, str], store_kind: str
) -> None:
    name, url = db
    store = url if store_kind == "postgresql" else None  # the same database, or SQLite
    project = make_project(
        tmp_path,
        {"001_log.sql": LOG_TABLE + "INSERT INTO applied_log VALUES ('001');\n",
         "002_slow.sql": SLOW.format(60)},
    )  # fmt: skip
    runner = Started(project, tmp_path / "killed.log", store=store, database=url)
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:

        backend = wait_for(
            "002's pg_sleep to run", lambda: sleeping_backend(admin, name, "60"), runner
        )
        runner.kill()
        killed = runner.output()

        applied = history(project, store)
        assert applied["migrations/001_log.sql"].status == "success"
        assert not claims_applied(applied, "migrations/002_slow.sql")
        assert not table_exists(name, "two")

        # The killed runner's sessions end by themselves (check interval, closed sockets),
        # and with them the advisory lock.
        wait_for(
            "the killed pg_sleep backend to end",
            lambda: admin.execute(
                "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = %s", (backend,)
            ).fetchone()[0],
        )
        wait_for("every session of the killed runner to end", lambda: sessions_on(name) == 0)
        wait_for("the deployment lock to be free", lambda: advisory_locks_on(name) == 0)
    assert not table_exists(name, "two")
    assert not claims_applied(history(project, store), "migrations/002_slow.sql")

    (project / "migrations" / "002_slow.sql").write_text(SLOW.format(0))
    report = tmp_path / "rerun.json"
    rerun = run(project, f"--deploy-report={report}", store=store, database=url)
    assert rerun.returncode == 0, rerun
    steps = report_steps(report)
    assert steps["migrations::deploy[migrations/001_log.sql]"]["outcome"] == "skipped"
    message = steps["migrations::deploy[migrations/001_log.sql]"]["message"]
    assert message.startswith("migrations/001_log.sql: applied ")
    assert steps["migrations::deploy[migrations/002_slow.sql]"]["outcome"] == "passed"
    if store is None:  # the SQLite lock row of the dead runner is taken over, with a warning
        assert "stale deployment lock" in rerun.output, rerun
        assert f"pid {runner.pid}" in rerun.output, rerun
    applied = history(project, store)
    assert applied["migrations/002_slow.sql"].status == "success"
    assert query(name, "SELECT migration FROM applied_log ORDER BY 1") == [("001",), ("002",)]
    assert table_exists(name, "two")
    assert_no_secret(killed, rerun.output, report.read_text())


@pytest.mark.parametrize("store_kind", ["sqlite", "postgresql-other-db"])
def test_kill_9_while_the_server_finishes_a_short_migration(
    tmp_path: Path, db: tuple[str, str], store_kind: str
) -> None:
    """Issue 9 #1: the server commits a short migration after its client died; the target's
    ledger committed with it, so the next run records it and never runs it twice."""
    name, url = db
    if store_kind == "sqlite":
        store = None
    else:
        store_db = stack_database(tmp_path)
        store = with_password(store_db, CANARY)
    project = make_project(
        tmp_path,
        {"001_log.sql": LOG_TABLE + "INSERT INTO applied_log VALUES ('001');\n",
         "002_slow.sql": SLOW.format(0.5)},
    )  # fmt: skip
    runner = Started(project, tmp_path / "killed.log", store=store, database=url)
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:

        backend = wait_for(
            "002's pg_sleep to run", lambda: sleeping_backend(admin, name, "0.5"), runner
        )
        runner.kill()
        wait_for(
            "the killed runner's backend to end",
            lambda: admin.execute(
                "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = %s", (backend,)
            ).fetchone()[0],
        )
    committed = table_exists(name, "two")
    ledger = query(name, "SELECT file FROM pytest_deploy.applied ORDER BY 1")
    # the schema change exists if and only if the ledger says so
    assert (("migrations/002_slow.sql",) in ledger) == committed
    rerun = run(project, store=store, database=url)
    assert rerun.returncode == 0, rerun
    assert query(name, "SELECT migration FROM applied_log ORDER BY 1") == [("001",), ("002",)]
    assert history(project, store)["migrations/002_slow.sql"].status == "success"
    if committed:
        assert "recorded in the history now, and not run again" in rerun.output, rerun
    assert_no_secret(runner.output(), rerun.output)


def stack_database(tmp_path: Path) -> str:
    """A second throw-away database, for a PostgreSQL store apart from the target."""
    import contextlib

    stack = contextlib.ExitStack()
    url = stack.enter_context(temporary_database("deploy_faults_store"))
    _CLEANUPS.append(stack)
    return url


_CLEANUPS: list[Any] = []


@pytest.fixture(autouse=True)
def _close_extra_databases() -> Iterator[None]:
    yield
    while _CLEANUPS:
        _CLEANUPS.pop().close()


# --------------------------------------------------------------------------- 2. races

#: Rounds of the race test: 3 by default; DEPLOY_RACE_ROUNDS=20 for the full run (the
#: fault harness in benchmarks/ races 100 times).
ROUNDS = int(os.environ.get("DEPLOY_RACE_ROUNDS", "3"))
LOCK_HELD = re.compile(
    r"held by (?P<holder>.+?) \(host (?P<host>\S+), pid (?P<pid>\d+|unknown),"
    r" since (?P<since>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)\)"
)


@pytest.mark.parametrize("store_kind", STORE_KINDS)
def test_two_runs_at_once_never_both_apply(
    tmp_path: Path, db: tuple[str, str], store_kind: str
) -> None:
    name, url = db
    store = url if store_kind == "postgresql" else None
    project = make_project(tmp_path, {"000_log.sql": LOG_TABLE})
    unnamed: list[str] = []
    for round_ in range(1, ROUNDS + 1):
        rel = f"migrations/{round_:03d}_round.sql"
        # A UNIQUE insert: a second application would fail, never pass silently.
        (project / rel).write_text(f"INSERT INTO applied_log VALUES ('{round_:03d}');\n")
        reports = [tmp_path / f"r{round_}-{k}.json" for k in (0, 1)]
        runners = [
            Started(project, tmp_path / f"r{round_}-{k}.log", f"--deploy-report={reports[k]}",
                    store=store, database=url)
            for k in (0, 1)
        ]  # fmt: skip
        results = [runner.wait() for runner in runners]
        steps = [report_steps(report) for report in reports]
        step = f"migrations::deploy[{rel}]"
        appliers = [k for k in (0, 1) if steps[k][step]["outcome"] == "passed"]
        assert len(appliers) == 1, (round_, results)
        winner, loser = appliers[0], 1 - appliers[0]
        assert results[winner].returncode == 0, results[winner]
        lock = steps[loser]["preflight::lock"]
        if lock["outcome"] == "failed":
            assert results[loser].returncode == 1, results[loser]
            held = LOCK_HELD.search(lock["message"])
            assert held, lock["message"]
            if held["pid"] == "unknown":
                unnamed.append(lock["message"])
            else:
                assert held["holder"].endswith("@" + socket.gethostname()), lock["message"]
                assert held["host"] == socket.gethostname(), lock["message"]
                assert int(held["pid"]) == runners[winner].pid, lock["message"]
            not_run = f"not run: deploy.yaml::{TARGET}::preflight::lock failed"
            others = [s for node, s in steps[loser].items() if not node.startswith("preflight")]
            assert all(s["outcome"] == "skipped" and s["message"] == not_run for s in others)
        else:  # it ran after the winner had finished: nothing left to apply
            assert results[loser].returncode == 0, results[loser]
            assert steps[loser][step]["outcome"] == "skipped"
            assert steps[loser][step]["message"].startswith(f"{rel}: applied ")
        assert history(project, store)[rel].status == "success"
        assert query(name, "SELECT count(*) FROM applied_log WHERE migration = %s",
                     f"{round_:03d}") == [(1,)]  # fmt: skip
        assert_no_secret(*(r.output for r in results))
    applied = history(project, store)
    assert len(applied) == ROUNDS + 1
    assert {record.status for record in applied.values()} == {"success"}
    assert query(name, "SELECT count(*) FROM applied_log") == [(ROUNDS,)]
    assert not unnamed, f"lock holder not named {len(unnamed)} time(s), e.g.: {unnamed[0]}"


# --------------------------------------------------------------------------- 3. third stmt

BAD_THIRD = """\
-- three statements; the third one fails
CREATE TABLE first_table (id int);

CREATE TABLE second_table (id int);
INSERT INTO no_such_table VALUES (1);
CREATE TABLE fourth_table (id int);
"""


@pytest.mark.parametrize("store_kind", STORE_KINDS)
def test_error_in_the_third_statement(tmp_path: Path, db: tuple[str, str], store_kind: str) -> None:
    name, url = db
    store = url if store_kind == "postgresql" else None
    project = make_project(
        tmp_path,
        {"001_ok.sql": "CREATE TABLE ok_table (id int);\n",
         "002_bad.sql": BAD_THIRD,
         "003_later.sql": "CREATE TABLE later_table (id int);\n"},
    )  # fmt: skip
    report = tmp_path / "first.json"
    first = run(project, f"--deploy-report={report}", store=store, database=url)
    assert first.returncode == 1, first
    assert "1 failed" in summary_line(first.output), first
    where = "migrations/002_bad.sql, line 5"
    error = 'relation "no_such_table" does not exist'
    assert f"{where}: {error}" in first.output, first
    failed = f"deploy.yaml::{TARGET}::migrations::deploy[migrations/002_bad.sql] failed"
    assert f"not run: {failed}" in first.output, first
    steps = report_steps(report)
    assert steps["migrations::deploy[migrations/003_later.sql]"]["outcome"] == "skipped"
    assert steps["migrations::deploy[migrations/003_later.sql]"]["message"] == f"not run: {failed}"
    for table in ("first_table", "second_table", "fourth_table", "later_table"):
        assert not table_exists(name, table), table
    assert table_exists(name, "ok_table")
    applied = history(project, store)
    bad = applied["migrations/002_bad.sql"]
    assert bad.status == "failed"
    assert where in bad.error_message and error in bad.error_message
    assert "migrations/003_later.sql" not in applied
    assert_no_traceback(first.output)

    (project / "migrations" / "002_bad.sql").write_text(
        BAD_THIRD.replace("INSERT INTO no_such_table", "INSERT INTO first_table")
    )
    second = run(project, store=store, database=url)
    assert second.returncode == 0, second
    applied = history(project, store)
    assert applied["migrations/002_bad.sql"].status == "success"
    assert applied["migrations/002_bad.sql"].error_message is None
    assert applied["migrations/003_later.sql"].status == "success"
    for table in ("first_table", "second_table", "fourth_table", "later_table"):
        assert table_exists(name, table), table
    assert_no_secret(first.output, second.output, report.read_text())


# --------------------------------------------------------------------------- 4. stores


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def store_fault(project: Path, store: str, phrase: str) -> None:
    """A run with ``store`` fails once, clearly, with ``phrase``; nothing is deployed."""
    result = run(project, store=store, database="sqlite:///target.sqlite3")
    assert result.returncode == 1, result
    assert phrase in result.output, result
    assert_no_traceback(result.output)
    last = summary_line(result.output)
    assert " 1 failed" in last and last.count("failed") == 1, result
    assert "error" not in last, result  # no collection error
    assert f"not run: deploy.yaml::{TARGET}::" in result.output, result  # the rest: skipped
    assert not (project / "target.sqlite3").exists()  # nothing ran
    assert_no_secret(result.output)


ONE_MIGRATION = {"001_a.sql": "CREATE TABLE a (id int);\n"}


def test_store_file_that_is_not_a_database(tmp_path: Path) -> None:
    project = make_project(tmp_path, ONE_MIGRATION)
    (project / "bad.sqlite3").write_bytes(bytes(range(256)) * 16)  # 4 KiB, no SQLite header
    store_fault(project, "sqlite:///bad.sqlite3", "is not a usable SQLite database")


def test_store_on_unreachable_postgres(tmp_path: Path) -> None:
    project = make_project(tmp_path, ONE_MIGRATION)
    url = f"postgresql://postgres:{CANARY}@127.0.0.1:{free_port()}/nowhere"
    store_fault(project, url, "connection refused")


def test_store_with_a_wrong_password(tmp_path: Path, scram_cluster: ScramCluster) -> None:
    project = make_project(tmp_path, ONE_MIGRATION)
    url = scram_cluster.url(password=CANARY)
    store_fault(project, url, 'password authentication failed for user "postgres"')


def test_target_database_with_a_wrong_password(tmp_path: Path, scram_cluster: ScramCluster) -> None:
    project = make_project(
        tmp_path,
        {"001_a.sql": "CREATE TABLE a (id int);\n", "002_b.sql": "CREATE TABLE b (id int);\n"},
    )
    bad = scram_cluster.url(password=CANARY)
    # From the process environment, so the message can name the URL (its password masked).
    result = run(project, env=child_env(DATABASE_URL=bad))
    assert result.returncode == 1, result
    assert_no_traceback(result.output)
    assert " 1 failed" in summary_line(result.output), result
    shown = f"postgresql://postgres:***@127.0.0.1:{scram_cluster.port}/postgres"
    assert f"cannot connect to {shown}" in result.output, result
    assert 'password authentication failed for user "postgres"' in result.output, result
    failed = f"deploy.yaml::{TARGET}::migrations::deploy[migrations/001_a.sql] failed"
    assert f"not run: {failed}" in result.output, result
    assert history(project, None)["migrations/001_a.sql"].status == "failed"
    assert "migrations/002_b.sql" not in history(project, None)
    # the right password works: the message was about the password, not the server
    good = run(project, env=child_env(DATABASE_URL=scram_cluster.url()))
    assert good.returncode == 0, good
    assert_no_secret(result.output, good.output)


# --------------------------------------------------------------------------- 5. psql

PSQL_GROUP = migrations_group(deploy_command="psql $DATABASE_URL -f {file}")
WAIT_KEY = 7_300_517  # an advisory lock the test holds to keep a psql migration waiting


def test_psql_migrations_fail_on_sql_errors_and_record_only_after_success(
    tmp_path: Path, db: tuple[str, str]
) -> None:
    name, url = db
    bad = "CREATE TABLE s2a (id int);\nSELECT * FROM missing_s2;\nCREATE TABLE s2b (id int);\n"
    project = make_project(
        tmp_path,
        {"001_ok.sql": "CREATE TABLE s1 (id int);\n",
         "002_bad.sql": bad,
         "003_after.sql": "CREATE TABLE s3 (id int);\n"},
        PSQL_GROUP,
    )  # fmt: skip
    first = run(project, database=url)
    assert first.returncode == 1, first
    assert_no_traceback(first.output)
    assert 'relation "missing_s2" does not exist' in first.output, first
    failed = f"deploy.yaml::{TARGET}::migrations::deploy[migrations/002_bad.sql] failed"
    assert f"not run: {failed}" in first.output, first
    assert not table_exists(name, "s2b")  # ON_ERROR_STOP: psql stopped at the error
    assert not table_exists(name, "s3")
    applied = history(project, None)
    assert applied["migrations/001_ok.sql"].status == "success"
    assert applied["migrations/002_bad.sql"].status == "failed"
    assert "missing_s2" in applied["migrations/002_bad.sql"].error_message
    assert "migrations/003_after.sql" not in applied

    # Fixed, and made to wait on a lock we hold: while psql runs, no success row exists.
    (project / "migrations" / "002_bad.sql").write_text(
        f"CREATE TABLE IF NOT EXISTS s2a (id int);\nSELECT pg_advisory_lock({WAIT_KEY});\n"
        f"SELECT pg_advisory_unlock({WAIT_KEY});\nCREATE TABLE s2b (id int);\n"
    )
    with psycopg.connect(database_url(name), autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (WAIT_KEY,))
        runner = Started(project, tmp_path / "second.log", database=url)
        wait_for(
            "psql to wait for the lock",
            lambda: query(
                "test",
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
                " AND wait_event_type = 'Lock' AND query LIKE 'SELECT pg_advisory_lock(%%'",
                name,
            )[0][0],
            runner,
        )
        assert history(project, None)["migrations/002_bad.sql"].status == "failed"
        holder.execute("SELECT pg_advisory_unlock(%s)", (WAIT_KEY,))
        second = runner.wait()
    assert second.returncode == 0, second
    applied = history(project, None)
    assert applied["migrations/002_bad.sql"].status == "success"
    assert applied["migrations/003_after.sql"].status == "success"
    assert table_exists(name, "s2b") and table_exists(name, "s3")
    logs = [log.read_text() for log in (project / ".deploy" / "logs").rglob("*.log")]
    assert logs  # psql's output went to the step logs, masked
    assert_no_secret(first.output, second.output, *logs)


def test_lock_holder_is_named_while_it_is_naming_itself(db: tuple[str, str], tmp_path: Path):
    """Regression: a run that met the advisory lock before its holder's deploy_locks row
    existed reported "a session of pytest-deploy, pid unknown" instead of the holder."""
    import threading

    from deploy_plugin.store import open_store
    from deploy_plugin.store.base import LockHeld

    name, url = db
    first, second = open_store(url, tmp_path), open_store(url, tmp_path)
    first.project_id("p")
    blocker = psycopg.connect(url)
    blocker.execute("LOCK TABLE deploy.deploy_locks IN EXCLUSIVE MODE")  # holds up the INSERT
    taken: list[object] = []
    holder = threading.Thread(target=lambda: taken.append(first.acquire_lock("p", "t", holder="A")))
    holder.start()
    wait_for("the holder's advisory lock", lambda: query(
        name, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
    ) == [(1,)])  # fmt: skip
    refused: list[LockHeld] = []

    def contender() -> None:
        try:
            second.acquire_lock("p", "t", holder="B")
        except LockHeld as err:
            refused.append(err)

    thread = threading.Thread(target=contender)
    thread.start()
    # the contender is reading deploy_locks for the holder's name: now let the holder write it
    wait_for("the contender to look for the holder's name", lambda: query(
        name, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT holder, host, pid%%'"
    ) != [(0,)])  # fmt: skip
    blocker.commit()
    blocker.close()
    holder.join(10)
    thread.join(10)
    (err,) = refused
    assert err.holder == "A" and err.pid == os.getpid()
    taken[0].release()
    first.close()
    second.close()
