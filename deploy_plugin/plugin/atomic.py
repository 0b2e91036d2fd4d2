"""Atomic deployments (``--deploy-atomic`` or ``atomic: true``): the undo items.

Undo items are collected up front, so ``--collect-only`` and the dry run show them; they
run after every other item of the deployment (the health check included), groups in
reverse order (what each group gets, and when an undo runs:
:mod:`deploy_plugin.engine.atomic`):

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

from deploy_plugin.engine import atomic
from deploy_plugin.plan import GroupPlan
from deploy_plugin.plugin.deployment import Deployment
from deploy_plugin.plugin.items import skip
from deploy_plugin.plugin.rollback import RollbackItem
from deploy_plugin.plugin.steps import StepItem


def _precondition(item: StepItem | RollbackItem) -> None:
    """Skip an undo item when the deployment succeeded or an earlier undo failed."""
    reason = atomic.undo_blocker(item.deployment)
    if reason:
        skip(reason)


class UndoMigrationItem(RollbackItem):
    """``<group>::undo[<file>]``: the down of a migration this deployment applied."""

    kind = "undo"

    def execute(self) -> None:
        _precondition(self)
        reason = atomic.undo_migration_blocker(self.deployment, self.file or "", self.down)
        if reason:
            skip(reason)
        super().execute()


class UndoCommandItem(StepItem):
    """``<group>::undo`` / ``<group>::undo[<file>]``: the group's ``rollback_command``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind = "undo"

    def execute(self) -> None:
        _precondition(self)
        group = self.step.group
        if not atomic.group_completed(self.deployment, group.name):
            skip(f"group {group.name} did not complete: its rollback_command does not run")
        super().execute()


def undo_items(node: pytest.Collector, deployment: Deployment, plan: GroupPlan) -> Iterator[Any]:
    """The undo items of one group, with their place after everything else, in reverse."""
    for undo in atomic.undo_plan(deployment, plan):
        item: UndoMigrationItem | UndoCommandItem
        if undo.step is None:
            item = UndoMigrationItem.from_parent(
                node, name=undo.name, deployment=deployment, migration=undo.migration,
                down=undo.down,
            )  # fmt: skip
        else:
            item = UndoCommandItem.from_parent(
                node, name=undo.name, deployment=deployment, step=undo.step
            )
        item.sort_key = undo.sort_key
        yield item


__all__ = ["UndoCommandItem", "UndoMigrationItem", "undo_items"]
