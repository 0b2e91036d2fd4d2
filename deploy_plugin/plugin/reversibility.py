"""The reversibility check (``--deploy-check-rollback``): its items.

One item per pending migration of the tracked groups,
``<config>::<target>::<group>::check-rollback[<file>]``, in order; each runs the engine's
check of its migration (up, down, compare, up again: verdicts in
:mod:`deploy_plugin.engine.reversibility`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from deploy_plugin.config import DeployConfig
from deploy_plugin.engine import reversibility
from deploy_plugin.migrate.downs import Down, find_down
from deploy_plugin.plugin.collecting import PlannedNode, new_deployment
from deploy_plugin.plugin.items import skip
from deploy_plugin.plugin.preflight import PreflightNode
from deploy_plugin.plugin.session import DeploySession
from deploy_plugin.plugin.steps import StepItem
from deploy_plugin.targets import TargetInfo


class CheckRollbackItem(StepItem):
    """``<group>::check-rollback[<file>]``: up, down, compare, up again."""

    kind = "check_rollback"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind = "check_rollback"
        config = self.deployment.config
        self.down: Down | None = find_down(config.root, self.step.group, self.migration)
        self.command = reversibility.check_command(self.migration, self.down)

    def execute(self) -> None:
        deployment, group = self.deployment, self.step.group
        reason = self.skip_reason()
        if reason is None and not deployment.dry_run:
            self._open_migration_runner()  # brings the history up to date from the ledger
            reason = self.skip_reason()
        if reason:
            skip(reason)
        if deployment.dry_run:
            self.notes.append("dry run: not executed")
            return
        reversibility.refuse_deploy_command(group)
        assert self.down is not None, "preflight::downs stops a check with a missing down"
        reversibility.check_migration(
            deployment, group, self.migration, self.down,
            runner=deployment.migration_runner(group), apply=self._apply_builtin,
            notes=self.notes,
        )  # fmt: skip


class CheckGroupNode(PlannedNode):
    """The reversibility checks of one tracked group, one per migration file."""

    def collect(self) -> Iterator[pytest.Item]:
        position = self.position
        for index, step in enumerate(self.plan.steps):
            if step.file is None:
                continue  # no matching file: nothing to check
            item = CheckRollbackItem.from_parent(
                self, name=f"check-rollback[{step.file}]", deployment=self.deployment, step=step
            )
            item.sort_key = (position, index)
            yield item


def collect_check(
    node: pytest.Collector, session: DeploySession, config: DeployConfig, target: TargetInfo
) -> Iterator[pytest.Item | pytest.Collector]:
    """The items of a reversibility check of ``config`` on ``target``."""
    plans = reversibility.check_plans(config, target, session.group_selected)
    if not plans:
        return
    deployment = new_deployment(node, session, config, target, plans, kind="check_rollback")
    note = reversibility.left_out(plans)
    if note:
        deployment.notes.append(note)
    yield PreflightNode.from_parent(node, name="preflight", deployment=deployment)
    for plan in plans:
        yield CheckGroupNode.from_parent(
            node, name=plan.group.name, deployment=deployment, plan=plan
        )


__all__ = ["CheckRollbackItem", "collect_check"]
