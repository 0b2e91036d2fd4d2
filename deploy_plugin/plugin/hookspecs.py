"""Hooks of pytest-deploy (added through ``pytest_addhooks``), so plugins extend without forking.

Implement them in a ``conftest.py`` or a plugin like any pytest hook; pluggy passes only
the arguments an implementation names::

    def pytest_deploy_finished(deployment, report):
        print(report["project"], report["target"], report["status"])

Hooks get read-only views (:mod:`deploy_plugin.plugin.views`), never the runner's own objects.
A hook that raises fails the step it was called for (``before_*``, ``after_*``), and so
its deployment; an exception in ``pytest_deploy_finished`` only warns (masked).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from deploy_plugin.config import DeployConfig, Group
    from deploy_plugin.engine.runtime import StepResult
    from deploy_plugin.plan import GroupPlan
    from deploy_plugin.plugin.views import DeploymentView, StepView
    from deploy_plugin.targets import TargetInfo


@pytest.hookspec
def pytest_deploy_plan(
    config: pytest.Config, deploy_config: DeployConfig, target: TargetInfo, plans: list[GroupPlan]
) -> None:
    """See or change the plan of one deployment before its items are collected.

    :param config: the pytest config.
    :param deploy_config: the loaded deployment config.
    :param target: the target this plan deploys to.
    :param plans: the groups' plans in run order. Remove, reorder or replace entries in
        place (``plans[:] = ...``); ``GroupPlan`` and ``Step`` are frozen dataclasses, so
        change one with ``dataclasses.replace``.
    """


@pytest.hookspec
def pytest_deploy_before_group(deployment: DeploymentView, group: Group) -> None:
    """Called before the first step of ``group`` runs.

    :param deployment: the deployment (read-only).
    :param group: the config's group.
    """


@pytest.hookspec
def pytest_deploy_after_group(deployment: DeploymentView, group: Group, status: str) -> None:
    """Called after the last selected step of a group that started.

    :param deployment: the deployment (read-only).
    :param group: the config's group.
    :param status: ``success``, or ``failure`` when a step of the group failed.
    """


@pytest.hookspec
def pytest_deploy_before_step(deployment: DeploymentView, step: StepView) -> None:
    """Called before a step does its work (not for steps reported "not run").

    :param deployment: the deployment (read-only).
    :param step: the step about to run.
    """


@pytest.hookspec
def pytest_deploy_after_step(
    deployment: DeploymentView, step: StepView, result: StepResult
) -> None:
    """Called after every step, with what it did.

    :param deployment: the deployment (read-only).
    :param step: the step that ran (or was skipped).
    :param result: its outcome, duration and message, secrets masked (frozen).
    """


@pytest.hookspec
def pytest_deploy_finished(deployment: DeploymentView, report: dict[str, Any]) -> None:
    """Called once per deployment after its last step (notifications are built on it).

    :param deployment: the deployment (read-only).
    :param report: the deployment in the shared report shape (README, "JSON report"):
        ``project``, ``target``, ``status`` (success, failure or interrupted), ``steps``...;
        secrets masked.
    """
