"""Issue 21: ``psql "$DATABASE_URL"`` in a step never shows the URL's password in psql's
argument list (``ps``, /proc/<pid>/cmdline, readable by every user of the machine): the
psql first on PATH passes it as PGPASSWORD (/proc/<pid>/environ: its owner only) and
execs psql with the URL without it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import yaml

from deploy_plugin.store import open_store
from tests.pg import ADMIN_URL

LOCK = 421_121
#: percent-encoded in the URL ('@' and '/'), as libpq reads it
PASSWORD, ENCODED = "s3cr@t/pw-7731", "s3cr%40t%2Fpw-7731"


def descendants(pid: int) -> list[int]:
    """Every process under ``pid`` (from /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def waiting_psql(runner: subprocess.Popen[bytes]) -> int:
    """The pid of the step's psql once its backend waits for the test's advisory lock."""
    deadline = time.monotonic() + 60
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        while time.monotonic() < deadline:
            assert runner.poll() is None, "the run ended before psql waited"
            waits = admin.execute(
                "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
                (f"%pg_advisory_lock({LOCK})%",),
            ).fetchone()
            psqls = [p for p in descendants(runner.pid) if _comm(p) == "psql"]
            if waits and psqls:
                return psqls[0]
            time.sleep(0.05)
    pytest.fail("psql never waited for the lock")


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


@pytest.mark.parametrize("dbname", ["", "--dbname="], ids=["argument", "dbname-option"])
def test_psql_gets_the_password_in_its_environment_not_its_arguments(
    tmp_path: Path, pg_database: str, dbname: str
) -> None:
    url = pg_database.replace("postgresql://postgres@", f"postgresql://postgres:{ENCODED}@")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    command = f'psql {dbname}"$DATABASE_URL" -Atc "SELECT pg_advisory_lock({LOCK}), current_user"'
    (tmp_path / "deploy.yaml").write_text(yaml.safe_dump({
        "project": "p", "targets": {"t": {}},
        "groups": [{"name": "db", "order": 1, "deploy_command": command}],
    }))  # fmt: skip
    store = open_store(None, tmp_path)
    assert store is not None
    store.set_env("p", "t", "DATABASE_URL", url)  # a secret, kept in the store
    store.close()
    with psycopg.connect(pg_database, autocommit=True) as holder:  # locks are per database
        holder.execute("SELECT pg_advisory_lock(%s)", (LOCK,))
        runner = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--deploy-target=t"],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            pid = waiting_psql(runner)
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        finally:
            holder.execute("SELECT pg_advisory_unlock(%s)", (LOCK,))
    output = runner.communicate(timeout=120)[0].decode()
    shown = b" ".join(argv).decode()
    assert ENCODED not in shown and PASSWORD not in shown, shown
    assert f"{dbname}{pg_database}".encode() in argv, shown  # the URL without the password
    assert f"PGPASSWORD={PASSWORD}".encode() in environ
    assert runner.returncode == 0, output  # it connected, and the step passed
