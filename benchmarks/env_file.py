"""What a large ``--deploy-env-file`` costs the plugin itself: reading it and building the
masker of its values, per number of lines (issue 21 #4: 100,000 lines took over 120 s,
quadratic in the number of lines).

    .venv/bin/python benchmarks/env_file.py [--lines 12500] [--doublings 3] [--repeat 3]

For N, 2N, 4N... lines of ``NAME_i=value-i-secret`` the script times, in this process,
best of ``--repeat``: ``read_env_files`` (python-dotenv's parse plus the checks of each
value) and a :class:`Masker` given every value as a secret and every name as a kept word,
then masking one line (which compiles its pattern). It prints each time and the ratio to
the previous size: linear work doubles (ratio ~2), quadratic work quadruples (~4).

Only the plugin's part is timed. A step started with that environment is not: bash itself
starts slowly with many variables (35 s for 40,000 on the 2-core test machine), and Linux
refuses to start any process whose environment exceeds ARG_MAX (2 MiB by default), which
``read_env_files`` now reports before anything runs (exit 4). So the larger sizes here are
only reachable by the reader, which still must not take minutes to say so.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy_plugin.envfile import EnvFileError, read_env_file  # noqa: E402
from deploy_plugin.secrets import Masker  # noqa: E402


def once(path: Path) -> tuple[float, float]:
    """(seconds to read, seconds to build the masker and mask one line)."""
    start = time.perf_counter()
    try:
        values = read_env_file(path)
    except EnvFileError as err:
        raise SystemExit(f"unexpected: {err}") from None
    read = time.perf_counter() - start
    start = time.perf_counter()
    masker = Masker()
    masker.add(*values.values())
    masker.keep(*values)
    masker.mask("a line of output naming value-1-secret and NAME_1")
    return read, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=12_500)
    parser.add_argument("--doublings", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    previous: tuple[float, float] | None = None
    print(f"{'lines':>8} {'read s':>8} {'ratio':>6} {'mask s':>8} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as folder:
        for step in range(args.doublings + 1):
            lines = args.lines * 2**step
            path = Path(folder, f"{lines}.env")
            path.write_text("".join(f"NAME_{i}=value-{i}-secret\n" for i in range(lines)))
            runs = [once(path) for _ in range(args.repeat)]
            read, mask = min(r for r, _ in runs), min(m for _, m in runs)
            ratios = (
                ("", "")
                if previous is None
                else (f"{read / previous[0]:.2f}", f"{mask / previous[1]:.2f}")
            )
            print(f"{lines:>8} {read:>8.2f} {ratios[0]:>6} {mask:>8.2f} {ratios[1]:>6}")
            previous = (read, mask)
            os.unlink(path)


if __name__ == "__main__":
    main()
