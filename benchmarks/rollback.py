"""Rolling back migrations against applying them, and the schema fingerprint's cost.

    .venv/bin/python benchmarks/rollback.py [--n 1000] [--tables 300] [--repeat 3]
        [--server postgresql://postgres@127.0.0.1:5432]

Part 1 — N directory-pair migrations (``m/NNNN/up.sql`` creates a table with a column and
an index and inserts 3 rows; ``down.sql`` drops it), on a throw-away PostgreSQL database
with the store in the same database (history rows in each migration's transaction):

* **apply**: ``pytest --deploy-target=bench`` applying all N;
* **rollback**: ``pytest --deploy-target=bench --deploy-rollback=N`` undoing all N.

Each round applies then rolls back, so both start from the same state; best of
``--repeat``. Printed: both times and the ratio rollback / apply.

Part 2 — the fingerprint of a schema of ``--tables`` tables (5 columns, a primary key, an
index, a check constraint each, plus a view, a function and an enum per 10 tables), read
from the catalogs: best of ``--repeat`` in one process, against the time ``psql -c
'SELECT 1'`` takes to start and answer (a baseline of one client round trip), and the
number of objects read.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from deploy_plugin.migrate.fingerprint import fingerprint  # noqa: E402


def make_project(root: Path, n: int) -> None:
    for i in range(n):
        folder = root / "m" / f"{i:04d}"
        folder.mkdir(parents=True)
        (folder / "up.sql").write_text(
            f"CREATE TABLE t{i} (id serial PRIMARY KEY, name text);\n"
            f"ALTER TABLE t{i} ADD COLUMN note text;\n"
            f"CREATE INDEX t{i}_name ON t{i} (name);\n"
            f"INSERT INTO t{i} (name) VALUES ('a'), ('b'), ('c');\n"
        )
        (folder / "down.sql").write_text(f"DROP TABLE t{i};\n")
    config = {
        "project": "bench",
        "targets": {"bench": {}},
        "groups": [{"name": "db", "order": 1, "file_patterns": ["m/*/up.sql"]}],
    }
    (root / "bench.deploy.yaml").write_text(yaml.safe_dump(config))


def pytest_run(root: Path, url: str, *extra: str) -> float:
    command = [
        sys.executable, "-m", "pytest", "bench.deploy.yaml", "-q", "-p", "no:cacheprovider",
        "--deploy-target=bench", f"--deploy-store={url}", f"--deploy-env=DATABASE_URL={url}",
        *extra,
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"benchmark run failed ({' '.join(extra) or 'apply'}):\n{done.stdout[-3000:]}")
    return elapsed


def temp_database(server: str) -> str:
    name = f"bench_rb_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_database(server: str, name: str) -> None:
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def part1(server: str, n: int, repeat: int) -> tuple[float, float]:
    name = temp_database(server)
    url = f"{server}/{name}"
    try:
        with tempfile.TemporaryDirectory(prefix="bench-rollback-") as tmp:
            root = Path(tmp)
            make_project(root, n)
            applies, rollbacks = [], []
            for _ in range(repeat):
                applies.append(pytest_run(root, url))
                rollbacks.append(pytest_run(root, url, f"--deploy-rollback={n}"))
    finally:
        drop_database(server, name)
    return min(applies), min(rollbacks)


def big_schema(tables: int) -> str:
    parts = []
    for i in range(tables):
        parts.append(
            f"CREATE TABLE s{i} (id integer PRIMARY KEY, name text NOT NULL DEFAULT 'x',"
            f" score numeric CHECK (score >= 0), created timestamptz DEFAULT now(), ref int);"
            f"CREATE INDEX s{i}_name ON s{i} (name);"
        )
        if i % 10 == 0:
            parts.append(
                f"CREATE VIEW v{i} AS SELECT id, name FROM s{i};"
                f"CREATE FUNCTION f{i}(a numeric) RETURNS numeric LANGUAGE sql AS 'SELECT a';"
                f"CREATE TYPE e{i} AS ENUM ('a', 'b', 'c');"
            )
    return "".join(parts)


def part2(server: str, tables: int, repeat: int) -> tuple[float, float, int]:
    name = temp_database(server)
    url = f"{server}/{name}"
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(big_schema(tables))
            times, count = [], 0
            for _ in range(repeat):
                started = time.perf_counter()
                count = fingerprint(conn, "postgresql").count()
                times.append(time.perf_counter() - started)
        baseline = []
        for _ in range(repeat):
            started = time.perf_counter()
            subprocess.run(["psql", url, "-Atqc", "SELECT 1"], capture_output=True, check=True)
            baseline.append(time.perf_counter() - started)
    finally:
        drop_database(server, name)
    return min(times), min(baseline), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--tables", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()

    apply_s, rollback_s = part1(args.server, args.n, args.repeat)
    print(f"{args.n} migrations, best of {args.repeat} (store = target database):")
    print(f"  apply     {apply_s:8.2f} s")
    print(f"  rollback  {rollback_s:8.2f} s   rollback / apply = {rollback_s / apply_s:.2f}x")
    fp_s, psql_s, count = part2(args.server, args.tables, args.repeat)
    print(f"fingerprint of a {args.tables}-table schema ({count} objects), best of {args.repeat}:")
    print(f"  fingerprint          {fp_s * 1000:8.1f} ms")
    print(f"  psql -c 'SELECT 1'   {psql_s * 1000:8.1f} ms   fingerprint / psql = "
          f"{fp_s / psql_s:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
