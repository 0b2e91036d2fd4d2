"""Applying migrations over a slow network: round trips per file, through a latency proxy.

    .venv/bin/python benchmarks/network.py [--n 100] [--delay-ms 5] [--repeat 3]
        [--server postgresql://postgres@127.0.0.1:5432] [--no-dbmate]

Issue 9 asks that writing each migration's ledger row adds no round trip. Every variant
reaches PostgreSQL through ``latency_proxy.py`` (default +5 ms each way, a 10 ms round
trip) and applies the same N small migrations as ``migrations.py``, each in a fresh
throw-away database; best of ``--repeat``:

    (b)  ``psql -f`` once per file (the seed's deploy_command)
    (m)  dbmate 2.36 ``migrate`` (installed with npm into a temporary folder when npm
         exists; skipped with a note otherwise)
    (c)  pytest-deploy, store in the target database (file, ledger and history: one query),
         the store's schema created by this run (a first deployment)
    (c1) the same, the store's schema already there (every later deployment)
    (c2) pytest-deploy, SQLite store (file and ledger: one query; history written locally)
    (a)  one ``psql -1 -f`` of all files: the floor (a handful of round trips in all)

Aim (issue 9): (c) and (c2) at or under 0.25x dbmate. The script checks after each
pytest-deploy run that the N tables, N ledger rows and N history rows exist.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

from deploy_plugin.store import open_store

sys.path.insert(0, str(Path(__file__).parent))

from latency_proxy import latency_proxy  # noqa: E402
from migrations import (  # noqa: E402
    Databases,
    build_project,
    check_applied,
    migration,
    pg_history,
    run,
    sqlite_history,
)

DBMATE_VERSION = "2.36.0"


def install_dbmate(folder: Path) -> Path | None:
    """dbmate's binary from its npm package (it ships inside), or None without npm."""
    if shutil.which("npm") is None:
        return None
    done = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--silent", f"dbmate@{DBMATE_VERSION}"],
        cwd=folder, capture_output=True, text=True,
    )  # fmt: skip
    binary = folder / "node_modules" / ".bin" / "dbmate"
    if done.returncode != 0 or not binary.exists():
        print(f"dbmate not installed (npm exit {done.returncode}): {done.stderr[-300:]}")
        return None
    return binary


def dbmate_project(root: Path, n: int) -> None:
    """The same migrations in dbmate's layout (``db/migrations``, ``-- migrate:up``)."""
    folder = root / "db" / "migrations"
    folder.mkdir(parents=True)
    for i in range(1, n + 1):
        text = "-- migrate:up\n" + migration(i) + "\n-- migrate:down\n"
        (folder / f"{i:05d}_bench.sql").write_text(text)


def ledger_rows(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM pytest_deploy.applied").fetchone()[0]


def via(url: str, port: int) -> str:
    """``url`` with its host and port replaced by the proxy's."""
    scheme, rest = url.split("://", 1)
    userinfo, _, hostpart = rest.rpartition("@")
    path = hostpart.split("/", 1)[1]
    return f"{scheme}://{userinfo + '@' if userinfo else ''}127.0.0.1:{port}/{path}"


def bench(args: argparse.Namespace, dbs: Databases, port: int) -> dict[str, float]:
    best: dict[str, float] = {}

    def note(key: str, seconds: float) -> None:
        best[key] = min(best.get(key, seconds), seconds)

    n = args.n
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build_project(root, n)
        dbmate = None if args.no_dbmate else install_dbmate(root)
        if dbmate is not None:
            dbmate_project(root, n)
        pytest = [sys.executable, "-m", "pytest", "bench.deploy.yaml", "--deploy-target=bench",
                  "-q", "-p", "no:cacheprovider"]  # fmt: skip
        per_file = (
            'for f in migrations/*.sql; do psql -X -q -v ON_ERROR_STOP=1 -d "$1" -f "$f" '
            ">/dev/null || exit 1; done"
        )
        for r in range(args.repeat):
            url = dbs.create()
            slow = via(url, port)
            note("a", run(["psql", "-X", "-q", "-1", "-d", slow, "-f", "all.sql"], root, "(a)"))
            dbs.drop(url)

            url = dbs.create()
            note("b", run(["bash", "-c", per_file, "bash", via(url, port)], root, "(b)"))
            check_applied(url, n, n, "(b)")
            dbs.drop(url)

            if dbmate is not None:
                url = dbs.create()
                dsn = via(url, port) + "?sslmode=disable"
                cmd = [str(dbmate), "--no-dump-schema", "--url", dsn, "migrate"]
                note("m", run(cmd, root, "(m)"))
                check_applied(url, n, n, "(m)")
                dbs.drop(url)

            url = dbs.create()
            slow = via(url, port)
            cmd = [*pytest, "--deploy-store", slow, "--deploy-env", f"DATABASE_URL={slow}"]
            note("c", run(cmd, root, "(c)", f"{n + 4} passed"))
            check_applied(url, n, pg_history(url), "(c)")
            check_applied(url, n, ledger_rows(url), "(c) ledger")
            dbs.drop(url)

            # (c1) the same with the store's schema already there (every run after the first)
            url = dbs.create()
            open_store(url, root).close()  # not timed: creates the store's schema
            slow = via(url, port)
            cmd = [*pytest, "--deploy-store", slow, "--deploy-env", f"DATABASE_URL={slow}"]
            note("c1", run(cmd, root, "(c1)", f"{n + 4} passed"))
            check_applied(url, n, pg_history(url), "(c1)")
            dbs.drop(url)

            url = dbs.create()
            slow = via(url, port)
            store = root / f"store-{r}.sqlite3"
            cmd = [*pytest, "--deploy-store", f"sqlite:///{store}",
                   "--deploy-env", f"DATABASE_URL={slow}"]  # fmt: skip
            note("c2", run(cmd, root, "(c2)", f"{n + 4} passed"))
            check_applied(url, n, sqlite_history(store), "(c2)")
            check_applied(url, n, ledger_rows(url), "(c2) ledger")
            dbs.drop(url)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--delay-ms", type=float, default=5.0, help="one-way delay")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--no-dbmate", action="store_true")
    args = parser.parse_args()
    dbs = Databases(args.server)
    try:
        with latency_proxy(args.server.rsplit("@", 1)[-1], args.delay_ms) as port:
            t = bench(args, dbs, port)
    finally:
        dbs.close()
    rtt = 2 * args.delay_ms
    print(
        f"N = {args.n} migrations through a proxy adding {args.delay_ms:g} ms each way"
        f" ({rtt:g} ms round trip); best of {args.repeat}; {os.cpu_count()} CPUs"
    )
    base = t.get("m")
    rows = [
        ("(a)  psql -1 -f, all files concatenated", "a"),
        ("(b)  psql -f once per file", "b"),
        ("(m)  dbmate migrate", "m"),
        ("(c)  pytest-deploy, PostgreSQL store, new", "c"),
        ("(c1) pytest-deploy, PostgreSQL store, existing", "c1"),
        ("(c2) pytest-deploy, SQLite store", "c2"),
    ]
    for label, key in rows:
        if key not in t:
            print(f"  {label:<42} (not run)")
            continue
        ratio = f"{t[key] / base:6.2f}x dbmate" if base else ""
        trips = t[key] * 1000 / rtt / args.n
        print(f"  {label:<42} {t[key]:7.2f} s  {ratio}  ({trips:5.2f} round trips/file)")
    if base:
        for key in ("c", "c1", "c2"):
            verdict = "met" if t[key] <= 0.25 * base else "MISSED"
            print(f"  aim ({key}) <= 0.25x dbmate: {verdict}")


if __name__ == "__main__":
    main()
