"""Built-in migration executor: applies a tracked group's ``.sql`` files without a shell.

One connection serves every file of a deployment. Each file runs in its own transaction
(unless it is marked ``-- deploy:no-transaction``) together with the caller's bookkeeping
statements (:class:`Bookkeeping`: a *guard* run first, *records* run after the file), so
the ledger and history rows commit with the migration or not at all.

* PostgreSQL (psycopg 3): the whole file goes to the server as ONE simple-protocol query,
  ``BEGIN;<guard>;<file>;RESET ALL;<records>;COMMIT``: one round trip per migration, and a
  client killed after sending it can never leave the schema committed without its rows.
  The server parses it in full before running anything, so a syntax error anywhere applies
  nothing. The failing line comes from the server's error position; errors without one
  (constraint violations, RAISE, ...) are placed on the failing statement, found by counting
  the statements that completed before it.
* SQLite (sqlite3): the file is split with ``sqlite3.complete_statement`` and run statement
  by statement inside ``BEGIN IMMEDIATE``/``COMMIT`` (``executescript`` would commit on its own).

A file's own COMMIT/ROLLBACK would end the migration's transaction half way, so it is
refused before anything runs; a file wrapped whole in ``BEGIN; ... COMMIT;`` is applied as
if the wrapper were not there (it asks for what the executor does anyway). On PostgreSQL
a ``COPY ... FROM STDIN`` / ``TO STDOUT`` is refused before anything runs too (there is no
client end to stream rows). Both are found by PostgreSQL's own lexer (see ``statements``).
"""

from __future__ import annotations

import sqlite3
import string
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from deploy_plugin.secrets import redact_url

from .errors import AlreadyApplied, ConnectError, MigrationError
from .statements import (
    _line_at,
    _one_paragraph,
    _pg_statements,
    _sqlite_statements,
    no_transaction,
    pg_checked,
    sqlite_checked,
)


class _Elapsed:
    """Stands for the migration's own execution time (ms) in a bookkeeping statement."""

    def __repr__(self) -> str:
        return "ELAPSED_MS"


#: A parameter of a bookkeeping statement: the file's execution time in ms, computed by
#: the server on PostgreSQL (no extra round trip), measured by the client on SQLite.
ELAPSED_MS: Any = _Elapsed()

#: One bookkeeping statement: SQL text with ``{}`` placeholders, and their values.
Sql = tuple[str, tuple[Any, ...]]


@dataclass(frozen=True)
class Bookkeeping:
    """Statements that commit in the migration's transaction (DESIGN §5, "the truth").

    ``guard`` runs first (e.g. inserting the ledger row, whose unique key refuses a second
    apply of the same file); when it fails the file is not run and :class:`AlreadyApplied`
    or :class:`MigrationError` is raised. ``records`` run after the file, before COMMIT.
    """

    guard: Sql | None = None
    records: Sequence[Sql] = field(default_factory=tuple)


_BEGIN = "BEGIN;"  # no newline: the file's line numbers stay as they are
# the file's execution time, as the server sees it: now() is the transaction's start
_PG_ELAPSED = "round(extract(epoch FROM clock_timestamp() - now()) * 1000)::integer"
_NO_TRANSACTION_NOTE = (
    "The file is marked -- deploy:no-transaction, so the statements before this one stay applied"
)
# A COPY with the client's end is refused before sending (statements.pg_checked); should
# the server still start one (e.g. with standard_conforming_strings off, which lexes text
# otherwise), the connection is closed mid-file: a COPY ... TO STDOUT does not wait for
# the client, so the server may have gone on and committed the file with its ledger row.
_COPY_MESSAGE = (
    "the server started a COPY with the client's end (FROM STDIN / TO STDOUT), which the"
    " built-in executor has none of, so it closed the connection; the server may have"
    " committed the file all the same. Check the target's ledger (pytest_deploy.applied)"
    " before applying it again, and replace the COPY by one with a file on the server or"
    " by INSERT"
)


class SqlExecutor:
    """Applies migration files to one database over one reused connection.

    ``url`` is ``postgresql://...`` / ``postgres://...`` (psycopg 3) or ``sqlite:///PATH``
    (relative to ``base``, default the current directory) / ``sqlite:////ABS/PATH``.
    Connects at once; raises :class:`ConnectError`. ``source`` names where the URL came
    from (e.g. ``"DATABASE_URL"``) for messages. ``notices`` holds the server's NOTICE and
    WARNING lines of the last :meth:`apply` (PostgreSQL), for the step's report.
    """

    kind: str
    connection: Any

    def __init__(self, url: str, *, base: Path | None = None, source: str | None = None):
        self.url, self.base, self.source = url, base, source
        self.notices: list[str] = []
        self._literals: tuple[Any, Any] | None = None  # (connection, its psycopg Transformer)
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme.split("+")[0] in ("postgresql", "postgres"):
            self.kind = "postgresql"
            self._pg_connect()
        elif scheme == "sqlite":
            self.kind = "sqlite"
            self._sqlite_connect()
        else:
            raise self._connect_error(
                f"unsupported URL scheme {scheme or url!r}; the built-in executor takes "
                "postgresql://USER:PASSWORD@HOST:PORT/DB or sqlite:///PATH"
            )

    # -- connecting ------------------------------------------------------------------

    def _connect_error(self, reason: str, fix: str = "") -> ConnectError:
        origin = f" (from {self.source})" if self.source else ""
        reason = redact_url(_one_paragraph(reason)).rstrip(".")
        if fix and not reason.endswith("?"):
            reason += "."
        return ConnectError(f"cannot connect to {redact_url(self.url)}{origin}: {reason}{fix}")

    def _pg_connect(self) -> None:
        import psycopg

        from deploy_plugin.db import connection_params, pg_connect

        try:
            password = str(connection_params(self.url).get("password") or "")
        except psycopg.Error as err:
            raise self._connect_error(f"malformed URL: {err}") from None
        try:
            self.connection = pg_connect(self.url)
        except psycopg.Error as err:
            reason = str(err).replace(password, "***") if len(password) >= 4 else str(err)
            raise self._connect_error(
                reason,
                " Check that the server is running and reachable at that host and port, "
                "and that the URL's user, password and database are right.",
            ) from None
        self.connection.add_notice_handler(self._on_notice)

    def _sqlite_connect(self) -> None:
        rest = self.url.split("://", 1)[1].split("?", 1)[0]
        if not rest.startswith("/") or rest == "/":
            raise self._connect_error(
                "a SQLite URL is sqlite:///RELATIVE/PATH or sqlite:////ABSOLUTE/PATH"
            )
        name = rest[1:]
        if name == ":memory:":
            from .ledger import url_problem

            raise self._connect_error(url_problem(self.url) or "an in-memory database")
        path = Path(self.base or Path.cwd()) / name
        try:
            # isolation_level=None: the executor issues BEGIN/COMMIT itself.
            self.connection = sqlite3.connect(path, isolation_level=None, timeout=30)
        except sqlite3.Error as err:
            raise self._connect_error(
                f"{err} ({path})", " Check that the folder exists and is writable."
            ) from None

    def close(self) -> None:
        """Close the connection (an open transaction is rolled back by the database)."""
        self.connection.close()

    def __enter__(self) -> SqlExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- applying --------------------------------------------------------------------

    def apply(
        self, path: Path, rel: str, *, books: Bookkeeping | None = None, data: bytes | None = None
    ) -> int:
        """Apply one migration file in one transaction; return its execution time in ms.

        ``books`` are statements that commit or roll back with the file (see
        :class:`Bookkeeping`). On a failing statement everything of the file (and of the
        books) is rolled back and :class:`MigrationError` is raised. A file marked
        ``-- deploy:no-transaction`` runs statement by statement in autocommit (needed for
        e.g. CREATE INDEX CONCURRENTLY): it is NOT atomic, statements before a failing one
        stay applied, and the books run in their own transaction after the last statement.
        ``data``: the SQL to run instead of the file's bytes (one section of it, with the
        file's line numbers), e.g. a dbmate file's up or down section.
        """
        try:
            raw = path.read_bytes() if data is None else data
        except OSError as err:
            raise MigrationError(
                rel, None, f"cannot read the file: {err.strerror or err}; check its permissions"
            ) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            line = raw.count(b"\n", 0, err.start) + 1
            raise MigrationError(
                rel, line, "the file is not valid UTF-8; save it as UTF-8"
            ) from None
        text = text.removeprefix("\ufeff")
        if "\0" in text:
            raise MigrationError(
                rel,
                _line_at(text, text.index("\0")),
                "the file contains a NUL byte, which no SQL text may hold (the database would"
                " see the file cut short there); remove it. Nothing was applied",
            )
        books = books or Bookkeeping()
        self.notices = []
        atomic = not no_transaction(text)
        if self.kind == "postgresql":
            text = pg_checked(text, rel, atomic)  # COPY to/from the client, own COMMIT
        elif atomic:
            text = sqlite_checked(text, rel)
        apply = self._apply_pg if self.kind == "postgresql" else self._apply_sqlite
        return apply(text, rel, books, atomic, time.perf_counter())

    # PostgreSQL

    def _on_notice(self, diag: Any) -> None:
        # 25001/25P01 "already/no transaction in progress" come from wrapping a file that
        # has its own BEGIN/COMMIT in ours: the file still applies, as with psql -1.
        if diag.sqlstate not in ("25001", "25P01"):
            self.notices.append(f"{diag.severity}: {diag.message_primary}")

    def _run(self, sql: str, rel: str) -> list[Any]:
        """Send ``sql`` as one simple-protocol query; return every result, errors included.

        Not ``cursor.execute``: it raises on the first error and drops the results of the
        statements that completed before it, which locate an error without a position.
        ``Connection.wait`` keeps psycopg's Ctrl-C handling (it cancels the query).
        """
        import psycopg
        from psycopg.generators import execute

        pgconn = self.connection.pgconn
        try:
            pgconn.send_query(sql.encode(self.connection.info.encoding))
            results: list[Any] = self.connection.wait(execute(pgconn))
            return results
        except psycopg.Error as err:  # the connection itself failed, not a statement
            raise MigrationError(
                rel, None, f"lost the connection to the database: {_one_paragraph(str(err))}"
            ) from None

    def _pg_rollback(self, rel: str) -> None:
        from psycopg.pq import TransactionStatus

        if self.connection.closed:
            return
        if self.connection.pgconn.transaction_status != TransactionStatus.IDLE:
            try:
                self._run("ROLLBACK", rel)
            except MigrationError:
                pass  # connection gone: the server rolls back; the next apply reconnects

    def _diag(self, result: Any) -> tuple[str, str | None, int | None]:
        """(message with DETAIL/HINT, SQLSTATE, 1-based statement position) of an error."""
        from psycopg.pq import DiagnosticField as F

        enc = self.connection.info.encoding

        def field(name: Any) -> str:
            value = result.error_field(name)
            return _one_paragraph(value.decode(enc, "replace")) if value else ""

        message = field(F.MESSAGE_PRIMARY) or "unknown error"
        extras = [
            f"{k}: {v}"
            for k, v in (("DETAIL", field(F.MESSAGE_DETAIL)), ("HINT", field(F.MESSAGE_HINT)))
            if v
        ]
        if extras:
            message = f"{message}. {' '.join(extras)}"
        position = field(F.STATEMENT_POSITION)
        return message, field(F.SQLSTATE) or None, int(position) if position else None

    def _render(self, statement: Sql) -> str:
        """A bookkeeping statement as literal SQL (values quoted by psycopg), one line.

        What ``sql.SQL(text).format(*map(sql.Literal, params)).as_string(conn)`` makes,
        with the template split once and one adapter context per connection (issue 14:
        composing each time was 0.2 ms of a migration's client time)."""
        text, params = statement
        pieces = _template(text)
        if pieces is None or len(pieces) != len(params) + 1:
            return self._render_composed(statement)  # a template psycopg must read itself
        if self._literals is None or self._literals[0] is not self.connection:
            from psycopg.adapt import Transformer

            self._literals = (self.connection, Transformer.from_context(self.connection))
        literal, encoding = self._literals[1].as_literal, self.connection.info.encoding
        out = [pieces[0]]
        for value, piece in zip(params, pieces[1:], strict=True):
            out.append(_PG_ELAPSED if value is ELAPSED_MS else literal(value).decode(encoding))
            out.append(piece)
        return "".join(out)

    def _render_composed(self, statement: Sql) -> str:
        from psycopg import sql

        text, params = statement
        values = [
            sql.SQL(_PG_ELAPSED) if value is ELAPSED_MS else sql.Literal(value) for value in params
        ]
        return sql.SQL(text).format(*values).as_string(self.connection)

    def _apply_pg(
        self, text: str, rel: str, books: Bookkeeping, atomic: bool, started: float
    ) -> int:
        if self.connection.closed:
            self._pg_connect()  # closed after a lost connection or an unsupported COPY
        self._pg_rollback(rel)  # left over from an interrupted apply
        try:
            if atomic:
                self._pg_file(text, rel, books)
            else:
                self._pg_one_by_one(text, rel)
                statements = ([books.guard] if books.guard else []) + list(books.records)
                if statements:
                    self._pg_books_alone(rel, statements, _ms(started))
        except BaseException:
            self._pg_rollback(rel)
            raise
        return _ms(started)

    def _pg_books_alone(self, rel: str, statements: list[Sql], elapsed: int) -> None:
        """The books of a ``-- deploy:no-transaction`` file, in a transaction of their own."""
        body = ";".join(
            self._render((text, tuple(elapsed if v is ELAPSED_MS else v for v in params)))
            for text, params in statements
        )
        last = self._run(f"BEGIN;{body};COMMIT", rel)[-1]
        if last.status not in _ok_statuses():
            message, sqlstate, _ = self._diag(last)
            raise MigrationError(
                rel,
                None,
                f"recording the migration failed: {message}",
                sqlstate,
                _NO_TRANSACTION_NOTE.replace("before this one", "of the file"),
            )

    def _pg_file(self, text: str, rel: str, books: Bookkeeping, *, prefix: str = "") -> None:
        """Run guard, file and records as one query inside BEGIN ... COMMIT.

        Raise MigrationError (AlreadyApplied for a refusing guard) for a failure; the server
        skips the rest of the query after an error, so nothing of it commits then.
        """
        from psycopg.pq import ExecStatus

        guards = 0
        if books.guard is not None:
            prefix += self._render(books.guard).replace("\n", " ") + ";"
            guards = 1
        head = _BEGIN + prefix  # one line: the file's line numbers stay as they are
        tail = "".join(";" + self._render(r) for r in books.records)
        # RESET ALL: a file's SET (search_path, role, ...) must not leak into the next file.
        results = self._run(head + text + "\n;RESET ALL" + tail + ";COMMIT", rel)
        last = results[-1]  # the server stops at an error, psycopg at a COPY
        if last.status in _ok_statuses():
            if last.command_status == b"ROLLBACK":
                raise MigrationError(
                    rel, None, "the transaction was rolled back at COMMIT (a failed statement?)"
                )
            return
        bad = len(results) - 1  # = statements before it, counting our BEGIN and guard
        if 1 <= bad <= guards:  # (bad == 0: the server refused to parse the query)
            message, sqlstate, _ = self._diag(last)
            if sqlstate == "23505":
                raise AlreadyApplied(
                    rel,
                    None,
                    "the target database's ledger (pytest_deploy.applied) already records this"
                    " file as applied, so it was not run again; the history is brought up to"
                    " date from the ledger when the next deployment starts",
                )
            raise MigrationError(rel, None, f"recording the migration failed: {message}", sqlstate)
        index = bad - 1 - guards  # the failing statement among the file's own
        if last.status != ExecStatus.FATAL_ERROR:
            self.connection.close()  # stuck in COPY mode; the server rolls back
            stmts = _pg_statements(text)
            line = stmts[index].line if index < len(stmts) else None
            raise MigrationError(rel, line, _COPY_MESSAGE)
        message, sqlstate, position = self._diag(last)
        if position and position - 1 >= len(head) + len(text):
            raise MigrationError(rel, None, f"recording the migration: {message}", sqlstate)
        if position and position > len(head):
            line = _line_at(text, position - 1 - len(head))
        elif index < len(stmts := _pg_statements(text)):
            line = stmts[index].line
        else:
            line = None
            if results[bad - 1].command_status == b"RESET":
                where = "recording the migration" if tail else "at COMMIT"
                message = f"{where}: {message}"
            else:
                message = f"at COMMIT: {message}"  # e.g. a deferred constraint
        raise MigrationError(rel, line, message, sqlstate)

    def _pg_one_by_one(self, text: str, rel: str) -> None:
        """``-- deploy:no-transaction``: each statement on its own, in autocommit."""
        from psycopg.pq import ExecStatus, TransactionStatus

        for index, stmt in enumerate(_pg_statements(text)):
            last = self._run(text[stmt.start : stmt.end], rel)[-1]
            if last.status in _ok_statuses():
                continue
            note = _NO_TRANSACTION_NOTE if index else ""
            if last.status != ExecStatus.FATAL_ERROR:
                self.connection.close()  # stuck in COPY mode
                raise MigrationError(rel, stmt.line, _COPY_MESSAGE, None, note)
            message, sqlstate, position = self._diag(last)
            line = _line_at(text, stmt.start + position - 1) if position else stmt.line
            raise MigrationError(rel, line, message, sqlstate, note)
        self._run("RESET ALL", rel)
        if self.connection.pgconn.transaction_status != TransactionStatus.IDLE:
            raise MigrationError(
                rel,
                None,
                "the file leaves a transaction open (BEGIN without COMMIT); it was rolled back",
                None,
                _NO_TRANSACTION_NOTE,
            )

    # SQLite

    def _apply_sqlite(
        self, text: str, rel: str, books: Bookkeeping, atomic: bool, started: float
    ) -> int:
        conn: sqlite3.Connection = self.connection
        if conn.in_transaction:
            conn.execute("ROLLBACK")  # left over from an interrupted apply
        try:
            if atomic:
                conn.execute("BEGIN IMMEDIATE")  # take the write lock now, not mid-file
        except sqlite3.Error as err:  # e.g. still locked after the 30 s busy timeout
            raise _sqlite_error(rel, None, err, prefix="at BEGIN: ") from None
        try:
            if atomic and books.guard is not None:
                self._sqlite_books(rel, [books.guard], started, guard=True)
            for index, stmt in enumerate(_sqlite_statements(text)):
                try:
                    conn.execute(text[stmt.start : stmt.end]).fetchall()  # RETURNING steps rows
                except sqlite3.Error as err:
                    note = _NO_TRANSACTION_NOTE if index and not atomic else ""
                    raise _sqlite_error(rel, stmt.line, err, note=note) from None
            if not atomic:
                conn.execute("BEGIN IMMEDIATE")
                if books.guard is not None:
                    self._sqlite_books(rel, [books.guard], started, guard=True)
            self._sqlite_books(rel, list(books.records), started)
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as err:
                raise _sqlite_error(rel, None, err, prefix="at COMMIT: ") from None
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return _ms(started)

    def _sqlite_books(
        self, rel: str, statements: list[Sql], started: float, *, guard: bool = False
    ) -> None:
        for text, params in statements:
            values = tuple(_ms(started) if v is ELAPSED_MS else v for v in params)
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


@lru_cache(maxsize=64)
def _template(text: str) -> tuple[str, ...] | None:
    """The literal pieces around the ``{}`` fields of a bookkeeping template (``{{`` and
    ``}}`` read as psycopg's ``sql.SQL.format`` reads them), or None when it has other
    fields (numbered, named, with a format)."""
    pieces = [""]
    for literal, name, spec, conversion in string.Formatter().parse(text):
        pieces[-1] += literal
        if name is None:
            continue  # text only (the end, or around an escaped brace)
        if name or spec or conversion:
            return None
        pieces.append("")
    return tuple(pieces)


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


@lru_cache(maxsize=1)
def _ok_statuses() -> tuple[Any, ...]:
    from psycopg.pq import ExecStatus

    return (ExecStatus.COMMAND_OK, ExecStatus.TUPLES_OK, ExecStatus.EMPTY_QUERY)


__all__ = [
    "ELAPSED_MS",
    "AlreadyApplied",
    "Bookkeeping",
    "ConnectError",
    "MigrationError",
    "Sql",
    "SqlExecutor",
    "no_transaction",
]
