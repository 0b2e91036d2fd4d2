"""Where a deployment's step logs go, and how many runs of them are kept.

Each real run writes its steps' logs under ``<rootdir>/.deploy/logs/<run>/`` (``<run>`` is
``<deployment id>-<project>-<target>``) with a ``run.json`` that says whose run it is
(project, target, start). At the end of a run, while it still holds its target's lock,
:func:`prune` removes the oldest run folders of the same project and target beyond ini
``deploy_keep_logs`` (default 50; 0 keeps every run). The running one is never removed,
nor a folder without a readable ``run.json`` (one written by hand, or by an older version).
A dry run writes no log and removes nothing.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

#: The file that marks a folder under .deploy/logs as one run of pytest-deploy's.
MARKER = "run.json"
#: Runs kept per project and target when ini ``deploy_keep_logs`` is not set.
DEFAULT_KEEP = 50


def parse_keep(value: str) -> int:
    """Ini ``deploy_keep_logs`` as a number of runs; ValueError with the user's paragraph."""
    text = value.strip()
    if not text:
        return DEFAULT_KEEP
    if not text.isdigit():
        raise ValueError(
            f"ini deploy_keep_logs = {value} is not a whole number of 0 or more: it is how"
            f" many runs' step logs each target keeps under .deploy/logs (default"
            f" {DEFAULT_KEEP}; 0 keeps every run). Set it to a number like 50, or remove it."
        )
    return int(text)


def mark(
    run_dir: Path, project: str, target: str, started_at: datetime, run_id: int | None
) -> None:
    """Write ``run.json`` in a new run's folder (folders 0700, file 0600, like its logs).

    A folder that can't be written is left to the first step's log to report (in a
    paragraph that names it); without its marker the run is only never pruned.
    """
    # deferred: +17 modules, 14 ms (typing, secrets, textwrap, …)
    from deploy_plugin.engine.output import open_log

    data = {
        "project": project,
        "target": target,
        # one fixed width (microseconds included), so that start times sort as text
        "started_at": started_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "deployment_id": run_id,
    }
    try:
        with open_log(run_dir / MARKER) as out:
            out.write(json.dumps(data) + "\n")
    except OSError:
        pass


def prune(run_dir: Path, project: str, target: str, keep: int) -> list[str]:
    """Remove the oldest run folders of *project* and *target* beside *run_dir* (the
    running one, never removed) so that at most *keep* remain, it included.

    Returns a line for each folder that could not be removed (the caller warns).
    """
    if keep <= 0 or not run_dir.parent.is_dir():
        return []
    runs: list[tuple[tuple[str, int, str], Path]] = []
    try:
        for folder in run_dir.parent.iterdir():
            if folder == run_dir or folder.is_symlink() or not folder.is_dir():
                continue
            key = _run_key(folder, project, target)
            if key is not None:
                runs.append((key, folder))
    except OSError as err:
        return [f"{run_dir.parent}: {err.strerror or err}"]
    runs.sort(key=lambda pair: pair[0])
    problems = []
    for _, folder in runs[: max(0, len(runs) - (keep - 1))]:
        try:
            _remove_run(folder)
        except OSError as err:
            problems.append(f"{getattr(err, 'filename', None) or folder}: {err.strerror or err}")
    return problems


def _remove_run(folder: Path) -> None:
    """Remove a run folder, its marker last: one that could not be removed whole is
    still a run of its target, tried again at the next run's end."""
    for entry in folder.iterdir():
        if entry.name == MARKER:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    (folder / MARKER).unlink()
    folder.rmdir()


def _run_key(folder: Path, project: str, target: str) -> tuple[str, int, str] | None:
    """The sort key (oldest first) of a run folder of *project* and *target*, else None."""
    try:
        with open(folder / MARKER, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("project") != project:
        return None
    started, run_id = data.get("started_at"), data.get("deployment_id")
    if data.get("target") != target or not isinstance(started, str):
        return None
    return started, run_id if isinstance(run_id, int) else 0, os.fsdecode(folder.name)
