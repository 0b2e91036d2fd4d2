"""Two targets under ``-n 2``, 2 s of work each, against one target alone.

    .venv/bin/python benchmarks/xdist_targets.py [--work 2] [--repeat 3]

Row 5 of issue 14. One config, two targets (``a`` and ``b``), one group whose step does
``--work`` seconds of CPU work (a Python loop, so the two targets really share the two
cores). Best of ``--repeat``, interleaved:

    one      ``pytest --deploy-target=a`` (no xdist)
    two      ``pytest --deploy-target=a --deploy-target=b -n 2``

Aim: two at most 1.2x one (perfect parallelism is 1.0x; xdist's start-up of two workers
is the overhead). Also prints ``pytest -n 2`` on two trivial tests, what xdist's start-up
costs on its own.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from noop import timed  # noqa: E402

CONFIG = """\
project: bench
targets: {{a: {{}}, b: {{}}}}
groups:
  - name: work
    order: 1
    deploy_command: "python3 work.py {work}"
"""
WORK = """\
import sys, time
end = time.process_time() + float(sys.argv[1])
while time.process_time() < end:
    pass
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=float, default=2.0, help="CPU seconds per target")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    py = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "bench.deploy.yaml").write_text(CONFIG.format(work=args.work))
        (root / "pytest.ini").write_text("[pytest]\n")
        (root / "work.py").write_text(WORK)
        trivial = root / "trivial"
        trivial.mkdir()
        (trivial / "test_t.py").write_text("def test_a():\n    pass\n\n\ndef test_b():\n    pass\n")
        runs = {
            "one": ([*py, "bench.deploy.yaml", "--deploy-target=a"], root, "4 passed"),
            "two": ([*py, "bench.deploy.yaml", "--deploy-target=a", "--deploy-target=b",
                     "-n", "2"], root, "8 passed"),  # fmt: skip
            "xdist": ([*py, "-p", "no:deploy", "-n", "2", "test_t.py"], trivial, "2 passed"),
        }
        for _ in range(args.repeat):
            for key, (cmd, cwd, expect) in runs.items():
                best[key] = min(best.get(key, float("inf")), timed(cmd, cwd, expect))
    ratio = best["two"] / best["one"]
    verdict = "met" if ratio <= 1.2 else "MISSED"
    print(f"best of {args.repeat}; {args.work:g} CPU s per target; {os.cpu_count()} CPUs")
    print(f"  one target, no xdist            {best['one']:6.3f} s")
    print(
        f"  two targets, -n 2               {best['two']:6.3f} s  {ratio:5.2f}x"
        f" (aim <= 1.2x: {verdict})"
    )
    print(f"  pytest -n 2, two trivial tests  {best['xdist']:6.3f} s  (xdist start-up alone)")


if __name__ == "__main__":
    main()
