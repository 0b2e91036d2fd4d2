"""Built-in migration executor: applies a tracked group's ``.sql`` files without a shell.

One connection serves every file of a deployment. Each file runs in its own transaction
(unless it is marked ``-- deploy:no-transaction``) together with the caller's bookkeeping
statements (:class:`Bookkeeping`: a *guard* run first, *records* run after the file), so
the ledger and history rows commit with the migration or not at all. One applier per
driver does the running:

* PostgreSQL (psycopg 3, :mod:`.pg_executor`): the whole file goes to the server as ONE
  simple-protocol query, ``BEGIN;<guard>;<file>;RESET ALL;<records>;COMMIT``.
* SQLite (sqlite3, :mod:`.sqlite_executor`): the file is split with
  ``sqlite3.complete_statement`` and run statement by statement inside
  ``BEGIN IMMEDIATE``/``COMMIT`` (``executescript`` would commit on its own).

A file's own COMMIT/ROLLBACK would end the migration's transaction half way, so it is
refused before anything runs; a file wrapped whole in ``BEGIN; ... COMMIT;`` is applied as
if the wrapper were not there (it asks for what the executor does anyway). On PostgreSQL
a ``COPY ... FROM STDIN`` / ``TO STDOUT`` is refused before anything runs too (there is no
client end to stream rows). Both are found by PostgreSQL's own lexer (see ``statements``).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from deploy_plugin.db import connection_params, pg_connect, sqlite_connect
from deploy_plugin.secrets import redact_url

from .books import ELAPSED_MS, Bookkeeping, Sql
from .errors import AlreadyApplied, ConnectError, MigrationError
from .ledger_read import url_problem
from .pg_executor import PostgresApplier
from .sqlite_executor import SQLiteApplier
from .statements import _line_at, _one_paragraph, no_transaction, pg_checked, sqlite_checked

__all__ = [
    "ELAPSED_MS",
    "AlreadyApplied",
    "Bookkeeping",
    "ConnectError",
    "MigrationError",
    "Prepared",
    "Sql",
    "SqlExecutor",
    "no_transaction",
]


class Prepared(NamedTuple):
    """A migration's text as the executor sends it, and whether it runs in one transaction
    (False: ``-- deploy:no-transaction``)."""

    text: str
    atomic: bool


class SqlExecutor:
    """Applies migration files to one database over one reused connection.

    ``url`` is ``postgresql://...`` / ``postgres://...`` (psycopg 3) or ``sqlite:///PATH``
    (relative to ``base``, default the current directory) / ``sqlite:////ABS/PATH``.
    Connects at once; raises :class:`ConnectError`. ``source`` names where the URL came
    from (e.g. ``"DATABASE_URL"``) for messages. ``notices`` holds the server's NOTICE and
    WARNING lines of the last :meth:`apply` (PostgreSQL), for the step's report.
    """

    kind: str

    def __init__(self, url: str, *, base: Path | None = None, source: str | None = None):
        self.url, self.base, self.source = url, base, source
        self._applier: PostgresApplier | SQLiteApplier
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme.split("+")[0] in ("postgresql", "postgres"):
            self._applier = PostgresApplier(self._pg_connect)
        elif scheme == "sqlite":
            self._applier = SQLiteApplier(self._sqlite_connect())
        else:
            raise self._connect_error(
                f"unsupported URL scheme {scheme or url!r}; the built-in executor takes "
                "postgresql://USER:PASSWORD@HOST:PORT/DB or sqlite:///PATH"
            )
        self.kind = self._applier.kind

    @property
    def connection(self) -> Any:
        """The connection files are applied over (psycopg or sqlite3)."""
        return self._applier.connection

    @property
    def notices(self) -> list[str]:
        """The server's NOTICE and WARNING lines of the last :meth:`apply`."""
        return self._applier.notices

    # -- connecting ------------------------------------------------------------------

    def _connect_error(self, reason: str, fix: str = "") -> ConnectError:
        origin = f" (from {self.source})" if self.source else ""
        reason = redact_url(_one_paragraph(reason)).rstrip(".")
        if fix and not reason.endswith("?"):
            reason += "."
        return ConnectError(f"cannot connect to {redact_url(self.url)}{origin}: {reason}{fix}")

    def _pg_connect(self) -> Any:
        # deferred: +189 modules, 139 ms (psycopg, psycopg.errors, psycopg_binary.pq, …)
        import psycopg

        try:
            password = str(connection_params(self.url).get("password") or "")
        except psycopg.Error as err:
            raise self._connect_error(f"malformed URL: {err}") from None
        try:
            return pg_connect(self.url)
        except psycopg.Error as err:
            reason = str(err).replace(password, "***") if len(password) >= 4 else str(err)
            raise self._connect_error(
                reason,
                " Check that the server is running and reachable at that host and port, "
                "and that the URL's user, password and database are right.",
            ) from None

    def _sqlite_connect(self) -> sqlite3.Connection:
        rest = self.url.split("://", 1)[1].split("?", 1)[0]
        if not rest.startswith("/") or rest == "/":
            raise self._connect_error(
                "a SQLite URL is sqlite:///RELATIVE/PATH or sqlite:////ABSOLUTE/PATH"
            )
        name = rest[1:]
        if name == ":memory:":
            raise self._connect_error(url_problem(self.url) or "an in-memory database")
        path = Path(self.base or Path.cwd()) / name
        try:
            return sqlite_connect(path)  # autocommit: the appliers issue BEGIN/COMMIT
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
        self,
        path: Path,
        rel: str,
        *,
        books: Bookkeeping | None = None,
        data: bytes | None = None,
        settings: Mapping[str, str] | None = None,
        prepared: Prepared | None = None,
    ) -> int:
        """Apply one migration file in one transaction; return its execution time in ms.

        ``books`` are statements that commit or roll back with the file (see
        :class:`Bookkeeping`). On a failing statement everything of the file (and of the
        books) is rolled back and :class:`MigrationError` is raised. A file marked
        ``-- deploy:no-transaction`` runs statement by statement in autocommit (needed for
        e.g. CREATE INDEX CONCURRENTLY): it is NOT atomic, statements before a failing one
        stay applied, and the books run in their own transaction after the last statement.
        ``data``: the SQL to run instead of the file's bytes (one section of it, with the
        file's line numbers), e.g. a dbmate file's up or down section. ``settings``: on
        PostgreSQL, set for the file's own statements (``SET LOCAL lock_timeout = '1s'``);
        SQLite has no such settings and ignores them. ``prepared``: what :meth:`prepare`
        made of the file already (then neither ``path`` nor ``data`` is read).
        """
        self._applier.notices = []
        if prepared is None:
            try:
                raw = path.read_bytes() if data is None else data
            except OSError as err:
                raise MigrationError(
                    rel, None, f"cannot read the file: {err.strerror or err}; check its permissions"
                ) from None
            prepared = self.prepare(rel, raw)
        text, atomic = prepared
        started = time.perf_counter()
        if isinstance(self._applier, PostgresApplier):
            return self._applier.apply(text, rel, books or Bookkeeping(), atomic, started, settings)
        return self._applier.apply(text, rel, books or Bookkeeping(), atomic, started)

    def warm(self) -> None:
        """Import what :meth:`prepare` may need (PostgreSQL's lexer and parser, ~35 ms of
        CPU), in the prefetch worker while the server applies the first files."""
        if self.kind == "postgresql":
            # deferred: +19 modules, 45 ms (pglast.ast, pglast.enums.nodes, …): the point
            import pglast.parser  # noqa: F401

    def prepare(self, rel: str, raw: bytes) -> Prepared:
        """The text of a migration's bytes as it is sent, and whether it runs in one
        transaction; :class:`MigrationError` (file and line) for what must not reach the
        database: text that is not UTF-8 or holds a NUL, and what :func:`pg_checked` /
        :func:`sqlite_checked` refuse. Reads no state of the connection: safe in another
        thread (:mod:`.prefetch` prepares the next file while this one runs)."""
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
        atomic = not no_transaction(text)
        if self.kind == "postgresql":
            text = pg_checked(text, rel, atomic)  # COPY to/from the client, own COMMIT
        elif atomic:
            text = sqlite_checked(text, rel)
        return Prepared(text, atomic)
