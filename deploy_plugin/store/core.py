"""The core every store repository builds on: its driver, projects, shared SQL.

Both stores run the same SQL for everything but connections, schema upgrades and locking.
Shared SQL is written with ``?`` parameters and a ``{s}`` table prefix; the driver
(:mod:`.driver`) translates it (``%s`` and ``deploy.`` for PostgreSQL) and turns every
driver error into a :class:`StoreError` with a one-paragraph message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, overload

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self is 3.11+

from .driver import Driver
from .records import utcnow

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


class StoreCore:
    """What every repository of a store shares: its driver and its projects.

    Methods may be called from several threads of one process (the driver serialises
    them); each process opens its own store. Timestamps come back as aware UTC datetimes;
    naive ones passed in are local time. Reads never create a project; writes create it
    on first use.
    """

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.kind = driver.kind
        self.url = driver.url
        self.store_id = driver.store_id
        self._project_ids: dict[str, int] = {}

    def close(self) -> None:
        """Close the store's connection (a held lock is not released by this)."""
        self.driver.close()

    def describe(self) -> str:
        """The store for messages (file path, or URL with the password masked)."""
        return self.driver.describe()

    def schema_version(self) -> int:
        """The schema version recorded in the store."""
        return self.driver.schema_version()

    def is_store_connection(self, connection: Any) -> bool:
        """Whether a connection opened by someone else reaches this store's database.

        The migration runner asks this once per target database to decide whether a
        migration and its history row go in one query (:meth:`history_statement`).
        """
        return self.driver.is_store_connection(connection)

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
        with self.driver.reader("look up a project") as db:
            row = db.execute(_PROJECT_ID, (name,)).fetchone()
        if row is None:
            if not create:
                return None
            with self.driver.transaction("create a project") as db:
                db.execute(
                    "INSERT INTO {s}projects (name, created_at) VALUES (?, ?)"
                    " ON CONFLICT (name) DO NOTHING",
                    (name, self.driver.time_param(utcnow())),
                )
                row = db.execute(_PROJECT_ID, (name,)).fetchone()
        self._project_ids[name] = int(row[0])
        return self._project_ids[name]

    def projects(self) -> list[str]:
        """Names of all projects in the store, sorted."""
        with self.driver.reader("list projects") as db:
            return [row[0] for row in db.execute("SELECT name FROM {s}projects ORDER BY name")]

    # -- shared by the repositories -------------------------------------------------------

    def _delete(self, what: str, table: str, column: str, project: str, target: str,
                value: str) -> bool:  # fmt: skip
        """Delete the row of ``project`` + ``target`` whose ``column`` is ``value`` from
        ``table`` (names of ours, never input); whether there was one."""
        with self.driver.transaction(what) as db:
            cursor = db.execute(
                f"DELETE FROM {{s}}{table} WHERE {_PROJECT_OF} AND target_name = ?"
                f" AND {column} = ?",
                (project, target, value),
            )
            return _changed(cursor)


def _changed(cursor: Any) -> bool:
    """Whether a DELETE or UPDATE touched a row."""
    return bool(cursor.rowcount > 0)


def _limited(sql: str, params: tuple[Any, ...], limit: int | None) -> tuple[str, tuple[Any, ...]]:
    """``sql`` and ``params`` with ``LIMIT limit`` added, unless ``limit`` is None."""
    if limit is None:
        return sql, params
    return sql + " LIMIT ?", (*params, limit)
