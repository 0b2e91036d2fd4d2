"""Webhook notifications, built on pytest_deploy_finished."""

from __future__ import annotations

import pytest

from tests.projects import write_config


def notify_config(pytester: pytest.Pytester, url: str, **extra) -> None:
    write_config(
        pytester,
        {
            "project": "p",
            "targets": {"t": {}},
            "groups": [{"name": "a", "order": 1,
                        "build_command": "echo secret is $TOKEN; [ \"$FAIL\" != 1 ]"}],
            "notify": [{"webhook": url, **extra}],
        },
    )  # fmt: skip


def test_webhook_gets_a_masked_summary(pytester: pytest.Pytester, http_server) -> None:
    notify_config(pytester, "http://127.0.0.1:${HOOK_PORT}/hook", on=["success"])
    port = http_server.url.rsplit(":", 1)[1].strip("/")
    args = [
        "--deploy-target=t",
        "--deploy-env=TOKEN=canary-hook-secret",
        f"--deploy-env=HOOK_PORT={port}",
    ]
    pytester.runpytest(*args).assert_outcomes(passed=4)
    (request,) = http_server.requests_to("/hook")
    body = request.json()
    assert body["project"] == "p" and body["target"] == "t" and body["status"] == "success"
    assert {"steps", "duration_ms", "who", "started_at"} <= set(body)
    assert "canary-hook-secret" not in request.text
    # on: [success] only: a failed deployment notifies nobody
    pytester.runpytest(*args, "--deploy-env=FAIL=1").assert_outcomes(passed=3, failed=1)
    assert len(http_server.requests_to("/hook")) == 1


def test_a_hanging_webhook_only_warns(pytester: pytest.Pytester, http_server) -> None:
    http_server.set_route("/hook", hang=True)
    notify_config(pytester, http_server.url_for("/hook"), timeout_seconds=0.5)
    result = pytester.runpytest("--deploy-target=t")
    result.assert_outcomes(passed=4)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["*notification of p → t (success)*failed: no answer within 0.5 s*"]
    )
