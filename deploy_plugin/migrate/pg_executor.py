"""The built-in executor's PostgreSQL side: a file, its guard and its records as ONE query.

``BEGIN;<guard>;<file>;RESET ALL;<records>;COMMIT`` goes to the server as one
simple-protocol query: one round trip per migration, and a client killed after sending it
can never leave the schema committed without its rows. The server parses it in full before
running anything, so a syntax error anywhere applies nothing. The failing line comes from
the server's error position; errors without one (constraint violations, RAISE, ...) are
placed on the failing statement, found by counting the statements that completed before it.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from .books import ELAPSED_MS, NO_TRANSACTION_NOTE, Bookkeeping, Sql, ms_since
from .errors import AlreadyApplied, MigrationError
from .statements import _line_at, _one_paragraph, _pg_statements, _pg_tokens

_BEGIN = "BEGIN;"  # no newline: the file's line numbers stay as they are
# the file's execution time, as the server sees it: now() is the transaction's start
_PG_ELAPSED = "round(extract(epoch FROM clock_timestamp() - now()) * 1000)::integer"
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


class PostgresApplier:
    """Applies checked migration text over one psycopg connection (reopened after it was
    lost or closed mid-COPY). ``notices``: the server's NOTICE and WARNING lines."""

    kind = "postgresql"

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        self.notices: list[str] = []
        self._literals: tuple[Any, Any] | None = None  # (connection, its psycopg Transformer)
        self.connection = self._open()

    def _open(self) -> Any:
        connection = self._connect()
        connection.add_notice_handler(self._on_notice)
        return connection

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
        # deferred: +205 modules, 117 ms (psycopg, asyncio.unix_events, psycopg.errors, …)
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

    def _rollback(self, rel: str) -> None:
        # deferred: +205 modules, 114 ms (psycopg, psycopg.errors, psycopg.pq.misc, …)
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
        # deferred: +205 modules, 116 ms (psycopg, psycopg.errors, psycopg_binary.pq, …)
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
            # deferred: +205 modules, 112 ms (psycopg, psycopg.errors, psycopg.types.datetime, …)
            from psycopg.adapt import Transformer

            self._literals = (self.connection, Transformer.from_context(self.connection))
        literal, encoding = self._literals[1].as_literal, self.connection.info.encoding
        out = [pieces[0]]
        for value, piece in zip(params, pieces[1:], strict=True):
            out.append(_PG_ELAPSED if value is ELAPSED_MS else literal(value).decode(encoding))
            out.append(piece)
        return "".join(out)

    def _render_composed(self, statement: Sql) -> str:
        # deferred: +205 modules, 161 ms (psycopg, psycopg.errors, psycopg_binary._psycopg, …)
        from psycopg import sql

        text, params = statement
        values = [
            sql.SQL(_PG_ELAPSED) if value is ELAPSED_MS else sql.Literal(value) for value in params
        ]
        return sql.SQL(text).format(*values).as_string(self.connection)

    def apply(
        self,
        text: str,
        rel: str,
        books: Bookkeeping,
        atomic: bool,
        started: float,
        settings: Mapping[str, str] | None = None,
    ) -> int:
        """Apply ``text``; ``settings`` (e.g. ``{"lock_timeout": "1s"}``, values checked by
        the config) hold for the file's own statements: ``SET LOCAL`` in its transaction,
        or for a no-transaction file ``SET`` before it and ``RESET ALL`` after it."""
        if self.connection.closed:
            self.connection = self._open()  # closed after a lost connection or a COPY
        self._rollback(rel)  # left over from an interrupted apply
        sets = [f"SET {'LOCAL ' if atomic else ''}{k} = '{v}'" for k, v in (settings or {}).items()]
        try:
            if atomic:
                self._file(text, rel, books, sets)
            else:
                if sets:
                    self._setting(rel, ";".join(sets))
                self._one_by_one(text, rel)
                statements = books.guards() + list(books.records)
                if statements:
                    self._books_alone(rel, statements, ms_since(started))
        except BaseException:
            self._rollback(rel)
            if sets and not atomic and not self.connection.closed:
                try:  # the session's SETs must not outlive the file
                    self._run("RESET ALL", rel)
                except MigrationError:
                    pass  # connection gone: the next apply reconnects
            raise
        return ms_since(started)

    def _setting(self, rel: str, sql: str) -> None:
        """Run ``SET``s before a no-transaction file (a refused value fails the file)."""
        last = self._run(sql, rel)[-1]
        if last.status not in _ok_statuses():
            message, sqlstate, _ = self._diag(last)
            raise MigrationError(rel, None, f"setting the group's timeouts: {message}", sqlstate)

    def _books_alone(self, rel: str, statements: list[Sql], elapsed: int) -> None:
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
                NO_TRANSACTION_NOTE.replace("before this one", "of the file"),
            )

    def _file(self, text: str, rel: str, books: Bookkeeping, sets: list[str]) -> None:
        """Run settings, guard, file and records as one query inside BEGIN ... COMMIT.

        Raise MigrationError (AlreadyApplied for a refusing guard) for a failure; the server
        skips the rest of the query after an error, so nothing of it commits then.
        """
        # deferred: +205 modules, 198 ms (psycopg, ssl, psycopg.pq.misc, …)
        from psycopg.pq import ExecStatus

        prefix = "".join(f"{each};" for each in sets)
        guards = books.guards()
        for guard in guards:
            prefix += self._render(guard).replace("\n", " ") + ";"
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
        bad = len(results) - 1  # = statements before it, counting our BEGIN, SETs and guard
        if 1 <= bad <= len(sets):
            message, sqlstate, _ = self._diag(last)
            raise MigrationError(rel, None, f"setting the group's timeouts: {message}", sqlstate)
        if bad:
            bad -= len(sets)
        if 1 <= bad <= len(guards):  # (bad == 0: the server refused to parse the query)
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
        index = bad - 1 - len(guards)  # the failing statement among the file's own
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

    def _one_by_one(self, text: str, rel: str) -> None:
        """``-- deploy:no-transaction``: each statement on its own, in autocommit."""
        # deferred: +205 modules, 133 ms (psycopg, psycopg.errors, psycopg_binary.pq, …)
        from psycopg.pq import ExecStatus, TransactionStatus

        for index, stmt in enumerate(_pg_statements(text)):
            last = self._run(text[stmt.start : stmt.end], rel)[-1]
            if last.status in _ok_statuses():
                continue
            note = NO_TRANSACTION_NOTE if index else ""
            if last.status != ExecStatus.FATAL_ERROR:
                self.connection.close()  # stuck in COPY mode
                raise MigrationError(rel, stmt.line, _COPY_MESSAGE, None, note, undone=False)
            message, sqlstate, position = self._diag(last)
            line = _line_at(text, stmt.start + position - 1) if position else stmt.line
            # nothing stayed applied only when the first statement failed, and was not one
            # that commits work of its own on the way (CREATE INDEX CONCURRENTLY may leave
            # an INVALID index behind)
            undone = not index and all(n != "CONCURRENTLY" for n, _ in _pg_tokens(text, stmt))
            raise MigrationError(rel, line, message, sqlstate, note, undone=undone)
        self._run("RESET ALL", rel)
        if self.connection.pgconn.transaction_status != TransactionStatus.IDLE:
            raise MigrationError(
                rel,
                None,
                "the file leaves a transaction open (BEGIN without COMMIT); it was rolled back",
                None,
                NO_TRANSACTION_NOTE,
            )


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


@lru_cache(maxsize=1)
def _ok_statuses() -> tuple[Any, ...]:
    # deferred: +205 modules, 127 ms (psycopg, psycopg.errors, psycopg.types.json, …)
    from psycopg.pq import ExecStatus

    return (ExecStatus.COMMAND_OK, ExecStatus.TUPLES_OK, ExecStatus.EMPTY_QUERY)
