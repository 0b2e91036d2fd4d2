"""The core every store repository builds on: connection protocol, projects, shared SQL.

Both stores (``sqlite.py``, ``postgres.py``) run the same SQL for everything but
connections, schema upgrades and locking. Shared SQL is written with ``?`` parameters and
a ``{s}`` table prefix; each store translates it (``%s`` and ``deploy.`` for PostgreSQL).
Every driver error leaves the store as a :class:`StoreError` with a one-paragraph message.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, overload

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self is 3.11+

from .records import (
    MigrationRecord,
    utcnow,
)


class SharedSQL:
    """A connection that runs shared SQL (``?`` parameters, ``{s}`` table prefix),
    translated for its driver and cached per text."""

    def __init__(self, connection: Any, *, prefix: str, pyformat: bool) -> None:
        self.connection = connection
        self._prefix = prefix
        self._pyformat = pyformat
        self._translated: dict[str, str] = {}

    def translate(self, sql: str) -> str:
        """``{s}`` → table prefix; ``?`` → ``%s`` for drivers using the pyformat style."""
        text = self._translated.get(sql)
        if text is None:
            text = sql.replace("{s}", self._prefix)
            if self._pyformat:
                text = text.replace("?", "%s")
            self._translated[sql] = text
        return text

    def execute(self, sql: str, params: Any = ()) -> Any:
        """Run shared SQL with ``params``; returns the driver's cursor."""
        return self.connection.execute(self.translate(sql), params)

    def executemany(self, sql: str, rows: list[Any]) -> None:
        """Run shared SQL once per row (psycopg pipelines them: one round trip, not N)."""
        if hasattr(self.connection, "executemany"):  # sqlite3
            self.connection.executemany(self.translate(sql), rows)
            return
        with self.connection.cursor() as cursor:
            cursor.executemany(self.translate(sql), rows)


# -- shared SQL ---------------------------------------------------------------------------

UPSERT_MIGRATION = """
    INSERT INTO {s}migration_history (project_id, target_name, migration_file,
        migration_checksum, applied_at, applied_by, execution_time_ms, status, error_message)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (project_id, target_name, migration_file) DO UPDATE SET
        migration_checksum = excluded.migration_checksum, applied_at = excluded.applied_at,
        applied_by = excluded.applied_by, execution_time_ms = excluded.execution_time_ms,
        status = excluded.status, error_message = excluded.error_message"""
_DELETE_INTENT = """
    DELETE FROM {s}migration_intents
    WHERE project_id = ? AND target_name = ? AND migration_file = ?"""
_PROJECT_ID = "SELECT id FROM {s}projects WHERE name = ?"
_PROJECT_OF = "project_id = (SELECT id FROM {s}projects WHERE name = ?)"
_MIGRATIONS = """
    SELECT h.migration_file, h.migration_checksum, h.applied_at, h.applied_by,
        h.execution_time_ms, h.status, h.error_message
    FROM {s}migration_history h JOIN {s}projects p ON p.id = h.project_id
    WHERE p.name = ? AND h.target_name = ?"""
_TARGET_COLUMNS = """name, type, provider, host, region, protected, health_check_url,
    created_at, updated_at"""
_DEPLOYMENTS = """
    SELECT d.id, p.name, d.target_name, d.who, d.started_at, d.ended_at, d.status, d.dry_run,
        d.config_sha256, d.kind
    FROM {s}deployments d JOIN {s}projects p ON p.id = d.project_id"""


class StoreCore(ABC):
    """What every repository of a store shares: connections, transactions, projects.

    Open one with :func:`deploy_plugin.store.open_store`. Methods may be called from
    several threads of one process (calls are serialised); each process opens its own.
    Timestamps come back as aware UTC datetimes; naive ones passed in are local time.
    Reads never create a project; writes create it on first use.
    """

    kind: str
    url: str
    _db: SharedSQL

    def __init__(self, url: str) -> None:
        self.url = url
        self._mutex = threading.RLock()
        self._project_ids: dict[str, int] = {}

    # -- what each store provides ---------------------------------------------------------

    @abstractmethod
    def close(self) -> None:
        """Close the store's connection (a held lock is not released by this)."""

    @abstractmethod
    def describe(self) -> str:
        """The store for messages (file path, or URL with the password masked)."""

    @abstractmethod
    def schema_version(self) -> int:
        """The schema version recorded in the store."""

    @abstractmethod
    def _transaction(self, what: str) -> AbstractContextManager[SharedSQL]:
        """A write transaction, committed on success; driver errors become StoreError
        saying that the store could not ``what`` (e.g. "record a migration")."""

    def _statement(self, what: str) -> AbstractContextManager[SharedSQL]:
        """For ONE write statement: run in autocommit (atomic on its own), which saves the
        two round trips of BEGIN and COMMIT on a store across a network."""
        return self._reader(what)

    @abstractmethod
    def _reader(self, what: str) -> AbstractContextManager[SharedSQL]:
        """The connection for reads; driver errors become StoreError."""

    @abstractmethod
    def _time_param(self, value: datetime) -> Any:
        """A datetime as the driver stores it."""

    @abstractmethod
    def _time_value(self, value: Any) -> datetime:
        """A stored timestamp as an aware UTC datetime."""

    @abstractmethod
    def _record_on_connection(
        self, connection: Any, project: str, target: str, record: MigrationRecord
    ) -> None:
        """Write a history row inside the caller's open transaction on ``connection``."""

    @abstractmethod
    def is_store_connection(self, connection: Any) -> bool:
        """Whether a connection opened by someone else reaches this store's database.

        The migration runner asks this once per target database to decide whether a
        migration and its history row go in one query (:meth:`history_statement`).
        """

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"

    # -- projects -------------------------------------------------------------------------

    @overload
    def project_id(self, name: str) -> int: ...

    @overload
    def project_id(self, name: str, *, create: Literal[True]) -> int: ...

    @overload
    def project_id(self, name: str, *, create: bool) -> int | None: ...

    def project_id(self, name: str, *, create: bool = True) -> int | None:
        """The id of project ``name``, created on first use unless ``create`` is false."""
        if name in self._project_ids:
            return self._project_ids[name]
        with self._reader("look up a project") as db:
            row = db.execute(_PROJECT_ID, (name,)).fetchone()
        if row is None:
            if not create:
                return None
            with self._transaction("create a project") as db:
                db.execute(
                    "INSERT INTO {s}projects (name, created_at) VALUES (?, ?)"
                    " ON CONFLICT (name) DO NOTHING",
                    (name, self._time_param(utcnow())),
                )
                row = db.execute(_PROJECT_ID, (name,)).fetchone()
        self._project_ids[name] = int(row[0])
        return self._project_ids[name]

    def projects(self) -> list[str]:
        """Names of all projects in the store, sorted."""
        with self._reader("list projects") as db:
            return [row[0] for row in db.execute("SELECT name FROM {s}projects ORDER BY name")]


def _changed(cursor: Any) -> bool:
    """Whether a DELETE or UPDATE touched a row."""
    return bool(cursor.rowcount > 0)
