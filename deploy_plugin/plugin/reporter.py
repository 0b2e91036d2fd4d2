"""The one reporter: every step result of a deployment is built here, from one observer.

pytest's makereport of each item's call (``RunHooks.pytest_runtest_makereport``) hands
the item and its report to :func:`observe`: a deploy step's outcome (which the item keeps
in its stash) or a smoke test's report becomes a :class:`StepResult` through
``Deployment.step_result``, is recorded, and is shown to the ``after_step``/``after_group``
hooks; a hook that raises turns the step's report into a failure. pytest makes no report
of a call ended by KeyboardInterrupt or ``pytest.exit``: the session's interrupt hook hands
the deployments to :func:`report_interrupted`, which records the step that was running.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import pytest

from deploy_plugin.engine.results import StepResult
from deploy_plugin.plugin import smoke
from deploy_plugin.plugin.deployment import Deployment
from deploy_plugin.plugin.items import STEP_OUTCOME, DeployItem
from deploy_plugin.plugin.session import DeploySession
from deploy_plugin.plugin.summary import TESTCASE_NAME, testcase_name

#: An item's JUnit testcase name ("" until computed; None when it has none).
_NAME = pytest.StashKey["str | None"]()


def observe(item: pytest.Item, rep: pytest.TestReport) -> None:
    """After each phase's report of any item: record the deployment's step results."""
    if isinstance(item, DeployItem):
        _name_testcase(item, item.deployment, rep)
        if rep.when == "call" and STEP_OUTCOME in item.stash:
            report_step(item, rep)
    else:
        deployment = smoke.deployment_of(item)
        if deployment is not None:  # a smoke test of a deployment; else a plain test
            _name_testcase(item, deployment, rep)
            smoke.record(item, rep, deployment)


def report_interrupted(deployments: Iterable[Deployment]) -> None:
    """After the session was interrupted: record each step whose call began and has no
    result (the one running when Ctrl-C, a signal or ``pytest.exit`` ended it)."""
    for deployment in deployments:
        for item in deployment.selected:
            if (
                isinstance(item, DeployItem)
                and STEP_OUTCOME in item.stash
                and item.nodeid not in deployment.results
            ):
                report_step(item, None)


def _name_testcase(item: pytest.Item, deployment: Any, rep: pytest.TestReport) -> None:
    """Carry the item's JUnit testcase name on its report when JUnit XML is written (maybe
    by xdist's controller, from this report)."""
    if not getattr(item.config.option, "xmlpath", None):
        return
    name = item.stash.get(_NAME, "")
    if name == "":  # once per item (its place is fixed once the run is ordered)
        name = item.stash[_NAME] = testcase_name(item, deployment)
    if name is not None:
        setattr(rep, TESTCASE_NAME, name)


def report_step(item: DeployItem, rep: pytest.TestReport | None) -> None:
    """Record the result of each deploy step ``item`` ran (itself, or the files it carries)
    and tell the hooks (``rep``: pytest's report of its call, None when interrupted)."""
    deployment = item.deployment
    hook_error = None
    for step, (outcome, message, duration) in item.step_outcomes():
        result = deployment.step_result(
            step, outcome=outcome, duration_ms=duration, message=message
        )
        group = deployment.config.group(step.group_name) if step.group_name else None
        last_of_group = group is not None and deployment.last_of_group(step)
        error = _after_hooks(item, step, result, group, last_of_group)
        if error:
            result = replace(result, outcome="failed", message=error)
            hook_error = hook_error or error
        deployment.add_result(
            result,
            # preflight rows and per-file steps share a store transaction with the next
            batch=step.kind == "preflight"
            or (step.kind == "deploy" and step.file is not None and not last_of_group),
        )
    outcome = "failed" if hook_error else item.stash[STEP_OUTCOME][0]
    facts, text = item.facts(outcome)
    # on the item: pytest copies it into the teardown report, which JUnit XML writes
    item.add_report_section("call", "stdout", text)
    if DeploySession.of(item.config).junit_properties:
        item.user_properties.extend(facts.items())
    if rep is None:
        return
    rep.sections.append(("Captured stdout call", text))  # this report is already made
    if hook_error:
        rep.outcome = "failed"
        rep.longrepr = hook_error


def _after_hooks(
    item: DeployItem, step: Any, result: StepResult, group: Any, last: bool
) -> str | None:
    """Run the after-step/after-group hooks for one ``step`` of ``item``; a failing one
    fails the item (and so the deployment): its message, masked, or None."""
    deployment, hook = item.deployment, item.config.hook
    used = DeploySession.of(item.config).hook_used
    try:
        if used("pytest_deploy_after_step"):
            view = deployment.view()
            hook.pytest_deploy_after_step(deployment=view, step=step.view(), result=result)
        if (
            last
            and step.group_name in deployment.groups_started
            and used("pytest_deploy_after_group")
        ):
            failed = step.group_name in deployment.policy.failed_groups
            status = "failure" if failed else "success"
            hook.pytest_deploy_after_group(deployment=deployment.view(), group=group, status=status)
    except Exception as err:  # noqa: BLE001 - a plugin's bug fails this step, no traceback
        message = deployment.masker.mask(
            f"a pytest_deploy_after_step/after_group hook failed: {type(err).__name__}: {err}"
        )
        if result.outcome != "failed":
            deployment.mark_failed(item)
        return message
    return None
