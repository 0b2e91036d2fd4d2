"""The one way to connect (DESIGN §5), for the store and the migrations alike.

**PostgreSQL** (:func:`pg_connect`): every connection is in autocommit mode (transactions
are explicit), names itself ``pytest-deploy``, times out connecting after 10 s, and asks
the server to notice a dead client within seconds: ``client_connection_check_interval=1s``
(a startup option, so it survives ``RESET ALL``; dropped for servers before 14, which lack
it) and TCP keepalives (5 s idle, then every 2 s, 3 probes). A killed runner's backend thus
ends, rolling back and freeing its advisory lock, within about ten seconds.

**SQLite** (:func:`sqlite_connect`): every connection is in autocommit mode too (writes go
in :func:`sqlite_transaction`, ``BEGIN IMMEDIATE``, so a writer takes the file's write lock
before it reads, never half way) and waits up to :data:`BUSY_TIMEOUT_S` for another
process's lock (sqlite3's busy handler). It is opened by URI with an explicit mode: ``rwc``
creates a missing file, ``rw`` never does, ``ro`` can write nothing (what a dry run reads a
target's ledger with). The store's own connection adds ``foreign_keys`` and WAL.

Callers turn :class:`psycopg.Error` and :class:`sqlite3.Error` into their own
one-paragraph messages.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import psycopg

#: Added to every URL unless it sets them itself.
DEFAULTS = {
    "application_name": "pytest-deploy",
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "3",
}
CHECK_INTERVAL_OPTION = "-c client_connection_check_interval=1s"

#: How long a SQLite connection waits for another process's lock before "database is locked".
BUSY_TIMEOUT_S = 30.0


def connection_params(url: str) -> dict[str, Any]:
    """libpq parameters of ``url`` (``postgres+driver://`` accepted) with our defaults;
    raises psycopg.ProgrammingError for a malformed URL."""
    # deferred: +223 modules, 123 ms (psycopg, psycopg.errors, ssl, …)
    from psycopg.conninfo import conninfo_to_dict

    url = re.sub(r"^postgres(?:ql)?\+\w+://", "postgresql://", url)  # SQLAlchemy style
    params: dict[str, Any] = conninfo_to_dict(url)
    for key, value in DEFAULTS.items():
        params.setdefault(key, value)
    return params


def pg_connect(url: str, *, read_only: bool = False) -> psycopg.Connection[Any]:
    """An autocommit connection to ``url`` with the settings above (psycopg.Error if not).

    ``read_only``: every transaction of the session is READ ONLY (the server's
    ``default_transaction_read_only``, a startup option), so nothing sent on it can write:
    what a dry run uses to read a target's ledger."""
    # deferred: +223 modules, 125 ms (psycopg, psycopg.errors, psycopg.types.datetime, …)
    import psycopg

    params = connection_params(url)
    own_options = str(params.get("options") or "")
    if read_only:
        own_options = f"{own_options} -c default_transaction_read_only=on".strip()
    params["options"] = f"{own_options} {CHECK_INTERVAL_OPTION}".strip()
    try:
        return psycopg.connect(autocommit=True, **params)
    except psycopg.OperationalError as exc:
        if "client_connection_check_interval" not in str(exc):
            raise
    params["options"] = own_options  # PostgreSQL before 14: keepalives only
    return psycopg.connect(autocommit=True, **params)


def sqlite_connect(
    path: Path | str,
    *,
    mode: Literal["rwc", "rw", "ro"] = "rwc",
    timeout: float = BUSY_TIMEOUT_S,
    store: bool = False,
) -> sqlite3.Connection:
    """An autocommit connection to the SQLite file ``path`` (sqlite3.Error if not).

    ``mode``: ``rwc`` creates a missing file, ``rw`` refuses one (never creates it),
    ``ro`` opens it read-only (any write fails). ``timeout``: the busy timeout in seconds.
    ``store``: the store's own connection, which its threads share (calls serialised by
    the store), with ``PRAGMA foreign_keys = ON`` and, with ``rwc``, WAL journalling so
    readers never wait for a writer (switching is retried while another opener holds the
    file: no busy handler covers it); with ``rw`` (a dry run) the file is left as it is.
    """
    uri = f"{Path(path).absolute().as_uri()}?mode={mode}"
    conn = sqlite3.connect(
        uri, uri=True, isolation_level=None, timeout=timeout, check_same_thread=not store
    )
    if store:
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            if mode == "rwc":
                _use_wal(conn, timeout)
        except BaseException:
            conn.close()
            raise
    return conn


def _use_wal(conn: sqlite3.Connection, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)  # a back-off: nothing to wait on but the other opener
            delay = min(delay * 2, 0.2)


@contextmanager
def sqlite_transaction(
    conn: sqlite3.Connection, kind: Literal["IMMEDIATE", "EXCLUSIVE"] = "IMMEDIATE"
) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` (or ``EXCLUSIVE``) ... ``COMMIT``; rolled back when the block
    raises anything. Takes the write lock at BEGIN (waiting up to the busy timeout), so
    two writers queue instead of failing half way with "database is locked"."""
    conn.execute(f"BEGIN {kind}")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
