"""The store interface (:class:`Store`) and the shared SQL both stores run.

Records (``records.py``), errors (``errors.py``) and the lock handle (``lock.py``) live in
their own modules and are re-exported here.

Both stores (``sqlite.py``, ``postgres.py``) run the same SQL for everything but
connections, schema upgrades and locking. Shared SQL is written with ``?`` parameters and
a ``{s}`` table prefix; each store translates it (``%s`` and ``deploy.`` for PostgreSQL).
Every driver error leaves the store as a :class:`StoreError` with a one-paragraph message.
"""

from __future__ import annotations

import os
import socket
import threading
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Literal, overload

# Records, errors and the lock live in their own modules; they are re-exported here because
# other code imports them from ``deploy_plugin.store.base``.
from .errors import LockHeld, StoreError, describe_url
from .lock import DeployLock
from .records import (
    MIGRATION_STATUSES,
    TARGET_FIELDS,
    DeploymentRecord,
    EnvVarRecord,
    IntentRecord,
    LockInfo,
    MigrationRecord,
    StepRecord,
    TargetRecord,
    alive_here,
    format_time,
    to_utc,
    utcnow,
)

__all__ = [
    "MIGRATION_STATUSES",
    "TARGET_FIELDS",
    "UPSERT_MIGRATION",
    "DeployLock",
    "DeploymentRecord",
    "EnvVarRecord",
    "LockHeld",
    "LockInfo",
    "MigrationRecord",
    "SharedSQL",
    "StepRecord",
    "Store",
    "StoreError",
    "TargetRecord",
    "describe_url",
    "format_time",
    "to_utc",
    "utcnow",
]


class SharedSQL:
    """A connection that runs shared SQL (``?`` parameters, ``{s}`` table prefix),
    translated for its driver and cached per text."""

    def __init__(self, connection: Any, *, prefix: str, pyformat: bool) -> None:
        self.connection = connection
        self._prefix = prefix
        self._pyformat = pyformat
        self._translated: dict[str, str] = {}

    def translate(self, sql: str) -> str:
        """``{s}`` → table prefix; ``?`` → ``%s`` for drivers using the pyformat style."""
        text = self._translated.get(sql)
        if text is None:
            text = sql.replace("{s}", self._prefix)
            if self._pyformat:
                text = text.replace("?", "%s")
            self._translated[sql] = text
        return text

    def execute(self, sql: str, params: Any = ()) -> Any:
        """Run shared SQL with ``params``; returns the driver's cursor."""
        return self.connection.execute(self.translate(sql), params)

    def executemany(self, sql: str, rows: list[Any]) -> None:
        """Run shared SQL once per row (psycopg pipelines them: one round trip, not N)."""
        if hasattr(self.connection, "executemany"):  # sqlite3
            self.connection.executemany(self.translate(sql), rows)
            return
        with self.connection.cursor() as cursor:
            cursor.executemany(self.translate(sql), rows)


# -- shared SQL ---------------------------------------------------------------------------

UPSERT_MIGRATION = """
    INSERT INTO {s}migration_history (project_id, target_name, migration_file,
        migration_checksum, applied_at, applied_by, execution_time_ms, status, error_message)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (project_id, target_name, migration_file) DO UPDATE SET
        migration_checksum = excluded.migration_checksum, applied_at = excluded.applied_at,
        applied_by = excluded.applied_by, execution_time_ms = excluded.execution_time_ms,
        status = excluded.status, error_message = excluded.error_message"""
_DELETE_INTENT = """
    DELETE FROM {s}migration_intents
    WHERE project_id = ? AND target_name = ? AND migration_file = ?"""
_PROJECT_ID = "SELECT id FROM {s}projects WHERE name = ?"
_PROJECT_OF = "project_id = (SELECT id FROM {s}projects WHERE name = ?)"
_MIGRATIONS = """
    SELECT h.migration_file, h.migration_checksum, h.applied_at, h.applied_by,
        h.execution_time_ms, h.status, h.error_message
    FROM {s}migration_history h JOIN {s}projects p ON p.id = h.project_id
    WHERE p.name = ? AND h.target_name = ?"""
_TARGET_COLUMNS = """name, type, provider, host, region, protected, health_check_url,
    created_at, updated_at"""
_DEPLOYMENTS = """
    SELECT d.id, p.name, d.target_name, d.who, d.started_at, d.ended_at, d.status, d.dry_run,
        d.config_sha256
    FROM {s}deployments d JOIN {s}projects p ON p.id = d.project_id"""


class Store(ABC):
    """Projects, targets, env vars, migration history, deployment runs and the deploy lock.

    Open one with :func:`deploy_plugin.store.open_store`. Methods may be called from
    several threads of one process (calls are serialised); each process opens its own.
    Timestamps come back as aware UTC datetimes; naive ones passed in are local time.
    Reads never create a project; writes create it on first use.
    """

    kind: str
    url: str
    _db: SharedSQL

    def __init__(self, url: str) -> None:
        self.url = url
        self._mutex = threading.RLock()
        self._project_ids: dict[str, int] = {}

    # -- what each store provides ---------------------------------------------------------

    @abstractmethod
    def close(self) -> None:
        """Close the store's connection (a held lock is not released by this)."""

    @abstractmethod
    def describe(self) -> str:
        """The store for messages (file path, or URL with the password masked)."""

    @abstractmethod
    def schema_version(self) -> int:
        """The schema version recorded in the store."""

    @abstractmethod
    def _transaction(self, what: str) -> AbstractContextManager[SharedSQL]:
        """A write transaction, committed on success; driver errors become StoreError
        saying that the store could not ``what`` (e.g. "record a migration")."""

    @abstractmethod
    def _reader(self, what: str) -> AbstractContextManager[SharedSQL]:
        """The connection for reads; driver errors become StoreError."""

    @abstractmethod
    def _time_param(self, value: datetime) -> Any:
        """A datetime as the driver stores it."""

    @abstractmethod
    def _time_value(self, value: Any) -> datetime:
        """A stored timestamp as an aware UTC datetime."""

    @abstractmethod
    def _record_on_connection(
        self, connection: Any, project: str, target: str, record: MigrationRecord
    ) -> None:
        """Write a history row inside the caller's open transaction on ``connection``."""

    @abstractmethod
    def is_store_connection(self, connection: Any) -> bool:
        """Whether a connection opened by someone else reaches this store's database.

        The built-in SQL executor asks this to decide whether a migration and its history
        row can commit in one transaction (``record_migration(connection=...)``).
        """

    @abstractmethod
    def acquire_lock(self, project: str, target: str, *, holder: str) -> DeployLock:
        """Take the deployment lock of ``project`` + ``target``; LockHeld at once if held.

        ``holder`` names the runner for others (e.g. ``alice``); the lock also records
        this host, this process id and the start time.
        """

    @abstractmethod
    def lock_info(self, project: str, target: str) -> LockInfo | None:
        """Who holds the deployment lock of ``project`` + ``target``, or None."""

    @abstractmethod
    def break_lock(self, project: str, target: str) -> LockInfo | None:
        """Remove a lock left by a dead run (for ``pytest-deploy unlock``); returns it.

        PostgreSQL refuses (StoreError) while a live session holds the advisory lock: it
        frees itself when that session ends.
        """

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"

    # -- projects -------------------------------------------------------------------------

    @overload
    def project_id(self, name: str) -> int: ...

    @overload
    def project_id(self, name: str, *, create: Literal[True]) -> int: ...

    @overload
    def project_id(self, name: str, *, create: bool) -> int | None: ...

    def project_id(self, name: str, *, create: bool = True) -> int | None:
        """The id of project ``name``, created on first use unless ``create`` is false."""
        if name in self._project_ids:
            return self._project_ids[name]
        with self._reader("look up a project") as db:
            row = db.execute(_PROJECT_ID, (name,)).fetchone()
        if row is None:
            if not create:
                return None
            with self._transaction("create a project") as db:
                db.execute(
                    "INSERT INTO {s}projects (name, created_at) VALUES (?, ?)"
                    " ON CONFLICT (name) DO NOTHING",
                    (name, self._time_param(utcnow())),
                )
                row = db.execute(_PROJECT_ID, (name,)).fetchone()
        self._project_ids[name] = int(row[0])
        return self._project_ids[name]

    def projects(self) -> list[str]:
        """Names of all projects in the store, sorted."""
        with self._reader("list projects") as db:
            return [row[0] for row in db.execute("SELECT name FROM {s}projects ORDER BY name")]

    # -- migration history ----------------------------------------------------------------

    def applied_migrations(self, project: str, target: str) -> dict[str, MigrationRecord]:
        """Every history row of ``project`` + ``target`` (all statuses) by file; one query."""
        with self._reader("read the migration history") as db:
            rows = db.execute(_MIGRATIONS, (project, target)).fetchall()
        return {row[0]: self._migration(row) for row in rows}

    def migration_history(
        self, project: str, target: str, limit: int | None = None
    ) -> list[MigrationRecord]:
        """History rows of ``project`` + ``target``, newest first, at most ``limit``."""
        sql = _MIGRATIONS + " ORDER BY h.applied_at DESC, h.id DESC"
        params: tuple[Any, ...] = (project, target)
        if limit is not None:
            sql, params = sql + " LIMIT ?", (*params, limit)
        with self._reader("read the migration history") as db:
            rows = db.execute(sql, params).fetchall()
        return [self._migration(row) for row in rows]

    def record_migration(
        self, project: str, target: str, record: MigrationRecord, *, connection: Any = None
    ) -> None:
        """Insert or replace the history row of ``record.file`` for ``project`` + ``target``.

        ``connection``: the caller's connection to this store's database with an open
        transaction (psycopg for PostgreSQL, sqlite3 for SQLite); the row is written in
        that transaction, so a migration and its row commit or roll back together, and
        the caller commits. None: written and committed on the store's own connection.
        """
        if record.status not in MIGRATION_STATUSES:
            raise ValueError(
                f"migration status {record.status!r} is not one of {', '.join(MIGRATION_STATUSES)}"
            )
        if connection is not None:
            self._record_on_connection(connection, project, target, record)
            return
        project_id = self.project_id(project)
        with self._transaction("record a migration") as db:
            db.execute(UPSERT_MIGRATION, self._migration_params(project_id, target, record))
            db.execute(_DELETE_INTENT, (project_id, target, record.file))

    # -- intents of shell-applied migrations ----------------------------------------------

    def begin_intent(
        self, project: str, target: str, file: str, checksum: str, *,
        deployment_id: int | None, who: str,
    ) -> None:  # fmt: skip
        """Note that ``file`` is about to be applied by a shell step of this process.

        :meth:`record_migration` removes it with the history row; one found later means a
        run died while the file may have been applying (``intents``).
        """
        project_id = self.project_id(project)
        with self._transaction("record a migration intent") as db:
            db.execute(
                """INSERT INTO {s}migration_intents (project_id, target_name, migration_file,
                    checksum, deployment_id, who, host, pid, started_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (project_id, target, file, checksum, deployment_id, who, socket.gethostname(),
                 os.getpid(), self._time_param(utcnow())),
            )  # fmt: skip

    def intents(self, project: str, target: str) -> list[IntentRecord]:
        """Intents of ``project`` + ``target`` still in the store, by file."""
        with self._reader("read migration intents") as db:
            rows = db.execute(
                f"""SELECT migration_file, checksum, deployment_id, who, host, pid, started_at
                FROM {{s}}migration_intents WHERE {_PROJECT_OF} AND target_name = ?
                ORDER BY migration_file""",
                (project, target),
            ).fetchall()
        return [
            IntentRecord(file, checksum, deployment_id, who, host, pid, self._time_value(started))
            for file, checksum, deployment_id, who, host, pid, started in rows
        ]

    def forget_intent(self, project: str, target: str, file: str) -> bool:
        """Delete the intent of ``file`` (the way out after checking it did not apply)."""
        with self._transaction("delete a migration intent") as db:
            return _changed(
                db.execute(
                    f"DELETE FROM {{s}}migration_intents WHERE {_PROJECT_OF}"
                    " AND target_name = ? AND migration_file = ?",
                    (project, target, file),
                )
            )

    def history_statement(
        self, project: str, target: str, record: MigrationRecord
    ) -> tuple[str, tuple[Any, ...]]:
        """The upsert of ``record``'s history row as one statement with ``{}`` placeholders,
        for the migration runner to send inside the migration's own transaction when this
        store is the target's database (see :meth:`is_store_connection`). An
        ``execution_time_ms`` of None is left to the caller (its ELAPSED_MS)."""
        from deploy_plugin.migrate.executor import ELAPSED_MS

        project_id = self.project_id(project)  # committed first, on the store's connection
        params = list(self._migration_params(project_id, target, record))
        if record.execution_time_ms is None:
            params[6] = ELAPSED_MS
        text = self._db.translate(UPSERT_MIGRATION.replace("?", "{}"))
        return text, tuple(params)

    def delete_migration(self, project: str, target: str, file: str) -> bool:
        """Delete the history row of ``file``; whether there was one."""
        with self._transaction("delete a migration history row") as db:
            return _changed(
                db.execute(
                    f"DELETE FROM {{s}}migration_history WHERE {_PROJECT_OF}"
                    " AND target_name = ? AND migration_file = ?",
                    (project, target, file),
                )
            )

    def _migration_params(
        self, project_id: int, target: str, record: MigrationRecord
    ) -> tuple[Any, ...]:
        applied_at = self._time_param(record.applied_at)
        return (project_id, target, record.file, record.checksum, applied_at,
                record.applied_by, record.execution_time_ms, record.status,
                record.error_message)  # fmt: skip

    def _migration(self, row: Any) -> MigrationRecord:
        file, checksum, applied_at, *rest = row
        return MigrationRecord(file, checksum, self._time_value(applied_at), *rest)

    # -- targets --------------------------------------------------------------------------

    def add_target(
        self,
        project: str,
        name: str,
        *,
        type: str | None = None,
        provider: str | None = None,
        host: str | None = None,
        region: str | None = None,
        protected: bool = False,
        health_check_url: str | None = None,
    ) -> TargetRecord:
        """Add target ``name`` to ``project``; StoreError if it already exists."""
        project_id = self.project_id(project)
        now = self._time_param(utcnow())
        values = (project_id, name, type, provider, host, region, bool(protected),
                  health_check_url, now, now)  # fmt: skip
        with self._transaction("add a target") as db:
            row = db.execute(
                f"""INSERT INTO {{s}}deployment_targets (project_id, {_TARGET_COLUMNS})
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (project_id, name) DO NOTHING
                RETURNING {_TARGET_COLUMNS}""",
                values,
            ).fetchone()
        if row is None:
            raise StoreError(
                f"Target {name!r} already exists for project {project!r} in store "
                f"{self.describe()}. Change it with `pytest-deploy target update` "
                f"(Store.update_target), or remove it first."
            )
        return self._target(row)

    def update_target(self, project: str, name: str, **fields: Any) -> TargetRecord:
        """Change fields (``type``, ``provider``, ``host``, ``region``, ``protected``,
        ``health_check_url``) of a stored target; StoreError if there is no such target."""
        unknown = sorted(set(fields) - set(TARGET_FIELDS))
        if unknown:
            raise TypeError(
                f"update_target() got unknown field(s) {', '.join(unknown)}; "
                f"known: {', '.join(TARGET_FIELDS)}"
            )
        if "protected" in fields:
            fields["protected"] = bool(fields["protected"])
        assignments = "".join(f"{field} = ?, " for field in fields)  # names checked above
        with self._transaction("update a target") as db:
            row = db.execute(
                f"UPDATE {{s}}deployment_targets SET {assignments}updated_at = ?"
                f" WHERE {_PROJECT_OF} AND name = ? RETURNING {_TARGET_COLUMNS}",
                (*fields.values(), self._time_param(utcnow()), project, name),
            ).fetchone()
        if row is None:
            raise self._no_target(project, name)
        return self._target(row)

    def remove_target(self, project: str, name: str) -> None:
        """Remove a stored target; StoreError if there is none.

        Its migration history and env vars are kept: they are keyed by target *name*, so
        history is never lost silently and re-adding the target (or declaring it in a
        config) finds them again. Delete env vars explicitly with :meth:`delete_env`.
        """
        with self._transaction("remove a target") as db:
            cursor = db.execute(
                f"DELETE FROM {{s}}deployment_targets WHERE {_PROJECT_OF} AND name = ?",
                (project, name),
            )
        if not _changed(cursor):
            raise self._no_target(project, name)

    def get_target(self, project: str, name: str) -> TargetRecord | None:
        """The stored target ``name`` of ``project``, or None."""
        with self._reader("read a target") as db:
            row = db.execute(
                f"SELECT {_TARGET_COLUMNS} FROM {{s}}deployment_targets"
                f" WHERE {_PROJECT_OF} AND name = ?",
                (project, name),
            ).fetchone()
        return None if row is None else self._target(row)

    def list_targets(self, project: str) -> list[TargetRecord]:
        """Stored targets of ``project``, sorted by name."""
        with self._reader("list targets") as db:
            rows = db.execute(
                f"SELECT {_TARGET_COLUMNS} FROM {{s}}deployment_targets"
                f" WHERE {_PROJECT_OF} ORDER BY name",
                (project,),
            ).fetchall()
        return [self._target(row) for row in rows]

    def targets_in_use(self, project: str) -> list[str]:
        """Target names of ``project`` that have env vars, migration history or deployment
        runs, whether or not the target itself is stored (a removed target keeps them)."""
        where = f"WHERE {_PROJECT_OF}"
        with self._reader("list targets in use") as db:
            rows = db.execute(
                f"SELECT target_name FROM {{s}}env_vars {where}"
                f" UNION SELECT target_name FROM {{s}}migration_history {where}"
                f" UNION SELECT target_name FROM {{s}}deployments {where} ORDER BY 1",
                (project, project, project),
            ).fetchall()
        return [row[0] for row in rows]

    def target_usage(self, project: str, target: str) -> dict[str, int]:
        """How many ``env_vars``, ``migrations`` (history rows) and ``deployments`` (runs)
        the store keeps for ``project`` + ``target``."""
        counts = {}
        with self._reader("count a target's records") as db:
            for key, table in (
                ("env_vars", "env_vars"),
                ("migrations", "migration_history"),
                ("deployments", "deployments"),
            ):
                counts[key] = int(
                    db.execute(
                        f"SELECT count(*) FROM {{s}}{table} WHERE {_PROJECT_OF}"
                        " AND target_name = ?",
                        (project, target),
                    ).fetchone()[0]
                )
        return counts

    def _no_target(self, project: str, name: str) -> StoreError:
        known = ", ".join(target.name for target in self.list_targets(project)) or "none"
        return StoreError(
            f"No target {name!r} is stored for project {project!r} in store "
            f"{self.describe()} (stored targets: {known}). Add it with "
            f"`pytest-deploy target add` (Store.add_target), or check the spelling."
        )

    def _target(self, row: Any) -> TargetRecord:
        name, type_, provider, host, region, protected, url, created_at, updated_at = row
        return TargetRecord(
            name, type_, provider, host, region, bool(protected), url,
            self._time_value(created_at), self._time_value(updated_at),
        )  # fmt: skip

    # -- env vars -------------------------------------------------------------------------

    def set_env(self, project: str, target: str, name: str, value: str) -> None:
        """Set env var ``name`` of ``project`` + ``target`` (stored in plain text)."""
        project_id = self.project_id(project)
        with self._transaction("set an env var") as db:
            db.execute(
                """INSERT INTO {s}env_vars (project_id, target_name, name, value, updated_at)
                VALUES (?, ?, ?, ?, ?) ON CONFLICT (project_id, target_name, name)
                DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at""",
                (project_id, target, name, value, self._time_param(utcnow())),
            )

    def get_env(self, project: str, target: str, name: str) -> str | None:
        """The value of env var ``name``, or None."""
        with self._reader("read an env var") as db:
            row = db.execute(
                f"SELECT value FROM {{s}}env_vars WHERE {_PROJECT_OF}"
                " AND target_name = ? AND name = ?",
                (project, target, name),
            ).fetchone()
        return None if row is None else row[0]

    def delete_env(self, project: str, target: str, name: str) -> bool:
        """Delete env var ``name``; whether it existed."""
        with self._transaction("delete an env var") as db:
            return _changed(
                db.execute(
                    f"DELETE FROM {{s}}env_vars WHERE {_PROJECT_OF}"
                    " AND target_name = ? AND name = ?",
                    (project, target, name),
                )
            )

    def list_env(self, project: str, target: str) -> list[EnvVarRecord]:
        """Env vars of ``project`` + ``target``, sorted by name."""
        with self._reader("list env vars") as db:
            rows = db.execute(
                f"SELECT name, value, updated_at FROM {{s}}env_vars WHERE {_PROJECT_OF}"
                " AND target_name = ? ORDER BY name",
                (project, target),
            ).fetchall()
        return [EnvVarRecord(name, value, self._time_value(at)) for name, value, at in rows]

    def env_values(self, project: str, target: str) -> dict[str, str]:
        """Env vars of ``project`` + ``target`` as a name → value dict."""
        return {record.name: record.value for record in self.list_env(project, target)}

    # -- deployment runs ------------------------------------------------------------------

    def start_deployment(
        self,
        project: str,
        target: str,
        *,
        who: str,
        config_snapshot: str,
        config_sha256: str,
        dry_run: bool,
        started_at: datetime | None = None,
    ) -> int:
        """Record the start of a deployment run (status ``running``); returns its id."""
        project_id = self.project_id(project)
        started = self._time_param(started_at or utcnow())
        with self._transaction("record a deployment") as db:
            row = db.execute(
                """INSERT INTO {s}deployments (project_id, target_name, who, started_at,
                    status, dry_run, config_snapshot, config_sha256, host, pid)
                VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?) RETURNING id""",
                (project_id, target, who, started, bool(dry_run), config_snapshot,
                 config_sha256, socket.gethostname(), os.getpid()),
            ).fetchone()  # fmt: skip
        return int(row[0])

    def interrupt_dead_runs(
        self, project: str, target: str, *, current: int | None, lock_held: bool
    ) -> list[tuple[int, str | None, int | None]]:
        """Mark ``running`` deployments whose process is gone as ``interrupted``.

        A run's process is gone when it ran on this host and its pid is dead, or, while the
        caller holds the deployment lock (``lock_held``), when it was a real (not dry) run:
        only the lock holder can be deploying. Returns ``(id, host, pid)`` of each.
        """
        with self._reader("read running deployments") as db:
            rows = db.execute(
                f"""SELECT id, host, pid, dry_run FROM {{s}}deployments
                WHERE {_PROJECT_OF} AND target_name = ? AND status = 'running'""",
                (project, target),
            ).fetchall()
        dead = [
            (int(id_), host, pid)
            for id_, host, pid, dry_run in rows
            if id_ != current
            and ((lock_held and not dry_run) or (host and pid and not alive_here(host, pid)))
        ]
        if dead:
            with self._transaction("mark interrupted deployments") as db:
                db.executemany(
                    "UPDATE {s}deployments SET status = 'interrupted', ended_at = ?"
                    " WHERE id = ? AND status = 'running'",
                    [(self._time_param(utcnow()), id_) for id_, _, _ in dead],
                )
        return dead

    def record_step(
        self,
        deployment_id: int,
        *,
        node_id: str,
        group: str | None,
        kind: str,
        file: str | None,
        checksum: str | None,
        command: str | None,
        outcome: str,
        duration_ms: int,
        message: str | None,
    ) -> None:
        """Record one step (item) of deployment ``deployment_id``; steps keep their order."""
        self.record_steps(
            deployment_id,
            [
                {"node_id": node_id, "group": group, "kind": kind, "file": file,
                 "checksum": checksum, "command": command, "outcome": outcome,
                 "duration_ms": duration_ms, "message": message}
            ],
        )  # fmt: skip

    def record_steps(self, deployment_id: int, steps: list[dict[str, Any]]) -> None:
        """Record several steps (dicts of record_step's keywords) in one transaction."""
        now = self._time_param(utcnow())
        rows = [
            (deployment_id, step["node_id"], step["group"], step["kind"], step["file"],
             step["checksum"], step["command"], step["outcome"], int(step["duration_ms"]),
             step["message"], now)
            for step in steps
        ]  # fmt: skip
        with self._transaction("record deployment steps") as db:
            db.executemany(
                """INSERT INTO {s}deployment_steps (deployment_id, node_id, group_name,
                    kind, file, checksum, command, outcome, duration_ms, message,
                    recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                rows,
            )

    def finish_deployment(self, deployment_id: int, status: str) -> None:
        """Set the final ``status`` (``success`` | ``failure`` | ``interrupted``) and end
        time of a run."""
        with self._transaction("finish a deployment") as db:
            cursor = db.execute(
                "UPDATE {s}deployments SET status = ?, ended_at = ? WHERE id = ?",
                (status, self._time_param(utcnow()), deployment_id),
            )
        if not _changed(cursor):
            raise StoreError(
                f"Deployment {deployment_id} is not in store {self.describe()}, so it cannot "
                f"be finished. Pass the id that start_deployment() returned."
            )

    def deployments(
        self, project: str, target: str | None = None, limit: int | None = 20
    ) -> list[DeploymentRecord]:
        """Deployment runs of ``project`` (optionally of one target), newest first."""
        sql = _DEPLOYMENTS + " WHERE p.name = ?"
        params: tuple[Any, ...] = (project,)
        if target is not None:
            sql, params = sql + " AND d.target_name = ?", (*params, target)
        sql += " ORDER BY d.started_at DESC, d.id DESC"
        if limit is not None:
            sql, params = sql + " LIMIT ?", (*params, limit)
        with self._reader("list deployments") as db:
            rows = db.execute(sql, params).fetchall()
        return [self._deployment(row) for row in rows]

    def get_deployment(self, deployment_id: int) -> DeploymentRecord | None:
        """One deployment run by id, or None."""
        with self._reader("read a deployment") as db:
            row = db.execute(_DEPLOYMENTS + " WHERE d.id = ?", (deployment_id,)).fetchone()
        return None if row is None else self._deployment(row)

    def deployment_config(self, deployment_id: int) -> str | None:
        """The config snapshot recorded with a deployment run, or None."""
        with self._reader("read a deployment") as db:
            row = db.execute(
                "SELECT config_snapshot FROM {s}deployments WHERE id = ?", (deployment_id,)
            ).fetchone()
        return None if row is None else row[0]

    def deployment_steps(self, deployment_id: int) -> list[StepRecord]:
        """The recorded steps of a deployment run, in the order they were recorded."""
        with self._reader("read deployment steps") as db:
            rows = db.execute(
                """SELECT node_id, group_name, kind, file, checksum, command, outcome,
                    duration_ms, message, recorded_at
                FROM {s}deployment_steps WHERE deployment_id = ? ORDER BY id""",
                (deployment_id,),
            ).fetchall()
        return [
            StepRecord(node, group, kind, file, checksum, command, outcome, ms, message,
                       self._time_value(recorded))
            for node, group, kind, file, checksum, command, outcome, ms, message, recorded in rows
        ]  # fmt: skip

    def _deployment(self, row: Any) -> DeploymentRecord:
        id_, project, target, who, started, ended, status, dry_run, sha = row
        ended_at = None if ended is None else self._time_value(ended)
        return DeploymentRecord(int(id_), project, target, who, self._time_value(started),
                                ended_at, status, bool(dry_run), sha)  # fmt: skip


def _changed(cursor: Any) -> bool:
    """Whether a DELETE or UPDATE touched a row."""
    return bool(cursor.rowcount > 0)
