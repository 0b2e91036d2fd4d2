"""Applying N small migrations to PostgreSQL: pytest-deploy's built-in executor against psql.

    .venv/bin/python benchmarks/migrations.py [--n 100 1000] [--repeat 3]
        [--repeat-b 1] [--server postgresql://postgres@127.0.0.1:5432]

Each migration creates a small table, adds a column, adds an index and inserts 3 rows.
Every variant runs in its own throw-away database (created before and dropped after the
timed part); the best of ``--repeat`` runs is shown (``--repeat-b`` for the slow (b)),
all measured in the same run:

    (a)  one ``psql -1 -f`` of all files concatenated: the floor, no tracking
    (b)  ``psql -f`` once per file, from a bash loop (the seed's deploy_command)
    (c)  pytest-deploy's built-in executor with history, store in the same database
    (c2) the same with the SQLite store
    (d)  pytest-deploy again with nothing to do (PostgreSQL store), (d2) the same, SQLite store
    pytest --version, the start-up baseline
    plain pytest (``-p no:deploy``) on N trivial tests marked skip: pytest's own floor for
         reporting N skipped items (since issue 22 (d) reports one: an item carries the
         applied files, deploy_plugin/plugin/applied.py)

Targets (DESIGN §9, issue 3): (c) within 2x of (a) at N=1,000; (d) under pytest --version
+ 50%. After every (c)/(c2) run the script checks that the history holds N successful rows
and that the N tables exist. Absolute times on a shared machine move; compare the ratios.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

CONFIG = """\
project: bench
targets: {bench: {}}
groups:
  - name: migrations
    order: 1
    file_patterns: ['migrations/*.sql']
"""


def migration(i: int) -> str:
    """The i-th migration: a table, a column added, an index, 3 rows."""
    t = f"bench_{i:05d}"
    return (
        f"CREATE TABLE {t} (id serial PRIMARY KEY, name text NOT NULL);\n"
        f"ALTER TABLE {t} ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();\n"
        f"CREATE INDEX {t}_name_idx ON {t} (name);\n"
        f"INSERT INTO {t} (name) VALUES ('a'), ('b'), ('c');\n"
    )


def build_project(root: Path, n: int) -> None:
    """Config, ``migrations/00001_bench.sql``... and ``all.sql`` (everything concatenated)."""
    (root / "migrations").mkdir()
    texts = [migration(i) for i in range(1, n + 1)]
    for i, text in enumerate(texts, 1):
        (root / "migrations" / f"{i:05d}_bench.sql").write_text(text)
    (root / "all.sql").write_text("".join(texts))
    (root / "bench.deploy.yaml").write_text(CONFIG)
    (root / "pytest.ini").write_text("[pytest]\n")
    # pytest's own cost for N items that skip, the floor under (d) whatever the plugin does
    (root / "test_skipped.py").write_text(
        "import pytest\n\npytestmark = pytest.mark.skip(reason='applied')\n\n\n"
        + "".join(f"def test_{i}():\n    pass\n\n\n" for i in range(n))
    )


class Databases:
    """Creates and drops throw-away databases on one server (autocommit admin connection)."""

    def __init__(self, server: str):
        self.server = server.rstrip("/")
        self.admin = psycopg.connect(f"{self.server}/postgres", autocommit=True)
        self.made: list[str] = []

    def create(self) -> str:
        name = f"bench_mig_{os.getpid()}_{secrets.token_hex(4)}"
        self.admin.execute(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        return f"{self.server}/{name}"

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.made.remove(name)

    def close(self) -> None:
        for name in list(self.made):
            self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin.close()


def run(cmd: list[str], cwd: Path, what: str, expect: str | None = None) -> float:
    """Run ``cmd`` and return its wall time; exit with its output when it fails or
    ``expect`` is not in its stdout."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if out.returncode != 0 or (expect is not None and expect not in out.stdout):
        tail = out.stdout[-3000:] + out.stderr[-3000:]
        sys.exit(f"{what} failed (exit {out.returncode}):\n{tail}")
    return seconds


def count_tables(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'bench%'"
        ).fetchone()
    return row[0]


def check_applied(url: str, n: int, rows: int, what: str) -> None:
    """Exit unless the database has the N tables and the history N successful rows."""
    tables = count_tables(url)
    if tables != n or rows != n:
        sys.exit(f"{what}: expected {n} tables and {n} history rows, found {tables} and {rows}")


def pg_history(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM deploy.migration_history "
            "WHERE target_name = 'bench' AND status = 'success'"
        ).fetchone()
    return row[0]


def sqlite_history(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT count(*) FROM migration_history "
            "WHERE target_name = 'bench' AND status = 'success'"
        ).fetchone()[0]
    finally:
        conn.close()


def bench_n(n: int, repeat: int, repeat_b: int, dbs: Databases) -> dict[str, float]:
    """Best time of every variant for ``n`` migrations."""
    best: dict[str, float] = {}

    def note(key: str, seconds: float) -> None:
        best[key] = min(best.get(key, seconds), seconds)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build_project(root, n)
        psql = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"]
        pytest = [sys.executable, "-m", "pytest", "bench.deploy.yaml", "--deploy-target=bench",
                  "-q", "-p", "no:cacheprovider"]  # fmt: skip
        per_file = (
            'for f in migrations/*.sql; do psql -X -q -v ON_ERROR_STOP=1 -d "$1" -f "$f" '
            ">/dev/null || exit 1; done"
        )
        version = [sys.executable, "-m", "pytest", "--version"]
        skipped = [sys.executable, "-m", "pytest", "test_skipped.py", "-q",
                   "-p", "no:cacheprovider", "-p", "no:deploy"]  # fmt: skip
        for r in range(repeat):
            # (a) the floor
            url = dbs.create()
            note("a", run([*psql, "-1", "-d", url, "-f", "all.sql"], root, "(a)"))
            check_applied(url, n, n, "(a)")
            dbs.drop(url)

            # (b) the seed's way: one psql per file (10x+ the others: fewer samples)
            if r < repeat_b:
                url = dbs.create()
                note("b", run(["bash", "-c", per_file, "bash", url], root, "(b)"))
                check_applied(url, n, n, "(b)")
                dbs.drop(url)

            # (c) built-in executor, store in the same database; (d) again, nothing to do
            url = dbs.create()
            cmd = [*pytest, "--deploy-store", url, "--deploy-env", f"DATABASE_URL={url}"]
            note("c", run(cmd, root, "(c)", f"{n + 4} passed"))
            check_applied(url, n, pg_history(url), "(c)")
            note("d", run(cmd, root, "(d)", "4 passed, 1 skipped"))
            dbs.drop(url)

            # (c2) the same with the SQLite store; (d2) again
            url = dbs.create()
            store = root / f"store-{r}.sqlite3"
            cmd = [*pytest, "--deploy-store", f"sqlite:///{store}",
                   "--deploy-env", f"DATABASE_URL={url}"]  # fmt: skip
            note("c2", run(cmd, root, "(c2)", f"{n + 4} passed"))
            check_applied(url, n, sqlite_history(store), "(c2)")
            note("d2", run(cmd, root, "(d2)", "4 passed, 1 skipped"))
            dbs.drop(url)

            note("version", run(version, root, "pytest --version"))
            note("skipped", run(skipped, root, "pytest", f"{n} skipped"))
    return best


def report(n: int, t: dict[str, float]) -> None:
    a, v = t["a"], t["version"]
    rows = [
        ("(a)  psql -1 -f, all files concatenated", "a", a),
        ("(b)  psql -f once per file", "b", a),
        ("(c)  pytest-deploy, PostgreSQL store", "c", a),
        ("(c2) pytest-deploy, SQLite store", "c2", a),
        ("(d)  pytest-deploy re-run, PostgreSQL store", "d", v),
        ("(d2) pytest-deploy re-run, SQLite store", "d2", v),
        ("pytest --version (start-up)", "version", v),
        (f"plain pytest, {n} skipped trivial tests", "skipped", v),
    ]
    print(f"\nN = {n} migrations")
    for label, key, base in rows:
        unit = "x (a)" if base is a else "x pytest --version"
        print(f"  {label:<45} {t[key]:8.3f} s  {t[key] / base:6.2f}{unit}")
    per = (t["c"] - v) / n * 1000
    print(f"  (c) per migration beyond start-up:            {per:8.2f} ms")
    print(f"  (d) / plain pytest with {n} skipped tests:     {t['d'] / t['skipped']:8.2f}x")
    ok_c = t["c"] <= 2 * a
    ok_d = t["d"] <= 1.5 * v
    print(f"  target (c) <= 2x (a):                 {'met' if ok_c else 'MISSED'}")
    print(f"  target (d) <= 1.5x pytest --version:  {'met' if ok_d else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--repeat-b", type=int, default=1, help="runs of the slow (b)")
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()

    dbs = Databases(args.server)
    try:
        results = {n: bench_n(n, args.repeat, args.repeat_b, dbs) for n in args.n}
    finally:
        dbs.close()
    python = sys.version.split()[0]
    print(f"best of {args.repeat} ((b): {args.repeat_b}); python {python}, {os.cpu_count()} CPUs")
    for n, t in results.items():
        report(n, t)


if __name__ == "__main__":
    main()
