"""The stored targets of a store's projects."""

from __future__ import annotations

from typing import Any

from .core import (
    _PROJECT_OF,
    _TARGET_COLUMNS,
    StoreCore,
    _changed,
)
from .errors import StoreError
from .records import (
    TARGET_FIELDS,
    TargetRecord,
    utcnow,
)


class TargetRepository(StoreCore):
    """The stored targets of a store's projects."""

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
        now = self.driver.time_param(utcnow())
        values = (project_id, name, type, provider, host, region, bool(protected),
                  health_check_url, now, now)  # fmt: skip
        with self.driver.transaction("add a target") as db:
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
        with self.driver.transaction("update a target") as db:
            row = db.execute(
                f"UPDATE {{s}}deployment_targets SET {assignments}updated_at = ?"
                f" WHERE {_PROJECT_OF} AND name = ? RETURNING {_TARGET_COLUMNS}",
                (*fields.values(), self.driver.time_param(utcnow()), project, name),
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
        with self.driver.transaction("remove a target") as db:
            cursor = db.execute(
                f"DELETE FROM {{s}}deployment_targets WHERE {_PROJECT_OF} AND name = ?",
                (project, name),
            )
        if not _changed(cursor):
            raise self._no_target(project, name)

    def get_target(self, project: str, name: str) -> TargetRecord | None:
        """The stored target ``name`` of ``project``, or None."""
        with self.driver.reader("read a target") as db:
            row = db.execute(
                f"SELECT {_TARGET_COLUMNS} FROM {{s}}deployment_targets"
                f" WHERE {_PROJECT_OF} AND name = ?",
                (project, name),
            ).fetchone()
        return None if row is None else self._target(row)

    def list_targets(self, project: str) -> list[TargetRecord]:
        """Stored targets of ``project``, sorted by name."""
        with self.driver.reader("list targets") as db:
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
        with self.driver.reader("list targets in use") as db:
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
        with self.driver.reader("count a target's records") as db:
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
            self.driver.time_value(created_at), self.driver.time_value(updated_at),
        )  # fmt: skip
