"""History changes made by hand, each with its audit row (``migration_audit``, schema v4).

``migration accept-checksum`` (Flyway's repair for one file), ``migration baseline`` and
``migration mark-applied`` change the migration history without running anything; the audit
row keeps who, when, the old and new checksum and the reason, in the same transaction as
the change.
"""

from __future__ import annotations

from typing import Any

from .core import _DELETE_INTENT, _PROJECT_OF, UPSERT_MIGRATION, StoreCore, _changed, _limited
from .records import AuditRecord, MigrationRecord, utcnow

_INSERT_AUDIT = """
    INSERT INTO {s}migration_audit (project_id, target_name, migration_file, action,
        old_checksum, new_checksum, reason, who, at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"""
_INSERT_MIGRATION = """
    INSERT INTO {s}migration_history (project_id, target_name, migration_file,
        migration_checksum, applied_at, applied_by, execution_time_ms, status, error_message)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"""


class AuditRepository(StoreCore):
    """Accepted checksums and baselines, and their audit trail."""

    def accept_checksum(
        self, project: str, target: str, file: str, *, old: str, new: str, reason: str, who: str
    ) -> bool:
        """Record ``new`` as the checksum of applied ``file`` (whose row has ``old``) with an
        audit row, in one transaction; False (nothing changed) when the row is no longer an
        applied one with checksum ``old``."""
        project_id = self.project_id(project)
        with self.driver.transaction("accept a migration's new checksum") as db:
            updated = db.execute(
                "UPDATE {s}migration_history SET migration_checksum = ?"
                " WHERE project_id = ? AND target_name = ? AND migration_file = ?"
                " AND migration_checksum = ? AND status = 'success'",
                (new, project_id, target, file, old),
            )
            if not _changed(updated):
                return False
            db.execute(
                _INSERT_AUDIT,
                (project_id, target, file, "accept-checksum", old, new, reason, who,
                 self.driver.time_param(utcnow())),
            )  # fmt: skip
        return True

    def baseline(
        self, project: str, target: str, records: list[MigrationRecord], *, reason: str | None
    ) -> None:
        """Insert ``records`` as history rows (never replacing one) with an audit row each,
        all in one transaction: every file is baselined, or none (StoreError)."""
        project_id = self.project_id(project)
        now = self.driver.time_param(utcnow())
        history: list[Any] = []
        audit: list[Any] = []
        for r in records:
            applied_at = self.driver.time_param(r.applied_at)
            history.append((project_id, target, r.file, r.checksum, applied_at, r.applied_by,
                            r.execution_time_ms, r.status, r.error_message))  # fmt: skip
            audit.append((project_id, target, r.file, "baseline", None, r.checksum, reason,
                          r.applied_by or "", now))  # fmt: skip
        with self.driver.transaction("record a baseline") as db:
            db.executemany(_INSERT_MIGRATION, history)
            db.executemany(_INSERT_AUDIT, audit)

    def mark_applied(
        self,
        project: str,
        target: str,
        record: MigrationRecord,
        *,
        recorded: bool,
        reason: str | None,
    ) -> None:
        """``migration mark-applied``: ``record`` as the file's history row (unless
        ``recorded``: the history has it already and only the target's ledger lacked it),
        with an audit row naming who, when and why, in one transaction."""
        project_id = self.project_id(project)
        with self.driver.transaction("mark a migration as applied") as db:
            if not recorded:
                applied_at = self.driver.time_param(record.applied_at)
                db.execute(
                    UPSERT_MIGRATION,
                    (project_id, target, record.file, record.checksum, applied_at,
                     record.applied_by, None, "success", None),
                )  # fmt: skip
                db.execute(_DELETE_INTENT, (project_id, target, record.file))
            db.execute(
                _INSERT_AUDIT,
                (project_id, target, record.file, "mark-applied", None, record.checksum,
                 reason, record.applied_by or "", self.driver.time_param(utcnow())),
            )  # fmt: skip

    def audit(
        self,
        project: str,
        target: str,
        file: str,
        action: str,
        *,
        old: str | None,
        new: str,
        reason: str | None,
        who: str,
    ) -> None:
        """One audit row on its own (e.g. ``reapply``: a run applied ``file`` again because
        the target database lacked it)."""
        project_id = self.project_id(project)
        with self.driver.statement("write an audit row") as db:
            db.execute(
                _INSERT_AUDIT,
                (project_id, target, file, action, old, new, reason, who,
                 self.driver.time_param(utcnow())),
            )  # fmt: skip

    def migration_audit(
        self, project: str, target: str, file: str | None = None, limit: int | None = None
    ) -> list[AuditRecord]:
        """Audit rows of ``project`` + ``target`` (of one ``file`` if given), newest first.

        A store whose schema predates the audit table has none: empty."""
        sql = (
            "SELECT migration_file, action, old_checksum, new_checksum, reason, who, at"
            f" FROM {{s}}migration_audit WHERE {_PROJECT_OF} AND target_name = ?"
        )
        params: tuple[Any, ...] = (project, target)
        if file is not None:
            sql, params = sql + " AND migration_file = ?", (*params, file)
        sql, params = _limited(sql + " ORDER BY at DESC, id DESC", params, limit)
        with self.driver.reader("read the migration audit") as db:
            rows = db.execute(sql, params).fetchall()
        return [
            AuditRecord(f, action, old, new, reason, who, self.driver.time_value(at))
            for f, action, old, new, reason, who, at in rows
        ]
