"""The team store's driver: PostgreSQL through psycopg 3, tables in the schema ``deploy``.

Every connection sets ``client_connection_check_interval = 1s`` and TCP keepalives
(:func:`deploy_plugin.db.pg_connect`), so the backend of a killed runner notices and ends
within seconds. Connections run in autocommit mode with explicit ``transaction()`` blocks,
so an idle store never sits "idle in transaction". Its deployment lock is an advisory
lock (``postgres_lock.py``).
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timezone
from typing import Any

import psycopg
from psycopg import sql

from .driver import Driver
from .errors import StoreError, describe_url
from .migrator import SchemaStep
from .pg_connect import MissingDatabase, connect, pg_error
from .records import to_utc
from .schema import PG_SCHEMA, POSTGRES_BOOTSTRAP


def advisory_key(text: str) -> int:
    """A signed 64-bit advisory lock key from ``text``."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


#: Transaction-level advisory lock serialising schema creation/upgrade in one database.
SCHEMA_LOCK_KEY = advisory_key("pytest-deploy schema upgrade")

_STORE_ID = "SELECT value FROM deploy.store_meta WHERE key = 'store_id'"


def open_postgres(
    url: str, *, create: bool, missing_database_ok: bool = True
) -> PostgresDriver | None:
    """Connect; with ``create`` make or upgrade the schema, else None if it is missing
    or older (a missing database also gives None then, if ``missing_database_ok``)."""
    try:
        conn = connect(url)
    except MissingDatabase:
        if create or not missing_database_ok:
            raise
        return None
    driver = PostgresDriver(url, conn)
    return driver if driver.open_schema(create=create) else None


class PostgresDriver(Driver):
    """The store's connection to its PostgreSQL database (reconnected after a blip)."""

    kind = "postgresql"
    errors = psycopg.Error
    connection: psycopg.Connection[Any]

    def __init__(self, url: str, connection: psycopg.Connection) -> None:
        super().__init__(url, connection, prefix=f"{PG_SCHEMA}.", pyformat=True)
        self._verified: weakref.WeakSet[Any] = weakref.WeakSet()

    def describe(self) -> str:
        """The store URL with its password masked."""
        return describe_url(self.url)

    def error(self, what: str, exc: Exception) -> StoreError:
        assert isinstance(exc, psycopg.Error)
        return pg_error(self.url, what, exc)

    def begin(self) -> AbstractContextManager[Any]:
        return self.connection.transaction()

    def reconnect_if_broken(self) -> None:
        # A long deployment may outlive a network blip; the next call reconnects.
        if self.connection.broken:
            self.connection = self.sql.connection = connect(self.url)

    def time_param(self, value: datetime) -> datetime:
        return to_utc(value)

    def time_value(self, value: Any) -> datetime:
        utc: datetime = value.astimezone(timezone.utc)
        return utc

    def is_store_connection(self, connection: Any) -> bool:
        """Whether a psycopg connection reaches this store's database (same store id).

        Runs two reads in the connection's current transaction; never fails it.
        """
        if not isinstance(connection, psycopg.Connection):
            return False
        if connection in self._verified:
            return True
        if scalar(connection.execute("SELECT to_regclass('deploy.store_meta')")) is None:
            return False
        row = connection.execute(_STORE_ID).fetchone()
        same = row is not None and row[0] == self.store_id
        if same:
            self._verified.add(connection)
        return same

    def read_store_id(self) -> str:
        row = self.connection.execute(_STORE_ID).fetchone()
        return str(row[0]) if row else ""

    # -- the schema migrator's protocol ---------------------------------------------------

    def read_version(self) -> int:
        conn = self.connection
        if scalar(conn.execute("SELECT to_regclass('deploy.schema_version')")) is None:
            return 0
        return int(
            scalar(conn.execute("SELECT coalesce(max(version), 0) FROM deploy.schema_version"))
        )

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        # concurrent openers queue on a transaction-level advisory lock
        with self.connection.transaction():
            self.connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
            yield

    def bootstrap(self) -> None:
        # Checked first: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege even when
        # an administrator has made the schema already.
        if scalar(self.connection.execute("SELECT to_regnamespace(%s)", (PG_SCHEMA,))) is None:
            self.connection.execute(f"CREATE SCHEMA {PG_SCHEMA}")
        self.connection.execute(POSTGRES_BOOTSTRAP)

    def apply(self, step: SchemaStep) -> None:
        # one round trip per step (a store across a slow link opens in a few of them)
        record = sql.SQL(
            "INSERT INTO deploy.schema_version (version, description) VALUES ({}, {})"
        ).format(step.version, step.description)
        self.connection.execute(";\n".join([*step.statements, record.as_string(self.connection)]))

    def set_store_id(self, store_id: str) -> None:
        self.connection.execute(
            "INSERT INTO deploy.store_meta (key, value) VALUES ('store_id', %s)"
            " ON CONFLICT DO NOTHING",
            (store_id,),
        )


def scalar(cursor: Any) -> Any:
    """The first column of the one row a query here always returns."""
    row = cursor.fetchone()
    assert row is not None, "the query returns one row"
    return row[0]
