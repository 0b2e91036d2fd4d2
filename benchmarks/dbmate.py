"""1,000 small migrations with history on a local PostgreSQL: pytest-deploy against dbmate.

    .venv/bin/python benchmarks/dbmate.py [--n 1000] [--repeat 3]
        [--server postgresql://postgres@127.0.0.1:5432]

The first row of issue 14: the same N migrations as ``migrations.py`` (a table, a column,
an index, 3 rows each), each variant in a fresh throw-away database on the local server
(no latency proxy: ``network.py`` measures the slow-network case), best of ``--repeat``:

    (m)  dbmate 2.36 ``migrate`` (installed with npm into a temporary folder; the script
         stops with a note when npm is missing)
    (c)  pytest-deploy, store in the target database, its schema created by this run
    (c1) the same, the store's schema already there (every later deployment)
    (c2) pytest-deploy, SQLite store
    (a)  one ``psql -1 -f`` of all files: no tracking at all, the floor
    (b)  ``psql -f`` once per file (the seed's deploy_command)

Aim: (c1) at most 0.95x dbmate. The script checks after each run that the N tables, N
ledger rows and N history rows exist.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).parent))

from migrations import Databases  # noqa: E402
from network import bench  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    args.no_dbmate = False
    dbs = Databases(args.server)
    try:
        t = bench(args, dbs, urlsplit(args.server).port or 5432)  # straight to the server
    finally:
        dbs.close()
    print(f"N = {args.n} migrations, local server; best of {args.repeat}; {os.cpu_count()} CPUs")
    base = t.get("m")
    if base is None:
        sys.exit("dbmate could not be installed (npm missing?): no baseline")
    rows = [
        ("(m)  dbmate migrate (baseline)", "m"),
        ("(c)  pytest-deploy, PostgreSQL store, new", "c"),
        ("(c1) pytest-deploy, PostgreSQL store, existing", "c1"),
        ("(c2) pytest-deploy, SQLite store", "c2"),
        ("(a)  psql -1 -f, all files (floor, no tracking)", "a"),
        ("(b)  psql -f once per file", "b"),
    ]
    for label, key in rows:
        print(f"  {label:<50} {t[key]:7.3f} s  {t[key] / base:5.2f}x dbmate")
    verdict = "met" if t["c1"] <= 0.95 * base else "MISSED"
    print(f"  aim (c1) <= 0.95x dbmate: {verdict}")


if __name__ == "__main__":
    main()
