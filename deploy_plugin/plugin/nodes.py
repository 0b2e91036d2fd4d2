"""Collectors: a config file becomes targets, a preflight, groups and their items.

Tree (DESIGN §3): ``<config>::<target>::preflight::<check>``,
``<config>::<target>::<group>::<step>``, ``<config>::<target>::health_check``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from deploy_plugin.config import ConfigError, DeployConfig, load_config
from deploy_plugin.config.requires import promotion_order
from deploy_plugin.engine.errors import DeployWarning
from deploy_plugin.plugin.collecting import (
    PlannedNode,
    TargetCollector,
    new_deployment,
    session_of,
)
from deploy_plugin.plugin.messages import MessageItem

if TYPE_CHECKING:
    from deploy_plugin.config import Group
    from deploy_plugin.plan import Matched
    from deploy_plugin.plugin.deployment import Deployment
    from deploy_plugin.plugin.preflight import PreflightNode
    from deploy_plugin.plugin.session import DeploySession
    from deploy_plugin.targets import TargetInfo

# A config found by a plain pytest run (no target) is only validated: what deploys is
# imported by the collectors of a target (issue 14: the plugin's import cost).

#: Item kinds that frame a deployment: never selected or deselected on their own (they
#: run with any step or smoke test their deployment keeps: deploy_plugin.plugin.selection).
FRAMING = ("preflight", "health_check")


# --------------------------------------------------------------------------- collectors


class DeployConfigFile(pytest.File):
    """A deployment config: one ``validate`` item, or one collector per target."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._matched: dict[str, Matched] = {}

    def matched(self, config: DeployConfig, group: Group) -> Matched:
        """A group's files, matched once for the config check and every target."""
        if group.name not in self._matched:
            # deferred: +5 modules (plan.steps, plan.files, …): none for a config without files
            from deploy_plugin.plan import match_group

            self._matched[group.name] = match_group(config, group)
        return self._matched[group.name]

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        session = session_of(self)
        try:
            config = load_config(self.path)  # from the file, every run (DESIGN §5)
        except ConfigError as err:
            yield MessageItem.from_parent(self, name="validate", failure=err.every_problem())
            return
        problem = None
        if any(g.track_migrations and g.file_patterns for g in config.groups):
            # deferred: +7 modules (migrate.downs, plan, …): only a config that tracks files
            from deploy_plugin.migrate.downs import tracked_files_problem

            problem = tracked_files_problem(
                config, self.nodeid or str(self.path), lambda g: self.matched(config, g).files
            )
        if problem is not None:  # needs the files on disk, so not in load_config
            yield MessageItem.from_parent(self, name="validate", failure=str(problem))
            return
        session.seen_groups.update(g.name for g in config.groups)
        for line, text in config.order_ties():
            warnings.warn_explicit(DeployWarning(text), DeployWarning, str(self.path), line or 1)
        if not session.options.targets:
            yield MessageItem.from_parent(self, name="validate", failure=None)
            return

        # a required target deploys first: the gate of the one requiring it then sees it
        for target in promotion_order(session.options.targets, config.targets):
            yield TargetNode.from_parent(
                self, name=target, deploy_config=config, matched=self.matched
            )


class TargetNode(TargetCollector):
    """One deployment: the config deployed to one target."""

    def __init__(self, *, matched: Callable[[DeployConfig, Group], Matched], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.matched = matched
        self.preflight: PreflightNode | None = None  # its deployment's, once collected

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        # deferred: +63 modules, 167 ms (plan.steps, targets, migrate.ledger, …)
        from deploy_plugin.plugin.preflight import PreflightNode

        for node in super().collect():
            if isinstance(node, PreflightNode):
                self.preflight = node
            yield node

    def collect_for(
        self, session: DeploySession, target: TargetInfo
    ) -> Iterator[pytest.Item | pytest.Collector]:
        # deferred: +63 modules, 100 ms (engine.results, migrate.ledger, engine.migrations, …)
        from deploy_plugin.plugin.items import HealthCheckItem
        from deploy_plugin.plugin.preflight import PreflightNode

        config = self.deploy_config
        if session.options.rolling_back:
            # deferred: +60 modules, 74 ms (plugin.options, engine.runtime, engine.results, …)
            from deploy_plugin.plugin.rollback import collect_rollback

            yield from collect_rollback(self, session, config, target)
            return
        if session.options.check_rollback:
            # deferred: +69 modules, 146 ms (engine.migrations, engine.ledgers, targets, …)
            from deploy_plugin.plugin.reversibility import collect_check

            yield from collect_check(self, session, config, target)
            return
        # deferred: +5 modules (plan.steps, plan.files, …): only with a target
        from deploy_plugin.plan import plan_group

        plans = [
            plan_group(config, group, target.name, self.matched(config, group))
            for group in config.groups
            if group.applies_to(target.name) and session.group_selected(group.name)
        ]
        self.config.hook.pytest_deploy_plan(
            config=self.config, deploy_config=config, target=target, plans=plans
        )
        if not plans:  # nothing of this config is selected for this target: no deployment
            names = [g.name for g in config.groups if g.applies_to(target.name)]
            if names:  # --group/--skip-group left none: say so, as for -k (plugin.py)
                session.unselected_groups.append(
                    f"no group selected: --group/--skip-group left none of the groups of"
                    f" {self.nodeid.split('::')[0]} for target {target.name!r} (groups:"
                    f" {', '.join(names)}); nothing was deployed"
                )
            return
        deployment = new_deployment(self, session, config, target, plans)
        if session.options.deploy_to is not None:
            # deferred: +10 modules, 12 ms (plan.steps, plan.files, plan.states, …)
            from deploy_plugin.plugin.deploy_to import cut_deployment

            if not cut_deployment(session, deployment):
                session.deployments.remove(deployment)
                return  # refused (exit 4, one paragraph): nothing to collect
        yield PreflightNode.from_parent(self, name="preflight", deployment=deployment)
        for plan in plans:
            yield GroupNode.from_parent(
                self, name=plan.group.name, deployment=deployment, plan=plan
            )
        if config.health_check is not None and not session.options.no_health_check:
            item = HealthCheckItem.from_parent(self, name="health_check", deployment=deployment)
            item.sort_key = (len(plans) + 1, 0)
            yield item


class GroupNode(PlannedNode):
    """One group's steps, in their fixed order."""

    def collect(self) -> Iterator[pytest.Item]:
        # deferred: +61 modules, 77 ms (plugin.options, engine.runtime, engine.results, …)
        from deploy_plugin.plugin.applied import collect_applied
        from deploy_plugin.plugin.steps import StepItem

        position = self.position
        applied, own = collect_applied(self, self.deployment, self.plan, position)
        if applied is not None:  # the group's applied files, carried by one item
            yield applied
        mine = {id(step) for step in own}
        for index, step in enumerate(self.plan.steps):
            if id(step) not in mine:
                continue
            item = StepItem.from_parent(self, name=step.name, deployment=self.deployment, step=step)
            item.sort_key = (position, index)
            yield item
        if self.deployment.atomic:
            # deferred: +65 modules, 84 ms (engine.runtime, migrate.downs, plugin.options, …)
            from deploy_plugin.plugin.atomic import undo_items

            yield from undo_items(self, self.deployment, self.plan)


def framing_items(deployment: Deployment) -> list[Any]:
    """A deployment's preflight checks and health check (kinds in ``FRAMING``), in the order
    collected. A node id naming something below the target (``CONFIG::t::group``) makes
    pytest collect only that: the preflight is then collected here, since a deployment
    never runs a step without its lock and checks."""
    if not any(getattr(i, "kind", None) == "preflight" for i in deployment.items):
        target = next((i.getparent(TargetNode) for i in deployment.items), None)
        if target is not None and target.preflight is not None:
            list(target.preflight.collect())  # each item joins deployment.items
    return [i for i in deployment.items if getattr(i, "kind", None) in FRAMING]
