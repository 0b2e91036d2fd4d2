"""The ledger row psql commits with a migration (``psql_guard_sql``), through the real
``-1`` psql wrapper (:mod:`deploy_plugin.engine.psql`) against a real PostgreSQL database.

A migration applied by ``psql -f {file}`` runs its ledger row first in psql's own
transaction: the row commits with the file or not at all. What that SQL must do:

* refuse, in one sentence, a file the ledger already records (nothing of it runs again);
* create the ledger when the database has none, also when two files are applied at once
  (two deployers with their own stores, one shared database): the second waits for the
  first instead of failing on a half-created table;
* and a run asks that ledger first: a file it records is skipped, never run again, also
  when this run's store never heard of it.

Nothing waits a fixed time: each wait polls ``pg_stat_activity`` with a deadline.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from deploy_plugin.engine.psql import ledger_env, psql_wrapped_env
from deploy_plugin.migrate.ledger import PG_TABLE, psql_guard_sql
from tests.procs import spawn
from tests.test_faults import claims_applied, history, make_project, migrations_group, run, wait_for

pytestmark = pytest.mark.skipif(shutil.which("psql") is None, reason="psql is not on PATH")

GATE = 4711  # an advisory lock the test holds to keep a migration's transaction open


def start_psql(tmp_path: Path, url: str, rel: str) -> subprocess.Popen[str]:
    """``psql URL -q -f REL`` as a tracked step runs it: through the ``-1`` wrapper, with
    ``rel``'s ledger row first in its transaction."""
    root, psqlrc_dir = tmp_path / "root", tmp_path / "psql"
    sql = psql_guard_sql("p", "t", rel, "0" * 64, "tester@host")
    env = psql_wrapped_env(os.environ, psqlrc_dir, single_transaction=True)
    env |= ledger_env(psqlrc_dir, root=root, rel=rel, sql=sql)
    return spawn(["psql", url, "-q", "-f", rel], cwd=root, env=env)


def finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    output, _ = proc.communicate(timeout=60)
    return proc.returncode, output


def migrations(tmp_path: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = tmp_path / "root" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def ledger(url: str) -> list[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [r[0] for r in conn.execute(f"SELECT file FROM {PG_TABLE} ORDER BY file")]


def test_psql_refuses_a_file_its_ledger_records(tmp_path: Path, pg_database: str) -> None:
    """The second apply of a recorded file runs none of it and says why in one sentence
    (not a key violation)."""
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE runs (n serial)")
    migrations(tmp_path, {"migrations/001_a.sql": "INSERT INTO runs DEFAULT VALUES;\n"})

    code, output = finish(start_psql(tmp_path, pg_database, "migrations/001_a.sql"))
    assert code == 0, output
    code, output = finish(start_psql(tmp_path, pg_database, "migrations/001_a.sql"))
    assert code != 0, output
    assert (
        f"the ledger {PG_TABLE} of this database already records migrations/001_a.sql as"
        " applied; it is not run again" in output
    ), output
    with psycopg.connect(pg_database, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (1,)
    assert ledger(pg_database) == ["migrations/001_a.sql"]


def test_two_files_applied_at_once_both_create_the_ledger(tmp_path: Path, pg_database: str) -> None:
    """Two psql runs on a database without a ledger: the first creates it and holds its
    transaction open; the second waits for it, then records its own file. Both commit."""
    migrations(
        tmp_path,
        {
            "migrations/001_a.sql": f"SELECT pg_advisory_xact_lock({GATE});\nCREATE TABLE a ();\n",
            "migrations/002_b.sql": "CREATE TABLE b ();\n",
        },
    )
    with psycopg.connect(pg_database, autocommit=True) as gate:

        def waiting(count: int) -> bool:
            row = gate.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"
            ).fetchone()
            return row is not None and row[0] >= count

        gate.execute("SELECT pg_advisory_lock(%s)", (GATE,))
        first = start_psql(tmp_path, pg_database, "migrations/001_a.sql")
        wait_for("the first file to hold its transaction open", lambda: waiting(1))
        second = start_psql(tmp_path, pg_database, "migrations/002_b.sql")
        wait_for("the second file to wait for the first", lambda: waiting(2))
        gate.execute("SELECT pg_advisory_unlock(%s)", (GATE,))
        results = [finish(first), finish(second)]
    assert [code for code, _ in results] == [0, 0], results
    assert ledger(pg_database) == ["migrations/001_a.sql", "migrations/002_b.sql"]


def test_a_file_another_store_applied_is_skipped_per_the_ledger(
    tmp_path: Path, pg_database: str
) -> None:
    """Two deployers with stores of their own, one database: the second finds the file in
    the database's ledger, skips it and records it in its own history, with a warning."""
    group = migrations_group(deploy_command='psql "$DATABASE_URL" -q -f {file}')
    project = make_project(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);\n"}, group)
    first = run(project, database=pg_database)
    assert first.returncode == 0, first
    other = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    again = run(project, "-rA", store=other, database=pg_database)
    assert again.returncode == 0, again
    assert "per the target database's ledger" in again.output, again
    assert "applied by a run that recorded it in another store" in again.output, again
    assert claims_applied(history(project, other), "migrations/001_a.sql")
    assert ledger(pg_database) == ["migrations/001_a.sql"]
