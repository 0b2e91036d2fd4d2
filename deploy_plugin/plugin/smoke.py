"""Smoke tests: plain tests using the deployment fixtures run inside their deployment.

They take a place in its order (after a group named by ``deploy_after``, else before the
health check), are skipped "not run" after a failure, and a failing one stops the
deployment like any step.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from deploy_plugin.engine.policy import LOCK_LOST
from deploy_plugin.facts import monotonic_ms
from deploy_plugin.plugin.session import DeploySession

if TYPE_CHECKING:
    from deploy_plugin.plugin.deployment import Deployment

_SMOKE_START = pytest.StashKey[float]()
#: A smoke test's place in its deployment's run order (set by :func:`place`).
SMOKE_PLACE = pytest.StashKey[tuple[int, int]]()


def is_smoke(item: pytest.Item) -> bool:
    return SMOKE_PLACE in item.stash


def sort_key(step: Any) -> tuple[int, int]:
    """A step's place in its deployment's run order: a smoke test's (see :func:`place`),
    else the step's own ``sort_key`` (a DeployItem's, or a file an item carries)."""
    if isinstance(step, pytest.Item) and SMOKE_PLACE in step.stash:
        return step.stash[SMOKE_PLACE]
    key: tuple[int, int] = step.sort_key
    return key


def place(item: pytest.Item, deployment: Deployment) -> None:
    """Give a smoke test its place in the deployment: after a group, or before the health
    check; it then obeys and feeds the deployment's stop policy like a step."""
    mark = item.get_closest_marker("deploy_after")
    last = len(deployment.plans) + 1
    if mark is None:
        item.stash[SMOKE_PLACE] = (last, -1)
        return
    group = mark.args[0] if mark.args else mark.kwargs.get("group")
    order = [g.name for g in deployment.config.groups]  # every group, in run order
    if group not in order:
        raise pytest.UsageError(
            f"{item.nodeid}: @pytest.mark.deploy_after({group!r}) names no group of"
            f" {deployment.config.path.name}; its groups: {', '.join(order)}"
        )
    # after the named group, or (when it is not selected) where it would have run
    before = [p for p in deployment.plans if order.index(p.group.name) <= order.index(group)]
    item.stash[SMOKE_PLACE] = (len(before), 10**6)


def deployment_of(item: pytest.Item) -> Deployment | None:
    if not is_smoke(item):
        return None
    return DeploySession.of(item.config).deployment_for(item)


def setup(item: pytest.Item) -> None:
    """Before a smoke test: start its deployment, or skip it when a step failed."""
    deployment = deployment_of(item)
    if deployment is not None:
        deployment.start()
        if deployment.dry_run:
            pytest.skip("dry run: smoke tests are not run")
        blocker = deployment.blocker(item)
        if blocker:
            pytest.skip(f"not run: {blocker}" + ("" if blocker == LOCK_LOST else " failed"))
        item.stash[_SMOKE_START] = time.monotonic()


def _mask_report(rep: pytest.TestReport, deployment: Deployment) -> None:
    """A smoke test sees the deployment's secrets: mask its failure text and output."""
    mask = deployment.masker.mask
    if isinstance(rep.longrepr, tuple):  # a skip: (path, line, reason)
        path, line, reason = rep.longrepr
        rep.longrepr = (path, line, mask(reason))
    elif rep.longrepr is not None:
        rep.longrepr = mask(rep.longreprtext)
    rep.sections = [(title, mask(content)) for title, content in rep.sections]


def _reason(rep: pytest.TestReport) -> str:
    if isinstance(rep.longrepr, tuple):
        return str(rep.longrepr[2]).removeprefix("Skipped: ")
    lines = str(rep.longreprtext).strip().splitlines()
    return lines[-1] if lines else ""


def record(item: pytest.Item, rep: pytest.TestReport, deployment: Deployment) -> None:
    """After a smoke test's phase (``deployment``: its own, see :func:`deployment_of`):
    mask its report and feed its outcome to the deployment."""
    _mask_report(rep, deployment)
    if rep.when != "call" and not rep.failed and not rep.skipped:
        return
    if rep.when == "teardown" and not rep.failed:
        return
    outcome = "failed" if rep.failed else ("skipped" if rep.skipped else "passed")
    if rep.failed:
        deployment.mark_failed(item)
    message = _reason(rep) if rep.failed or rep.skipped else None
    start = item.stash.get(_SMOKE_START, None)
    duration = monotonic_ms(start) if start is not None else 0
    deployment.add_result(
        deployment.step_result(item, outcome=outcome, duration_ms=duration, message=message)
    )
