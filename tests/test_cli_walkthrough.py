"""The seed's "Manual Testing" walk-through with ``pytest-deploy``, end to end.

A copy of deployments/woofs (its config unchanged) in a temporary rootdir with the default
SQLite store; DATABASE_URL is a throw-away PostgreSQL database; recording stand-ins for
npm, supabase, sudo and systemctl come first on PATH (the real /usr/bin/systemctl is never
reached); the health check is skipped (the config names a public host).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from deploy_plugin.cli import main
from tests.standins import WOOFS_CALLS, woofs_copy


@pytest.fixture
def woofs_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = woofs_copy(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("STANDIN_LOG", str(tmp_path / "standins.log"))
    monkeypatch.delenv("DEPLOY_STORE_URL", raising=False)
    return tmp_path


def test_seed_walkthrough(
    woofs_home: Path,
    pg_database: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def cli(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    # 1. init: the woofs folder already holds the seed's config; an empty folder gets one
    config_before = (woofs_home / "woofs" / "deploy.json").read_bytes()
    code, _, err = cli("init", "woofs")
    assert code == 2 and "already holds a config (woofs/deploy.json)" in err
    assert (woofs_home / "woofs" / "deploy.json").read_bytes() == config_before
    (woofs_home / "empty").mkdir()
    assert cli("init", "empty")[0] == 0
    assert cli("config", "validate", "empty")[0] == 0

    # 2. the target
    code, out, _ = cli("target", "add", "woofs", "production", "--type", "database",
                       "--provider", "supabase", "--host", "db.woofs.example")  # fmt: skip
    assert code == 0, out

    # 3. env vars: the database URL through stdin, the rest as arguments
    assert cli("env", "set", "woofs", "DATABASE_URL", "-", "--target", "production",
               stdin=pg_database + "\n")[0] == 0  # fmt: skip
    for name, value in [
        ("NODE_ENV", "production"),
        ("SUPABASE_URL", "http://127.0.0.1:54321"),
        ("SUPABASE_SERVICE_ROLE_KEY", "service-role-canary"),
    ]:
        assert cli("env", "set", "woofs", name, value, "--target", "production")[0] == 0
    code, out, _ = cli("env", "list", "woofs", "--target", "production")
    assert "service-role-canary" not in out and "SUPABASE_SERVICE_ROLE_KEY" in out
    code, out, _ = cli("target", "test", "woofs", "production")
    assert code == 0 and "ok — SELECT 1" in out

    # 4. migration status: all three pending
    code, out, _ = cli("migration", "status", "woofs", "--target", "production")
    assert code == 0 and "0 applied, 3 pending, 0 drifted" in out, out

    # 5. dry run: the plan, nothing run
    code, out, err = cli("deploy", "run", "woofs", "--target", "production", "--dry-run")
    assert code == 0, out + err
    assert "15 passed" in out and "supabase functions deploy notify" in out
    assert not (woofs_home / "standins.log").exists()

    # 6. the real deployment (the config's health URL is public: skipped)
    code, out, err = cli("deploy", "run", "woofs", "--target", "production", "--no-health-check")
    assert code == 0, out + err
    assert "service-role-canary" not in out
    assert (woofs_home / "standins.log").read_text().splitlines() == WOOFS_CALLS
    with psycopg.connect(pg_database) as conn:
        assert conn.execute("SELECT count(*) FROM woofs.sync_state").fetchone() == (1,)

    # 7. the history: three successful migrations, nothing pending
    code, out, _ = cli("migration", "history", "woofs", "--target", "production",
                       "--limit", "20", "--json")  # fmt: skip
    history = json.loads(out)
    assert sorted(row["file"] for row in history) == [
        "migrations/001_create_schema.sql",
        "migrations/002_walks.sql",
        "woofsDB/migrations/001_sync_state.sql",
    ]
    assert {row["status"] for row in history} == {"success"}
    code, out, _ = cli("migration", "status", "woofs", "--target", "production")
    assert "3 applied, 0 pending, 0 drifted" in out
    code, out, _ = cli("deploy", "status", "woofs")
    assert "success" in out

    # the same questions through the console script, as a user types them
    script = Path(sys.executable).with_name("pytest-deploy")
    done = subprocess.run(
        [str(script), "migration", "history", "woofs", "--target", "production"],
        cwd=woofs_home, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(" success ") == 3
    done = subprocess.run(
        [str(script), "history", "woofs"], cwd=woofs_home, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    runs = [line for line in done.stdout.splitlines()[1:] if line.strip()]
    assert len(runs) == 2 and "yes" in runs[1]  # newest first: the real run, then the dry run
