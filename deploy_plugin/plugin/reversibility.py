"""The reversibility check (``--deploy-check-rollback``): does each down really undo its up?

For a throw-away or CI database. One item per pending migration of the tracked groups,
``<config>::<target>::<group>::check-rollback[<file>]``, in order: fingerprint the schema
(:mod:`deploy_plugin.migrate.fingerprint`), apply the up, apply the down, fingerprint
again, then apply the up again and record it applied. Verdicts:

* *reversible*: the item passes;
* *schema differs*: it fails naming each difference; the check goes on (the up is applied
  again, so the database is where a deployment would leave it);
* *down fails*: it fails with the down's file, line and error (its transaction rolled
  back, the up stays applied); the check goes on;
* *redo fails*: it fails, and nothing after it runs: the database's state is unknown.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from deploy_plugin.config import DeployConfig
from deploy_plugin.engine.runtime import Deployment
from deploy_plugin.facts import who
from deploy_plugin.migrate.downs import Down, find_down, read_down, undoes_nothing
from deploy_plugin.plan import GroupPlan, Step, plan_group
from deploy_plugin.plugin.items import skip
from deploy_plugin.plugin.messages import DeployFailure
from deploy_plugin.plugin.nodes import GroupNode, PreflightNode, _session
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
        where = "?"
        if self.down is not None:
            where = "its -- migrate:down section" if self.down.section else self.down.file
        self.command = f"check {self.migration}: up, down ({where}), compare schemas, up again"

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
        if group.deploy_command is not None:
            raise DeployFailure(
                f"group {group.name!r} applies its migrations with a deploy_command; the"
                " reversibility check runs ups and downs with the built-in SQL executor only."
                " Remove deploy_command (DATABASE_URL is then used) to check this group."
            )
        self._check(deployment.migration_runner(group))

    def _check(self, runner: Any) -> None:
        from deploy_plugin.migrate.executor import ConnectError, MigrationError
        from deploy_plugin.migrate.fingerprint import diff, fingerprint

        deployment, rel, down = self.deployment, self.migration, self.down
        assert down is not None, "preflight::downs stops a check with a missing down"
        connection, kind = runner.executor.connection, runner.executor.kind
        before = fingerprint(connection, kind)
        self._apply_builtin()  # a failing up fails (and stops) like in a deployment
        checksum = deployment.checksum(rel)
        try:
            done = runner.rollback(rel, down, deployment.config.root, checksum=checksum, who=who())
        except (MigrationError, ConnectError) as err:
            self.notes.append("verdict: down fails")
            raise DeployFailure(
                deployment.masker.mask(
                    f"down fails: {err}. Its transaction was rolled back, so {rel} stays"
                    " applied; the check goes on with the next migration."
                ),
                blocking=False,
            ) from None
        deployment.database.note_undone(self.step.group, rel)
        if done.recorded:
            deployment.remember_migration(done.record)
        else:
            deployment.record_migration(
                rel, status="rolled_back", execution_time_ms=done.record.execution_time_ms
            )
        differences = diff(before, fingerprint(connection, kind))
        empty = (
            f" Its down ({down.file}) is empty: it undoes nothing."
            if undoes_nothing(read_down(deployment.config.root, down))
            else ""
        )
        try:
            self._apply_builtin()
        except DeployFailure as err:
            self.notes.append("verdict: redo fails")
            found = f" (the down also left: {'; '.join(differences)})" if differences else ""
            raise DeployFailure(
                f"redo fails: applying {rel} again after its down: {err}{found}.{empty} The"
                " database's state is unknown, so nothing after it was checked."
            ) from None
        if differences:
            self.notes.append("verdict: schema differs")
            raise DeployFailure(
                f"schema differs: after the down of {rel} ({down.file}) the schema is not what"
                f" it was before the up: {'; '.join(differences)}.{empty} {rel} was applied"
                " again; the check goes on.",
                blocking=False,
            )
        self.notes.append("verdict: reversible")


class CheckGroupNode(GroupNode):
    """The reversibility checks of one tracked group, one per migration file."""

    def collect(self) -> Iterator[pytest.Item]:
        position = 1 + self.deployment.plans.index(self.plan)
        for index, step in enumerate(self.plan.steps):
            if step.file is None:
                continue  # no matching file: nothing to check
            item = CheckRollbackItem.from_parent(
                self, name=f"check-rollback[{step.file}]", deployment=self.deployment, step=step
            )
            item.sort_key = (position, index)
            yield item


def collect_check(
    node: pytest.Collector, session: Any, config: DeployConfig, target: TargetInfo
) -> Iterator[pytest.Item | pytest.Collector]:
    """The items of a reversibility check of ``config`` on ``target``."""
    plans: list[GroupPlan] = []
    for group in config.groups:
        if group.track_migrations and group.applies_to(target.name):
            if session.group_selected(group.name):
                full = plan_group(config, group, target.name)
                steps = tuple(s for s in full.steps if s.tracked)
                plans.append(GroupPlan(group, steps, full.files, full.unmatched_patterns))
    if not plans:
        return
    deployment = Deployment(session, config, target, plans, node.nodeid, kind="check_rollback")
    _session(node).deployments.append(deployment)
    yield PreflightNode.from_parent(node, name="preflight", deployment=deployment)
    for plan in plans:
        yield CheckGroupNode.from_parent(
            node, name=plan.group.name, deployment=deployment, plan=plan
        )


__all__ = ["CheckRollbackItem", "Step", "collect_check"]
