"""The ``deploy.sh`` fallback: a folder with a ``deploy.sh`` and no config is one deployment.

``pytest DIR --deploy-target=T`` collects ``DIR/deploy.sh::T::deploy``, one item that runs
``bash deploy.sh`` in DIR with the target's env vars. It is an ordinary deployment: the
config is made in memory (:func:`script_config`: project = the folder's name, one group
``deploy``), so the deployment, its recorder, the shell runner, masking, reports and dry
run are the ones every config uses. With no preflight items, the one item takes the lock
itself (and asks for a protected target's confirmation) before it runs the script.
A folder that holds a config as well is the config's: the script is not collected.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from deploy_plugin.config.fallback import is_fallback_script, script_config
from deploy_plugin.engine.checks import confirm_protected
from deploy_plugin.plan import plan_group
from deploy_plugin.plugin.collecting import TargetCollector, new_deployment, session_of
from deploy_plugin.plugin.preflight import take_lock
from deploy_plugin.plugin.steps import StepItem

if TYPE_CHECKING:
    from deploy_plugin.plugin.session import DeploySession
    from deploy_plugin.targets import TargetInfo

__all__ = ["DeployScriptFile", "ScriptItem", "is_fallback_script", "script_config"]


class DeployScriptFile(pytest.File):
    """``deploy.sh``: nothing without a target; one deployment per target."""

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        session = session_of(self)
        if not session.options.targets:
            return
        if session.options.rolling_back or session.options.check_rollback:
            asked = "--deploy-check-rollback" if session.options.check_rollback else "a rollback"
            session.usage_problems.append(
                f"{self.nodeid}: a deploy.sh has no tracked migrations, so {asked} has"
                " nothing to act on, and the script is not run in its place. Leave the folder"
                " out of this run, or give it a config with a tracked migrations group"
                " (`pytest-deploy init` turns the script into one)."
            )
            return
        config = script_config(self.path)
        session.seen_groups.add("deploy")
        for target in session.options.targets:
            yield ScriptTargetNode.from_parent(self, name=target, deploy_config=config)


class ScriptTargetNode(TargetCollector):
    """The script deployed to one target: its one item, ``deploy``."""

    def collect_for(
        self, session: DeploySession, target: TargetInfo
    ) -> Iterator[pytest.Item | pytest.Collector]:
        config = self.deploy_config
        if not session.group_selected("deploy"):
            return
        plan = plan_group(config, config.groups[0], target.name)
        self.config.hook.pytest_deploy_plan(
            config=self.config, deploy_config=config, target=target, plans=[plan]
        )
        deployment = new_deployment(self, session, config, target, [plan])
        (step,) = plan.steps
        yield ScriptItem.from_parent(self, name="deploy", deployment=deployment, step=step)


class ScriptItem(StepItem):
    """``deploy.sh::<target>::deploy``: takes the lock, then runs the script."""

    def execute(self) -> None:
        deployment = self.deployment
        if not deployment.dry_run:
            if deployment.target.protected:
                confirm_protected(deployment, self.notes)
            take_lock(deployment, self)
        super().execute()
