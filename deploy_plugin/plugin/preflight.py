"""``<target>::preflight::<check>``: what is checked before anything of a deployment runs.

:class:`PreflightNode` collects a deployment's checks, :class:`PreflightItem` runs one.

Checks change nothing and report every problem at once: protected-target confirmation,
the lock, required env vars, files, migration drift, the promotion gate
(``targets.<name>.requires``), downs. Each item runs one of the
engine's checks (:mod:`deploy_plugin.engine.checks`,
:mod:`deploy_plugin.engine.migration_checks`) and reports what it found: its notes in the
report section, its warnings at the config's line, a skip, or the one-paragraph failure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from deploy_plugin.engine import checks, gate, migration_checks
from deploy_plugin.engine.checks import Findings
from deploy_plugin.engine.errors import DeployFailure
from deploy_plugin.plugin.deployment import Deployment
from deploy_plugin.plugin.items import DeployItem, skip
from deploy_plugin.plugin.session import DeploySession

#: ``preflight::<name>`` → the engine's check.
CHECKS: dict[str, Callable[[Deployment, Findings], str | None]] = {
    "protected": checks.check_protected,
    "lock": checks.check_lock,
    "env": checks.check_env,
    "files": checks.check_files,
    "migrations-drift": migration_checks.check_migrations_drift,
}


class PreflightItem(DeployItem):
    """``preflight::<check>``: protected, lock, env, files, migrations-drift, gate, downs."""

    kind = "preflight"

    def execute(self) -> None:
        deployment, found = self.deployment, Findings()
        try:
            if self.name == "downs":
                steps = [
                    i
                    for i in deployment.selected_of("rollback", "check_rollback", "undo")
                    if hasattr(i, "down")  # an undo running a rollback_command has none
                ]
                skipped = migration_checks.check_downs(deployment, found, steps)
            elif self.name == "gate":  # a dry run looks at the run's earlier deployments
                run = DeploySession.of(self.config).deployments
                skipped = gate.check_gate(deployment, found, run)
            else:
                skipped = CHECKS[self.name](deployment, found)
            if self.name == "lock" and skipped is None:
                claim_plan(self, found)
        finally:
            report(self, found)
        if skipped:
            skip(skipped)


class PreflightNode(pytest.Collector):
    """Checks that change nothing, run before any step of the deployment."""

    def __init__(self, *, deployment: Deployment, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deployment = deployment

    def collect(self) -> Iterator[pytest.Item]:
        names = [] if self.deployment.dry_run else ["lock"]
        if self.deployment.target.protected and not self.deployment.dry_run:
            names.insert(0, "protected")
        names += ["env", "files"]
        tracked = any(plan.group.track_migrations for plan in self.deployment.plans)
        if tracked:
            names.append("migrations-drift")
        if gate.requirements(self.deployment):
            names.append("gate")  # after the drift check has read the databases' ledgers
        if self.deployment.kind in ("rollback", "check_rollback") or (
            self.deployment.atomic and tracked
        ):
            names.append("downs")  # atomic: what it applies must be undoable
        for index, check in enumerate(names):
            item = PreflightItem.from_parent(self, name=check, deployment=self.deployment)
            item.sort_key = (0, index)
            yield item


def take_lock(deployment: Deployment, item: DeployItem) -> None:
    """Take the deployment's lock (:func:`deploy_plugin.engine.checks.take_lock`), then
    claim the saved plan being applied (if any), under the lock; ``item`` reports."""
    found = Findings()
    try:
        checks.take_lock(deployment, found)
        claim_plan(item, found)
    finally:
        report(item, found)


def claim_plan(item: DeployItem, found: Findings) -> None:
    """Under the lock: the saved plan being applied (if any), checked again, used once."""
    # deferred: +22 modules, 38 ms (saved_plans, store.records, store.projects, …)
    from deploy_plugin.plugin import plans as plan_glue
    from deploy_plugin.store.base import StoreError

    try:
        note = plan_glue.claim(item.deployment, DeploySession.of(item.config))
    except StoreError as err:
        raise DeployFailure(str(err)) from None
    if note:
        found.note(note)


def report(item: DeployItem, found: Findings) -> None:
    """What a check found: notes in ``item``'s report section, warnings shown at its line,
    its remark (the step's message) and facts of its own."""
    item.remark = found.remark or item.remark
    item.extra_facts.update(found.facts)
    for warning, text in found.entries:
        if warning:
            item.deploy_warning(text)
        else:
            item.notes.append(text)
