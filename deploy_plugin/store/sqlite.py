"""The embedded store's driver: one SQLite file (default ``<rootdir>/.deploy/state.sqlite3``).

WAL mode, a 30 s busy timeout and every write in ``BEGIN IMMEDIATE``
(:func:`deploy_plugin.db.sqlite_connect`), so pytest-xdist workers and parallel runs share
the file safely. Its deployment lock is a row (``sqlite_lock.py``).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from deploy_plugin.db import sqlite_connect, sqlite_transaction

from .driver import Driver
from .errors import StoreError
from .migrator import SchemaStep
from .records import to_utc, utcnow
from .schema import SQLITE_BOOTSTRAP
from .sqlite_file import prepare_file, refuse_foreign, sqlite_error


def open_sqlite(
    path: Path, url: str, *, create: bool, gitignore_dir: Path | None = None
) -> SQLiteDriver | None:
    """Open (``create``: create and upgrade) the store at ``path``.

    Without ``create`` nothing is created or upgraded: a missing file, a file without
    the schema or with an older schema gives None. ``gitignore_dir``: a folder to
    create with a ``.gitignore`` of ``*`` (the default ``.deploy/``).
    """
    if path.exists():
        refuse_foreign(path)  # before anything changes it (mode, WAL, tables)
    if create:
        prepare_file(path, gitignore_dir)
    elif not path.exists():
        return None
    try:  # without create, mode=rw: never create the file
        conn = sqlite_connect(path, mode="rwc" if create else "rw", store=True)
    except sqlite3.Error as exc:
        raise sqlite_error(path, "open the store", exc) from exc
    driver = SQLiteDriver(path, url, conn)
    return driver if driver.open_schema(create=create) else None


class SQLiteDriver(Driver):
    """The store's connection to its SQLite file."""

    kind = "sqlite"
    errors = sqlite3.Error
    connection: sqlite3.Connection

    def __init__(self, path: Path, url: str, connection: sqlite3.Connection) -> None:
        super().__init__(url, connection, prefix="", pyformat=False)
        self.path = path

    def describe(self) -> str:
        """The store's file path."""
        return str(self.path)

    def error(self, what: str, exc: Exception) -> StoreError:
        assert isinstance(exc, sqlite3.Error)
        return sqlite_error(self.path, what, exc)

    def begin(self) -> AbstractContextManager[None]:
        return sqlite_transaction(self.connection)

    @contextmanager
    def undurable(self) -> Iterator[None]:
        """Commits inside are visible to every process at once but not synced to disk
        (WAL with ``synchronous = NORMAL``): for what only matters while this machine is
        up, such as the process groups of running steps (a power cut ends them too)."""
        with self._mutex:
            before = int(self.connection.execute("PRAGMA synchronous").fetchone()[0])
            self.connection.execute("PRAGMA synchronous = NORMAL")
            try:
                yield
            finally:
                self.connection.execute(f"PRAGMA synchronous = {before}")

    def time_param(self, value: datetime) -> str:
        return to_utc(value).isoformat(timespec="microseconds")

    def time_value(self, value: Any) -> datetime:
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

    def read_store_id(self) -> str:
        row = self.connection.execute(
            "SELECT value FROM store_meta WHERE key = 'store_id'"
        ).fetchone()
        return str(row[0]) if row else ""

    # -- the schema migrator's protocol ---------------------------------------------------

    def read_version(self) -> int:
        found = self.connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        if found is None:
            return 0
        row = self.connection.execute("SELECT coalesce(max(version), 0) FROM schema_version")
        return int(row.fetchone()[0])

    def exclusive(self) -> AbstractContextManager[None]:
        return sqlite_transaction(self.connection, "EXCLUSIVE")

    def bootstrap(self) -> None:
        self.connection.execute(SQLITE_BOOTSTRAP)

    def apply(self, step: SchemaStep) -> None:
        for statement in step.statements:
            self.connection.execute(statement)
        self.connection.execute(
            "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
            (step.version, step.description, utcnow().isoformat(timespec="microseconds")),
        )

    def set_store_id(self, store_id: str) -> None:
        self.connection.execute(
            "INSERT INTO store_meta (key, value) VALUES ('store_id', ?) ON CONFLICT DO NOTHING",
            (store_id,),
        )
