"""Read-only views of a deployment and its steps: what the ``pytest_deploy_*`` hooks get.

Hooks see these instead of the runner's own objects, so an extension can read everything
it needs (and change the plan through ``pytest_deploy_plan``) without reaching into
state that the runner relies on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from deploy_plugin.config import DeployConfig
from deploy_plugin.secrets import Masker
from deploy_plugin.targets import TargetInfo


@dataclass(frozen=True)
class DeploymentView:
    """One deployment (one config, one target) as hooks see it.

    :ivar project: the project's name.
    :ivar target: the resolved target (declared and stored facts, frozen).
    :ivar config: the loaded config (frozen dataclasses).
    :ivar dry_run: whether this run only plans.
    :ivar env: the steps' environment, read-only (it holds secrets: mask what you print).
    :ivar deployment_id: the store's id of this run (None in a dry run without a store).
    """

    project: str
    target: TargetInfo
    config: DeployConfig
    dry_run: bool
    env: Mapping[str, str]
    deployment_id: int | None
    _masker: Masker

    def mask(self, text: str) -> str:
        """``text`` with this deployment's secrets and any URL password replaced by ``***``."""
        return self._masker.mask(text)


@dataclass(frozen=True)
class StepView:
    """One step (item) of a deployment as hooks see it.

    :ivar node_id: the pytest node id (``<config>::<target>::<group>::<name>``).
    :ivar name: the last part of the node id (``build``, ``deploy[migrations/001.sql]``).
    :ivar group: the group's name (None for preflight, smoke tests, the health check).
    :ivar kind: ``preflight``, ``pre_deploy``, ``build``, ``test``, ``deploy``,
        ``post_deploy``, ``health_check`` or ``smoke``.
    :ivar file: the root-relative file of a per-file step, else None.
    :ivar command: the command as reported (secrets masked), or None.
    """

    node_id: str
    name: str
    group: str | None
    kind: str
    file: str | None
    command: str | None
