"""Atomic deployments (``--deploy-atomic`` or ``atomic: true``): a failure undoes the run.

Undo items are collected up front, so ``--collect-only`` and the dry run show them; they
run after every other item of the deployment (the health check included), groups in
reverse order:

* ``<group>::undo[<file>]`` runs the down of a migration (newest first) when this
  deployment applied it (as ``--deploy-rollback`` does: its history row becomes
  ``rolled_back``);
* ``<group>::undo`` / ``<group>::undo[<file>]`` runs the group's ``rollback_command``
  (per file, in reverse, when it names a file placeholder) when the group completed.

When nothing failed each is skipped "deployment succeeded: nothing to undo". The run
still fails (exit 1): the undo items' results say what was undone. A failing undo stops
the undo items after it (the state is then half undone: they would make it worse).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from deploy_plugin.config import FILE_PLACEHOLDERS, placeholders, render_command
from deploy_plugin.engine.runtime import Deployment
from deploy_plugin.migrate.downs import find_down
from deploy_plugin.plan import GroupPlan, Step, file_values
from deploy_plugin.plugin.items import skip
from deploy_plugin.plugin.rollback import RollbackItem
from deploy_plugin.plugin.steps import StepItem

NOTHING_TO_UNDO = "deployment succeeded: nothing to undo"


def _precondition(item: Any) -> None:
    """Skip an undo item when the deployment succeeded or an earlier undo failed."""
    deployment: Deployment = item.deployment
    policy = deployment.policy
    undo_failed = next(
        (i.nodeid for i in deployment.selected_of("undo") if i.nodeid in policy.failed),
        None,
    )
    if undo_failed:
        skip(f"not run: {undo_failed} failed")
    if not (policy.failed or policy.soft_failed) and not deployment.interrupted:
        skip(NOTHING_TO_UNDO)


def _completed(deployment: Deployment, group: str) -> bool:
    """Whether every step of ``group`` ran to the end (passed, or skipped as applied)."""
    steps = [
        i for i in deployment.selected
        if getattr(i, "group_name", None) == group and getattr(i, "kind", None) != "undo"
    ]  # fmt: skip
    for item in steps:
        result = deployment.results.get(item.nodeid)
        if result is None or result.outcome == "failed":
            return False
        if result.outcome == "skipped" and (result.message or "").startswith("not run"):
            return False
    return bool(steps)


class UndoMigrationItem(RollbackItem):
    """``<group>::undo[<file>]``: the down of a migration this deployment applied."""

    kind = "undo"

    def execute(self) -> None:
        _precondition(self)
        if self.file not in self.deployment.applied_here:
            skip(f"{self.file} was not applied by this deployment: nothing to undo")
        if self.down is None:
            from deploy_plugin.plugin.messages import DeployFailure

            raise DeployFailure(
                f"{self.file} was applied by this deployment but has no down file, so it"
                " cannot be undone; undo it by hand (the history says it is applied)."
            )
        super().execute()


class UndoCommandItem(StepItem):
    """``<group>::undo`` / ``<group>::undo[<file>]``: the group's ``rollback_command``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind = "undo"

    def execute(self) -> None:
        _precondition(self)
        group = self.step.group
        if not _completed(self.deployment, group.name):
            skip(f"group {group.name} did not complete: its rollback_command does not run")
        super().execute()


def undo_items(node: pytest.Collector, deployment: Deployment, plan: GroupPlan) -> Iterator[Any]:
    """The undo items of one group, with their place after everything else, in reverse."""
    group, config = plan.group, deployment.config
    position = len(deployment.plans) - deployment.plans.index(plan)
    base = position * 100_000  # groups in reverse order, each group's items in reverse

    def place(item: Any, index: int) -> Any:
        item.sort_key = (len(deployment.plans) + 2, base + index)
        return item

    if group.track_migrations:
        for index, migration in enumerate(reversed(plan.files)):
            down = find_down(config.root, group, migration)
            undo = UndoMigrationItem.from_parent(
                node, name=f"undo[{migration}]", deployment=deployment, migration=migration,
                down=down,
            )  # fmt: skip
            yield place(undo, index)
    elif group.rollback_command is not None:
        values = {"target": deployment.target.name, "project": deployment.project}
        values["group"] = group.name
        per_file = any(n in FILE_PLACEHOLDERS for n in placeholders(group.rollback_command))
        targets: list[str | None] = list(reversed(plan.files)) if per_file else [None]
        for index, rel in enumerate(targets):
            extra = file_values(config.root, rel) if rel is not None else {}
            command = render_command(group.rollback_command, {**values, **extra})
            step = Step(f"undo[{rel}]" if rel else "undo", group, "undo", command, rel, False)
            yield place(
                UndoCommandItem.from_parent(node, name=step.name, deployment=deployment, step=step),
                index,
            )


__all__ = ["NOTHING_TO_UNDO", "UndoCommandItem", "UndoMigrationItem", "undo_items"]
