"""Saved plans a store has seen applied: each plan id is used once (``--deploy-plan``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .core import StoreCore, _changed
from .records import utcnow


@dataclass(frozen=True)
class PlanUse:
    """One deployment of a saved plan that was started (so the plan is spent)."""

    plan_id: str
    project: str
    target: str
    who: str
    used_at: datetime
    deployment_id: int | None


class PlanRepository(StoreCore):
    """The ids of saved plans already applied (schema v5, table ``used_plans``)."""

    def use_plan(
        self, plan_id: str, project: str, target: str, *, who: str, deployment_id: int | None
    ) -> bool:
        """Record that ``plan_id`` is being applied to ``project`` + ``target``.

        One statement on a unique key: of two runs applying the same plan at once, exactly
        one gets True; the other (and every later one) gets False.
        """
        project_id = self.project_id(project)
        with self.driver.statement("record the use of a saved plan") as db:
            cursor = db.execute(
                """INSERT INTO {s}used_plans (plan_id, project_id, target_name, who, used_at,
                    deployment_id) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (plan_id, project_id, target_name) DO NOTHING""",
                (plan_id, project_id, target, who, self.driver.time_param(utcnow()), deployment_id),
            )
            return _changed(cursor)

    def plan_uses(self, plan_id: str) -> list[PlanUse]:
        """Every recorded use of ``plan_id`` (empty: never applied)."""
        with self.driver.reader("look up a saved plan") as db:
            rows = db.execute(
                """SELECT u.plan_id, p.name, u.target_name, u.who, u.used_at, u.deployment_id
                FROM {s}used_plans u JOIN {s}projects p ON p.id = u.project_id
                WHERE u.plan_id = ? ORDER BY u.used_at""",
                (plan_id,),
            ).fetchall()
        return [PlanUse(r[0], r[1], r[2], r[3], self.driver.time_value(r[4]), r[5]) for r in rows]
