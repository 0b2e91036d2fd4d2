"""The README's main job: deployments/demo on its `local` target, twice, then a dry run."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]



def run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "demo", "-p", "no:cacheprovider", "-rs", *args],
        cwd=project.parent, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_demo_deploys_twice_and_plans_without_changes(demo: Path) -> None:
    port = f"--deploy-env=DEMO_PORT={free_port()}"
    first = run(demo, "--deploy-target=local", port, "--junitxml=deploy.xml")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "19 passed" in first.stdout, first.stdout
    assert (demo.parent / "deploy.xml").exists()
    out = demo / ".out" / "local"
    assert sorted(p.name for p in (out / "functions").iterdir()) == ["greet", "report"]
    pid = int((out / "run" / "demo-api.pid").read_text())
    # the service stops by itself: it runs under `timeout 60`
    assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:2] == [b"timeout", b"60"]

    second = run(demo, "--deploy-target=local", port)
    assert second.returncode == 0, second.stdout + second.stderr
    # the three applied migrations: one item (deploy_plugin/plugin/applied.py), one -rs line
    assert "16 passed, 1 skipped" in second.stdout, second.stdout
    assert second.stdout.count(": 3 files already applied: ") == 1
    assert int((out / "run" / "demo-api.pid").read_text()) != pid  # replaced

    before = sorted(str(p) for p in demo.parent.rglob("*") if ".deploy" not in p.parts)
    state = (demo.parent / ".deploy" / "state.sqlite3").stat().st_size
    plan = run(demo, "--deploy-target=local", port, "--dry-run")
    assert plan.returncode == 0, plan.stdout
    assert "plan:" in plan.stdout and "python3 tools/build.py src" in plan.stdout
    assert sorted(str(p) for p in demo.parent.rglob("*") if ".deploy" not in p.parts) == before
    assert (demo.parent / ".deploy" / "state.sqlite3").stat().st_size >= state


def test_demo_on_postgresql(demo: Path, pg_database: str) -> None:
    result = run(
        demo, "--deploy-target=pg", f"--deploy-store={pg_database}",
        f"--deploy-env=DATABASE_URL={pg_database}", f"--deploy-env=DEMO_PORT={free_port()}",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "migrations applied: 3" in result.stdout
