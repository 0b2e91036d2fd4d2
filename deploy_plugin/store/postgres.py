"""The team store: PostgreSQL through psycopg 3, tables in the schema ``deploy``.

Every connection sets ``client_connection_check_interval = 1s`` and TCP keepalives, so
the backend of a killed runner notices and ends within seconds. Connections run in
autocommit mode with explicit ``transaction()`` blocks, so an idle store never sits
"idle in transaction". The deployment lock is a session-level ``pg_try_advisory_lock``
on a dedicated connection held for the whole deployment (never a transaction-level
lock); a ``deploy_locks`` row only names its holder.
"""

from __future__ import annotations

import hashlib
import os
import select
import socket
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import psycopg
from psycopg import sql

from deploy_plugin.engine import procgroups

from . import migrator
from .base import (
    UPSERT_MIGRATION,
    DeployLock,
    LockHeld,
    LockInfo,
    MigrationRecord,
    SharedSQL,
    Store,
    StoreError,
    describe_url,
    format_time,
    to_utc,
    utcnow,
)
from .lock import end_dead_holders_groups
from .pg_connect import _MissingDatabase, connect, pg_error
from .schema import PG_SCHEMA, POSTGRES_BOOTSTRAP, SchemaStep


def _key(text: str) -> int:
    """A signed 64-bit advisory lock key from ``text``."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


#: Transaction-level advisory lock serialising schema creation/upgrade in one database.
SCHEMA_LOCK_KEY = _key("pytest-deploy schema upgrade")


def lock_key(project: str, target: str) -> int:
    """The advisory lock key of one project + target."""
    return _key(f"pytest-deploy deployment lock\0{project}\0{target}")


class PostgresStore(Store):
    """The store in PostgreSQL. Open it with :meth:`open` (or ``open_store``)."""

    kind = "postgresql"

    def __init__(self, url: str, connection: psycopg.Connection) -> None:
        super().__init__(url)
        self._conn = connection
        self._db = SharedSQL(connection, prefix=f"{PG_SCHEMA}.", pyformat=True)
        self._verified: weakref.WeakSet[Any] = weakref.WeakSet()
        row = connection.execute(
            "SELECT value FROM deploy.store_meta WHERE key = 'store_id'"
        ).fetchone()
        self.store_id: str = row[0] if row else ""

    @classmethod
    def open(
        cls, url: str, *, create: bool, missing_database_ok: bool = True
    ) -> PostgresStore | None:
        """Connect; with ``create`` make or upgrade the schema, else None if it is missing
        or older (a missing database also gives None then, if ``missing_database_ok``)."""
        try:
            conn = connect(url)
        except _MissingDatabase:
            if create or not missing_database_ok:
                raise
            return None
        try:
            driver = _PostgresSchema(conn)
            if not migrator.ready(driver, describe_url(url), create=create):
                conn.close()
                return None
            return cls(url, conn)
        except psycopg.Error as exc:
            conn.close()
            raise pg_error(url, "create or upgrade the store schema", exc) from exc
        except BaseException:
            conn.close()
            raise

    def close(self) -> None:
        """Close the store's connection (locks live on their own connections)."""
        with self._mutex:
            self._conn.close()

    def describe(self) -> str:
        """The store URL with its password masked."""
        return describe_url(self.url)

    def schema_version(self) -> int:
        """The highest schema version applied in this database."""
        with self._reader("read the schema version"):
            return _read_version(self._conn)

    def _reconnect_if_broken(self) -> None:
        # A long deployment may outlive a network blip; the next call reconnects.
        if self._conn.broken:
            self._conn = connect(self.url)
            self._db = SharedSQL(self._conn, prefix=f"{PG_SCHEMA}.", pyformat=True)

    @contextmanager
    def _transaction(self, what: str) -> Iterator[SharedSQL]:
        with self._mutex:
            self._reconnect_if_broken()
            try:
                with self._conn.transaction():
                    yield self._db
            except psycopg.Error as exc:
                raise pg_error(self.url, what, exc) from exc

    @contextmanager
    def _reader(self, what: str) -> Iterator[SharedSQL]:
        with self._mutex:
            self._reconnect_if_broken()
            try:
                yield self._db
            except psycopg.Error as exc:
                raise pg_error(self.url, what, exc) from exc

    def _time_param(self, value: datetime) -> datetime:
        return to_utc(value)

    def _time_value(self, value: Any) -> datetime:
        utc: datetime = value.astimezone(timezone.utc)
        return utc

    # -- history row in the caller's transaction -----------------------------------------

    def is_store_connection(self, connection: Any) -> bool:
        """Whether a psycopg connection reaches this store's database (same store id).

        Runs two reads in the connection's current transaction; never fails it.
        """
        if not isinstance(connection, psycopg.Connection):
            return False
        if connection in self._verified:
            return True
        if _scalar(connection.execute("SELECT to_regclass('deploy.store_meta')")) is None:
            return False
        row = connection.execute(
            "SELECT value FROM deploy.store_meta WHERE key = 'store_id'"
        ).fetchone()
        same = row is not None and row[0] == self.store_id
        if same:
            self._verified.add(connection)
        return same

    def _record_on_connection(
        self, connection: Any, project: str, target: str, record: MigrationRecord
    ) -> None:
        try:
            same = self.is_store_connection(connection)
            if not same:
                raise StoreError(
                    f"record_migration(connection=...) was given a connection that is not to "
                    f"the store's database ({self.describe()}); pass connection=None to "
                    f"record the row separately."
                )
            # The project row commits on our own connection first (cached afterwards).
            project_id = self.project_id(project)
            connection.execute(
                self._db.translate(UPSERT_MIGRATION),
                self._migration_params(project_id, target, record),
            )
        except psycopg.Error as exc:
            raise pg_error(self.url, "record a migration", exc) from exc

    # -- deployment lock ------------------------------------------------------------------

    def acquire_lock(self, project: str, target: str, *, holder: str) -> DeployLock:
        """Take the advisory lock on a dedicated connection, then name the holder.

        A ``deploy_locks`` row found while holding the advisory lock was left by a session
        that ended without releasing it: the step commands it recorded that still run on
        this host are ended first (with a warning), even if that runner lives on after
        losing its session, since it no longer holds the lock and must not run beside us.
        """
        project_id = self.project_id(project)
        key = lock_key(project, target)
        conn = connect(self.url)
        try:
            taken = False
            found: tuple[LockInfo, int] | None = None
            for _ in range(3):  # the holder may release between our try and our look
                taken = bool(_scalar(conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))))
                if taken:
                    break
                found = _holder(conn, project_id, target, key)
                if found is not None:
                    break
            if not taken:
                info = found[0] if found else LockInfo("an unknown session", "unknown", 0, utcnow())
                raise LockHeld(
                    store=self.describe(),
                    project=project,
                    target=target,
                    holder=info.holder,
                    host=info.host,
                    pid=info.pid,
                    started_at=info.started_at,
                    hint=(
                        "Wait for it to finish: the lock is freed as soon as that process "
                        "ends or loses its connection."
                    ),
                )
            mine = LockInfo(holder, socket.gethostname(), os.getpid(), utcnow())
            # Holding the advisory lock, a row still there was left by a session that ended
            # without releasing it (a killed runner): its step commands may still run.
            left = conn.execute(
                "SELECT holder, host, pid, started_at, step_groups FROM deploy.deploy_locks"
                " WHERE project_id = %s AND target_name = %s",
                (project_id, target),
            ).fetchone()
            conn.execute(
                "INSERT INTO deploy.deploy_locks (project_id, target_name, holder, host, pid,"
                " started_at, backend_pid) VALUES (%s, %s, %s, %s, %s, %s, pg_backend_pid())"
                " ON CONFLICT (project_id, target_name) DO UPDATE SET holder = excluded.holder,"
                " host = excluded.host, pid = excluded.pid, started_at = excluded.started_at,"
                " backend_pid = excluded.backend_pid, step_groups = excluded.step_groups",
                (project_id, target, mine.holder, mine.host, mine.pid, mine.started_at),
            )
        except psycopg.Error as exc:
            conn.close()
            raise pg_error(self.url, "take the deployment lock", exc) from exc
        except BaseException:
            conn.close()
            raise

        def release() -> None:
            try:
                # unlock first: a row without its lock is harmless (rows are matched by
                # backend pid), a lock without its row would leave the next run unnamed
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
                conn.execute(
                    "DELETE FROM deploy.deploy_locks WHERE project_id = %s AND target_name = %s"
                    " AND backend_pid = pg_backend_pid()",
                    (project_id, target),
                )
            except psycopg.Error:
                pass  # the session is gone, and with it the advisory lock
            finally:
                conn.close()

        def check() -> str | None:
            return _session_lost(conn)

        def record_groups(value: str) -> None:
            try:
                conn.execute(
                    "UPDATE deploy.deploy_locks SET step_groups = %s WHERE project_id = %s"
                    " AND target_name = %s AND backend_pid = pg_backend_pid()",
                    (value, project_id, target),
                )
            except psycopg.Error as exc:
                raise pg_error(self.url, "record the running steps' process groups", exc) from exc

        warning = None
        if left is not None:  # before anything of this run starts
            dead = LockInfo(
                left[0], left[1], left[2], left[3].astimezone(timezone.utc),
                tuple(procgroups.decode(left[4])),
            )  # fmt: skip
            try:
                ended = end_dead_holders_groups(dead)
            except StoreError:
                release()
                raise
            if ended:
                warning = (
                    f"Took over the deployment lock of project {project!r}, target {target!r}"
                    f" from a session that ended without releasing it: {dead.holder} (host"
                    f" {dead.host}, pid {dead.pid}, since {format_time(dead.started_at)}).{ended}"
                )
        return DeployLock(
            project, target, mine, release, warning, check=check, record_groups=record_groups
        )

    def lock_info(self, project: str, target: str) -> LockInfo | None:
        """Who holds the advisory lock of ``project`` + ``target`` now, or None."""
        project_id = self.project_id(project, create=False)
        with self._reader("read the deployment lock"):
            found = _holder(self._conn, project_id, target, lock_key(project, target))
        return found[0] if found else None

    def break_lock(self, project: str, target: str) -> LockInfo | None:
        """Delete a leftover lock row; StoreError while a live session holds the lock."""
        project_id = self.project_id(project, create=False)
        if project_id is None:
            return None
        with self._reader("read the deployment lock"):
            found = _holder(self._conn, project_id, target, lock_key(project, target))
        if found is not None:
            info, backend_pid = found
            raise StoreError(
                f"The deployment lock of project {project!r}, target {target!r} in store "
                f"{self.describe()} is held by a live session: {info.holder} (host "
                f"{info.host}, pid {info.pid}, PostgreSQL backend {backend_pid}). It is freed "
                f"when that process ends; stop it, or as a last resort run "
                f"SELECT pg_terminate_backend({backend_pid})."
            )
        with self._transaction("remove the deployment lock") as db:
            row = db.execute(
                "DELETE FROM {s}deploy_locks WHERE project_id = ? AND target_name = ?"
                " RETURNING holder, host, pid, started_at",
                (project_id, target),
            ).fetchone()
        return None if row is None else LockInfo(row[0], row[1], row[2], row[3])


NAME_WAIT_S = 2.0  # how long a refused run waits for the holder's deploy_locks row


def _session_lost(conn: psycopg.Connection) -> str | None:
    """Why the lock's session is gone, or None while it is alive.

    A quiet connection is trusted (no round trip); one with something to read (the server
    shutting down or restarting sends a message, then closes) is asked with a query.
    """
    if conn.closed:
        return "its PostgreSQL connection is closed"
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
        if readable:
            conn.execute("SELECT 1")
    except (psycopg.Error, OSError, ValueError) as exc:
        return f"its PostgreSQL session ended ({' '.join(str(exc).split()) or type(exc).__name__})"
    return None


def _holder(
    conn: psycopg.Connection, project_id: int | None, target: str, key: int
) -> tuple[LockInfo, int] | None:
    """The holder of advisory lock ``key`` and its backend pid, or None if it is free."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF  # pg_locks shows a bigint key as two oids
    row = conn.execute(
        "SELECT l.pid, a.backend_start, host(a.client_addr), a.application_name"
        " FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
        " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid",
        (unsigned >> 32, unsigned & 0xFFFF_FFFF),
    ).fetchone()
    if row is None:
        return None
    backend_pid, backend_start, client_addr, application = row
    # The holder names itself right after taking the lock: wait (bounded) for that row.
    deadline = time.monotonic() + NAME_WAIT_S
    while project_id is not None:
        named = conn.execute(
            "SELECT holder, host, pid, started_at FROM deploy.deploy_locks"
            " WHERE project_id = %s AND target_name = %s AND backend_pid = %s",
            (project_id, target, backend_pid),
        ).fetchone()
        if named is not None:
            info = LockInfo(named[0], named[1], named[2], named[3].astimezone(timezone.utc))
            return info, backend_pid
        if time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    # Taken but not named yet (or by hand): describe the session instead.
    started = backend_start.astimezone(timezone.utc) if backend_start else utcnow()
    holder = f"a session of {application or 'an unknown application'}"
    return LockInfo(holder, client_addr or "unknown", 0, started), backend_pid


def _scalar(cursor: Any) -> Any:
    """The first column of the one row a query here always returns."""
    row = cursor.fetchone()
    assert row is not None, "the query returns one row"
    return row[0]


def _read_version(conn: psycopg.Connection) -> int:
    if _scalar(conn.execute("SELECT to_regclass('deploy.schema_version')")) is None:
        return 0
    return int(_scalar(conn.execute("SELECT coalesce(max(version), 0) FROM deploy.schema_version")))


class _PostgresSchema:
    """The migrator's driver for one PostgreSQL connection (see :mod:`.migrator`)."""

    kind = "postgresql"

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def read_version(self) -> int:
        return _read_version(self.conn)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        # concurrent openers queue on a transaction-level advisory lock
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
            yield

    def bootstrap(self) -> None:
        # Checked first: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege even when
        # an administrator has made the schema already.
        if _scalar(self.conn.execute("SELECT to_regnamespace(%s)", (PG_SCHEMA,))) is None:
            self.conn.execute(f"CREATE SCHEMA {PG_SCHEMA}")
        self.conn.execute(POSTGRES_BOOTSTRAP)

    def apply(self, step: SchemaStep) -> None:
        # one round trip per step (a store across a slow link opens in a few of them)
        record = sql.SQL(
            "INSERT INTO deploy.schema_version (version, description) VALUES ({}, {})"
        ).format(step.version, step.description)
        self.conn.execute(";\n".join([*step.statements, record.as_string(self.conn)]))

    def set_store_id(self, store_id: str) -> None:
        self.conn.execute(
            "INSERT INTO deploy.store_meta (key, value) VALUES ('store_id', %s)"
            " ON CONFLICT DO NOTHING",
            (store_id,),
        )
