"""Runs with nothing to change: a re-run with every migration applied, and a dry run.

    .venv/bin/python benchmarks/noop.py [--rerun-n 1000] [--dry-n 10000] [--repeat 3]

Rows 3 and 4 of issue 14, each against plain pytest (``-p no:deploy``) running the same
number of trivial passing tests (``def test_i(): pass``) in the same run, best of
``--repeat``, interleaved:

    re-run   N tracked files (built-in executor, SQLite target and store), all applied by
             an untimed first run: pytest-deploy reports them skipped ("applied ..."), by
             one item (deploy_plugin/plugin/applied.py) with one step row per file
    dry run  N tracked files, none applied, ``--dry-run`` (collection, preflight: history
             read and every file hashed; each planned step reported)

Aims: re-run at most 1.2x, dry run at most 1.0x its baseline. A SQLite target and store
keep PostgreSQL out of it (``migrations.py`` has the PostgreSQL re-run).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = """\
project: bench
targets:
  bench:
    env: {DATABASE_URL: "sqlite:///target.sqlite3"}
groups:
  - name: migrations
    order: 1
    file_patterns: ['migrations/*.sql']
"""


def project(root: Path, n: int) -> None:
    (root / "migrations").mkdir(parents=True)
    for i in range(1, n + 1):
        (root / "migrations" / f"{i:05d}_m.sql").write_text(f"CREATE TABLE t{i} (id INTEGER);\n")
    (root / "bench.deploy.yaml").write_text(CONFIG)
    (root / "pytest.ini").write_text("[pytest]\n")


def trivial(root: Path, n: int) -> None:
    root.mkdir(parents=True)
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "test_trivial.py").write_text(
        "".join(f"def test_{i}():\n    pass\n\n\n" for i in range(n))
    )


def timed(cmd: list[str], cwd: Path, expect: str) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if out.returncode != 0 or expect not in out.stdout:
        sys.exit(f"{cmd} failed ({out.returncode}):\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rerun-n", type=int, default=1000)
    parser.add_argument("--dry-n", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    py = [sys.executable, "-m", "pytest", "-q"]  # pytest's cache on, as in a project
    deploy = [*py, "bench.deploy.yaml", "--deploy-target=bench"]
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        rerun, dry = base / "rerun", base / "dry"
        project(rerun, args.rerun_n)
        project(dry, args.dry_n)
        trivial(base / "trivial-rerun", args.rerun_n)
        trivial(base / "trivial-dry", args.dry_n)
        n, d = args.rerun_n, args.dry_n
        timed(deploy, rerun, f"{n + 4} passed")  # untimed: applies every file
        runs = {
            "rerun": (deploy, rerun, "4 passed, 1 skipped"),
            "rerun_base": ([*py, "-p", "no:deploy"], base / "trivial-rerun", f"{n} passed"),
            "dry": ([*deploy, "--dry-run"], dry, f"{d + 3} passed"),
            "dry_base": ([*py, "-p", "no:deploy"], base / "trivial-dry", f"{d} passed"),
        }
        for _ in range(args.repeat):
            for key, (cmd, cwd, expect) in runs.items():
                best[key] = min(best.get(key, float("inf")), timed(cmd, cwd, expect))
    print(f"best of {args.repeat}; python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    rows = [
        (f"re-run, {n} applied (SQLite)", "rerun", "rerun_base", 1.2),
        (f"--dry-run, {d} files", "dry", "dry_base", 1.0),
    ]
    for label, key, base_key, aim in rows:
        ratio = best[key] / best[base_key]
        verdict = "met" if ratio <= aim else "MISSED"
        print(
            f"  {label:<28} {best[key]:6.3f} s  pytest, trivial tests {best[base_key]:6.3f} s"
            f"  {ratio:5.2f}x (aim <= {aim:g}x: {verdict})"
        )


if __name__ == "__main__":
    main()
