"""Process helpers shared by the tests."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie nobody reaped does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def spawn(argv: list[str], cwd: Path, env: Mapping[str, str]) -> subprocess.Popen[str]:
    """``argv`` started with no stdin, its output (stdout and stderr together) as text."""
    return subprocess.Popen(
        argv, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
