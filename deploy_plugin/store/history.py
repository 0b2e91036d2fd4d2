"""The migration history of a store: rows, intents of shell-applied files, and the upsert
sent inside a migration's own transaction (the migration runner's ``HistoryWriter``).

``migration_history`` keeps one row per file (its last apply or attempt); a repeatable
migration (``R__name.sql``) also gets one ``repeatable_applies`` row per apply, with the
checksum it applied, written with its history row (:meth:`HistoryRepository.repeat_statement`
in the migration's own transaction)."""

from __future__ import annotations

import os
import socket
from contextlib import nullcontext
from typing import Any

from deploy_plugin.config import is_repeatable

from .core import _DELETE_INTENT, _MIGRATIONS, _PROJECT_OF, UPSERT_MIGRATION, StoreCore, _limited
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
        with self.driver.reader("read the migration history") as db:
            rows = db.execute(_MIGRATIONS, (project, target)).fetchall()
        return {row[0]: self._migration(row) for row in rows}

    def migration_history(
        self, project: str, target: str, limit: int | None = None
    ) -> list[MigrationRecord]:
        """History rows of ``project`` + ``target``, newest first, at most ``limit``."""
        sql, params = _limited(
            _MIGRATIONS + " ORDER BY h.applied_at DESC, h.id DESC", (project, target), limit
        )
        with self.driver.reader("read the migration history") as db:
            rows = db.execute(sql, params).fetchall()
        return [self._migration(row) for row in rows]

    def record_migration(
        self, project: str, target: str, record: MigrationRecord, *, durable: bool = True
    ) -> None:
        """Insert or replace the history row of ``record.file`` for ``project`` + ``target``
        (and forget the file's intent), committed on the store's own connection.

        A migration and its row commit together when the store is the target's database:
        the migration runner then sends :meth:`history_statement` in the migration's own
        transaction instead. ``durable=False``: committed (seen by every process at once,
        kept if this process dies) without the fsync of a durable commit, for a row the
        target's ledger also holds; the next durable commit on the store (the run's end)
        syncs it with everything before it.
        """
        if record.status not in MIGRATION_STATUSES:
            raise ValueError(
                f"migration status {record.status!r} is not one of {', '.join(MIGRATION_STATUSES)}"
            )
        project_id = self.project_id(project)
        with (
            nullcontext() if durable else self.driver.undurable(),
            self.driver.transaction("record a migration") as db,
        ):
            db.execute(UPSERT_MIGRATION, self._migration_params(project_id, target, record))
            if record.status == "success" and is_repeatable(record.file):
                db.execute(_INSERT_REPEAT, self._repeat_params(project_id, target, record))
            db.execute(_DELETE_INTENT, (project_id, target, record.file))

    def repeatable_applies(
        self, project: str, target: str, limit: int | None = None
    ) -> list[MigrationRecord]:
        """Every apply of a repeatable migration of ``project`` + ``target``, newest first
        (at most ``limit``), each with the checksum it applied."""
        sql, params = _limited(
            """SELECT r.migration_file, r.checksum, r.applied_at, r.applied_by,
                r.execution_time_ms, 'success', NULL
            FROM {s}repeatable_applies r JOIN {s}projects p ON p.id = r.project_id
            WHERE p.name = ? AND r.target_name = ? ORDER BY r.applied_at DESC, r.id DESC""",
            (project, target), limit,
        )  # fmt: skip
        with self.driver.reader("read the applies of repeatable migrations") as db:
            rows = db.execute(sql, params).fetchall()
        return [self._migration(row) for row in rows]

    def repeat_statement(
        self, project: str, target: str, record: MigrationRecord, *, elapsed: Any
    ) -> tuple[str, tuple[Any, ...]]:
        """The ``repeatable_applies`` row of ``record`` (a repeatable migration's apply) as one
        statement with ``{}`` placeholders, sent with :meth:`history_statement`."""
        params = list(self._repeat_params(self.project_id(project), target, record))
        if record.execution_time_ms is None:
            params[6] = elapsed
        return self.driver.sql.translate(_INSERT_REPEAT.replace("?", "{}")), tuple(params)

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
        with self.driver.transaction("record a migration intent") as db:
            db.execute(
                """INSERT INTO {s}migration_intents (project_id, target_name, migration_file,
                    checksum, deployment_id, who, host, pid, started_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (project_id, target, file, checksum, deployment_id, who, socket.gethostname(),
                 os.getpid(), self.driver.time_param(utcnow())),
            )  # fmt: skip

    def intents(self, project: str, target: str) -> list[IntentRecord]:
        """Intents of ``project`` + ``target`` still in the store, by file."""
        with self.driver.reader("read migration intents") as db:
            rows = db.execute(
                f"""SELECT migration_file, checksum, deployment_id, who, host, pid, started_at
                FROM {{s}}migration_intents WHERE {_PROJECT_OF} AND target_name = ?
                ORDER BY migration_file""",
                (project, target),
            ).fetchall()
        return [
            IntentRecord(
                file, checksum, deployment_id, who, host, pid, self.driver.time_value(started)
            )
            for file, checksum, deployment_id, who, host, pid, started in rows
        ]

    def forget_intent(self, project: str, target: str, file: str) -> bool:
        """Delete the intent of ``file`` (the way out after checking it did not apply)."""
        return self._delete(
            "delete a migration intent", "migration_intents", "migration_file", project, target,
            file,
        )  # fmt: skip

    def history_statement(
        self, project: str, target: str, record: MigrationRecord, *, elapsed: Any
    ) -> tuple[str, tuple[Any, ...]]:
        """The upsert of ``record``'s history row as one statement with ``{}`` placeholders,
        for the migration runner to send inside the migration's own transaction when this
        store is the target's database (see :meth:`is_store_connection`). An
        ``execution_time_ms`` of None is sent as ``elapsed``: the runner's stand-in for
        the migration's own time, which only the executor knows."""
        project_id = self.project_id(project)  # committed first, on the store's connection
        params = list(self._migration_params(project_id, target, record))
        if record.execution_time_ms is None:
            params[6] = elapsed
        text = self.driver.sql.translate(UPSERT_MIGRATION.replace("?", "{}"))
        return text, tuple(params)

    def _migration_params(
        self, project_id: int, target: str, record: MigrationRecord
    ) -> tuple[Any, ...]:
        applied_at = self.driver.time_param(record.applied_at)
        return (project_id, target, record.file, record.checksum, applied_at,
                record.applied_by, record.execution_time_ms, record.status,
                record.error_message)  # fmt: skip

    def _repeat_params(
        self, project_id: int, target: str, record: MigrationRecord
    ) -> tuple[Any, ...]:
        applied_at = self.driver.time_param(record.applied_at)
        return (project_id, target, record.file, record.checksum, applied_at,
                record.applied_by, record.execution_time_ms)  # fmt: skip

    def _migration(self, row: Any) -> MigrationRecord:
        file, checksum, applied_at, *rest = row
        return MigrationRecord(file, checksum, self.driver.time_value(applied_at), *rest)


_INSERT_REPEAT = """
    INSERT INTO {s}repeatable_applies (project_id, target_name, migration_file, checksum,
        applied_at, applied_by, execution_time_ms)
    VALUES (?, ?, ?, ?, ?, ?, ?)"""
