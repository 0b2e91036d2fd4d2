"""The deployment history page at scale: 1,000 deployments x 50 steps.

    .venv/bin/python benchmarks/history_page.py [--targets 5] [--runs 200] [--steps 50]
        [--limit 200] [--repeat 3]

A SQLite store is filled directly (``--targets`` x ``--runs`` deployments of ``--steps``
steps each, 1 in 7 failing, a config change every 10 runs, 100 migration rows per
target), then, best of ``--repeat``:

    write       build + render + write the page in-process (write_history_page)
    cli         ``pytest-deploy history bench --html FILE`` as a subprocess (wall time,
                including Python's start-up and imports)
    dcl         headless Chromium (Debian's, via Playwright) opening the file: the
                navigation's DOMContentLoaded time (performance timing), plus the time
                until the first deployment's detail is drawn (the page's script ran)

and the file's size. Aims (issue 12): size <= 3 MB, write <= 2 s, DOMContentLoaded <= 2 s.
The default (5 x 200, limit 200) puts all 1,000 runs in the page in full.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from deploy_plugin.report.html import write_history_page
from deploy_plugin.store import open_store
from deploy_plugin.store.records import MigrationRecord

CONFIG = """\
project: bench
targets: {{{targets}}}
groups:
  - name: migrations
    order: 1
    file_patterns: ['migrations/*.sql']
  - name: services
    order: 2
    file_patterns: ['services/*.yaml']
    deploy_command: "kubectl apply -f {{file}} --token $DEPLOY_TOKEN  # {version}"
    max_parallel: 4
"""
BROWSER_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def fill(root: Path, targets: int, runs: int, steps: int) -> None:
    store = open_store(None, root)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    names = [f"target-{t}" for t in range(targets)]
    for t, target in enumerate(names):
        for r in range(runs):
            snapshot = CONFIG.format(targets=", ".join(f"{n}: {{}}" for n in names),
                                     version=f"v{r // 10}")  # fmt: skip
            run_id = store.start_deployment(
                "bench", target, who=f"dev{r % 4}@ci", config_snapshot=snapshot,
                config_sha256=f"{r // 10:064x}", dry_run=False,
                started_at=start + timedelta(hours=r, minutes=t),
            )  # fmt: skip
            failed = r % 7 == 3
            rows = []
            for s in range(steps):
                group = "migrations" if s < steps // 2 else "services"
                file = f"{group}/{s:03d}_item.{'sql' if group == 'migrations' else 'yaml'}"
                last = failed and s == steps - 1
                rows.append({
                    "node_id": f"deploy.yaml::{target}::{group}::deploy[{file}]",
                    "group": group, "kind": "deploy", "file": file, "checksum": None,
                    "command": None if group == "migrations" else
                    f"kubectl apply -f {file} --token ***  # v{r // 10}",
                    "outcome": "failed" if last else "passed",
                    "duration_ms": 40 + (s * 37 + r * 11) % 900,
                    "message": "exit status 1\nError from server: timed out" if last else None,
                })  # fmt: skip
            store.record_steps(run_id, rows)
            store.finish_deployment(run_id, "failure" if failed else "success")
        for m in range(100):
            store.record_migration("bench", target, MigrationRecord(
                f"migrations/{m:03d}_item.sql", f"{m:064x}", start + timedelta(minutes=m),
                "dev0@ci", 5 + m % 50, "success"))  # fmt: skip
    store.close()


def time_write(root: Path, out: Path, limit: int) -> float:
    store = open_store(None, root, create=False)
    try:
        began = time.perf_counter()
        write_history_page(store, "bench", out, limit=limit)
        return time.perf_counter() - began
    finally:
        store.close()


def time_cli(root: Path, out: Path, limit: int) -> float:
    exe = Path(sys.executable).with_name("pytest-deploy")
    began = time.perf_counter()
    subprocess.run(
        [str(exe), "history", "bench", "--html", str(out), "--limit", str(limit)],
        cwd=root, check=True, capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - began


def time_browser(browser: object, out: Path) -> tuple[float, float]:
    """(DOMContentLoaded, detail drawn) in seconds after navigation start."""
    page = browser.new_page()  # type: ignore[attr-defined]
    try:
        page.goto(out.resolve().as_uri(), wait_until="domcontentloaded")
        page.wait_for_selector("#steps-table")
        dcl = page.evaluate(
            "performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
        )
        drawn = page.evaluate("performance.now()")
        return dcl / 1000, drawn / 1000
    finally:
        page.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", type=int, default=5)
    parser.add_argument("--runs", type=int, default=200, help="deployments per target")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("chromium is not installed: apt-get install -y chromium")
    with tempfile.TemporaryDirectory(prefix="bench-history-") as folder:
        root = Path(folder)
        (root / "pytest.ini").write_text("[pytest]\n")
        began = time.perf_counter()
        fill(root, args.targets, args.runs, args.steps)
        total = args.targets * args.runs
        print(f"store: {total} deployments x {args.steps} steps, {args.targets} targets "
              f"(filled in {time.perf_counter() - began:.1f} s)")  # fmt: skip
        out = root / "history.html"
        writes = [time_write(root, out, args.limit) for _ in range(args.repeat)]
        size = os.path.getsize(out)
        clis = [time_cli(root, root / "cli.html", args.limit) for _ in range(args.repeat)]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, headless=True, args=BROWSER_ARGS
            )
            try:
                loads = [time_browser(browser, out) for _ in range(args.repeat)]
            finally:
                browser.close()
        shown = min(args.runs, args.limit) * args.targets
        print(f"page: {shown} deployments in full, limit {args.limit} per target")
        print(f"file size        {size / 1_000_000:.2f} MB   (aim <= 3 MB)")
        print(f"write            {min(writes):.2f} s    (aim <= 2 s; in-process, best of "
              f"{args.repeat}: {', '.join(f'{w:.2f}' for w in writes)})")  # fmt: skip
        print(f"cli wall time    {min(clis):.2f} s    (pytest-deploy history --html, with "
              f"start-up: {', '.join(f'{c:.2f}' for c in clis)})")  # fmt: skip
        print(f"DOMContentLoaded {min(d for d, _ in loads):.2f} s    (aim <= 2 s; "
              f"{', '.join(f'{d:.2f}' for d, _ in loads)})")  # fmt: skip
        print(f"detail drawn     {min(t for _, t in loads):.2f} s    (script ran, first "
              f"run's steps shown)")  # fmt: skip


if __name__ == "__main__":
    main()
