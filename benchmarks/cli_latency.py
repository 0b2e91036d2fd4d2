"""Wall time of ``pytest-deploy`` commands that only read, in ``deployments/demo``.

    .venv/bin/python benchmarks/cli_latency.py [--repeat 15] [COMMAND ...]

Each command (default: ``config show demo`` and ``target list demo``) runs ``--repeat``
times as a process (the installed ``pytest-deploy`` script next to this interpreter), one
untimed run first; the script prints the best and the median wall time of each, and the
median CPU time it and the processes it started used (less swayed by a busy machine).
Nothing is written: ``target list`` reads the store only if it exists. To compare with
another version of the package, put its folder first: ``PYTHONPATH=/tmp/old``.
"""

from __future__ import annotations

import argparse
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEMO = Path(__file__).resolve().parent.parent / "deployments" / "demo"
DEFAULT = ["config show demo", "target list demo"]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_command(
    script: Path, command: str, repeat: int, cwd: Path
) -> tuple[list[float], list[float]]:
    """(wall times, CPU times of the command and every process it started), in s."""
    argv = [str(script), *shlex.split(command)]
    subprocess.run(argv, cwd=cwd, capture_output=True, check=True)  # bytecode, caches
    walls, cpus = [], []
    for _ in range(repeat):
        cpu, start = _cpu(), time.perf_counter()
        subprocess.run(argv, cwd=cwd, capture_output=True, check=True)
        walls.append(time.perf_counter() - start)
        cpus.append(_cpu() - cpu)
    return walls, cpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument(
        "--copy",
        action="store_true",
        help="in a temp copy of deployments/demo with a pytest.ini of its own (outside this"
        " repository, whose conftest.py pytest would load)",
    )
    parser.add_argument("commands", nargs="*", default=DEFAULT)
    args = parser.parse_args()
    script = Path(sys.executable).with_name("pytest-deploy")
    with tempfile.TemporaryDirectory() as tmp:
        cwd = DEMO
        if args.copy:
            cwd = Path(shutil.copytree(DEMO, Path(tmp, "demo")))
            (cwd / "pytest.ini").write_text("[pytest]\n")
        report(script, args.commands, args.repeat, cwd)


def report(script: Path, commands: list[str], repeat: int, cwd: Path) -> None:
    for command in commands:
        walls, cpus = time_command(script, command, repeat, cwd)
        print(
            f"pytest-deploy {command}: wall best {min(walls) * 1000:.0f} ms, median"
            f" {statistics.median(walls) * 1000:.0f} ms; CPU (with children) median"
            f" {statistics.median(cpus) * 1000:.0f} ms ({repeat} runs)"
        )


if __name__ == "__main__":
    main()
