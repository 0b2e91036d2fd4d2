"""The migration history of a store: rows, intents of shell-applied files, and the upsert
sent inside a migration's own transaction."""

from __future__ import annotations

import os
import socket
from typing import Any

from .core import (
    _DELETE_INTENT,
    _MIGRATIONS,
    _PROJECT_OF,
    UPSERT_MIGRATION,
    StoreCore,
    _changed,
)
from .records import (
    MIGRATION_STATUSES,
    IntentRecord,
    MigrationRecord,
    utcnow,
)


class HistoryRepository(StoreCore):
    """The migration history of a store."""

    # -- migration history ----------------------------------------------------------------

    def applied_migrations(self, project: str, target: str) -> dict[str, MigrationRecord]:
        """Every history row of ``project`` + ``target`` (all statuses) by file; one query."""
        with self._reader("read the migration history") as db:
            rows = db.execute(_MIGRATIONS, (project, target)).fetchall()
        return {row[0]: self._migration(row) for row in rows}

    def migration_history(
        self, project: str, target: str, limit: int | None = None
    ) -> list[MigrationRecord]:
        """History rows of ``project`` + ``target``, newest first, at most ``limit``."""
        sql = _MIGRATIONS + " ORDER BY h.applied_at DESC, h.id DESC"
        params: tuple[Any, ...] = (project, target)
        if limit is not None:
            sql, params = sql + " LIMIT ?", (*params, limit)
        with self._reader("read the migration history") as db:
            rows = db.execute(sql, params).fetchall()
        return [self._migration(row) for row in rows]

    def record_migration(
        self, project: str, target: str, record: MigrationRecord, *, connection: Any = None
    ) -> None:
        """Insert or replace the history row of ``record.file`` for ``project`` + ``target``.

        ``connection``: the caller's connection to this store's database with an open
        transaction (psycopg for PostgreSQL, sqlite3 for SQLite); the row is written in
        that transaction, so a migration and its row commit or roll back together, and
        the caller commits. None: written and committed on the store's own connection.
        """
        if record.status not in MIGRATION_STATUSES:
            raise ValueError(
                f"migration status {record.status!r} is not one of {', '.join(MIGRATION_STATUSES)}"
            )
        if connection is not None:
            self._record_on_connection(connection, project, target, record)
            return
        project_id = self.project_id(project)
        with self._transaction("record a migration") as db:
            db.execute(UPSERT_MIGRATION, self._migration_params(project_id, target, record))
            db.execute(_DELETE_INTENT, (project_id, target, record.file))

    # -- intents of shell-applied migrations ----------------------------------------------

    def begin_intent(
        self, project: str, target: str, file: str, checksum: str, *,
        deployment_id: int | None, who: str,
    ) -> None:  # fmt: skip
        """Note that ``file`` is about to be applied by a shell step of this process.

        :meth:`record_migration` removes it with the history row; one found later means a
        run died while the file may have been applying (``intents``).
        """
        project_id = self.project_id(project)
        with self._transaction("record a migration intent") as db:
            db.execute(
                """INSERT INTO {s}migration_intents (project_id, target_name, migration_file,
                    checksum, deployment_id, who, host, pid, started_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (project_id, target, file, checksum, deployment_id, who, socket.gethostname(),
                 os.getpid(), self._time_param(utcnow())),
            )  # fmt: skip

    def intents(self, project: str, target: str) -> list[IntentRecord]:
        """Intents of ``project`` + ``target`` still in the store, by file."""
        with self._reader("read migration intents") as db:
            rows = db.execute(
                f"""SELECT migration_file, checksum, deployment_id, who, host, pid, started_at
                FROM {{s}}migration_intents WHERE {_PROJECT_OF} AND target_name = ?
                ORDER BY migration_file""",
                (project, target),
            ).fetchall()
        return [
            IntentRecord(file, checksum, deployment_id, who, host, pid, self._time_value(started))
            for file, checksum, deployment_id, who, host, pid, started in rows
        ]

    def forget_intent(self, project: str, target: str, file: str) -> bool:
        """Delete the intent of ``file`` (the way out after checking it did not apply)."""
        with self._transaction("delete a migration intent") as db:
            return _changed(
                db.execute(
                    f"DELETE FROM {{s}}migration_intents WHERE {_PROJECT_OF}"
                    " AND target_name = ? AND migration_file = ?",
                    (project, target, file),
                )
            )

    def history_statement(
        self, project: str, target: str, record: MigrationRecord
    ) -> tuple[str, tuple[Any, ...]]:
        """The upsert of ``record``'s history row as one statement with ``{}`` placeholders,
        for the migration runner to send inside the migration's own transaction when this
        store is the target's database (see :meth:`is_store_connection`). An
        ``execution_time_ms`` of None is left to the caller (its ELAPSED_MS)."""
        from deploy_plugin.migrate.executor import ELAPSED_MS

        project_id = self.project_id(project)  # committed first, on the store's connection
        params = list(self._migration_params(project_id, target, record))
        if record.execution_time_ms is None:
            params[6] = ELAPSED_MS
        text = self._db.translate(UPSERT_MIGRATION.replace("?", "{}"))
        return text, tuple(params)

    def delete_migration(self, project: str, target: str, file: str) -> bool:
        """Delete the history row of ``file``; whether there was one."""
        with self._transaction("delete a migration history row") as db:
            return _changed(
                db.execute(
                    f"DELETE FROM {{s}}migration_history WHERE {_PROJECT_OF}"
                    " AND target_name = ? AND migration_file = ?",
                    (project, target, file),
                )
            )

    def _migration_params(
        self, project_id: int, target: str, record: MigrationRecord
    ) -> tuple[Any, ...]:
        applied_at = self._time_param(record.applied_at)
        return (project_id, target, record.file, record.checksum, applied_at,
                record.applied_by, record.execution_time_ms, record.status,
                record.error_message)  # fmt: skip

    def _migration(self, row: Any) -> MigrationRecord:
        file, checksum, applied_at, *rest = row
        return MigrationRecord(file, checksum, self._time_value(applied_at), *rest)
