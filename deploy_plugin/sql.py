"""Built-in migration executor: applies a tracked group's ``.sql`` files without a shell.

One connection serves every file of a deployment. Each file runs in its own transaction
(unless it is marked ``-- deploy:no-transaction``) and a caller-supplied callback runs
inside that transaction just before COMMIT, so the history row commits with the migration.

* PostgreSQL (psycopg 3): the whole file goes to the server as ONE simple-protocol query,
  wrapped as ``BEGIN;<file>;RESET ALL[;COMMIT]``; the server parses it in full before running
  anything, so a syntax error anywhere applies nothing. The failing line comes from the
  server's error position; errors without one (constraint violations, RAISE, ...) are placed
  on the failing statement, found by counting the statements that completed before it.
* SQLite (sqlite3): the file is split with ``sqlite3.complete_statement`` and run statement
  by statement inside ``BEGIN IMMEDIATE``/``COMMIT`` (``executescript`` would commit on its own).
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

#: ``in_transaction(connection, elapsed_ms)`` — called inside the migration's transaction.
InTransaction = Callable[[Any, int], None]

_MARKER = re.compile(r"--\s*deploy:no-transaction(?=\s|$)", re.IGNORECASE)
# Whitespace and comments in front of a statement (used to find the line where it starts).
_LEADING = re.compile(r"(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.DOTALL)
_URL_PASSWORD = re.compile(r"(://[^/@:\s]*:)[^@/\s]*@")
_PARAM_PASSWORD = re.compile(r"(password=)[^&\s]*", re.IGNORECASE)
_BEGIN = "BEGIN;"  # no newline: the file's line numbers stay as they are
_CHECK_INTERVAL = "-c client_connection_check_interval=1s"
_NO_TRANSACTION_NOTE = (
    "The file is marked -- deploy:no-transaction, so the statements before this one stay applied"
)
_COMMITTED_NOTE = (
    "The file's own COMMIT had already committed the statements before it; those stay applied"
)
_COPY_MESSAGE = (
    "COPY ... FROM STDIN / TO STDOUT needs a client that streams data; "
    "apply this file with a deploy_command that runs psql"
)
_PG_DEFAULTS = {
    "application_name": "pytest-deploy",
    "connect_timeout": "10",
    # A killed runner's backend must notice and roll back within seconds (DESIGN §5).
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "3",
}


class MigrationError(Exception):
    """A migration failed and was rolled back: ``'<file>, line N: <error> (SQLSTATE xxxxx)'``.

    ``file`` is the path as given to :meth:`SqlExecutor.apply`, ``line`` the 1-based line of
    the failure in that file (``None`` when unknown, e.g. at COMMIT), ``message`` the
    database's error text and ``sqlstate`` PostgreSQL's error code (``None`` for SQLite).
    ``note`` (in the text only) says what stayed applied when not everything was undone.
    """

    def __init__(
        self, file: str, line: int | None, message: str, sqlstate: str | None = None, note=""
    ):
        self.file, self.line, self.message, self.sqlstate = file, line, message, sqlstate
        where = f"{file}, line {line}" if line else file
        code = f" (SQLSTATE {sqlstate})" if sqlstate else ""
        super().__init__(f"{where}: {message}{code}" + (f". {note}" if note else ""))


class ConnectError(Exception):
    """The target database can't be reached or opened; the message hides any password."""


class _Statement(NamedTuple):
    start: int  # offset of the statement's first code character (after leading comments)
    end: int
    line: int  # line of ``start``


def no_transaction(text: str) -> bool:
    """True when ``-- deploy:no-transaction`` is one of the comment lines opening the file."""
    pos = 1 if text.startswith("\ufeff") else 0
    while pos < len(text):
        nl = text.find("\n", pos)
        line = text[pos : nl if nl >= 0 else len(text)].strip()
        if line.startswith("--"):
            if _MARKER.match(line):
                return True
        elif line:
            return False
        if nl < 0:
            break
        pos = nl + 1
    return False


def checksum(path: Path) -> str:
    """SHA-256 hex digest of the file's bytes with CRLF normalised to LF (DESIGN §5)."""
    return hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()


def redact_url(url: str) -> str:
    """``url`` with the password (``user:PASSWORD@`` or ``password=``) replaced by ``***``."""
    return _PARAM_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", url))


def _code_start(text: str, start: int, end: int) -> int | None:
    """Offset of the first character in ``text[start:end]`` outside whitespace and comments."""
    pos = _LEADING.match(text, start, end).end()
    return pos if pos < end and text[pos] != ";" else None  # a lone ';' is no statement


def _lines(text: str, offsets: list[tuple[int, int]]) -> list[_Statement]:
    """Statements for ``(start, end)`` spans, skipping empty ones; lines counted incrementally."""
    out: list[_Statement] = []
    line, last = 1, 0
    for start, end in offsets:
        code = _code_start(text, start, end)
        if code is not None:
            line += text.count("\n", last, code)
            last = code
            out.append(_Statement(code, end, line))
    return out


def _pg_statements(text: str) -> list[_Statement]:
    """Split PostgreSQL text like the server does (dollar quotes, BEGIN ATOMIC) via sqlparse."""
    import sqlparse

    spans, cursor = [], 0
    for piece in sqlparse.split(text):  # each piece is a verbatim, stripped slice of text
        start = text.find(piece, cursor)
        if start < 0:
            break
        cursor = start + len(piece)
        spans.append((start, cursor))
    return _lines(text, spans)


def _sqlite_statements(text: str) -> list[_Statement]:
    """Split SQLite text at each ``;`` that ``sqlite3.complete_statement`` says ends one."""
    spans, start, pos = [], 0, 0
    while pos < len(text):
        semi = text.find(";", pos)
        pos = len(text) if semi < 0 else semi + 1
        if semi < 0 or sqlite3.complete_statement(text[start:pos]):
            spans.append((start, pos))
            start = pos
    return _lines(text, spans)


def _line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, min(max(offset, 0), len(text.rstrip()))) + 1


def _one_paragraph(text: str) -> str:
    return " ".join(text.split())


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
        from psycopg.conninfo import conninfo_to_dict

        url = re.sub(r"^postgres(?:ql)?\+\w+://", "postgresql://", self.url)  # SQLAlchemy style
        try:
            params = conninfo_to_dict(url)
        except psycopg.Error as err:
            raise self._connect_error(f"malformed URL: {err}") from None
        password = str(params.get("password") or "")
        for key, value in _PG_DEFAULTS.items():
            params.setdefault(key, value)
        # A startup option, not a SET: it survives the RESET ALL run after each file.
        user_options = str(params.get("options") or "")
        params["options"] = f"{user_options} {_CHECK_INTERVAL}".strip()
        try:
            try:
                self.connection = psycopg.connect(**params, autocommit=True)
            except psycopg.OperationalError as err:
                if "client_connection_check_interval" not in str(err):
                    raise
                params["options"] = user_options  # PostgreSQL < 14 lacks the setting
                self.connection = psycopg.connect(**params, autocommit=True)
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
        path = name if name == ":memory:" else Path(self.base or Path.cwd()) / name
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

    def apply(self, path: Path, rel: str, *, in_transaction: InTransaction | None = None) -> int:
        """Apply one migration file in one transaction; return its execution time in ms.

        ``in_transaction(connection, elapsed_ms)`` runs inside the transaction just before
        COMMIT; if it raises, the migration is rolled back and its exception propagates.
        On a failing statement everything of the file is rolled back and
        :class:`MigrationError` is raised. A file marked ``-- deploy:no-transaction`` runs
        statement by statement in autocommit (needed for e.g. CREATE INDEX CONCURRENTLY):
        it is NOT atomic, statements before a failing one stay applied, and
        ``in_transaction`` runs after the last statement, outside any transaction.
        """
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            line = raw.count(b"\n", 0, err.start) + 1
            raise MigrationError(
                rel, line, "the file is not valid UTF-8; save it as UTF-8"
            ) from None
        text = text.removeprefix("\ufeff")
        self.notices = []
        apply = self._apply_pg if self.kind == "postgresql" else self._apply_sqlite
        return apply(text, rel, in_transaction, time.perf_counter())

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
            return self.connection.wait(execute(pgconn))
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

    def _apply_pg(
        self, text: str, rel: str, in_transaction: InTransaction | None, started: float
    ) -> int:
        from psycopg.pq import TransactionStatus

        if self.connection.closed:
            self._pg_connect()  # closed after a lost connection or an unsupported COPY
        self._pg_rollback(rel)  # left over from an interrupted apply
        atomic = not no_transaction(text)
        try:
            if atomic:
                self._pg_file(text, rel, commit=in_transaction is None)
            else:
                self._pg_one_by_one(text, rel)
            if in_transaction is not None:
                if atomic and self.connection.pgconn.transaction_status == TransactionStatus.IDLE:
                    self._run("BEGIN", rel)  # the file ended our transaction (its own COMMIT)
                in_transaction(self.connection, _ms(started))
                if atomic:
                    self._pg_commit(rel)
        except BaseException:
            self._pg_rollback(rel)
            raise
        return _ms(started)

    def _pg_file(self, text: str, rel: str, *, commit: bool) -> None:
        """Run the file as one query inside BEGIN; raise MigrationError for a failure."""
        from psycopg.pq import ExecStatus

        # RESET ALL: a file's SET (search_path, role, ...) must not leak into the next file.
        # COMMIT may ride along: after an error the server skips the rest of the query.
        results = self._run(_BEGIN + text + "\n;RESET ALL" + (";COMMIT" if commit else ""), rel)
        last = results[-1]  # the server stops at an error, psycopg at a COPY
        if last.status in _ok_statuses():
            return
        bad = len(results) - 1  # = statements before it, counting our BEGIN
        committed = any(r.command_status == b"COMMIT" for r in results[1:bad])
        note = _COMMITTED_NOTE if committed else ""
        if last.status != ExecStatus.FATAL_ERROR:
            self.connection.close()  # stuck in COPY mode; the server rolls back
            stmts = _pg_statements(text)
            line = stmts[bad - 1].line if bad - 1 < len(stmts) else None
            raise MigrationError(rel, line, _COPY_MESSAGE, None, note)
        message, sqlstate, position = self._diag(last)
        if position:
            line = _line_at(text, position - 1 - len(_BEGIN))
        elif bad - 1 < len(stmts := _pg_statements(text)):
            line = stmts[bad - 1].line
        else:
            line = None
            if commit and results[bad - 1].command_status == b"RESET":  # after our RESET ALL
                message = f"at COMMIT: {message}"  # e.g. a deferred constraint
        raise MigrationError(rel, line, message, sqlstate, note)

    def _pg_commit(self, rel: str) -> None:
        from psycopg.pq import ExecStatus

        (result,) = self._run("COMMIT", rel)
        if result.status == ExecStatus.FATAL_ERROR:  # e.g. a deferred constraint
            message, sqlstate, _ = self._diag(result)
            raise MigrationError(rel, None, f"at COMMIT: {message}", sqlstate)
        if result.command_status == b"ROLLBACK":
            raise MigrationError(
                rel,
                None,
                "the transaction was rolled back at COMMIT because a statement in "
                "it had failed (an error caught inside the history writer?)",
            )

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
        self, text: str, rel: str, in_transaction: InTransaction | None, started: float
    ) -> int:
        conn: sqlite3.Connection = self.connection
        atomic = not no_transaction(text)
        if conn.in_transaction:
            conn.execute("ROLLBACK")  # left over from an interrupted apply
        try:
            if atomic:
                conn.execute("BEGIN IMMEDIATE")  # take the write lock now, not mid-file
        except sqlite3.Error as err:  # e.g. still locked after the 30 s busy timeout
            raise _sqlite_error(rel, None, err, prefix="at BEGIN: ") from None
        try:
            for index, stmt in enumerate(_sqlite_statements(text)):
                try:
                    conn.execute(text[stmt.start : stmt.end]).fetchall()  # RETURNING steps rows
                except sqlite3.Error as err:
                    note = _NO_TRANSACTION_NOTE if index and not atomic else ""
                    raise _sqlite_error(rel, stmt.line, err, note=note) from None
            if in_transaction is not None:
                in_transaction(conn, _ms(started))
            if atomic:
                try:
                    conn.execute("COMMIT")
                except sqlite3.Error as err:
                    raise _sqlite_error(rel, None, err, prefix="at COMMIT: ") from None
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return _ms(started)


def _sqlite_error(
    rel: str, line: int | None, err: sqlite3.Error, *, note: str = "", prefix: str = ""
) -> MigrationError:
    name = getattr(err, "sqlite_errorname", None)  # Python 3.11+
    return MigrationError(rel, line, f"{prefix}{err}" + (f" ({name})" if name else ""), None, note)


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _ok_statuses() -> tuple[Any, ...]:
    from psycopg.pq import ExecStatus

    return (ExecStatus.COMMAND_OK, ExecStatus.TUPLES_OK, ExecStatus.EMPTY_QUERY)
