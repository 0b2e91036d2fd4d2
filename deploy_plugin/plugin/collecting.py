"""What the collectors of a deployment share: the target a node names (or the one failing
item of an unknown one), a new deployment joined to the session, and the collector of one
group's items with its place in the run.

Kept light (pytest and the message item only): a plain pytest run imports it with the
config collectors; what deploys is imported when a target is collected.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from deploy_plugin.plugin.messages import MessageItem

if TYPE_CHECKING:
    from deploy_plugin.config import DeployConfig
    from deploy_plugin.plan import GroupPlan
    from deploy_plugin.plugin.deployment import Deployment
    from deploy_plugin.plugin.session import DeploySession
    from deploy_plugin.targets import TargetInfo


def session_of(node: pytest.Item | pytest.Collector) -> DeploySession:
    # deferred: +6 modules, 17 ms (plugin.options, config.commands, plugin.session, …)
    from deploy_plugin.plugin.session import DeploySession

    return DeploySession.of(node.config)


class UnknownTargetNode(pytest.Collector):
    """``<target>::preflight`` of a target nobody declared: one failing ``target`` item."""

    def __init__(self, *, failure: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.failure = failure

    def collect(self) -> Iterator[pytest.Item]:
        yield MessageItem.from_parent(self, name="target", failure=self.failure)


class TargetCollector(pytest.Collector):
    """A config deployed to the target this node is named after: the items of
    :meth:`collect_for` that target, or the one failing item of a target nobody declared."""

    def __init__(self, *, deploy_config: DeployConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deploy_config = deploy_config

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        session = session_of(self)
        target, problem = session.resolve_target(self.deploy_config, self.name)
        if target is None:
            yield UnknownTargetNode.from_parent(self, name="preflight", failure=problem)
            return
        yield from self.collect_for(session, target)

    def collect_for(
        self, session: DeploySession, target: TargetInfo
    ) -> Iterator[pytest.Item | pytest.Collector]:
        raise NotImplementedError


def new_deployment(
    node: pytest.Collector,
    session: DeploySession,
    config: DeployConfig,
    target: TargetInfo,
    plans: list[GroupPlan],
    kind: str = "deploy",
) -> Deployment:
    """The deployment of ``config`` to ``target`` that ``node`` collects, in the session."""
    # deferred: +57 modules, 164 ms (plugin.deployment, engine.runtime, engine.ledgers, …)
    from deploy_plugin.engine.migrations import Subject
    from deploy_plugin.plugin.deployment import Deployment

    deployment = Deployment(session, Subject(config, target, plans), node.nodeid, kind)
    session.deployments.append(deployment)
    return deployment


class PlannedNode(pytest.Collector):
    """The items of one group of a deployment (subclasses collect them)."""

    def __init__(self, *, deployment: Deployment, plan: GroupPlan, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deployment = deployment
        self.plan = plan

    @property
    def position(self) -> int:
        """The group's place in its deployment (1-based: the preflight comes first)."""
        return 1 + self.deployment.plans.index(self.plan)
