"""The ledger: what the target database itself says it has applied (DESIGN §5, "the truth").

The built-in executor inserts one ledger row per migration *in the migration's own
transaction*, so schema change and ledger row commit together or not at all, whatever
happens to the runner (kill -9, a lost network, a store that is another database). The
store's ``migration_history`` is the team-wide record; it is reconciled from the ledger
when a deployment starts (:func:`missing_from_history`). This is how Flyway and dbmate stay
exact: the truth lives with the schema.

PostgreSQL keeps it in ``pytest_deploy.applied`` (its own schema), SQLite in the table
``pytest_deploy_applied``. The ledger's primary key refuses a second apply of one file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .executor import ConnectError, Sql, SqlExecutor

PG_TABLE = "pytest_deploy.applied"
SQLITE_TABLE = "pytest_deploy_applied"

_PG_CREATE = (
    "CREATE SCHEMA IF NOT EXISTS pytest_deploy;"
    f"CREATE TABLE IF NOT EXISTS {PG_TABLE} ("
    " project text NOT NULL, target text NOT NULL, file text NOT NULL,"
    " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),"
    " applied_by text, PRIMARY KEY (project, target, file))"
)
_SQLITE_CREATE = (
    f"CREATE TABLE IF NOT EXISTS {SQLITE_TABLE} ("
    " project TEXT NOT NULL, target TEXT NOT NULL, file TEXT NOT NULL,"
    " checksum TEXT NOT NULL, applied_at TEXT NOT NULL, applied_by TEXT,"
    " PRIMARY KEY (project, target, file))"
)


@dataclass(frozen=True)
class LedgerRow:
    """One migration the target database has committed."""

    file: str
    checksum: str
    applied_at: datetime
    applied_by: str | None


class Ledger:
    """The ledger of one project and target in the database an executor is connected to."""

    def __init__(self, executor: SqlExecutor, project: str, target: str) -> None:
        self.executor = executor
        self.project = project
        self.target = target
        self._ready = False

    @property
    def table(self) -> str:
        return PG_TABLE if self.executor.kind == "postgresql" else SQLITE_TABLE

    def ensure(self) -> None:
        """Create the ledger if it is missing (once per executor; never in a dry run)."""
        if self._ready:
            return
        conn = self.executor.connection
        try:
            if self.executor.kind == "postgresql":
                if not self._pg_exists():
                    conn.execute(_PG_CREATE)
            else:
                conn.execute(_SQLITE_CREATE)
        except (sqlite3.Error, _pg_error()) as err:
            raise ConnectError(
                f"cannot create the ledger table {self.table} in the target database: "
                f"{' '.join(str(err).split())}. pytest-deploy records there, in each"
                " migration's own transaction, which files the database has applied. Grant the"
                " deploying user CREATE on the database once, or create it as an owner:"
                f" {_PG_CREATE if self.executor.kind == 'postgresql' else _SQLITE_CREATE}"
            ) from None
        self._ready = True

    def _pg_exists(self) -> bool:
        row = self.executor.connection.execute(f"SELECT to_regclass('{PG_TABLE}')").fetchone()
        return row is not None and row[0] is not None

    def rows(self) -> dict[str, LedgerRow]:
        """Every ledger row of this project and target; empty when there is no ledger."""
        conn = self.executor.connection
        if self.executor.kind == "postgresql":
            if not self._pg_exists():
                return {}
            self._ready = True  # it exists: ensure() need not look again
            cursor = conn.execute(
                f"SELECT file, checksum, applied_at, applied_by FROM {PG_TABLE}"
                " WHERE project = %s AND target = %s",
                (self.project, self.target),
            )
        else:
            if not self.exists():
                return {}
            cursor = conn.execute(
                f"SELECT file, checksum, applied_at, applied_by FROM {SQLITE_TABLE}"
                " WHERE project = ? AND target = ?",
                (self.project, self.target),
            )
        return {row[0]: LedgerRow(row[0], row[1], _utc(row[2]), row[3]) for row in cursor}

    def exists(self) -> bool:
        """Whether the target database has a ledger table (of any project)."""
        if self.executor.kind == "postgresql":
            return self._pg_exists()
        found = self.executor.connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (SQLITE_TABLE,)
        ).fetchone()
        return found is not None

    def accept_checksum(self, file: str, checksum: str) -> bool:
        """Record ``checksum`` as ``file``'s in its ledger row (``migration accept-checksum``);
        whether there was a row. The history and the ledger must agree: the ledger's checksum
        is what a history row recovered from it (:func:`missing_from_history`) would carry,
        and an old one there would bring the accepted drift back."""
        if not self.exists():
            return False
        mark = "%s" if self.executor.kind == "postgresql" else "?"
        cursor = self.executor.connection.execute(
            f"UPDATE {self.table} SET checksum = {mark}"
            f" WHERE project = {mark} AND target = {mark} AND file = {mark}",
            (checksum, self.project, self.target, file),
        )
        return bool(cursor.rowcount > 0)

    def guard(self, file: str, checksum: str, applied_by: str) -> Sql:
        """The ledger row's INSERT, run first in the migration's transaction."""
        if self.executor.kind == "postgresql":
            return (
                f"INSERT INTO {PG_TABLE} (project, target, file, checksum, applied_by)"
                " VALUES ({}, {}, {}, {}, {})",
                (self.project, self.target, file, checksum, applied_by),
            )
        return (
            f"INSERT INTO {SQLITE_TABLE} (project, target, file, checksum, applied_at,"
            " applied_by) VALUES ({}, {}, {}, {}, {}, {})",
            (
                self.project,
                self.target,
                file,
                checksum,
                datetime.now(timezone.utc).isoformat(),
                applied_by,
            ),
        )

    def forget(self, file: str) -> Sql:
        """The ledger row's DELETE, run in a rollback's transaction: the file is no longer
        applied, so a later deployment may apply it again."""
        return (
            f"DELETE FROM {self.table} WHERE project = {{}} AND target = {{}} AND file = {{}}",
            (self.project, self.target, file),
        )


def missing_from_history(
    ledger: Mapping[str, LedgerRow], history: Mapping[str, Any]
) -> list[LedgerRow]:
    """Ledger rows whose file the history does not record as applied.

    ``history`` maps file → a record with ``status`` and ``checksum`` (the store's rows).
    These are migrations a run committed and then died before writing its history row.
    """
    out = []
    for file, row in sorted(ledger.items()):
        record = history.get(file)
        if record is None or record.status != "success":
            out.append(row)
    return out


def _utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    utc: datetime = value.astimezone(timezone.utc)
    return utc


def _pg_error() -> type[Exception]:
    import psycopg

    return psycopg.Error
