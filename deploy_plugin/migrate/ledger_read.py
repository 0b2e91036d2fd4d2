"""Reading a target database's ledger without writing anything (dry runs, saved plans,
preflight): over a read-only session or file, never creating the database or the ledger."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from deploy_plugin.db import connection_params, pg_connect, sqlite_connect

from .errors import ConnectError
from .ledger import PG_TABLE, SELECT_ROWS, SQLITE_TABLE, LedgerRow, rows_of


@dataclass(frozen=True)
class LedgerRead:
    """The ledger of one project and target as read from a target database.

    ``where`` names the database for people (its URL, password hidden); ``exists`` is False
    when the database itself does not exist (it has applied nothing)."""

    rows: Mapping[str, LedgerRow]
    where: str
    table: str
    exists: bool = True


def url_problem(url: str) -> str | None:
    """Why a target database URL can never hold what is applied, if so (checked before
    anything runs): an in-memory SQLite database forgets it all when the run ends."""
    rest = url.split("://", 1)[1] if url.lower().startswith("sqlite://") else ""
    if rest.split("?", 1)[0] == "/:memory:" or "mode=memory" in rest:
        return (
            "it names an in-memory SQLite database (:memory:), which is gone when the run ends: the"
            " history would record migrations that nothing keeps. Use a file"
            " (sqlite:///PATH, relative to the config's root) or a PostgreSQL URL"
        )
    return None


def read_ledger(
    url: str, *, base: Path, project: str, target: str, source: str | None = None
) -> LedgerRead:
    """Read the ledger of ``project`` and ``target`` at ``url`` without writing anything.

    PostgreSQL: a session whose transactions are READ ONLY (the server refuses any write);
    SQLite: the file opened ``mode=ro``, never created. A database that does not exist, or
    has no ledger table, has applied nothing. Raises :class:`ConnectError` (password
    hidden) when the database cannot be reached.
    """
    # deferred: +8 modules, 7 ms (secrets, logging, textwrap, …)
    from deploy_plugin.secrets import redact_url

    where = redact_url(url)
    origin = f" (from {source})" if source else ""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme.split("+")[0] in ("postgresql", "postgres"):
        # deferred: +196 modules, 156 ms (psycopg, psycopg.errors, psycopg.pq, …)
        import psycopg

        try:
            password = str(connection_params(url).get("password") or "")
            conn = pg_connect(url, read_only=True)
        except psycopg.Error as err:
            reason = " ".join(str(err).split())
            if len(password) >= 4:
                reason = reason.replace(password, "***")
            if re.search(r'database "[^"]*" does not exist', reason):
                return LedgerRead({}, where, PG_TABLE, exists=False)
            raise ConnectError(
                f"cannot read the ledger of {where}{origin}: {redact_url(reason)}"
            ) from None
        try:
            with conn:
                found = conn.execute(f"SELECT to_regclass('{PG_TABLE}')").fetchone()
                if found is None or found[0] is None:
                    return LedgerRead({}, where, PG_TABLE)
                cursor = conn.execute(
                    SELECT_ROWS.format(table=PG_TABLE, mark="%s"),
                    (project, target),
                )
                return LedgerRead(rows_of(cursor), where, PG_TABLE)
        except psycopg.Error as err:  # e.g. no USAGE on its schema: one paragraph
            reason = " ".join(str(err).split())
            raise ConnectError(
                f"cannot read the ledger {PG_TABLE} of {where}{origin}: {redact_url(reason)}."
                " The deploying user needs to read it (GRANT USAGE ON SCHEMA pytest_deploy,"
                f" SELECT ON {PG_TABLE})"
            ) from None
    if scheme == "sqlite":
        rest = url.split("://", 1)[1].split("?", 1)[0]
        name = rest[1:] if rest.startswith("/") else ""
        if not name or name == ":memory:":
            return LedgerRead({}, where, SQLITE_TABLE, exists=False)
        path = base / name
        if not path.is_file():
            return LedgerRead({}, where, SQLITE_TABLE, exists=False)
        try:
            lite = sqlite_connect(path.resolve(), mode="ro")
            try:
                table = lite.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                    (SQLITE_TABLE,),
                ).fetchone()
                if table is None:
                    return LedgerRead({}, where, SQLITE_TABLE)
                rows = lite.execute(
                    SELECT_ROWS.format(table=SQLITE_TABLE, mark="?"),
                    (project, target),
                )
                return LedgerRead(rows_of(rows), where, SQLITE_TABLE)
            finally:
                lite.close()
        except sqlite3.Error as err:
            raise ConnectError(f"cannot read the ledger of {where}{origin}: {err}") from None
    raise ConnectError(
        f"cannot read the ledger of {where}{origin}: unsupported URL scheme {scheme or url!r}"
    )
