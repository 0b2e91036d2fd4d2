"""The PostgreSQL store's deployment lock: a session-level ``pg_try_advisory_lock``.

Held on a dedicated connection for the whole deployment, never a transaction-level lock
(that deadlocks with ``CREATE INDEX CONCURRENTLY`` on another connection). The advisory
lock is the truth; a ``deploy_locks`` row only names its holder, and one found by the next
holder was left by a session that ended without releasing it. The run holding the lock
asks before each step whether its session is still alive (:meth:`DeployLock.lost`).
"""

from __future__ import annotations

import os
import select
import socket
import time
from datetime import timezone

import psycopg

from .errors import LockHeld, StoreError
from .lock import DeployLock, decode_groups, end_dead_holders_groups
from .pg_connect import connect, pg_error
from .postgres import PostgresDriver, advisory_key, scalar
from .records import LockInfo, format_time, utcnow


def lock_key(project: str, target: str) -> int:
    """The advisory lock key of one project + target."""
    return advisory_key(f"pytest-deploy deployment lock\0{project}\0{target}")


class PostgresLocks:
    """Deployment locks as advisory locks of the store's database."""

    def __init__(self, driver: PostgresDriver) -> None:
        self.driver = driver

    def acquire(self, project_id: int, project: str, target: str, *, holder: str) -> DeployLock:
        """Take the advisory lock on a dedicated connection, then name the holder.

        A ``deploy_locks`` row found while holding the advisory lock was left by a session
        that ended without releasing it: the step commands it recorded that still run on
        this host are ended first (with a warning), even if that runner lives on after
        losing its session, since it no longer holds the lock and must not run beside us.
        """
        url = self.driver.url
        key = lock_key(project, target)
        conn = connect(url)
        try:
            taken = False
            found: tuple[LockInfo, int] | None = None
            for _ in range(3):  # the holder may release between our try and our look
                taken = bool(scalar(conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))))
                if taken:
                    break
                found = _holder(conn, project_id, target, key)
                if found is not None:
                    break
            if not taken:
                info = found[0] if found else LockInfo("an unknown session", "unknown", 0, utcnow())
                raise LockHeld(
                    store=self.driver.describe(),
                    project=project,
                    target=target,
                    held_by=info,
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
            raise pg_error(url, "take the deployment lock", exc) from exc
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
                raise pg_error(url, "record the running steps' process groups", exc) from exc

        warning = None
        if left is not None:  # before anything of this run starts
            dead = LockInfo(
                left[0], left[1], left[2], left[3].astimezone(timezone.utc),
                decode_groups(left[4]),
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

    def info(self, project_id: int | None, project: str, target: str) -> LockInfo | None:
        """Who holds the advisory lock of ``project`` + ``target`` now, or None."""
        with self.driver.reader("read the deployment lock") as db:
            found = _holder(db.connection, project_id, target, lock_key(project, target))
        return found[0] if found else None

    def break_lock(self, project_id: int | None, project: str, target: str) -> LockInfo | None:
        """Delete a leftover lock row; StoreError while a live session holds the lock."""
        if project_id is None:
            return None
        with self.driver.reader("read the deployment lock") as db:
            found = _holder(db.connection, project_id, target, lock_key(project, target))
        if found is not None:
            info, backend_pid = found
            raise StoreError(
                f"The deployment lock of project {project!r}, target {target!r} in store "
                f"{self.driver.describe()} is held by a live session: {info.holder} (host "
                f"{info.host}, pid {info.pid}, PostgreSQL backend {backend_pid}). It is freed "
                f"when that process ends; stop it, or as a last resort run "
                f"SELECT pg_terminate_backend({backend_pid})."
            )
        with self.driver.transaction("remove the deployment lock") as db:
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
