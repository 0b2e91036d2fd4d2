"""Mutation check: would the suite notice if the code deciding what may run were broken?

    .venv/bin/python benchmarks/mutations.py [--only WORD ...] [--list] [--no-baseline]

Each mutation is a (file, exact old text, new text) triple chosen by hand: a comparison
flipped, a condition dropped, an early return, in the engine's stop policy
(``engine/policy.py``), the ledger guard (``migrate/ledger.py`` ``psql_guard_sql`` and
``engine/ledgers.py``) and what a saved plan is checked against (``saved_plans.py``). For
each, the file is changed in place, only the test files named for it run
(``pytest -x -q -p no:cacheprovider TESTS``), and the file is restored, bytes and mtime,
whatever happens (a run killed outright leaves ``.mutation-pending``, which the next run
restores first). A mutation is *killed* when those tests fail, *survived* when they pass.
Before the first mutation every test selection runs once on the code as it is: a
selection that fails there would kill anything, so the script stops.

Needs what the named tests need (PostgreSQL at 127.0.0.1:5432 for the ledger's). Imports
nothing of ours and nothing outside the standard library. ``--only`` keeps mutations
whose name holds any of the words (``--only policy``, ``--only guard``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PENDING = REPO / ".mutation-pending"
TIMEOUT = 900  # seconds per test run; a mutation that hangs its tests is reported as such

POLICY_TESTS = ("tests/test_policy.py", "tests/test_plugin.py")
GUARD_TESTS = ("tests/test_one_truth.py", "tests/test_ledger_guard.py")
PLAN_TESTS = ("tests/test_saved_plans.py",)


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str  # repo-relative
    old: str  # exact text, found once in the file
    new: str
    tests: tuple[str, ...]


POLICY = "deploy_plugin/engine/policy.py"
LEDGER = "deploy_plugin/migrate/ledger.py"
LEDGERS = "deploy_plugin/engine/ledgers.py"
PLANS = "deploy_plugin/saved_plans.py"

MUTATIONS = (
    # ----------------------------------------------------------------- the stop policy
    Mutation(
        "policy: a lost lock blocks nothing",
        POLICY,
        "        if self.lock_lost:\n            return LOCK_LOST",
        "        if False:\n            return LOCK_LOST",
        POLICY_TESTS,
    ),
    Mutation(
        "policy: a store failure blocks nothing more",
        POLICY,
        "        if self.store_failed:\n            return self.store_failed",
        "        if False:\n            return self.store_failed",
        POLICY_TESTS,
    ),
    Mutation(
        "policy: a failed preflight blocks preflight, not the steps",
        POLICY,
        'if self.preflight_failed and step.kind != "preflight":',
        'if self.preflight_failed and step.kind == "preflight":',
        POLICY_TESTS,
    ),
    Mutation(
        "policy: the health check runs after a failure",
        POLICY,
        '        if step.kind == "health_check":\n            return self.failed[0]\n',
        "",
        POLICY_TESTS,
    ),
    Mutation(
        "policy: continue_on_failure read backwards",
        POLICY,
        "        if self.continue_on_failure:\n",
        "        if not self.continue_on_failure:\n",
        POLICY_TESTS,
    ),
    Mutation(
        "policy: a failed group's later steps still run (continue_on_failure)",
        POLICY,
        'return self.failed_groups.get(step.group_name or "")',
        "return None",
        POLICY_TESTS,
    ),
    Mutation(
        "policy: a soft failure (blocking=False) blocks the next steps",
        POLICY,
        "            self.soft_failed.append(step.nodeid)\n            return\n",
        "            self.soft_failed.append(step.nodeid)\n",
        (*POLICY_TESTS, "tests/test_check_rollback.py"),
    ),
    Mutation(
        "policy: a soft failure leaves the deployment a success",
        POLICY,
        "return bool(self.failed or self.soft_failed or self.lock_lost)",
        "return bool(self.failed or self.lock_lost)",
        (*POLICY_TESTS, "tests/test_check_rollback.py"),
    ),
    # ----------------------------------------------------------------- the ledger guard
    Mutation(
        "guard: psql applies a file its ledger already records",
        LEDGER,
        'f"DO ${body}$ BEGIN IF EXISTS (SELECT 1 FROM {PG_TABLE} WHERE {where}) THEN\\n"',
        'f"DO ${body}$ BEGIN IF FALSE AND EXISTS (SELECT 1 FROM {PG_TABLE} WHERE {where}) THEN\\n"',
        GUARD_TESTS,
    ),
    Mutation(
        "guard: a file's row refuses every file of its target",
        LEDGER,
        ' AND file = {literal(file)}"\n    )\n    return (',
        '"\n    )\n    return (',
        GUARD_TESTS,
    ),
    Mutation(
        "guard: a ledger created by two psql runs at once, unserialised",
        LEDGER,
        '        "    PERFORM pg_advisory_xact_lock(7306119017446921203);\\n"\n',
        "",
        GUARD_TESTS,
    ),
    Mutation(
        "guard: psql writes no ledger row",
        LEDGER,
        'f"INSERT INTO {PG_TABLE} (project, target, file, checksum, applied_by) VALUES"',
        'f"SELECT 1; -- INSERT INTO {PG_TABLE} (project, target, file, checksum, applied_by)"',
        GUARD_TESTS,
    ),
    Mutation(
        "guard: a -- deploy:no-transaction file counts as guarded",
        LEDGERS,
        "    return not no_transaction(text)",
        "    return True",
        GUARD_TESTS,
    ),
    Mutation(
        "guard: psql reading the file on stdin counts as guarded",
        LEDGERS,
        "    if not _PSQL_FILE_ARG.search(command):\n",
        "    if False:\n",
        GUARD_TESTS,
    ),
    Mutation(
        "guard: the history's failed rows count as lacking from the database",
        LEDGERS,
        'if rel in history and history[rel].status == "success" and rel not in read.rows',
        "if rel in history and rel not in read.rows",
        (*GUARD_TESTS, "tests/test_faults.py::test_error_in_the_third_statement"),
    ),
    Mutation(
        "guard: a file the psql ledger holds is applied again",
        LEDGERS,
        "    elif psql_ledger(group):  # a file its database holds is never applied again",
        "    elif False:",
        GUARD_TESTS,
    ),
    # ----------------------------------------------------------------- saved plans
    Mutation(
        "plan: the config's sha256 is not compared",
        PLANS,
        "    if planned.config_sha256 != now.config_sha256:",
        "    if False:",
        PLAN_TESTS,
    ),
    Mutation(
        "plan: the matched files are not compared",
        PLANS,
        '    out += _changes("file", planned.files, now.files,',
        '    out += [] or _changes("file", {}, {},',
        PLAN_TESTS,
    ),
    Mutation(
        "plan: the env hashes are not compared",
        PLANS,
        '    out += _changes("env var", planned.env, now.env,',
        '    out += [] or _changes("env var", {}, {},',
        PLAN_TESTS,
    ),
    Mutation(
        "plan: the applied migrations are not compared",
        PLANS,
        "        planned.applied,\n        now.applied,",
        "        {},\n        {},",
        PLAN_TESTS,
    ),
    Mutation(
        "plan: a step's command hash is not compared",
        PLANS,
        "elif planned_steps[node_id].command_sha256 != now_steps[node_id].command_sha256:",
        "elif False:",
        PLAN_TESTS,
    ),
    Mutation(
        "plan: the MAC is not checked",
        PLANS,
        "if key is None or not hmac.compare_digest(mac(key, plan.signed), given):",
        "if key is None:",
        PLAN_TESTS,
    ),
    Mutation(
        "plan: an env hash leaves out the plan id",
        PLANS,
        '"\\0".join((plan_id, name, value))',
        '"\\0".join((name, value))',
        PLAN_TESTS,
    ),
)


# --------------------------------------------------------------------------- applying


def _restore_pending() -> None:
    """Put back a file a killed run left mutated."""
    if not PENDING.exists():
        return
    saved = json.loads(PENDING.read_text(encoding="utf-8"))
    path = REPO / saved["file"]
    path.write_text(saved["text"], encoding="utf-8")
    os.utime(path, ns=(saved["mtime_ns"], saved["mtime_ns"]))
    PENDING.unlink()
    print(f"restored {saved['file']}, left mutated by a killed run", flush=True)


def _on_term(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # the finally blocks restore the file


def run_tests(tests: tuple[str, ...]) -> tuple[int | None, float]:
    """pytest's exit code for ``tests`` (None: timed out) and the seconds it took."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}  # no bytecode of a mutant is kept
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    started = time.monotonic()
    proc = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        code: int | None = proc.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        code = None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return code, time.monotonic() - started


def check(mutation: Mutation) -> tuple[str, float]:
    """Apply ``mutation``, run its tests, restore the file: (verdict, seconds)."""
    path = REPO / mutation.file
    text = path.read_text(encoding="utf-8")
    found = text.count(mutation.old)
    if found != 1:
        return f"stale ({found} matches of its text)", 0.0
    mtime_ns = path.stat().st_mtime_ns
    PENDING.write_text(
        json.dumps({"file": mutation.file, "text": text, "mtime_ns": mtime_ns}), encoding="utf-8"
    )
    try:
        path.write_text(text.replace(mutation.old, mutation.new), encoding="utf-8")
        code, seconds = run_tests(mutation.tests)
    finally:
        path.write_text(text, encoding="utf-8")
        os.utime(path, ns=(mtime_ns, mtime_ns))
        PENDING.unlink()
    if code is None:
        return "timeout", seconds
    if code in (1, 2, 3):  # tests failed, collection broke, or pytest itself did
        return "killed", seconds
    if code == 0:
        return "survived", seconds
    return f"error (pytest exit {code})", seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=(), help="words a mutation's name holds")
    parser.add_argument("--list", action="store_true", help="list the mutations and stop")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated runs")
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if not args.only or any(w in m.name for w in args.only)]
    if args.list:
        for m in chosen:
            print(f"{m.name}  [{m.file}; {' '.join(m.tests)}]")
        return 0
    signal.signal(signal.SIGTERM, _on_term)
    _restore_pending()
    if not args.no_baseline:
        for tests in dict.fromkeys(m.tests for m in chosen):
            code, seconds = run_tests(tests)
            print(f"baseline  {' '.join(tests)}: exit {code} ({seconds:.0f} s)", flush=True)
            if code != 0:
                print("the tests fail without any mutation: fix that first")
                return 2
    width = max(len(m.name) for m in chosen)
    tally: dict[str, int] = {}
    for m in chosen:
        verdict, seconds = check(m)
        tally[verdict.split(" ")[0]] = tally.get(verdict.split(" ")[0], 0) + 1
        print(f"{verdict:<9} {m.name:<{width}}  {seconds:5.0f} s  {' '.join(m.tests)}", flush=True)
    summary = ", ".join(f"{n} {v}" for v, n in sorted(tally.items()))
    print(f"total: {len(chosen)} mutations: {summary}")
    return 1 if tally.get("survived") else 0


if __name__ == "__main__":
    sys.exit(main())
