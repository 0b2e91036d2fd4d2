"""A corpus of realistic migrations: pytest-deploy's built-in executor against one psql session.

    .venv/bin/python benchmarks/corpus.py [--files 250] [--repeat 3] [--seed 14]
        [--server postgresql://postgres@127.0.0.1:5432] [--phases] [--profile FILE]
        [--keep DIR] [--reading] [--before CHECKOUT]

``corpus_gen.generate`` writes ``--files`` migrations (enums and new values, tables with
foreign keys, defaults, checks, identity and generated columns, partial/expression/GIN
indexes, views, materialized views, plpgsql functions, triggers, DO blocks, data loaded
with generate_series and backfilled, columns added/renamed/dropped, comments, a few files
of several dozen statements) into a temp project. Each variant runs in its own throw-away
database (``bench_corpus_<pid>_<hex>``, created before and dropped after the timed part);
the variants are interleaved and the best of ``--repeat`` runs is kept:

    base         one ``psql -X -q -v ON_ERROR_STOP=1`` session running a driver file that
                 wraps every migration in its own ``BEGIN; \\i file; COMMIT;``
    ours-pg      ``python -m pytest bench.deploy.yaml --deploy-target=bench``: a tracked group,
                 built-in executor, store in the same database (``--deploy-store <db url>``)
    ours-sqlite  the same with the default SQLite store (``<rootdir>/.deploy/state.sqlite3``,
                 removed before each run)

Times run from process start to exit (interpreter and pytest start-up included); the
client's CPU time (user + system of psql or pytest; the server's work is not in it) is
printed too, as the load moves it less than wall time. After every run the schema is
dumped from the catalogs (relations, columns with types, defaults, identity and
generation, constraints, indexes, view and materialized view definitions, functions,
triggers, enum labels in order, comments, row counts; the ``deploy`` and
``pytest_deploy`` schemas left out) and must equal the base's dump, and the history must
hold one successful row per file; anything else exits 1. Aim (issue 14): ours-pg <= 1.2x base.

``--before CHECKOUT`` also runs both of ours with the ``deploy_plugin`` of another checkout
(``PYTHONPATH``; e.g. ``git archive main | tar -x -C /tmp/before``), interleaved with the
others (``before-pg``, ``before-sqlite``; with ``--phases``, its phases too): a before/after
of a change in one run, under the same load.

``--profile FILE`` also runs ours-pg once under ``python -m cProfile -o FILE`` (untimed)
and prints the top functions by cumulative time. ``--phases`` also runs ours-pg
``--repeat`` times with the ``corpus_phases`` plugin and prints where the fastest run's
wall time went (start-up, collection, SQL on the server, per-item work, finish, exit).
``--reading`` also prints the client CPU of reading the files as the executor does
(PostgreSQL's lexer and parser through pglast: the checks of every file, a full split of
every file, the lexer's import) and its share of ours-pg's client CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import resource
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus_gen import generate  # noqa: E402

CONFIG = """\
project: bench
targets: {bench: {}}
groups:
  - name: migrations
    order: 1
    file_patterns: ['migrations/*.sql']
"""
PSQL = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"]
PYTEST = [sys.executable, "-m", "pytest", "bench.deploy.yaml", "--deploy-target=bench",
          "-q", "-p", "no:cacheprovider"]  # fmt: skip
EXCLUDED = "n.nspname NOT IN ('deploy', 'pytest_deploy', 'information_schema') " \
    "AND n.nspname NOT LIKE 'pg\\_%'"  # fmt: skip

# section -> catalog query; every row is compared as text, in the query's order
CATALOG = {
    "relations": f"""
        SELECT n.nspname, c.relname, c.relkind, c.relpersistence
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {EXCLUDED} ORDER BY 1, 2""",
    "columns": f"""
        SELECT n.nspname, c.relname, a.attnum, a.attname,
               format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
        WHERE {EXCLUDED} AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1, 2, 3""",
    "constraints": f"""
        SELECT n.nspname, c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid),
               k.convalidated
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {EXCLUDED} ORDER BY 1, 2, 3""",
    "indexes": """
        SELECT schemaname, tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname NOT IN ('deploy', 'pytest_deploy', 'information_schema')
          AND schemaname NOT LIKE 'pg\\_%' ORDER BY 1, 2, 3""",
    "views": """
        SELECT schemaname, viewname, definition FROM pg_views
        WHERE schemaname NOT IN ('deploy', 'pytest_deploy', 'information_schema')
          AND schemaname NOT LIKE 'pg\\_%'
        UNION ALL
        SELECT schemaname, matviewname, definition FROM pg_matviews
        WHERE schemaname NOT IN ('deploy', 'pytest_deploy') ORDER BY 1, 2""",
    "functions": f"""
        SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid),
               pg_get_functiondef(p.oid)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE {EXCLUDED} AND p.prokind IN ('f', 'p') ORDER BY 1, 2, 3""",
    "triggers": f"""
        SELECT n.nspname, c.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {EXCLUDED} AND NOT t.tgisinternal ORDER BY 1, 2, 3""",
    "enums": f"""
        SELECT n.nspname, t.typname, e.enumsortorder::text, e.enumlabel
        FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
        JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE {EXCLUDED} ORDER BY 1, 2, e.enumsortorder""",
    "comments": f"""
        SELECT n.nspname, c.relname, d.objsubid, d.description
        FROM pg_description d JOIN pg_class c ON c.oid = d.objoid
          AND d.classoid = 'pg_class'::regclass
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {EXCLUDED}
        UNION ALL
        SELECT n.nspname, p.proname, d.objsubid, d.description
        FROM pg_description d JOIN pg_proc p ON p.oid = d.objoid
          AND d.classoid = 'pg_proc'::regclass
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE {EXCLUDED} ORDER BY 1, 2, 3""",
}
# summary counts printed once, from the base's dump
SHOWN = ("relations", "columns", "indexes", "views", "functions", "triggers", "enums")


def schema_dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """The catalog sections above plus the row count of every table and matview."""
    with psycopg.connect(url) as conn:
        dump = {key: conn.execute(sql).fetchall() for key, sql in CATALOG.items()}
        counts = []
        for schema, name, kind, _ in dump["relations"]:
            if kind in ("r", "m"):
                row = conn.execute(f'SELECT count(*) FROM "{schema}"."{name}"').fetchone()
                counts.append((schema, name, row[0] if row else None))
        dump["row counts"] = counts
    return dump


def compare(base: dict[str, list[tuple[Any, ...]]], ours: dict[str, list[tuple[Any, ...]]],
            what: str) -> None:  # fmt: skip
    """Exit 1 naming the first differences when ``ours`` is not ``base``."""
    bad = []
    for key in base:
        b, o = set(base[key]), set(ours[key])
        if base[key] != ours[key]:
            only_b = sorted(b - o, key=repr)[:3]
            only_o = sorted(o - b, key=repr)[:3]
            bad.append(f"  {key}: base only {only_b!r}\n  {key}: {what} only {only_o!r}")
    if bad:
        sys.exit(f"{what}: the schema differs from the base's:\n" + "\n".join(bad))


class Databases:
    """Creates and drops throw-away databases on one server (autocommit admin connection)."""

    def __init__(self, server: str):
        self.server = server.rstrip("/")
        self.admin = psycopg.connect(f"{self.server}/postgres", autocommit=True)
        self.made: list[str] = []

    def create(self) -> str:
        name = f"bench_corpus_{os.getpid()}_{secrets.token_hex(4)}"
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


def run(cmd: list[str], cwd: Path, what: str, source: Path | None = None) -> tuple[float, float]:
    """Run ``cmd``; return its wall time and its CPU time (user + system, the client's
    only: the server's work is not in it), or exit 1 with its output when it fails.
    ``source``: a checkout whose ``deploy_plugin`` is imported instead (``PYTHONPATH``)."""
    # bytecode is cached as in a user's project (both sides: the baseline has none to write)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DEPLOY_") and k != "PYTHONDONTWRITEBYTECODE"}  # fmt: skip
    if source is not None:
        env["PYTHONPATH"] = str(source)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        tail = out.stdout[-3000:] + out.stderr[-3000:]
        sys.exit(f"{what} failed (exit {out.returncode}):\n{tail}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return seconds, cpu


def history_rows(store: str | Path) -> int:
    """Successful history rows of target ``bench`` in a PostgreSQL URL or a SQLite file."""
    sql = "FROM migration_history WHERE target_name = 'bench' AND status = 'success'"
    if isinstance(store, Path):
        conn = sqlite3.connect(store)
        try:
            return int(conn.execute(f"SELECT count(*) {sql}").fetchone()[0])
        finally:
            conn.close()
    with psycopg.connect(store) as pg:
        row = pg.execute(f"SELECT count(*) {sql.replace('FROM ', 'FROM deploy.')}").fetchone()
    return int(row[0]) if row else 0


def build_project(root: Path, files: list[tuple[str, str]]) -> None:
    """Config, ``migrations/NNNN_*.sql`` and ``base.psql``, the driver of the base."""
    (root / "migrations").mkdir()
    driver = []
    for name, sql in files:
        (root / "migrations" / name).write_text(sql)
        driver.append(f"BEGIN;\n\\i migrations/{name}\nCOMMIT;\n")
    (root / "base.psql").write_text("".join(driver))
    (root / "bench.deploy.yaml").write_text(CONFIG)
    (root / "pytest.ini").write_text("[pytest]\n")


def bench(
    root: Path, n: int, repeat: int, dbs: Databases, before: Path | None = None
) -> list[dict[str, float]]:
    """Every round's time of every variant, each run checked against the base's schema;
    ``before``: also run both of ours with the ``deploy_plugin`` of that checkout."""
    rounds: list[dict[str, float]] = []
    best: dict[str, float] = {}
    reference: dict[str, list[tuple[Any, ...]]] | None = None
    for r in range(repeat):
        url = dbs.create()
        seconds, cpu = run([*PSQL, "-d", url, "-f", "base.psql"], root, "base")
        dump = schema_dump(url)
        if reference is None:
            reference = dump
            print("corpus schema: " + ", ".join(f"{len(dump[k])} {k}" for k in SHOWN), flush=True)
        compare(reference, dump, f"base run {r + 1}")
        dbs.drop(url)
        best["base"] = min(best.get("base", seconds), seconds)
        rounds.append({"base": seconds, "base cpu": cpu})

        keys = ["ours-pg", "ours-sqlite"] + (["before-pg", "before-sqlite"] if before else [])
        for key in keys:
            url = dbs.create()
            store: str | Path
            if key.endswith("-pg"):
                store = url
                cmd = [*PYTEST, "--deploy-store", url, "--deploy-env", f"DATABASE_URL={url}"]
            else:
                shutil.rmtree(root / ".deploy", ignore_errors=True)
                store = root / ".deploy" / "state.sqlite3"
                cmd = [*PYTEST, "--deploy-env", f"DATABASE_URL={url}"]
            seconds, cpu = run(cmd, root, key, before if key.startswith("before") else None)
            compare(reference, schema_dump(url), f"{key} run {r + 1}")
            rows = history_rows(store)
            if rows != n:
                sys.exit(f"{key} run {r + 1}: expected {n} successful history rows, found {rows}")
            dbs.drop(url)
            best[key] = min(best.get(key, seconds), seconds)
            rounds[-1][key] = seconds
            rounds[-1][f"{key} cpu"] = cpu
        line = ", ".join(f"{k} {v:.3f} s" for k, v in best.items())
        print(f"run {r + 1}/{repeat}: best so far {line}", flush=True)
    return rounds


def profile(root: Path, out: Path, dbs: Databases, n: int) -> None:
    """One ours-pg run under cProfile (untimed); prints the top 30 by cumulative time."""
    url = dbs.create()
    cmd = [sys.executable, "-m", "cProfile", "-o", str(out), *PYTEST[1:],
           "--deploy-store", url, "--deploy-env", f"DATABASE_URL={url}"]  # fmt: skip
    seconds, _ = run(cmd, root, "ours-pg under cProfile")
    if history_rows(url) != n:
        sys.exit("ours-pg under cProfile: the history is incomplete")
    dbs.drop(url)
    print(f"\nours-pg under cProfile: {seconds:.3f} s wall, profile in {out}")
    pstats.Stats(str(out)).sort_stats("cumulative").print_stats(30)


PHASES = [  # (label, from stamp, to stamp)
    ("interpreter and pytest start-up, until -p plugins load", "spawn", "plugin imported"),
    ("entry-point plugins (deploy_plugin) imported, configure", "plugin imported",
     "sessionstart"),
    ("pytest_sessionstart", "sessionstart", "sessionstart done"),
    ("between sessionstart and collection", "sessionstart done", "collection"),
    ("collection (config, store opened, plan)", "collection", "collection done"),
    ("between collection and the run loop", "collection done", "runtestloop"),
    ("run loop (every item)", "runtestloop", "runtestloop done"),
    ("between the run loop and sessionfinish", "runtestloop done", "sessionfinish"),
    ("pytest_sessionfinish (store finish, summary)", "sessionfinish", "sessionfinish done"),
    ("unconfigure, until atexit", "sessionfinish done", "atexit"),
    ("interpreter shutdown", "atexit", "exit"),
]  # fmt: skip


def phases(root: Path, dbs: Databases, n: int, repeat: int, before: Path | None = None) -> None:
    """ours-pg with the ``corpus_phases`` plugin, ``repeat`` times; print the fastest.
    ``before``: the same with that checkout's ``deploy_plugin``, interleaved."""
    variants: dict[str, Path | None] = {"ours-pg": None}
    if before is not None:
        variants["before-pg"] = before
    runs: dict[str, list[dict[str, Any]]] = {key: [] for key in variants}
    for _ in range(repeat):
        for key, source in variants.items():
            runs[key].append(_phases_run(root, dbs, n, source))
    for key in variants:
        _print_phases(key, runs[key])


def _phases_run(root: Path, dbs: Databases, n: int, source: Path | None) -> dict[str, Any]:
    url = dbs.create()
    out = root / "phases.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPLOY_")}
    path = [str(Path(__file__).resolve().parent), str(source or ""), env.get("PYTHONPATH", "")]
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(CORPUS_PHASES_OUT=str(out), PYTHONPATH=os.pathsep.join(filter(None, path)))
    cmd = [*PYTEST, "-p", "corpus_phases", "--deploy-store", url,
           "--deploy-env", f"DATABASE_URL={url}"]  # fmt: skip
    spawn = time.time()
    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    end = time.time()
    if done.returncode != 0 or history_rows(url) != n:
        sys.exit(f"ours-pg with phases failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    dbs.drop(url)
    data: dict[str, Any] = json.loads(out.read_text())
    data["stamps"].update(spawn=spawn, exit=end)
    return data


def _print_phases(key: str, runs: list[dict[str, Any]]) -> None:
    data = min(runs, key=lambda d: d["stamps"]["exit"] - d["stamps"]["spawn"])
    st, sums, counts = data["stamps"], data["sums"], data["counts"]
    total = st["exit"] - st["spawn"]
    print(f"\n{key} phases, fastest of {len(runs)}: {total:.3f} s wall")
    for label, a, b in PHASES:
        if a in st and b in st:
            d = st[b] - st[a]
            print(f"  {label:<58} {d:7.3f} s {d / total:6.1%}")
    loop = st["runtestloop done"] - st["runtestloop"]
    inner = [
        (f"SQL on the server during the loop ({counts['wait in loop']} waits)",
         sums["wait in loop"]),
        (f"in the steps, beside those waits ({counts['call']} calls)",
         sums["call"] - sums["wait in loop"]),
        ("pytest's item protocol beside the call (setup, teardown, reports)",
         sums["items"] - sums["call"]),
        ("run loop beside the items", loop - sums["items"]),
    ]  # fmt: skip
    print("  of the run loop:")
    for label, d in inner:
        print(f"    {label:<66} {d:7.3f} s {d / total:6.1%}")
    own = sorted(data["own"], key=lambda pair: pair[1])
    if own:
        ms = [seconds * 1000 for _, seconds in own]
        slowest = ", ".join(f"{name} {sec * 1000:.1f} ms" for name, sec in own[:-6:-1])
        print(f"    (beside the waits, per step: median {ms[len(ms) // 2]:.2f} ms, 90th percentile"
              f" {ms[len(ms) * 9 // 10]:.2f} ms; slowest: {slowest})")  # fmt: skip
    rest = sums["wait"] - sums["wait in loop"]
    print(f"  psycopg waits after the loop (store writes): {rest:.3f} s; modules loaded: "
          f"{data['modules']}")  # fmt: skip


def reading(files: list[tuple[str, str]], ours_cpu: float) -> None:
    """Print the client time of reading the SQL as the executor does (issue 20).

    ``pg_checked`` on every file (a hint search; PostgreSQL's lexer and parser, through
    pglast, only for files holding a word of transaction control or COPY), a full split
    of every file, and the lexer's import in a fresh interpreter; best of 5 each.
    """
    from deploy_plugin.migrate.statements import _PG_HINT, _pg_statements, pg_checked

    def best(run: Any) -> float:
        times = []
        for _ in range(5):
            started = time.process_time()
            run()
            times.append(time.process_time() - started)
        return min(times)

    check = best(lambda: [pg_checked(sql, name, True) for name, sql in files])
    split = best(lambda: [_pg_statements(sql) for _, sql in files])
    code = ("import time; from deploy_plugin.migrate.statements import _pg_statements; "
            "t = time.process_time(); _pg_statements('SELECT 1'); "
            "print(time.process_time() - t)")  # fmt: skip
    imported = min(
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )  # fmt: skip
        for _ in range(5)
    )
    hinted = sum(1 for _, sql in files if _PG_HINT.search(sql.lower()))
    print(f"  reading the SQL as the executor does (client CPU, best of 5): checks of all"
          f" {len(files)} files {check * 1000:.1f} ms ({hinted} split), a split of every"
          f" file {split * 1000:.1f} ms, the lexer's import {imported * 1000:.0f} ms;"
          f" together {(check + imported) / ours_cpu:.1%} of ours-pg's client CPU")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=250)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--profile", type=Path, help="also profile one ours-pg run into FILE")
    parser.add_argument("--phases", action="store_true", help="also time ours-pg's phases")
    parser.add_argument("--keep", type=Path, help="also copy the generated project to DIR")
    parser.add_argument(
        "--before", type=Path, help="also run ours with the deploy_plugin of checkout DIR"
    )
    parser.add_argument(
        "--reading", action="store_true", help="also time reading the files as the executor does"
    )
    args = parser.parse_args()

    files = generate(args.files, args.seed)
    size = sum(len(sql) for _, sql in files)
    statements = sum(sql.count(";\n") for _, sql in files)
    print(f"{len(files)} files, {size / 1024:.0f} KiB, ~{statements} statements "
          f"(largest {max(sql.count(';' + chr(10)) for _, sql in files)}), seed {args.seed}; "
          f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs", flush=True)  # fmt: skip
    dbs = Databases(args.server)
    try:
        with tempfile.TemporaryDirectory(prefix="bench_corpus_") as tmp:
            root = Path(tmp)
            build_project(root, files)
            if args.keep:
                shutil.copytree(root, args.keep, dirs_exist_ok=True)
            rounds = bench(root, len(files), args.repeat, dbs, args.before)
            if args.phases:
                phases(root, dbs, len(files), args.repeat, args.before)
            if args.profile:
                profile(root, args.profile.resolve(), dbs, len(files))
    finally:
        dbs.close()

    best = {key: min(r[key] for r in rounds) for key in rounds[0]}
    base = best["base"]
    print(f"\nbest of {args.repeat}, {len(files)} files (schema, history checked after each run)")
    labels = {
        "base": "base: one psql session, BEGIN/COMMIT per file",
        "ours-pg": "ours-pg: pytest-deploy, PostgreSQL store",
        "ours-sqlite": "ours-sqlite: pytest-deploy, default SQLite store",
        "before-pg": f"before-pg: ours-pg with {args.before}",
        "before-sqlite": f"before-sqlite: ours-sqlite with {args.before}",
    }
    for key, label in labels.items():
        if key not in best:
            continue
        paired = sorted(r[key] / r["base"] for r in rounds)  # same round: same load
        print(f"  {label:<50} {best[key]:7.3f} s  {best[key] / base:5.2f}x base"
              f"  (per round: median {paired[len(paired) // 2]:.2f}x;"
              f" client CPU {best[key + ' cpu']:.3f} s)")  # fmt: skip
    if args.reading:
        reading(files, best["ours-pg cpu"])
    ratio = best["ours-pg"] / base
    print(f"  aim ours-pg <= 1.2x base: {'met' if ratio <= 1.2 else 'MISSED'} ({ratio:.3f}x)")


if __name__ == "__main__":
    main()
