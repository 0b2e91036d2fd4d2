"""The built-in executor's SQLite side: statement by statement inside ``BEGIN IMMEDIATE``.

The file is split with ``sqlite3.complete_statement`` (``executescript`` would commit on
its own); the guard runs first and the records last, in the same transaction.
"""

from __future__ import annotations

import sqlite3

from .books import ELAPSED_MS, NO_TRANSACTION_NOTE, Bookkeeping, Sql, ms_since
from .errors import AlreadyApplied, MigrationError
from .statements import _sqlite_statements


class SQLiteApplier:
    """Applies checked migration text over one sqlite3 connection (autocommit)."""

    kind = "sqlite"

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.notices: list[str] = []  # SQLite has none

    def apply(self, text: str, rel: str, books: Bookkeeping, atomic: bool, started: float) -> int:
        conn: sqlite3.Connection = self.connection
        if conn.in_transaction:
            conn.execute("ROLLBACK")  # left over from an interrupted apply
        try:
            if atomic:
                conn.execute("BEGIN IMMEDIATE")  # take the write lock now, not mid-file
        except sqlite3.Error as err:  # e.g. still locked after the 30 s busy timeout
            raise _sqlite_error(rel, None, err, prefix="at BEGIN: ") from None
        try:
            if atomic:
                self._books(rel, books.guards(), started, guard=True)
            for index, stmt in enumerate(_sqlite_statements(text)):
                try:
                    conn.execute(text[stmt.start : stmt.end]).fetchall()  # RETURNING steps rows
                except sqlite3.Error as err:
                    note = NO_TRANSACTION_NOTE if index and not atomic else ""
                    raise _sqlite_error(rel, stmt.line, err, note=note) from None
            if not atomic:
                conn.execute("BEGIN IMMEDIATE")
                self._books(rel, books.guards(), started, guard=True)
            self._books(rel, list(books.records), started)
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as err:
                raise _sqlite_error(rel, None, err, prefix="at COMMIT: ") from None
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return ms_since(started)

    def _books(
        self, rel: str, statements: list[Sql], started: float, *, guard: bool = False
    ) -> None:
        for text, params in statements:
            values = tuple(ms_since(started) if v is ELAPSED_MS else v for v in params)
            try:
                self.connection.execute(text.replace("{}", "?"), values)
            except sqlite3.IntegrityError as err:
                if guard:
                    raise AlreadyApplied(
                        rel,
                        None,
                        "the target database's ledger (pytest_deploy_applied) already records"
                        " this file as applied, so it was not run again; the history is"
                        " brought up to date from the ledger when the next deployment starts",
                    ) from None
                raise _sqlite_error(rel, None, err, prefix="recording the migration: ") from None
            except sqlite3.Error as err:
                raise _sqlite_error(rel, None, err, prefix="recording the migration: ") from None


def _sqlite_error(
    rel: str, line: int | None, err: sqlite3.Error, *, note: str = "", prefix: str = ""
) -> MigrationError:
    name = getattr(err, "sqlite_errorname", None)  # Python 3.11+
    return MigrationError(rel, line, f"{prefix}{err}" + (f" ({name})" if name else ""), None, note)
