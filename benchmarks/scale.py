"""Collection and preflight at scale: 1,000 and 10,000 tracked migration files, half applied.

    .venv/bin/python benchmarks/scale.py [--sizes 1000 10000] [--repeat 3]

For each size a temp project gets a tracked group of N ``.sql`` files (built-in executor,
SQLite store, ``sqlite:///`` DATABASE_URL: no server needed). Half of them are applied for
real: a first pytest-deploy run with only the first N/2 files present, after which the
other N/2 are written. Then, best of ``--repeat``, wall time and peak RSS of the pytest
process (``os.wait4`` rusage) for:

    pytest --collect-only -q   on the config
    pytest --dry-run -q        on the config (collection + preflight: history read, files hashed)
    pytest --collect-only -q   on a module of N trivial ``def test_i(): pass`` (plain pytest,
                               ``-p no:deploy``), the baseline
    pytest -q                  running that module: pytest's own per-item floor, for context
                               (a dry run reports every planned step as an item)

Targets (issue 5): the 10,000 case costs at most 11x the 1,000 case, and ``--dry-run`` of
10,000 files takes under 5x ``--collect-only`` of 10,000 trivial test functions.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

CONFIG = """\
project: bench
targets: {bench: {}}
groups:
  - name: migrations
    order: 1
    file_patterns: ['migrations/*.sql']
"""


def migration(i: int) -> str:
    """The i-th migration: a row in one shared table.

    Not a table per file: with thousands of tables SQLite's own DDL grows slow (each ALTER
    re-parses the whole schema), and that would swamp the set-up run, not what is measured.
    """
    return (
        f"-- migration {i:05d}\n"
        "CREATE TABLE IF NOT EXISTS bench (id INTEGER PRIMARY KEY, name TEXT NOT NULL,\n"
        "                                  created_at TEXT DEFAULT CURRENT_TIMESTAMP);\n"
        f"INSERT INTO bench (id, name) VALUES ({i}, 'migration {i:05d}');\n"
    )


def write_migrations(root: Path, first: int, last: int) -> None:
    for i in range(first, last + 1):
        (root / "migrations" / f"{i:05d}_bench.sql").write_text(migration(i))


@dataclass
class Run:
    seconds: float
    rss_mb: float


def measure(cmd: list[str], cwd: Path, expect: str) -> Run:
    """Wall time and peak RSS of one child; exits when it fails or ``expect`` is not printed."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryFile("w+") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        # wait4 gives this child's own rusage (RUSAGE_CHILDREN maxima can't be diffed).
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if proc.returncode != 0 or expect not in text:
        sys.exit(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{text[-3000:]}")
    return Run(seconds, usage.ru_maxrss / 1024)  # ru_maxrss is in KiB on Linux


def best(runs: list[Run]) -> Run:
    return Run(min(r.seconds for r in runs), min(r.rss_mb for r in runs))


def bench_size(n: int, repeat: int) -> dict[str, Run]:
    """Best collect-only, dry-run and trivial-collect figures for ``n`` files."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "migrations").mkdir()
        (root / "bench.deploy.yaml").write_text(CONFIG)
        (root / "pytest.ini").write_text("[pytest]\n")
        trivial = root / "trivial"
        trivial.mkdir()
        (trivial / "pytest.ini").write_text("[pytest]\n")
        (trivial / "test_trivial.py").write_text(
            "".join(f"def test_{i}():\n    pass\n\n\n" for i in range(n))
        )
        py = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
        deploy = [*py, "bench.deploy.yaml", "--deploy-target=bench",
                  "--deploy-store", f"sqlite:///{root}/store.sqlite3",
                  "--deploy-env", f"DATABASE_URL=sqlite:///{root}/target.sqlite3"]  # fmt: skip

        half = n // 2
        write_migrations(root, 1, half)
        start = time.perf_counter()
        measure(deploy, root, f"{half + 4} passed")
        setup = time.perf_counter() - start
        write_migrations(root, half + 1, n)
        print(f"set-up N={n}: {half} files applied by a first run in {setup:.1f} s", flush=True)

        runs: dict[str, list[Run]] = {"collect": [], "dry_run": [], "trivial": [], "run": []}
        for _ in range(repeat):
            # the applied half is one item (deploy_plugin/plugin/applied.py)
            items = n - half + 1 + 4
            runs["collect"].append(measure([*deploy, "--collect-only"], root, f"{items} tests"))
            runs["dry_run"].append(measure([*deploy, "--dry-run"], root, "1 skipped"))
            runs["trivial"].append(
                measure(
                    [*py, "-p", "no:deploy", "--collect-only", "test_trivial.py"],
                    trivial,
                    f"{n} tests",
                )  # fmt: skip
            )
            runs["run"].append(
                measure([*py, "-p", "no:deploy", "test_trivial.py"], trivial, f"{n} passed")
            )
    return {key: best(value) for key, value in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    results = {n: bench_size(n, args.repeat) for n in args.sizes}
    labels = {
        "collect": "pytest-deploy --collect-only",
        "dry_run": "pytest-deploy --dry-run",
        "trivial": "pytest --collect-only, trivial tests",
        "run": "pytest running the trivial tests",
    }
    print(f"best of {args.repeat}; python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    for n, res in results.items():
        print(f"\nN = {n} files ({n // 2} applied) / {n} trivial test functions")
        for key, label in labels.items():
            print(f"  {label:<38} {res[key].seconds:8.3f} s  {res[key].rss_mb:7.1f} MB peak RSS")
        ratio = res["dry_run"].seconds / res["trivial"].seconds
        verdict = "met" if ratio < 5 else "MISSED"
        print(f"  --dry-run / trivial --collect-only:    {ratio:6.2f}x  (target < 5x: {verdict})")
    if len(results) >= 2:
        small, large = min(results), max(results)
        scale = large / small
        limit = 1.1 * scale
        print(f"\nN = {large} against N = {small} (files x{scale:g}; target time <= {limit:g}x)")
        for key, label in labels.items():
            t = results[large][key].seconds / results[small][key].seconds
            m = results[large][key].rss_mb / results[small][key].rss_mb
            verdict = "" if key in ("trivial", "run") else ("  met" if t <= limit else "  MISSED")
            print(f"  {label:<38} time {t:6.2f}x  memory {m:5.2f}x{verdict}")


if __name__ == "__main__":
    main()
