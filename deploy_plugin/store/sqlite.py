"""The embedded store: one SQLite file (default ``<rootdir>/.deploy/state.sqlite3``).

WAL mode, a 30 s busy timeout and every write in ``BEGIN IMMEDIATE``, so pytest-xdist
workers and parallel runs share the file safely. The deployment lock is a row in
``deploy_locks``; a row whose process is dead on this host is taken over with a warning,
after the step commands that process left running are ended (its recorded process groups).
"""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from deploy_plugin.engine import procgroups

from . import migrator
from .base import (
    UPSERT_MIGRATION,
    DeployLock,
    LockHeld,
    LockInfo,
    MigrationRecord,
    SharedSQL,
    Store,
    StoreError,
    format_time,
    to_utc,
    utcnow,
)
from .lock import end_dead_holders_groups
from .records import alive_here
from .schema import SQLITE_BOOTSTRAP, SchemaStep
from .sqlite_file import (
    BUSY_TIMEOUT_S,
    _prepare_file,
    _refuse_foreign,
    _use_wal,
    sqlite_error,
)


class SQLiteStore(Store):
    """The store in a SQLite file. Open it with :meth:`open` (or ``open_store``)."""

    kind = "sqlite"

    def __init__(self, path: Path, url: str, connection: sqlite3.Connection) -> None:
        super().__init__(url)
        self.path = path
        self._conn = connection
        self._db = SharedSQL(connection, prefix="", pyformat=False)
        row = connection.execute("SELECT value FROM store_meta WHERE key = 'store_id'").fetchone()
        self.store_id: str = row[0] if row else ""

    @classmethod
    def open(
        cls, path: Path, url: str, *, create: bool, gitignore_dir: Path | None = None
    ) -> SQLiteStore | None:
        """Open (``create``: create and upgrade) the store at ``path``.

        Without ``create`` nothing is created or upgraded: a missing file, a file without
        the schema or with an older schema gives None. ``gitignore_dir``: a folder to
        create with a ``.gitignore`` of ``*`` (the default ``.deploy/``).
        """
        if path.exists():
            _refuse_foreign(path)  # before anything changes it (mode, WAL, tables)
        if create:
            _prepare_file(path, gitignore_dir)
        elif not path.exists():
            return None
        try:
            if create:
                conn = sqlite3.connect(
                    str(path),
                    isolation_level=None,
                    timeout=BUSY_TIMEOUT_S,
                    check_same_thread=False,
                )
            else:  # mode=rw: never create the file
                conn = sqlite3.connect(
                    f"file:{quote(str(path))}?mode=rw",
                    uri=True,
                    isolation_level=None,
                    timeout=BUSY_TIMEOUT_S,
                    check_same_thread=False,
                )
        except sqlite3.Error as exc:
            raise sqlite_error(path, "open the store", exc) from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            if create:
                _use_wal(conn)
            driver = _SQLiteSchema(conn)
            if not migrator.ready(driver, str(path), create=create):
                conn.close()
                return None
            return cls(path, url, conn)
        except sqlite3.Error as exc:
            conn.close()
            raise sqlite_error(path, "create or upgrade the store schema", exc) from exc
        except BaseException:
            conn.close()
            raise

    def close(self) -> None:
        """Close the connection (a held lock row stays until released)."""
        with self._mutex:
            self._conn.close()

    def describe(self) -> str:
        """The store's file path."""
        return str(self.path)

    def schema_version(self) -> int:
        """The highest schema version applied to this file."""
        with self._reader("read the schema version"):
            return _read_version(self._conn)

    @contextmanager
    def _transaction(self, what: str) -> Iterator[SharedSQL]:
        with self._mutex:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise sqlite_error(self.path, what, exc) from exc
            try:
                yield self._db
                self._conn.execute("COMMIT")
            except BaseException as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise sqlite_error(self.path, what, exc) from exc
                raise

    @contextmanager
    def _undurable(self) -> Iterator[None]:
        """Commits inside are visible to every process at once but not synced to disk
        (WAL with ``synchronous = NORMAL``): for what only matters while this machine is
        up, such as the process groups of running steps (a power cut ends them too)."""
        with self._mutex:
            before = int(self._conn.execute("PRAGMA synchronous").fetchone()[0])
            self._conn.execute("PRAGMA synchronous = NORMAL")
            try:
                yield
            finally:
                self._conn.execute(f"PRAGMA synchronous = {before}")

    @contextmanager
    def _reader(self, what: str) -> Iterator[SharedSQL]:
        with self._mutex:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise sqlite_error(self.path, what, exc) from exc

    def _time_param(self, value: datetime) -> str:
        return to_utc(value).isoformat(timespec="microseconds")

    def _time_value(self, value: Any) -> datetime:
        try:
            parsed = datetime.fromisoformat(value)
        except (TypeError, ValueError):  # a row written by hand, or by another program
            shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
            raise StoreError(
                f"The SQLite store {self.path} holds a time, {shown}, that is not an ISO 8601"
                " time (such as 2026-12-07T14:00:00+00:00): a row was written by something"
                " other than pytest-deploy. Correct that row (e.g. with the sqlite3 shell) or"
                " restore the file from a backup; nothing was changed."
            ) from None
        if parsed.tzinfo is None:  # written by hand, e.g. datetime('now'): UTC
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.astimezone(timezone.utc)

    # -- history row in the caller's transaction -----------------------------------------

    def is_store_connection(self, connection: Any) -> bool:
        """Whether ``connection`` is a sqlite3 connection to this store's file."""
        if not isinstance(connection, sqlite3.Connection):
            return False
        # No cache: sqlite3 connections can't be weakly referenced, and this is in-process.
        rows = connection.execute("PRAGMA database_list").fetchall()
        main = next((row[2] for row in rows if row[1] == "main"), "")
        try:
            return bool(main) and os.path.samefile(main, self.path)
        except OSError:
            return False

    def _record_on_connection(
        self, connection: Any, project: str, target: str, record: MigrationRecord
    ) -> None:
        if not self.is_store_connection(connection):
            raise StoreError(
                f"record_migration(connection=...) was given a connection that is not to the "
                f"store file {self.path}; pass connection=None to record the row separately."
            )
        db = SharedSQL(connection, prefix="", pyformat=False)
        try:
            project_id = self.project_id(project, create=False)
            if project_id is None:
                # Created on the caller's connection: ours would wait for its write lock.
                db.execute(
                    "INSERT INTO projects (name, created_at) VALUES (?, ?)"
                    " ON CONFLICT (name) DO NOTHING",
                    (project, self._time_param(utcnow())),
                )
                project_id = db.execute(
                    "SELECT id FROM projects WHERE name = ?", (project,)
                ).fetchone()[0]
            db.execute(UPSERT_MIGRATION, self._migration_params(project_id, target, record))
        except sqlite3.Error as exc:
            raise sqlite_error(self.path, "record a migration", exc) from exc

    # -- deployment lock ------------------------------------------------------------------

    def acquire_lock(self, project: str, target: str, *, holder: str) -> DeployLock:
        """Insert the lock row; take over one whose process died on this host (warning)."""
        project_id = self.project_id(project)
        mine = LockInfo(holder, socket.gethostname(), os.getpid(), utcnow())
        warning = None
        dead: LockInfo | None = None
        with self._transaction("take the deployment lock") as db:
            old = self._lock_row(db, project_id, target)
            if old is not None:
                stale = old.host == mine.host and old.pid != mine.pid and old.pid > 0
                if not stale or alive_here(old.host, old.pid):
                    raise LockHeld(
                        store=self.describe(),
                        project=project,
                        target=target,
                        holder=old.holder,
                        host=old.host,
                        pid=old.pid,
                        started_at=old.started_at,
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
                (
                    project_id,
                    target,
                    mine.holder,
                    mine.host,
                    mine.pid,
                    self._time_param(mine.started_at),
                ),
            )

        # Only our own row: it may have been broken and taken by another run.
        ours = (
            " WHERE project_id = ? AND target_name = ? AND host = ? AND pid = ? AND started_at = ?"
        )
        row_key = (project_id, target, mine.host, mine.pid, self._time_param(mine.started_at))

        def release() -> None:
            with self._transaction("release the deployment lock") as db:
                db.execute("DELETE FROM deploy_locks" + ours, row_key)

        def record_groups(value: str) -> None:
            # Twice per step: without the fsync of a durable commit (see _undurable)
            with self._undurable(), self._transaction("record the steps' process groups") as db:
                db.execute("UPDATE deploy_locks SET step_groups = ?" + ours, (value, *row_key))

        if dead is not None:  # before anything of this run starts
            try:
                warning = f"{warning}{end_dead_holders_groups(dead)}"
            except StoreError:
                release()
                raise

        def check() -> str | None:
            with self._reader("read the deployment lock") as db:
                row = self._lock_row(db, project_id, target)
            if row is None or (row.host, row.pid) != (mine.host, mine.pid):
                return "its lock row was removed (pytest-deploy unlock?)"
            return None

        return DeployLock(
            project, target, mine, release, warning, check=check, record_groups=record_groups
        )

    def lock_info(self, project: str, target: str) -> LockInfo | None:
        """The lock row of ``project`` + ``target`` (its holder may be dead), or None."""
        project_id = self.project_id(project, create=False)
        if project_id is None:
            return None
        with self._reader("read the deployment lock") as db:
            return self._lock_row(db, project_id, target)

    def break_lock(self, project: str, target: str) -> LockInfo | None:
        """Delete the lock row of ``project`` + ``target``; returns what it named."""
        project_id = self.project_id(project, create=False)
        if project_id is None:
            return None
        with self._transaction("remove the deployment lock") as db:
            old = self._lock_row(db, project_id, target)
            db.execute(
                "DELETE FROM deploy_locks WHERE project_id = ? AND target_name = ?",
                (project_id, target),
            )
        return old

    def _lock_row(self, db: SharedSQL, project_id: int, target: str) -> LockInfo | None:
        row = db.execute(
            "SELECT holder, host, pid, started_at, step_groups FROM deploy_locks"
            " WHERE project_id = ? AND target_name = ?",
            (project_id, target),
        ).fetchone()
        if row is None:
            return None
        groups = tuple(procgroups.decode(row[4]))
        return LockInfo(row[0], row[1], int(row[2]), self._time_value(row[3]), groups)


class _SQLiteSchema:
    """The migrator's driver for one SQLite connection (see :mod:`.migrator`)."""

    kind = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def read_version(self) -> int:
        return _read_version(self.conn)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        self.conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    def bootstrap(self) -> None:
        self.conn.execute(SQLITE_BOOTSTRAP)

    def apply(self, step: SchemaStep) -> None:
        for statement in step.statements:
            self.conn.execute(statement)
        self.conn.execute(
            "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
            (step.version, step.description, utcnow().isoformat(timespec="microseconds")),
        )

    def set_store_id(self, store_id: str) -> None:
        self.conn.execute(
            "INSERT INTO store_meta (key, value) VALUES ('store_id', ?) ON CONFLICT DO NOTHING",
            (store_id,),
        )


def _read_version(conn: sqlite3.Connection) -> int:
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if found is None:
        return 0
    return int(conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0])
