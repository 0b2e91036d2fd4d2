"""Rolling back migrations (``--deploy-rollback=N``, ``--deploy-rollback-to=FILE``): the items.

A rollback is a deployment whose steps are ``<config>::<target>::<group>::rollback[<file>]``,
one per applied migration in the range, newest first. It has the deployment's preflight
(protected target, lock, env, files, drift) plus ``preflight::downs``, which names every
migration in the range without a down file before anything runs. Each down runs in one
transaction with its ledger row removed and, when the store is that database, its history
row set to ``rolled_back``; a failing down is rolled back and stops the run. A rolled-back
migration is pending again: the next deployment applies it. The range and the running of
each down are the engine's (:mod:`deploy_plugin.engine.rollback`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from deploy_plugin.config import DeployConfig
from deploy_plugin.engine import rollback
from deploy_plugin.engine.errors import DeployFailure
from deploy_plugin.migrate.downs import Down
from deploy_plugin.plugin.collecting import new_deployment
from deploy_plugin.plugin.deployment import Deployment
from deploy_plugin.plugin.items import DeployItem, skip
from deploy_plugin.plugin.session import DeploySession
from deploy_plugin.targets import TargetInfo

if TYPE_CHECKING:
    from deploy_plugin.plugin.session import DeploySession


class NothingToRollBack(pytest.Item):
    """``<config>::<target>::rollback``: skipped, "nothing to roll back" (exit 0)."""

    kind = "rollback"

    def __init__(self, *, reason: str, note: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reason, self.note = reason, note

    def runtest(self) -> None:
        # the summary's line, only once the run goes on (a refused run says nothing of it)

        DeploySession.of(self.config).summary_notes.append(self.note)
        skip(self.reason)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, 0, self.nodeid.split("::", 1)[1]


class RollbackGroupNode(pytest.Collector):
    """The rollback steps of one group (they run newest first across groups)."""

    def __init__(self, *, deployment: Deployment, entries: list[rollback.Entry], **kw: Any) -> None:
        super().__init__(**kw)
        self.deployment = deployment
        self.entries = entries

    def collect(self) -> Iterator[pytest.Item]:
        for position, rel, down in self.entries:
            item = RollbackItem.from_parent(
                self, name=f"rollback[{rel}]", deployment=self.deployment, migration=rel, down=down
            )
            item.sort_key = (1, position)
            yield item


class RollbackItem(DeployItem):
    """``<group>::rollback[<file>]``: run the down of one applied migration."""

    kind = "rollback"

    def __init__(self, *, migration: str, down: Down | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.group_name = self.parent.name if self.parent is not None else None
        self.file = migration
        self.down = down
        if down is not None:
            group = self.deployment.config.group(self.group_name or "")
            self.command = rollback.down_command(self.deployment, group, migration, down)

    def execute(self) -> None:
        deployment, rel = self.deployment, self.file or ""
        assert self.down is not None, "preflight::downs stops a range with a missing down"
        group = deployment.config.group(self.group_name or "")
        assert group is not None
        record = deployment.applied().get(rel)
        if record is None or record.status != "success":
            skip(f"not applied to {deployment.target.name} any more: nothing to roll back")
        self.checksum = record.checksum
        empty = rollback.empty_down(deployment.config.root, rel, self.down)
        if deployment.dry_run:
            self.notes.append("dry run: not executed" + (f" ({empty})" if empty else ""))
            return
        if group.deploy_command is None or self.down.section:
            note = rollback.roll_back_builtin(deployment, group, rel, self.down, record.checksum)
            self.notes.append(note)
        else:
            self._roll_back_shell(record.checksum)
        if empty:  # run through, never silently: the schema still has what the up made
            self.remark = empty
            self.deploy_warning(empty)

    def _roll_back_shell(self, checksum: str) -> None:
        deployment, rel = self.deployment, self.file or ""
        assert self.down is not None and self.command is not None
        self.log_path = deployment.log_path(self)
        group = deployment.config.group(self.group_name or "")
        result = rollback.roll_back_shell(
            deployment, group, rel, self.down, command=self.command, checksum=checksum,
            log_path=self.log_path,
        )  # fmt: skip
        self.output = result.tail
        self.log_path = result.log_path  # None when the command printed nothing
        if not result.ok:
            raise DeployFailure(rollback.shell_failure(deployment, rel, self.command, result))


def collect_rollback(
    node: pytest.Collector, session: DeploySession, config: DeployConfig, target: TargetInfo
) -> Iterator[pytest.Item | pytest.Collector]:
    """The items of a rollback of ``config`` on ``target`` (see the module's docstring)."""
    # deferred: +30 modules, 77 ms (store.records, engine.checks, migrate.statements, …)
    from deploy_plugin.plugin.preflight import PreflightNode
    from deploy_plugin.store.base import StoreError

    if session.usage_problems:
        return  # the request is refused (exit 2, one paragraph): nothing to collect
    try:
        store = session.store()
        history = store.migration_history(config.project, target.name) if store else []
    except StoreError as err:
        session.usage_problems.append(str(err))
        return
    options = session.options
    plan = rollback.rollback_plan(
        config, target, [r.file for r in history if r.status == "success"],
        selected=session.group_selected, steps=options.rollback, to=options.rollback_to,
    )  # fmt: skip
    if plan.problem:
        session.usage_problems.append(plan.problem)
        return
    if plan.nothing:
        note = f"{config.project} → {target.name}: {plan.nothing}"
        yield NothingToRollBack.from_parent(node, name="rollback", reason=plan.nothing, note=note)
        return
    deployment = new_deployment(node, session, config, target, plan.tracked, kind="rollback")
    deployment.rollback_orphans.extend(plan.orphans)
    left_out = plan.left_out()
    if left_out:
        deployment.notes.append(left_out)
    yield PreflightNode.from_parent(node, name="preflight", deployment=deployment)
    for group_plan in plan.tracked:
        if group_plan.group.name in plan.entries:
            yield RollbackGroupNode.from_parent(
                node, name=group_plan.group.name, deployment=deployment,
                entries=plan.entries[group_plan.group.name],
            )  # fmt: skip
