"""The SQLite store's deployment lock: a row in ``deploy_locks``.

A row whose process is dead on this host is taken over with a warning, after the step
commands that process left running are ended (its recorded process groups). The run
holding the lock asks before each step whether its row is still its own
(:meth:`DeployLock.lost`): ``pytest-deploy unlock`` may have removed it, and another run
may have taken the lock since.
"""

from __future__ import annotations

import os
import socket

from deploy_plugin.processes import alive_here

from .driver import SharedSQL
from .errors import LockHeld, StoreError
from .lock import DeployLock, decode_groups, end_dead_holders_groups
from .records import LockInfo, format_time, utcnow
from .sqlite import SQLiteDriver

#: Only our own row: it may have been broken and taken by another run.
_OURS = " WHERE project_id = ? AND target_name = ? AND host = ? AND pid = ? AND started_at = ?"


class SQLiteLocks:
    """Deployment locks as rows of the store's file."""

    def __init__(self, driver: SQLiteDriver) -> None:
        self.driver = driver

    def acquire(self, project_id: int, project: str, target: str, *, holder: str) -> DeployLock:
        """Insert the lock row; take over one whose process died on this host (warning)."""
        driver = self.driver
        mine = LockInfo(holder, socket.gethostname(), os.getpid(), utcnow())
        warning = None
        dead: LockInfo | None = None
        with driver.transaction("take the deployment lock") as db:
            old = self._row(db, project_id, target)
            if old is not None:
                stale = old.host == mine.host and old.pid != mine.pid and old.pid > 0
                if not stale or alive_here(old.host, old.pid):
                    raise LockHeld(
                        store=driver.describe(),
                        project=project,
                        target=target,
                        held_by=old,
                        hint=(
                            "Wait for it to finish. If that run is dead, remove the lock with "
                            f"`pytest-deploy unlock {project} --target {target}`."
                        ),
                    )
                warning = (
                    f"Took over a stale deployment lock of project {project!r}, target "
                    f"{target!r}: its holder {old.holder} (host {old.host}, pid {old.pid}, "
                    f"since {format_time(old.started_at)}) is no longer running."
                )
                dead = old
                db.execute(
                    "DELETE FROM deploy_locks WHERE project_id = ? AND target_name = ?",
                    (project_id, target),
                )
            db.execute(
                "INSERT INTO deploy_locks (project_id, target_name, holder, host, pid, started_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (project_id, target, mine.holder, mine.host, mine.pid,
                 driver.time_param(mine.started_at)),
            )  # fmt: skip

        row_key = (project_id, target, mine.host, mine.pid, driver.time_param(mine.started_at))

        def release() -> None:
            with driver.transaction("release the deployment lock") as db:
                db.execute("DELETE FROM deploy_locks" + _OURS, row_key)

        def record_groups(value: str) -> None:
            # Twice per step: without the fsync of a durable commit (see undurable)
            with driver.undurable(), driver.transaction("record the steps' process groups") as db:
                db.execute("UPDATE deploy_locks SET step_groups = ?" + _OURS, (value, *row_key))

        if dead is not None:  # before anything of this run starts
            try:
                warning = f"{warning}{end_dead_holders_groups(dead)}"
            except StoreError:
                release()
                raise

        def check() -> str | None:
            with driver.reader("read the deployment lock") as db:
                row = self._row(db, project_id, target)
            if row is None or (row.host, row.pid) != (mine.host, mine.pid):
                return "its lock row was removed (pytest-deploy unlock?)"
            return None

        return DeployLock(
            project, target, mine, release, warning, check=check, record_groups=record_groups
        )

    def info(self, project_id: int | None, project: str, target: str) -> LockInfo | None:
        """The lock row of ``project`` + ``target`` (its holder may be dead), or None."""
        if project_id is None:
            return None
        with self.driver.reader("read the deployment lock") as db:
            return self._row(db, project_id, target)

    def break_lock(self, project_id: int | None, project: str, target: str) -> LockInfo | None:
        """Delete the lock row of ``project`` + ``target``; returns what it named."""
        if project_id is None:
            return None
        with self.driver.transaction("remove the deployment lock") as db:
            old = self._row(db, project_id, target)
            db.execute(
                "DELETE FROM deploy_locks WHERE project_id = ? AND target_name = ?",
                (project_id, target),
            )
        return old

    def _row(self, db: SharedSQL, project_id: int, target: str) -> LockInfo | None:
        row = db.execute(
            "SELECT holder, host, pid, started_at, step_groups FROM deploy_locks"
            " WHERE project_id = ? AND target_name = ?",
            (project_id, target),
        ).fetchone()
        if row is None:
            return None
        return LockInfo(row[0], row[1], int(row[2]), self.driver.time_value(row[3]),
                        decode_groups(row[4]))  # fmt: skip
