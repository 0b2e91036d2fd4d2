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

import secrets
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from deploy_plugin.db import sqlite_transaction
from deploy_plugin.plan import is_repeatable

from .books import Sql
from .errors import ConnectError

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


#: The ledger rows of one project and target (``mark``: the driver's placeholder).
SELECT_ROWS = (
    "SELECT file, checksum, applied_at, applied_by FROM {table}"
    " WHERE project = {mark} AND target = {mark}"
)


@dataclass(frozen=True)
class LedgerRow:
    """One migration the target database has committed."""

    file: str
    checksum: str
    applied_at: datetime
    applied_by: str | None


class Connected(Protocol):
    """What the ledger needs of an executor (:class:`.executor.SqlExecutor`)."""

    kind: str  # "postgresql" | "sqlite"

    @property
    def connection(self) -> Any:
        """The executor's connection (psycopg or sqlite3)."""


class Ledger:
    """The ledger of one project and target in the database an executor is connected to."""

    def __init__(self, executor: Connected, project: str, target: str) -> None:
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
                SELECT_ROWS.format(table=PG_TABLE, mark="%s"),
                (self.project, self.target),
            )
        else:
            if not self.exists():
                return {}
            cursor = conn.execute(
                SELECT_ROWS.format(table=SQLITE_TABLE, mark="?"),
                (self.project, self.target),
            )
        return rows_of(cursor)

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

    def mark(self, rows: list[tuple[str, str]], applied_by: str) -> list[str]:
        """Record ``(file, checksum)`` rows as applied without running them (``migration
        mark-applied`` / ``baseline`` of a database that already has their changes), in one
        transaction, creating the ledger if needed; the files it did not hold before."""
        self.ensure()
        have = self.rows()
        new = [(f, c) for f, c in rows if f not in have]
        if not new:
            return []
        conn = self.executor.connection
        now = datetime.now(timezone.utc)
        if self.executor.kind == "postgresql":
            with conn.transaction():
                with conn.cursor() as cursor:
                    cursor.executemany(
                        f"INSERT INTO {PG_TABLE} (project, target, file, checksum, applied_at,"
                        " applied_by) VALUES (%s, %s, %s, %s, %s, %s)"
                        " ON CONFLICT DO NOTHING",
                        [(self.project, self.target, f, c, now, applied_by) for f, c in new],
                    )
        else:
            with sqlite_transaction(conn):
                conn.executemany(
                    f"INSERT OR IGNORE INTO {SQLITE_TABLE} (project, target, file, checksum,"
                    " applied_at, applied_by) VALUES (?, ?, ?, ?, ?, ?)",
                    [(self.project, self.target, f, c, now.isoformat(), applied_by)
                     for f, c in new],
                )  # fmt: skip
        return [f for f, _ in new]

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

    def clear(self, file: str, checksum: str) -> Sql:
        """The DELETE of a repeatable migration's ledger row of another checksum, run before
        its guard in the migration's transaction: a changed repeatable runs again, and its
        row then carries the checksum applied last (the same checksum is still refused)."""
        return (
            f"DELETE FROM {self.table} WHERE project = {{}} AND target = {{}} AND file = {{}}"
            " AND checksum <> {}",
            (self.project, self.target, file, checksum),
        )

    def forget(self, file: str) -> Sql:
        """The ledger row's DELETE, run in a rollback's transaction: the file is no longer
        applied, so a later deployment may apply it again."""
        return (
            f"DELETE FROM {self.table} WHERE project = {{}} AND target = {{}} AND file = {{}}",
            (self.project, self.target, file),
        )


def rows_of(cursor: Any) -> dict[str, LedgerRow]:
    return {row[0]: LedgerRow(row[0], row[1], _utc(row[2]), row[3]) for row in cursor}


def _dollar_quoting(*values: str) -> tuple[Callable[[str], str], str]:
    """(a function quoting one of ``values`` as a dollar-quoted literal, a tag for a DO
    body): random tags that no value holds, so the SQL is right whatever the server's
    standard_conforming_strings and whatever a file name holds."""
    while True:
        tag, body = "pd" + secrets.token_hex(6), "pdb" + secrets.token_hex(6)
        if not any(t in v for v in values for t in (tag, body)):
            break

    def literal(value: str) -> str:
        return f"${tag}${value}${tag}$"

    return literal, body


def psql_guard_sql(project: str, target: str, file: str, checksum: str, applied_by: str) -> str:
    """The ledger row of a file psql applies, as SQL run first in psql's own ``-1``
    transaction (before the file): the row commits with the file or not at all, so after a
    SIGTERM or kill -9 the database tells whether the file went through. Creates the ledger
    when missing (serialised by a transaction-level advisory lock: files applied in
    parallel may both find it missing); refuses a file the ledger already records (a
    repeatable migration's row of another checksum is deleted first: it runs again)."""
    literal, body = _dollar_quoting(project, target, file, checksum, applied_by)

    where = (
        f"project = {literal(project)} AND target = {literal(target)} AND file = {literal(file)}"
    )
    clear = (
        f"DELETE FROM {PG_TABLE} WHERE {where} AND checksum <> {literal(checksum)};\n"
        if is_repeatable(file)
        else ""
    )
    return (
        "-- pytest-deploy: the ledger row of this migration, in psql's -1 transaction\n"
        f"DO ${body}$ BEGIN\n"
        f"  IF to_regclass('{PG_TABLE}') IS NULL THEN\n"
        "    PERFORM pg_advisory_xact_lock(7306119017446921203);\n"
        f"    {_PG_CREATE.replace(';', '; ')};\n"
        "  END IF;\n"
        f"END ${body}$;\n"
        f"{clear}"
        f"DO ${body}$ BEGIN IF EXISTS (SELECT 1 FROM {PG_TABLE} WHERE {where}) THEN\n"
        f"  RAISE EXCEPTION 'pytest-deploy: the ledger {PG_TABLE} of this database already"
        f" records % as applied; it is not run again', {literal(file)};\n"
        f"END IF; END ${body}$;\n"
        f"INSERT INTO {PG_TABLE} (project, target, file, checksum, applied_by) VALUES"
        f" ({literal(project)}, {literal(target)}, {literal(file)}, {literal(checksum)},"
        f" {literal(applied_by)});\n"
    )


def psql_forget_sql(project: str, target: str, file: str) -> str:
    """The removal of ``file``'s ledger row, run first in the psql ``-1`` transaction of its
    down (a rollback through a psql ``deploy_command``): the row goes with the down or not
    at all, so a rolled-back file is pending again, never skipped as applied."""
    literal, body = _dollar_quoting(project, target, file)

    return (
        "-- pytest-deploy: this rollback removes the migration's ledger row, in psql's -1"
        " transaction\n"
        f"DO ${body}$ BEGIN IF to_regclass('{PG_TABLE}') IS NOT NULL THEN\n"
        f"  DELETE FROM {PG_TABLE} WHERE project = {literal(project)}"
        f" AND target = {literal(target)} AND file = {literal(file)};\n"
        f"END IF; END ${body}$;\n"
    )


def missing_from_history(
    ledger: Mapping[str, LedgerRow], history: Mapping[str, Any]
) -> list[LedgerRow]:
    """Ledger rows whose file the history does not record as applied.

    ``history`` maps file → a record with ``status`` and ``checksum`` (the store's rows).
    These are migrations a run committed and then died before writing its history row (for
    a repeatable migration, also a row whose checksum the history does not have).
    """
    out = []
    for file, row in sorted(ledger.items()):
        record = history.get(file)
        if record is None or record.status != "success":
            out.append(row)
        elif is_repeatable(file) and record.checksum != row.checksum:
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
    # deferred: +196 modules, 120 ms (psycopg, psycopg.errors, typing_extensions, …)
    import psycopg

    return psycopg.Error
