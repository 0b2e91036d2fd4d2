"""The fault harness of ``benchmarks/fault_harness.py``, a few trials of each kind (issue 9).

The full run (100 kills per store x target, 20 SIGTERMs, 5 restarts, 100 races, 20 kills
mid-step followed at once by the next run) is a
benchmark; here each fault happens once or twice at a random moment, with the same checks:
schema change if and only if ledger row, history and tables agree after a re-run, nothing
applied twice, no overlapping deployments, nothing left running, no orphaned step.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from tests.pg import require_postgres

HARNESS = Path(__file__).parents[1] / "benchmarks" / "fault_harness.py"


def load_harness():
    spec = importlib.util.spec_from_file_location("fault_harness", HARNESS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fault_harness"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_a_few_trials_of_every_fault_break_nothing(tmp_path: Path) -> None:
    require_postgres()
    harness = load_harness()
    args = argparse.Namespace(
        kills=1, terms=1, psql_terms=1, restarts=1, races=2, orphans=2, files=4, seed=None,
        server=harness.SERVER,
    )
    results = harness.run_all(args, tmp_path)
    report = "\n".join(
        counts.line(name) + "".join(f"\n    {n}" for n in counts.notes)
        for name, counts in results.items()
    )
    assert sum(c.trials for c in results.values()) == 5 + 1 + 1 + 1 + 2 + 4, report
    assert all(c.violations == 0 for c in results.values()), report
