"""Projects deployed for real (pytest in a subprocess) for the history page's tests, and a
store filled directly for scale; plus the browser the page tests drive."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

SECRET = "page-canary-4b1d"  # a stored env value every step's command uses
CLI_SECRET = "page-cli-canary-77aa"  # given with --deploy-env

CONFIG = """\
project: shop
targets:
  local:
    env:
      DATABASE_URL: "sqlite:///local.sqlite3"
  qa:
    env:
      DATABASE_URL: "sqlite:///qa.sqlite3"
groups:
  - name: migrations
    order: 1
    file_patterns: ["migrations/*.sql"]
    required_env_vars: [DATABASE_URL]
  - name: assets
    order: 2
    file_patterns: ["assets/*.txt"]
    # the first three wait for each other (bounded): they really run side by side
    deploy_command: "mkdir -p .started && touch .started/{stem} && for i in $(seq 400); do
      [ $(ls .started | wc -l) -ge 3 ] && break; sleep 0.05; done;
      cat {file} && echo token=$SHOP_TOKEN api=$API_TOKEN"
    max_parallel: 3
    required_env_vars: [SHOP_TOKEN, API_TOKEN]
  - name: build
    order: 3
    build_command: "echo building BUILD_VERSION with $SHOP_TOKEN"
"""


def deploy(
    root: Path, target: str, *extra: str, cli_env: bool = True
) -> subprocess.CompletedProcess[str]:
    """``pytest --deploy-target=TARGET`` in ``root``, a real process (API_TOKEN given with
    --deploy-env, or with ``cli_env=False`` from a --deploy-env-file)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEPLOY_", "PYTEST_"))}
    if cli_env:
        given = f"--deploy-env=API_TOKEN={CLI_SECRET}"
    else:
        (root / "api.env").write_text(f"API_TOKEN={CLI_SECRET}\n")
        given = "--deploy-env-file=api.env"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
         f"--deploy-target={target}", given, *extra],
        cwd=root, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``pytest-deploy ARGS`` in ``root``, a real process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEPLOY_", "PYTEST_"))}
    exe = Path(sys.executable).with_name("pytest-deploy")
    return subprocess.run(
        [str(exe), *args], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )


def make_shop(root: Path) -> Path:
    """The shop project (config version 1) in ``root``, its secret stored for both targets."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "deploy.yaml").write_text(CONFIG.replace("BUILD_VERSION", "v1"))
    (root / "migrations").mkdir(exist_ok=True)
    (root / "migrations" / "001_items.sql").write_text(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);\n"
    )
    (root / "assets").mkdir(exist_ok=True)
    for n in range(4):
        (root / "assets" / f"a{n}.txt").write_text(f"asset {n}\n")
    assert cli(root, "env", "set", "shop", "SHOP_TOKEN", SECRET, "-t", "local").returncode == 0
    assert cli(root, "env", "set", "shop", "SHOP_TOKEN", SECRET, "-t", "qa").returncode == 0
    return root


def deploy_history(root: Path) -> list[subprocess.CompletedProcess[str]]:
    """Four real deployments: local ×3 (v1 ok; v2 with a new migration ok; a broken
    migration fails) and qa ×1 (ok, before the broken file)."""
    make_shop(root)
    runs = [deploy(root, "local")]
    (root / "deploy.yaml").write_text(CONFIG.replace("BUILD_VERSION", "v2"))
    (root / "migrations" / "002_seed.sql").write_text("INSERT INTO items (name) VALUES ('a');\n")
    runs.append(deploy(root, "local"))
    runs.append(deploy(root, "qa"))
    (root / "migrations" / "003_broken.sql").write_text("INSERT INTO nowhere VALUES (1);\n")
    runs.append(deploy(root, "local"))
    return runs


def fill_store(store: Any, project: str, targets: int, runs: int, steps: int) -> None:
    """``targets`` × ``runs`` deployments of ``steps`` steps each, written directly."""
    from deploy_plugin.store.records import MigrationRecord

    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    config = CONFIG.replace("BUILD_VERSION", "v1")
    for t in range(targets):
        target = f"target-{t}"
        for r in range(runs):
            when = start + timedelta(hours=r)
            snapshot = config if r % 10 else config.replace("v1", f"v{r}")
            run_id = store.start_deployment(
                project, target, who=f"dev{r % 3}", config_snapshot=snapshot,
                config_sha256=f"{hash(snapshot) & 0xFFFFFFFF:064x}", dry_run=False,
                started_at=when,
            )  # fmt: skip
            failed = r % 7 == 3
            store.record_steps(run_id, [
                {"node_id": f"deploy.yaml::{target}::assets::deploy[assets/a{s:03}.txt]",
                 "group": "assets", "kind": "deploy", "file": f"assets/a{s:03}.txt",
                 "checksum": None, "command": f"cat assets/a{s:03}.txt && echo token=***",
                 "outcome": "failed" if failed and s == steps - 1 else "passed",
                 "duration_ms": 100 + (s * 37 + r) % 400,
                 "message": "exit status 1\nerror: broken" if failed and s == steps - 1 else None}
                for s in range(steps)
            ])  # fmt: skip
            store.finish_deployment(run_id, "failure" if failed else "success")
        for m in range(20):
            store.record_migration(project, target, MigrationRecord(
                f"migrations/{m:03}.sql", f"{m:064x}", start + timedelta(minutes=m),
                "dev", 12 + m, "failed" if m == 19 else "success",
                "syntax error" if m == 19 else None))  # fmt: skip


BROWSER_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-default-apps", "--disable-extensions",
]  # fmt: skip


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def chromium_path() -> str:
    """Debian's chromium; in CI a missing browser fails the test, elsewhere it skips."""
    path = shutil.which("chromium")
    if path is None:
        if in_ci():
            pytest.fail("chromium is not installed (CI=true): apt-get install -y chromium")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        if in_ci():
            pytest.fail("playwright is not installed (CI=true): pip install -e '.[test]'")
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    return path


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(
        executable_path=chromium_path(), headless=True, args=BROWSER_ARGS
    )


def browser_session() -> Iterator[Any]:
    """A Playwright Chromium browser for one test module."""
    path = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True, args=BROWSER_ARGS)
        try:
            yield browser
        finally:
            browser.close()
