"""Issue 23, feature 2: lock timeouts with retries for migrations, against real PostgreSQL.

A second session holds ``LOCK TABLE t IN ACCESS EXCLUSIVE MODE`` while the deployment's
migration (``ALTER TABLE t ADD COLUMN c``) runs with ``lock_timeout`` and ``lock_retries``.
The test knows an attempt is waiting when ``pg_locks`` shows the request not granted; each
attempt is a transaction of its own (the built-in executor's) or a backend of its own
(psql's), so distinct ``(pid, virtualtransaction)`` pairs count attempts. Nothing waits a
fixed time and no timing is asserted: a poll interval only paces the polling.

Every case runs for the built-in executor and for a psql-applied group (``psql -f {file}``,
wrapped with ``-1``; the timeouts reach it through PGOPTIONS).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import yaml

from deploy_plugin.migration_record import MigrationRecord

PROJECT, TARGET = "locks", "t"
WAIT_S = 60.0  # deadline of every poll: reached only when something is wrong
ADD_C = "ALTER TABLE t ADD COLUMN c int;\n"
MAKE_U = "CREATE TABLE u (id int);\n"
TWO_FILES = {"001_add_c.sql": ADD_C, "002_u.sql": MAKE_U}
PSQL = 'psql "$DATABASE_URL" -f {file}'
KINDS = ["builtin", "psql"]


@pytest.fixture
def target(pg_database: str) -> Iterator[str]:
    """The deployment's database, with a table ``t`` that the holder locks."""
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int)")
    yield pg_database


@pytest.fixture
def holder(target: str) -> Iterator[psycopg.Connection[Any]]:
    """A second session holding ACCESS EXCLUSIVE on ``t`` until the test rolls it back."""
    with psycopg.connect(target) as conn:
        conn.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        yield conn
        conn.rollback()


def project(pytester: pytest.Pytester, kind: str, files: dict[str, str], **keys: Any) -> None:
    """deploy.yaml with one tracked group of ``migrations/*.sql`` and the given keys."""
    group = {"name": "migrations", "order": 1, "file_patterns": ["migrations/*.sql"], **keys}
    if kind == "psql":
        group["deploy_command"] = PSQL
    config = {"project": PROJECT, "targets": {TARGET: {}}, "groups": [group]}
    (pytester.path / "deploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (pytester.path / "migrations").mkdir()
    for name, text in files.items():
        (pytester.path / "migrations" / name).write_text(text)


def deploy_args(url: str) -> list[str]:
    return [
        "-p", "no:cacheprovider", "-rs", f"--deploy-target={TARGET}",
        f"--deploy-env=DATABASE_URL={url}", "--deploy-report=report.json",
        "-o", "junit_logging=system-out", "--junitxml=junit.xml",
    ]  # fmt: skip


def steps(pytester: pytest.Pytester) -> dict[str, dict[str, Any]]:
    """The JSON report's steps by their last node id part."""
    (deployment,) = json.loads((pytester.path / "report.json").read_text())["deployments"]
    return {step["node_id"].rsplit("::", 1)[-1]: step for step in deployment["steps"]}


def history(pytester: pytest.Pytester) -> dict[str, MigrationRecord]:
    from deploy_plugin.store import open_store

    store = open_store(None, pytester.path, create=False)
    assert store is not None
    try:
        return store.applied_migrations(PROJECT, TARGET)
    finally:
        store.close()


def columns(url: str, table: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
            " ORDER BY ordinal_position",
            (table,),
        ).fetchall()
    return [row[0] for row in rows]


def ledger(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        if conn.execute("SELECT to_regclass('pytest_deploy.applied')").fetchone() == (None,):
            return []
        return [r[0] for r in conn.execute("SELECT file FROM pytest_deploy.applied ORDER BY 1")]


def waiting_attempts(url: str, at_least: int, proc: Any) -> None:
    """Poll pg_locks until ``at_least`` distinct attempts have waited for a lock on ``t``
    (each a transaction of its own: pid and virtual transaction id)."""
    seen: set[tuple[int, str]] = set()
    deadline = time.monotonic() + WAIT_S
    with psycopg.connect(url, autocommit=True) as observer:
        while len(seen) < at_least:
            rows = observer.execute(
                "SELECT pid, virtualtransaction FROM pg_locks"
                " WHERE relation = 't'::regclass AND NOT granted"
            ).fetchall()
            seen.update((pid, vxid) for pid, vxid in rows)
            if proc.poll() is not None:
                pytest.fail(f"the deployment ended after {len(seen)} waiting attempt(s) seen")
            if time.monotonic() > deadline:
                pytest.fail(f"saw {len(seen)} waiting attempt(s) in {WAIT_S:.0f} s")
            time.sleep(0.01)  # a poll interval, not a wait for state


def background(pytester: pytest.Pytester, url: str) -> subprocess.Popen[bytes]:
    """The deployment as a pytest process of its own (output in run.log)."""
    log = (pytester.path / "run.log").open("wb")
    command = [sys.executable, "-m", "pytest", *deploy_args(url)]
    return pytester.popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def finished(pytester: pytest.Pytester, proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    try:
        code = proc.wait(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return code, (pytester.path / "run.log").read_text()


# --------------------------------------------------------------------------- retries


@pytest.mark.parametrize("kind", KINDS)
def test_a_migration_waiting_behind_a_lock_is_retried_until_it_applies(
    pytester: pytest.Pytester, target: str, holder: psycopg.Connection[Any], kind: str
) -> None:
    keys = {"lock_timeout": "200ms", "lock_retries": 40, "statement_timeout": "1min"}
    project(pytester, kind, TWO_FILES, **keys)
    proc = background(pytester, target)
    waiting_attempts(target, 3, proc)  # three attempts have queued behind the lock
    holder.rollback()  # the long transaction ends
    code, output = finished(pytester, proc)
    assert code == 0, output
    assert columns(target, "t") == ["id", "c"] and columns(target, "u") == ["id"]
    assert ledger(target) == ["migrations/001_add_c.sql", "migrations/002_u.sql"]

    message = steps(pytester)["deploy[migrations/001_add_c.sql]"]["message"]
    match = re.fullmatch(r"applied after (\d+) attempts \(waited \d+\.\d s on locks\)", message)
    assert match, message
    attempts = int(match.group(1))
    assert attempts >= 3  # each attempt seen waiting was one; the last may have applied
    assert steps(pytester)["deploy[migrations/002_u.sql]"]["message"] is None  # no wait
    row = history(pytester)["migrations/001_add_c.sql"]
    assert row.status == "success"
    assert row.error_message == (
        f"lock_not_available on {attempts - 1} attempt(s) (lock_timeout 200ms,"
        f" statement_timeout 1min, lock_retries 40); {message}"
    )
    assert history(pytester)["migrations/002_u.sql"].error_message is None
    assert message in (pytester.path / "junit.xml").read_text()  # the step's system-out
    assert f"note: migrations/001_add_c.sql {message}" in output  # the terminal summary
    if kind == "psql":  # every attempt's output, in one log
        (log,) = pytester.path.glob(".deploy/logs/*/migrations/deploy_migrations_001_add_c*")
        text = log.read_text()
        assert text.count("55P03: canceling statement due to lock timeout") == attempts - 1
        assert "--- pytest-deploy: attempt 2 of 41, " in text


@pytest.mark.parametrize("kind", KINDS)
def test_when_the_retries_run_out_the_file_is_rolled_back_and_the_deployment_stops(
    pytester: pytest.Pytester, target: str, holder: psycopg.Connection[Any], kind: str
) -> None:
    project(pytester, kind, TWO_FILES, lock_timeout="100ms", lock_retries=2)
    result = pytester.runpytest_subprocess(*deploy_args(target))
    holder.rollback()
    result.assert_outcomes(passed=4, failed=1, skipped=1)
    output = result.stdout.str()
    assert "lock_not_available after 3 attempts (lock_timeout 100ms, lock_retries 2;" in output
    assert "nothing of the file was committed" in output
    assert "Traceback" not in output
    assert columns(target, "t") == ["id"] and columns(target, "u") == []
    assert ledger(target) == []
    report = steps(pytester)
    assert report["deploy[migrations/002_u.sql]"]["outcome"] == "skipped"
    assert "not run" in report["deploy[migrations/002_u.sql]"]["message"]
    rows = history(pytester)
    assert rows["migrations/001_add_c.sql"].status == "failed"
    error = rows["migrations/001_add_c.sql"].error_message or ""
    assert "lock_not_available after 3 attempts" in error
    assert "lock timeout" in error  # the server's own words (psql's output, or the executor's)
    assert "migrations/002_u.sql" not in rows


@pytest.mark.parametrize("kind", KINDS)
def test_a_statement_timeout_fails_the_migration_with_a_readable_reason(
    pytester: pytest.Pytester, target: str, kind: str
) -> None:
    project(
        pytester, kind, {"001_slow.sql": ADD_C + "SELECT pg_sleep(60);\n"},
        statement_timeout="100ms", lock_timeout="1s", lock_retries=3,
    )  # fmt: skip
    result = pytester.runpytest_subprocess(*deploy_args(target))
    result.assert_outcomes(passed=4, failed=1)
    output = result.stdout.str()
    assert "canceling statement due to statement timeout" in output
    assert "The group's statement_timeout is 100ms" in output
    assert "lock_not_available" not in output and "Traceback" not in output
    assert columns(target, "t") == ["id"] and ledger(target) == []  # rolled back
    assert history(pytester)["migrations/001_slow.sql"].status == "failed"


# --------------------------------------------------------------------------- no-transaction


def test_a_no_transaction_file_is_retried_only_when_its_first_statement_timed_out(
    pytester: pytest.Pytester, target: str, holder: psycopg.Connection[Any]
) -> None:
    marker = "-- deploy:no-transaction\n"
    project(
        pytester, "builtin", {"001_first.sql": marker + ADD_C}, lock_timeout="200ms",
        lock_retries=40,
    )  # fmt: skip
    proc = background(pytester, target)
    waiting_attempts(target, 2, proc)
    holder.rollback()
    code, output = finished(pytester, proc)
    assert code == 0, output
    assert steps(pytester)["deploy[migrations/001_first.sql]"]["message"].startswith(
        "applied after "
    )

    holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
    (pytester.path / "migrations" / "002_second.sql").write_text(
        marker + MAKE_U + "ALTER TABLE t ADD COLUMN d int;\n"
    )
    result = pytester.runpytest_subprocess(*deploy_args(target))
    holder.rollback()
    result.assert_outcomes(passed=4, failed=1, skipped=1)
    output = result.stdout.str()
    assert "lock_not_available (lock_timeout 200ms, lock_retries 40); not tried again" in output
    assert columns(target, "u") == ["id"]  # its first statement stayed applied
    assert columns(target, "t") == ["id", "c"]


def test_on_sqlite_the_settings_are_not_set_and_the_step_says_so(
    pytester: pytest.Pytester,
) -> None:
    project(pytester, "builtin", {"001.sql": MAKE_U}, lock_timeout="1s", lock_retries=2)
    result = pytester.runpytest(*deploy_args("sqlite:///app.db"))
    result.assert_outcomes(passed=5)
    assert steps(pytester)["deploy[migrations/001.sql]"]["message"] == (
        "lock_timeout 1s, lock_retries 2 not set: the database is SQLite, which has no such"
        " settings (it waits up to its 30 s busy timeout)"
    )


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("keys", "field", "words"),
    [
        ({"lock_timeout": "1 sec"}, "lock_timeout", "500ms, 1s or 2min"),
        ({"lock_timeout": 500}, "lock_timeout", "expected a string"),
        ({"statement_timeout": "0ms"}, "statement_timeout", "less than 1 ms"),
        ({"lock_retries": 3}, "lock_retries", "sets no lock_timeout"),
        ({"lock_timeout": "1s", "lock_retries": -1}, "lock_retries", "at least 0"),
        ({"lock_timeout": "1s", "track_migrations": False}, "lock_timeout", "does not track"),
    ],
)
def test_timeout_keys_are_checked_with_one_paragraph(
    pytester: pytest.Pytester, keys: dict[str, Any], field: str, words: str
) -> None:
    project(pytester, "builtin", {"001.sql": ADD_C}, **keys)
    result = pytester.runpytest(f"--deploy-target={TARGET}")
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    line = next(line for line in output.splitlines() if f"groups[0].{field}" in line)
    assert "deploy.yaml" in line and words in line, output
    assert "Traceback" not in output
