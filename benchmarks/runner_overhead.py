"""Runner overhead: 1,000 deploy steps running `true` through pytest-deploy, against a
bash loop running ``bash -c true`` 1,000 times (what a step must do at least: start a
shell that runs the command), measured in the same run. Aim (issue 14): at most 1.5x.

    .venv/bin/python benchmarks/runner_overhead.py [--steps 1000] [--repeat 3]

Prints the best time of each and the ratio (plugin / bash loop). Absolute times on a
shared machine move; compare the ratio. pytest's cache is on, as in a project; every run
reads, parses and validates the config from its file (nothing of it is cached).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "steps").mkdir()
        for i in range(args.steps):
            (root / "steps" / f"{i:05d}.step").write_text("")
        (root / "bench.deploy.yaml").write_text(
            "project: bench\n"
            "targets: {bench: {}}\n"
            "groups:\n"
            "  - name: steps\n"
            "    order: 1\n"
            "    file_patterns: ['steps/*.step']\n"
            "    deploy_command: 'true {file}'\n"
        )
        (root / "pytest.ini").write_text("[pytest]\n")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        pytest_cmd = [
            sys.executable, "-m", "pytest", "-q",
            "--deploy-target=bench", "--deploy-store", f"sqlite:///{root}/store.sqlite3",
        ]  # fmt: skip

        def plugin() -> None:
            out = subprocess.run(pytest_cmd, cwd=root, env=env, capture_output=True, text=True)
            if out.returncode != 0 or f"{args.steps + 3} passed" not in out.stdout:
                sys.exit(f"pytest-deploy run failed:\n{out.stdout[-3000:]}{out.stderr[-3000:]}")

        def bash_loop() -> None:
            # each iteration starts a shell running the command, as each step does
            subprocess.run(
                ["bash", "-c", f"for i in $(seq {args.steps}); do bash -c true; done"],
                check=True,
            )

        def pytest_version() -> None:
            subprocess.run([sys.executable, "-m", "pytest", "--version"], cwd=root,
                           env=env, capture_output=True, check=True)  # fmt: skip

        plugin()  # untimed: writes bytecode and pytest's own cache, as any earlier run would
        # interleaved, so that a busy moment of the machine hits every variant alike
        best: dict[str, float] = {}
        for _ in range(args.repeat):
            for key, fn in (("loop", bash_loop), ("version", pytest_version), ("run", plugin)):
                best[key] = min(best.get(key, float("inf")), best_of(1, fn))
        loop, version, run = best["loop"], best["version"], best["run"]
    print(f"steps:                          {args.steps}")
    print(f"bash loop of `bash -c true`:    {loop:.3f} s")
    print(f"pytest --version (start-up):    {version:.3f} s")
    print(f"pytest-deploy, {args.steps} steps:      {run:.3f} s")
    print(f"ratio plugin / bash loop:       {run / loop:.2f}x (aim <= 1.5x)")
    print(f"per step beyond start-up:       {(run - version) / args.steps * 1000:.2f} ms")


if __name__ == "__main__":
    main()
