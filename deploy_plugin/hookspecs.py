"""Hooks of pytest-deploy (added through ``pytest_addhooks``), so plugins extend without forking.

Implement them in a ``conftest.py`` or a plugin like any pytest hook::

    def pytest_deploy_finished(deployment, report):
        print(report["project"], report["target"], report["status"])

``deployment`` is a :class:`deploy_plugin.runtime.Deployment` (``project``, ``target``,
``config``, ``dry_run``, ``env``, ``masker``); ``report`` is the shared report shape
(DESIGN §6), secrets already masked.
"""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookspec
def pytest_deploy_plan(
    config: pytest.Config, deploy_config: Any, target: Any, plans: list[Any]
) -> None:
    """See or change the plan of one deployment before its items are made.

    ``plans`` is the list of :class:`deploy_plugin.plan.GroupPlan` in run order; remove,
    reorder or replace entries in place (``GroupPlan`` and ``Step`` are frozen
    dataclasses: use ``dataclasses.replace``).
    """


@pytest.hookspec
def pytest_deploy_before_group(deployment: Any, group: Any) -> None:
    """Called before the first item of ``group`` (a config ``Group``) runs."""


@pytest.hookspec
def pytest_deploy_after_group(deployment: Any, group: Any, status: str) -> None:
    """Called after the last item of ``group`` ran; ``status`` is success or failure."""


@pytest.hookspec
def pytest_deploy_before_step(deployment: Any, item: pytest.Item) -> None:
    """Called before a deployment item does its work (not for items reported not run)."""


@pytest.hookspec
def pytest_deploy_after_step(deployment: Any, item: pytest.Item, result: Any) -> None:
    """Called after every deployment item with its :class:`StepResult` (masked)."""


@pytest.hookspec
def pytest_deploy_finished(deployment: Any, report: dict[str, Any]) -> None:
    """Called once per deployment when its last item finished (notifications live here)."""
