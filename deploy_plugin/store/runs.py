"""Deployment runs and their steps, as a store keeps them."""

from __future__ import annotations

import os
import socket
from datetime import datetime
from typing import Any

from deploy_plugin.processes import alive_here

from .core import _DEPLOYMENTS, _PROJECT_OF, StoreCore, _changed, _limited
from .errors import StoreError
from .records import DeploymentRecord, StepRecord, utcnow


class RunRepository(StoreCore):
    """Deployment runs and their steps, as a store keeps them."""

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
        kind: str = "deploy",
    ) -> int:
        """Record the start of a deployment run (status ``running``); returns its id.
        ``kind``: ``deploy``, or ``rollback`` for a run that rolls migrations back."""
        project_id = self.project_id(project)
        started = self.driver.time_param(started_at or utcnow())
        with self.driver.statement("record a deployment") as db:
            row = db.execute(
                """INSERT INTO {s}deployments (project_id, target_name, who, started_at,
                    status, dry_run, config_snapshot, config_sha256, host, pid, kind)
                VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?) RETURNING id""",
                (project_id, target, who, started, bool(dry_run), config_snapshot,
                 config_sha256, socket.gethostname(), os.getpid(), kind),
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
        with self.driver.reader("read running deployments") as db:
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
            with self.driver.transaction("mark interrupted deployments") as db:
                db.executemany(
                    "UPDATE {s}deployments SET status = 'interrupted', ended_at = ?"
                    " WHERE id = ? AND status = 'running'",
                    [(self.driver.time_param(utcnow()), id_) for id_, _, _ in dead],
                )
        return dead

    def record_steps(self, deployment_id: int, steps: list[dict[str, Any]]) -> None:
        """Record several steps (dicts with the StepResult's keys), in order, with one
        INSERT statement (one round trip, atomic on its own)."""
        now = self.driver.time_param(utcnow())
        rows = [
            (deployment_id, step["node_id"], step["group"], step["kind"], step["file"],
             step["checksum"], step["command"], step["outcome"], int(step["duration_ms"]),
             step["message"], now, self._started_param(step.get("started_at")))
            for step in steps
        ]  # fmt: skip
        if not rows:
            return
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(rows))
        with self.driver.statement("record deployment steps") as db:
            db.execute(
                """INSERT INTO {s}deployment_steps (deployment_id, node_id, group_name,
                    kind, file, checksum, command, outcome, duration_ms, message,
                    recorded_at, started_at) VALUES """
                + values,
                tuple(value for row in rows for value in row),
            )

    def finish_deployment(self, deployment_id: int, status: str) -> None:
        """Set the final ``status`` (``success`` | ``failure`` | ``interrupted``) and end
        time of a run."""
        with self.driver.statement("finish a deployment") as db:
            cursor = db.execute(
                "UPDATE {s}deployments SET status = ?, ended_at = ? WHERE id = ?",
                (status, self.driver.time_param(utcnow()), deployment_id),
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
        sql, params = _limited(sql + " ORDER BY d.started_at DESC, d.id DESC", params, limit)
        with self.driver.reader("list deployments") as db:
            rows = db.execute(sql, params).fetchall()
        return [self._deployment(row) for row in rows]

    def last_success(self, project: str, target: str) -> DeploymentRecord | None:
        """The newest real (not dry) deployment of ``project`` to ``target`` that ended
        ``success`` (rollbacks and reversibility checks are not deployments), or None:
        what a promotion gate compares with."""
        sql = (
            _DEPLOYMENTS + " WHERE p.name = ? AND d.target_name = ? AND d.status = 'success'"
            " AND d.dry_run = ? AND d.kind = 'deploy' ORDER BY d.started_at DESC, d.id DESC"
        )
        sql, params = _limited(sql, (project, target, False), 1)
        with self.driver.reader("read the last successful deployment") as db:
            row = db.execute(sql, params).fetchone()
        return None if row is None else self._deployment(row)

    def deployment_config(self, deployment_id: int) -> str | None:
        """The config snapshot recorded with a deployment run, or None."""
        with self.driver.reader("read a deployment") as db:
            row = db.execute(
                "SELECT config_snapshot FROM {s}deployments WHERE id = ?", (deployment_id,)
            ).fetchone()
        return None if row is None else row[0]

    def deployment_steps(self, deployment_id: int) -> list[StepRecord]:
        """The recorded steps of a deployment run, in the order they were recorded."""
        with self.driver.reader("read deployment steps") as db:
            rows = db.execute(
                """SELECT node_id, group_name, kind, file, checksum, command, outcome,
                    duration_ms, message, recorded_at, started_at
                FROM {s}deployment_steps WHERE deployment_id = ? ORDER BY id""",
                (deployment_id,),
            ).fetchall()
        return [
            StepRecord(node, group, kind, file, checksum, command, outcome, ms, message,
                       self.driver.time_value(recorded),
                       None if started is None else self.driver.time_value(started))
            for (node, group, kind, file, checksum, command, outcome, ms, message, recorded,
                 started) in rows
        ]  # fmt: skip

    def _started_param(self, value: str | None) -> Any:
        """A step's ISO start (from its result) as this store writes times; None stays."""
        if not value:
            return None
        return self.driver.time_param(datetime.fromisoformat(value.replace("Z", "+00:00")))

    def _deployment(self, row: Any) -> DeploymentRecord:
        id_, project, target, who, started, ended, status, dry_run, sha, kind = row
        ended_at = None if ended is None else self.driver.time_value(ended)
        return DeploymentRecord(int(id_), project, target, who, self.driver.time_value(started),
                                ended_at, status, bool(dry_run), sha, kind)  # fmt: skip
