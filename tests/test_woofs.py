"""The seed's end-to-end test: the Woofs config, unchanged, deployed to real PostgreSQL.

Recording stand-ins for npm, supabase, sudo and systemctl come first on PATH (the real
/usr/bin/systemctl is never reached); psql is the real one; the health check polls a
local HTTP server instead of the config's public host.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.standins import WOOFS_CALLS, woofs_copy


@pytest.fixture
def woofs(tmp_path: Path) -> Path:
    woofs_copy(tmp_path)
    return tmp_path / "woofs"


def deploy(project: Path, db_url: str, health_url: str) -> subprocess.CompletedProcess[str]:
    bin_dir = project.parent / "bin"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "STANDIN_LOG": str(project.parent / "standins.log"),
    }
    args = [
        sys.executable, "-m", "pytest", "woofs/deploy.json", "-p", "no:cacheprovider", "-rs",
        "--deploy-target=production", f"--deploy-store={db_url}",
        f"--deploy-env=DATABASE_URL={db_url}",
        "--deploy-env=SUPABASE_URL=http://127.0.0.1:54321",
        "--deploy-env=SUPABASE_SERVICE_ROLE_KEY=service-role-canary",
        f"--deploy-health-url={health_url}", "--deploy-report=report.json",
    ]  # fmt: skip
    return subprocess.run(
        args, cwd=project.parent, env=env, capture_output=True, text=True, timeout=120
    )


def test_woofs_deploys_then_applies_nothing(woofs: Path, pg_database: str, http_server) -> None:
    from deploy_plugin.store import open_store

    store = open_store(pg_database, woofs.parent)
    store.add_target("woofs", "production", type="database", provider="supabase")
    store.close()

    first = deploy(woofs, pg_database, http_server.url_for("/health"))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "== 16 passed" in first.stdout, first.stdout
    assert (woofs.parent / "standins.log").read_text().splitlines() == WOOFS_CALLS
    assert http_server.count("/health") >= 1
    with psycopg.connect(pg_database) as conn:
        history = conn.execute(
            "SELECT migration_file, status, applied_by FROM deploy.migration_history"
            " ORDER BY migration_file"
        ).fetchall()
        assert [(f, s) for f, s, _ in history] == [
            ("migrations/001_create_schema.sql", "success"),
            ("migrations/002_walks.sql", "success"),
            ("woofsDB/migrations/001_sync_state.sql", "success"),
        ]
        assert conn.execute("SELECT count(*) FROM woofs.sync_state").fetchone() == (1,)

    second = deploy(woofs, pg_database, http_server.url_for("/health"))
    assert second.returncode == 0, second.stdout + second.stderr
    # the group's three applied files are one item (deploy_plugin/plugin/applied.py)
    assert "13 passed, 1 skipped" in second.stdout, second.stdout
    steps = json.loads((woofs.parent / "report.json").read_text())["deployments"][0]["steps"]
    assert sum(": applied 20" in (step["message"] or "") for step in steps) == 3
    with psycopg.connect(pg_database) as conn:
        assert conn.execute("SELECT count(*) FROM deploy.migration_history").fetchone() == (3,)
        runs = conn.execute("SELECT status FROM deploy.deployments ORDER BY id").fetchall()
        assert runs == [("success",), ("success",)]
    for output in (first.stdout, second.stdout, (woofs.parent / "report.json").read_text()):
        assert "service-role-canary" not in output
