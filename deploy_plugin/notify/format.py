"""What a notification says: the JSON report, Slack's incoming-webhook shape, a plain-text
email. Pure functions of the deployment's report (a
:class:`~deploy_plugin.engine.results.DeploymentReport`, DESIGN §6 shape) and a masker.

Every text is masked before it leaves: each string of the payload, then the whole payload
once more (a secret split across fields still never leaves whole).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from deploy_plugin.engine.results import DeploymentReport

Mask = Callable[[str], str]
#: Slack's limits: a section's text 3,000 characters, a header's 150.
_SECTION_MAX = 2800
_HEADER_MAX = 150


def json_payload(report: DeploymentReport, mask: Mask) -> bytes:
    """``format: json``: the report itself (its JSON shape), every secret masked."""
    return mask(json.dumps(report.to_json(), sort_keys=True)).encode("utf-8")


def html_link(report: DeploymentReport) -> str | None:
    """The run's HTML page: the URL a hook named (``links["html_url"]``), else the path
    ``--deploy-html`` wrote, else None."""
    return report.links.get("html_url") or report.html or None


def duration(report: DeploymentReport) -> str:
    ms = report.duration_ms
    if ms < 1000:
        return f"{ms} ms"
    return f"{ms / 1000:.1f} s" if ms < 60_000 else f"{ms // 60_000} min {ms % 60_000 // 1000} s"


def headline(report: DeploymentReport) -> str:
    """``shop → production: FAILURE in 12.3 s``."""
    return f"{report.project} → {report.target}: {report.status.upper()} in {duration(report)}"


def counts(report: DeploymentReport) -> str:
    found = Counter(s.outcome for s in report.steps)
    return ", ".join(f"{found[o]} {o}" for o in ("passed", "failed", "skipped") if found[o])


# -- Slack --------------------------------------------------------------------------------


def _escape(text: str) -> str:
    """Slack's three control characters in message text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_message(report: DeploymentReport, mask: Mask) -> dict[str, Any]:
    """``format: slack``: Slack's incoming-webhook body, ``text`` (notifications, clients
    without blocks) plus ``blocks`` (project, target, status, duration, failed step and its
    message, the HTML page when the report names one)."""
    status = report.status
    failed = report.failed_step()
    icon = ":white_check_mark:" if status == "success" else ":x:"
    text = f"{icon} {headline(report)}"
    if failed:
        text += f" (failed: {failed.node_id})"
    fields = [
        ("Project", report.project),
        ("Target", report.target),
        ("Status", status),
        ("Duration", duration(report)),
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                    "text": _cut(f"{report.project} → {report.target}:"
                                                 f" {status}", _HEADER_MAX)}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{name}*\n{_escape(v)}"}
                                       for name, v in fields]},
    ]  # fmt: skip
    if failed:
        message = _cut(failed.message or "(no message)", _SECTION_MAX)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": (
            f"*Failed step* `{_escape(failed.node_id)}`\n```{_escape(message)}```"
        )}})  # fmt: skip
    link = html_link(report)
    if link:
        shown = f"<{link}|HTML report>" if "://" in link else f"HTML report: `{_escape(link)}`"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": shown}})
    context = f"{counts(report)} · by {report.who} · started {report.started_at}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(context)}]})
    masked: dict[str, Any] = _mask_strings({"text": _escape(text), "blocks": blocks}, mask)
    return masked


def slack_payload(report: DeploymentReport, mask: Mask) -> bytes:
    return mask(json.dumps(slack_message(report, mask), ensure_ascii=False)).encode("utf-8")


def _mask_strings(value: Any, mask: Mask) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, list):
        return [_mask_strings(v, mask) for v in value]
    if isinstance(value, dict):
        return {k: _mask_strings(v, mask) for k, v in value.items()}
    return value


# -- email --------------------------------------------------------------------------------


def email_subject(report: DeploymentReport, mask: Mask) -> str:
    return mask(f"[pytest-deploy] {report.project} → {report.target}: {report.status}")


def email_body(report: DeploymentReport, mask: Mask) -> str:
    """The plain-text body: the summary, the failed step and its message, the HTML page."""
    lines = [
        headline(report),
        "",
        f"Project:  {report.project}",
        f"Target:   {report.target}",
        f"Status:   {report.status}",
        f"Duration: {duration(report)} (started {report.started_at},"
        f" ended {report.ended_at})",
        f"By:       {report.who}",
        f"Steps:    {counts(report) or 'none'}",
    ]
    failed = report.failed_step()
    if failed:
        lines += ["", f"Failed step: {failed.node_id}", failed.message or ""]
    link = html_link(report)
    if link:
        lines += ["", f"HTML report: {link}"]
    lines += ["", "-- ", "sent by pytest-deploy"]
    return mask("\n".join(lines) + "\n")
