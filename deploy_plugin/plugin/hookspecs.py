"""Hooks of pytest-deploy (added through ``pytest_addhooks``), so plugins extend without forking.

Implement them in a ``conftest.py`` or a plugin like any pytest hook; pluggy passes only
the arguments an implementation names::

    def pytest_deploy_finished(deployment, report):
        print(report.project, report.target, report.status)

Hooks get read-only views (:mod:`deploy_plugin.engine.views`) and frozen results
(:mod:`deploy_plugin.engine.results`), never the runner's own objects.
A hook that raises fails the step it was called for (``before_*``, ``after_*``), and so
its deployment; an exception in ``pytest_deploy_finished`` only warns (masked).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from deploy_plugin.config import DeployConfig, Group
    from deploy_plugin.engine.results import DeploymentReport, StepResult
    from deploy_plugin.engine.views import DeploymentView, StepView
    from deploy_plugin.plan import GroupPlan
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
def pytest_deploy_finished(deployment: DeploymentView, report: DeploymentReport) -> None:
    """Called once per deployment after its last step: its run is recorded in the store
    and its lock released (notifications are built on it).

    :param deployment: the deployment (read-only).
    :param report: what it did (frozen, secrets masked): ``report.project``,
        ``report.target``, ``report.status`` (``success``, ``failure``, ``interrupted`` or
        ``refused``), ``report.kind``, ``report.dry_run``, ``report.who``,
        ``report.started_at``/``ended_at`` (ISO 8601 UTC), ``report.duration_ms``,
        ``report.steps`` (each a :class:`~deploy_plugin.engine.results.StepResult`, in run
        order), ``report.notes``, ``report.deployment_id`` and ``report.html`` (the
        ``--deploy-html`` page). ``report.to_json()`` is the deployment as the JSON report
        file and the webhooks hold it (README, "JSON report"); ``report.failed_step()``
        the step that stopped it. A ``tryfirst`` implementation may add to
        ``report.links`` for the implementations after it:
        ``report.links["html_url"] = URL`` makes notifications link the run's page there.

    An exception raised here only warns (masked): the run's result stands.
    """
