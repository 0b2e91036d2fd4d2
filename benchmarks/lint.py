"""What linting the pending migrations with squawk (``groups[].lint``) costs a dry run.

    .venv/bin/python benchmarks/lint.py [--files 233] [--repeat 3] [--seed 14]
        [--server postgresql://postgres@127.0.0.1:5432]

``corpus_gen.generate`` writes ``--files`` realistic migrations (233: the size of Lemmy's
history) into a temp project with two configs of one tracked group: ``lint.deploy.yaml``
(lint left at its default, warn) and ``off.deploy.yaml`` (``lint: off``). Against one
empty throw-away database (a dry run changes nothing) both run ``pytest CONFIG
--deploy-target=bench --dry-run``, interleaved, best of ``--repeat``; every file is
pending, so lint reads all of them. Also timed: squawk alone on the same files, as the
check runs it (one process, ``--assume-in-transaction``; under ``sh``, which turns its exit
status 1, "found something", into 0). Prints the times, the findings
how long ``preflight::migrations-drift`` took with and without lint (from
``--deploy-report``, in runs of their own: a report of hundreds of findings takes ~0.1 s
to write), and lint's share of the dry run. Aim (issue 23): under 10 %.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import run as timed  # noqa: E402
from corpus_gen import generate  # noqa: E402

CONFIG = """\
project: bench
targets: {{bench: {{}}}}
groups:
  - name: migrations
    order: 1
    file_patterns: ['migrations/*.sql']
{lint}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=233)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()

    from deploy_plugin.engine.squawk import find_squawk

    squawk = find_squawk()
    if squawk is None:
        sys.exit("squawk is not installed: pip install squawk-cli")
    files = generate(args.files, args.seed)
    name = f"bench_lint_{os.getpid()}_{secrets.token_hex(4)}"
    server = args.server.rstrip("/")
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            with tempfile.TemporaryDirectory(prefix="bench_lint_") as tmp:
                root = Path(tmp)
                (root / "migrations").mkdir()
                for file, sql in files:
                    (root / "migrations" / file).write_text(sql)
                (root / "lint.deploy.yaml").write_text(CONFIG.format(lint=""))
                (root / "off.deploy.yaml").write_text(CONFIG.format(lint="    lint: off\n"))
                (root / "pytest.ini").write_text("[pytest]\n")
                run(root, f"{server}/{name}", squawk, args.repeat, len(files))
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(root: Path, url: str, squawk: str, repeat: int, count: int) -> None:
    base = [sys.executable, "-m", "pytest", "--deploy-target=bench", "--dry-run", "-q",
            "-p", "no:cacheprovider", "--deploy-env", f"DATABASE_URL={url}"]  # fmt: skip
    variants = {
        "dry run, lint off": [*base, "off.deploy.yaml"],
        "dry run, lint on (warn)": [*base, "lint.deploy.yaml"],
        # squawk exits 1 when it finds something: sh says 0 for that
        "squawk alone": ["sh", "-c", '"$0" "$@" > /dev/null; [ $? -le 1 ]', squawk,
                         "--reporter", "json", "--assume-in-transaction", "--",
                         *sorted(str(p.relative_to(root)) for p in root.glob("migrations/*"))],
    }  # fmt: skip
    # each round also runs both with --deploy-report (untimed: a JSON report of 588
    # findings costs json.dumps(indent=2) ~0.1 s), for the findings and for how long
    # preflight::migrations-drift took with and without lint (start-up noise left out)
    reported = {"on": [*variants["dry run, lint on (warn)"], "--deploy-report=on.json"],
                "off": [*variants["dry run, lint off"], "--deploy-report=off.json"]}  # fmt: skip
    best: dict[str, float] = {}
    cpu: dict[str, float] = {}
    drift: dict[str, int] = {}
    paired: list[float] = []  # each round's (on - off) / off: a busy moment hits both
    for r in range(repeat):
        walls = {}
        for key, cmd in variants.items():
            walls[key], used = timed(cmd, root, key)
            best[key] = min(best.get(key, float("inf")), walls[key])
            cpu[key] = min(cpu.get(key, float("inf")), used)
        off_s, on_s = walls["dry run, lint off"], walls["dry run, lint on (warn)"]
        paired.append((on_s - off_s) / off_s)
        for key, cmd in reported.items():
            timed(cmd, root, key)
            steps = json.loads((root / f"{key}.json").read_text())["deployments"][0]["steps"]
            ms = next(s["duration_ms"] for s in steps if s["node_id"].endswith("drift"))
            drift[key] = min(drift.get(key, ms), ms)
        print(f"run {r + 1}/{repeat}, best so far: "
              + ", ".join(f"{k} {v:.3f} s ({cpu[k]:.3f} s CPU)" for k, v in best.items()))
    on = json.loads((root / "on.json").read_text())["deployments"][0]["lint"]
    off = json.loads((root / "off.json").read_text())["deployments"][0]["lint"]
    assert off == [], "lint: off reported findings"
    rules = Counter(f["rule"] for f in on)
    print(f"\n{count} pending files; lint found {len(on)} finding(s): "
          + ", ".join(f"{rule} {n}" for rule, n in rules.most_common()))  # fmt: skip
    print(f"preflight::migrations-drift, best of {repeat}: {drift['off']} ms without lint,"
          f" {drift['on']} ms with it (+{drift['on'] - drift['off']} ms)")
    print(f"wall, median of the {repeat} rounds' own ratios: lint adds"
          f" {statistics.median(paired):.1%}")
    for what, times in (("wall", best), ("CPU", cpu)):
        off, on = times["dry run, lint off"], times["dry run, lint on (warn)"]
        print(f"{what}, best of {repeat}: dry run {off:.3f} s without lint, {on:.3f} s with it:"
              f" lint adds {on - off:.3f} s = {(on - off) / off:.1%} (aim: under 10 %);"
              f" squawk alone {times['squawk alone']:.3f} s")  # fmt: skip


if __name__ == "__main__":
    main()
