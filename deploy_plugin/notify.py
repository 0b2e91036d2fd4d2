"""Webhook notifications, built on ``pytest_deploy_finished`` like any extension would be.

A config's ``notify`` entries each POST the deployment's report (DESIGN §6 shape, secrets
masked) to a webhook when the deployment's status is one of ``on``. A webhook that fails
or hangs past its ``timeout_seconds`` only warns: the deployment's result stands.
A dry run notifies nobody (it calls no URL).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from typing import Any

from deploy_plugin.targets import expand_vars
from deploy_plugin.views import DeploymentView


class NotificationWarning(UserWarning):
    """A webhook could not be notified; the deployment's result is unchanged."""


def payload(report: dict[str, Any], mask: Callable[[str], str]) -> bytes:
    """The JSON body: the report, with every secret masked once more as a whole."""
    return mask(json.dumps(report, sort_keys=True)).encode("utf-8")


def pytest_deploy_finished(deployment: DeploymentView, report: dict[str, Any]) -> None:
    if deployment.dry_run or not deployment.config.notify:
        return
    import requests  # only when there is someone to notify

    body = None
    for notify in deployment.config.notify:
        # an interrupted deployment is a failure to whoever listens for failures
        if ("success" if report["status"] == "success" else "failure") not in notify.on:
            continue
        body = body or payload(report, deployment.mask)
        url = expand_vars(notify.webhook, deployment.env)
        shown = deployment.mask(url)
        try:
            response = requests.post(
                url,
                data=body,
                headers={"Content-Type": "application/json", "User-Agent": "pytest-deploy"},
                timeout=notify.timeout_seconds,
                allow_redirects=False,
            )
        except requests.Timeout:
            problem = f"no answer within {notify.timeout_seconds:g} s"
        except requests.RequestException as err:
            problem = deployment.mask(f"{type(err).__name__}: {err}")
        else:
            if response.ok:
                continue
            problem = f"it answered {response.status_code} {response.reason}"
        warnings.warn(
            NotificationWarning(
                f"notification of {report['project']} → {report['target']}"
                f" ({report['status']}) to {shown} failed: {problem}; the deployment's"
                " result stands"
            ),
            stacklevel=1,
        )
