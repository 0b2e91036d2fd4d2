"""Notifications, built on ``pytest_deploy_finished`` like any extension would be.

A config's ``notify`` entries are sent when the deployment's status is one of ``on``:
a webhook gets a POST of the deployment's report (``format: json``, the default, DESIGN §6
shape) or of Slack's incoming-webhook shape (``format: slack``); an email entry sends one
plain-text email over SMTP (``notify_email``). Everything is masked. A notification that
fails or hangs past its ``timeout_seconds`` only warns: the deployment's result stands.
A dry run notifies nobody (it calls no URL).
"""

from __future__ import annotations

from deploy_plugin.config import Notify
from deploy_plugin.engine.errors import soft_warn
from deploy_plugin.engine.results import DeploymentReport
from deploy_plugin.engine.views import DeploymentView
from deploy_plugin.notify.format import (
    email_body,
    email_subject,
    json_payload,
    slack_payload,
)
from deploy_plugin.secrets import redact_url
from deploy_plugin.targets import expand_vars, undefined_vars

#: ``notify[].format`` → the webhook body.
FORMATS = {"json": json_payload, "slack": slack_payload}


class NotificationWarning(UserWarning):
    """A notification could not be sent; the deployment's result is unchanged."""


def pytest_deploy_finished(deployment: DeploymentView, report: DeploymentReport) -> None:
    if deployment.dry_run or not deployment.config.notify:
        return
    # an interrupted deployment is a failure to whoever listens for failures
    outcome = "success" if report.status == "success" else "failure"
    for notify in deployment.config.notify:
        if outcome not in notify.on:
            continue
        if notify.email is not None:
            where, problem = _send_email(deployment, notify, report)
        else:
            where, problem = _post_webhook(deployment, notify, report)
        if problem is None:
            continue
        soft_warn(
            NotificationWarning(
                f"notification of {report.project} → {report.target}"
                f" ({report.status}) to {where} failed: {deployment.mask(problem)}; the"
                " deployment's result stands"
            )
        )


def _post_webhook(
    deployment: DeploymentView, notify: Notify, report: DeploymentReport
) -> tuple[str, str | None]:
    # deferred: +134 modules, 92 ms (urllib3.util.url, http.cookiejar, ssl, …)
    import requests  # only when there is someone to notify

    assert notify.webhook is not None
    url = expand_vars(notify.webhook, deployment.env)
    shown = deployment.mask(url)
    undefined = _undefined(notify.webhook, deployment)
    if undefined:
        return shown, undefined
    body = FORMATS[notify.format](report, deployment.mask)
    try:
        response = requests.post(
            url,
            data=body,
            headers={"Content-Type": "application/json", "User-Agent": "pytest-deploy"},
            timeout=notify.timeout_seconds,
            allow_redirects=False,
        )
    except requests.Timeout:
        return shown, f"no answer within {notify.timeout_seconds:g} s"
    except requests.RequestException as err:
        return shown, f"{type(err).__name__}: {err}"
    if response.ok:
        return shown, None
    return shown, f"it answered {response.status_code} {response.reason}"


def _send_email(
    deployment: DeploymentView, notify: Notify, report: DeploymentReport
) -> tuple[str, str | None]:
    # deferred: +33 modules, 23 ms (_hashlib, ssl, calendar, …)
    from deploy_plugin.notify.email import SendError, build_message, send

    email = notify.email
    assert email is not None
    shown = deployment.mask(redact_url(expand_vars(email.url, deployment.env)))
    undefined = _undefined(email.url, deployment)
    if undefined:
        return shown, undefined
    message = build_message(
        email, email_subject(report, deployment.mask), email_body(report, deployment.mask)
    )
    try:
        send(
            email, message, deployment.env, timeout=notify.timeout_seconds,
            project=deployment.project, target=deployment.target.name,
        )  # fmt: skip
    except SendError as err:
        return shown, str(err)
    return shown, None


def _undefined(url: str, deployment: DeploymentView) -> str | None:
    """Why a URL with a ``${VAR}`` no env var defines is not called (preflight::env fails
    on it first, unless --skip-validation skipped that check)."""
    names = undefined_vars(url, deployment.env)
    if not names:
        return None
    listed = ", ".join("${" + n + "}" for n in names)
    return f"its URL uses {listed}, which no env var of this target defines; not sent"
