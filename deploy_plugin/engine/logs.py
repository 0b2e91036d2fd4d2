"""Where a deployment's step logs live: ``<rootdir>/.deploy/logs/<run>/<group>/<step>.log``.

One naming, used by the runner that writes them (:mod:`deploy_plugin.engine.runtime`) and by the
history page that shows their tails (:mod:`deploy_plugin.report.html`). The logs are masked as
they are written (:mod:`deploy_plugin.engine.shell`).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Protocol

from deploy_plugin.engine.policy import StepRef


class NamedStep(StepRef, Protocol):
    """A step whose log file is named after it (its node id's last part, its group)."""

    @property
    def name(self) -> str: ...


def safe_name(name: str) -> str:
    """``name`` as one path segment (at most 150 characters)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")[:150] or "step"


def run_log_dir(rootdir: Path, run: str, project: str, target: str) -> Path:
    """The folder of one run's logs; ``run`` is its store id (or its start stamp)."""
    return rootdir / ".deploy" / "logs" / safe_name(f"{run}-{project}-{target}")


def step_log_file(log_dir: Path, name: str, group: str) -> Path:
    """The log of step ``name`` (the node id's last part) of ``group`` (or its kind);
    a hash keeps cleaned-up names apart."""
    file = safe_name(name)
    if file != name:
        file += "-" + hashlib.sha1(name.encode()).hexdigest()[:8]
    return log_dir / safe_name(group) / (file + ".log")


def log_tail(path: Path, lines: int, limit: int) -> str | None:
    """The last ``lines`` lines of a log (at most ``limit`` characters), or None when it
    is missing or unreadable."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - limit * 4))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return None
    tail = "\n".join(text.rstrip("\n").splitlines()[-lines:])
    return tail[-limit:] if tail else None
