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


# -- format: slack (issue 13 §4) ----------------------------------------------------------


def slack_fields(body: dict) -> dict[str, str]:
    (section,) = [b for b in body["blocks"] if b["type"] == "section" and "fields" in b]
    return dict(f["text"].split("\n", 1) for f in section["fields"])


def test_slack_format_posts_text_and_blocks(pytester: pytest.Pytester, http_server) -> None:
    notify_config(pytester, http_server.url_for("/slack"), format="slack")
    args = ["--deploy-target=t", "--deploy-env=TOKEN=canary-slack-secret"]
    pytester.runpytest(*args).assert_outcomes(passed=4)
    (request,) = http_server.requests_to("/slack")
    assert request.headers["content-type"] == "application/json"
    body = request.json()
    assert set(body) == {"text", "blocks"}
    assert body["text"].startswith(":white_check_mark: p → t: SUCCESS in ")
    assert body["blocks"][0] == {
        "type": "header", "text": {"type": "plain_text", "emoji": True, "text": "p → t: success"},
    }  # fmt: skip
    fields = slack_fields(body)
    assert fields["*Project*"] == "p" and fields["*Target*"] == "t"
    assert fields["*Status*"] == "success" and fields["*Duration*"].endswith((" ms", " s"))
    assert "Failed step" not in request.text and "HTML report" not in request.text
    assert body["blocks"][-1]["type"] == "context" and "4 passed" in request.text

    pytester.runpytest(*args, "--deploy-env=FAIL=1").assert_outcomes(passed=3, failed=1)
    failed = http_server.requests_to("/slack")[1]
    body = failed.json()
    assert body["text"].startswith(":x: p → t: FAILURE in ")
    assert body["text"].endswith("(failed: deploy.yaml::t::a::build)")
    assert slack_fields(body)["*Status*"] == "failure"
    (step,) = [b for b in body["blocks"] if "Failed step" in b.get("text", {}).get("text", "")]
    text = step["text"]["text"]
    assert text.startswith("*Failed step* `deploy.yaml::t::a::build`\n```build command of group a")
    assert "secret is ***" in text and "canary-slack-secret" not in failed.text


def test_slack_links_the_html_page_when_the_report_names_one(
    pytester: pytest.Pytester, http_server
) -> None:
    notify_config(pytester, http_server.url_for("/slack"), format="slack")
    pytester.makeconftest(
        """
        import pytest

        @pytest.hookimpl(tryfirst=True)
        def pytest_deploy_finished(deployment, report):
            report.links["html_url"] = "https://ci.example.com/runs/7/deploy.html"
        """
    )
    pytester.runpytest("--deploy-target=t").assert_outcomes(passed=4)
    (request,) = http_server.requests_to("/slack")
    links = [b for b in request.json()["blocks"] if "HTML report" in str(b)]
    link = "<https://ci.example.com/runs/7/deploy.html|HTML report>"
    assert links == [{"type": "section", "text": {"type": "mrkdwn", "text": link}}]


def test_json_stays_the_default_format(pytester: pytest.Pytester, http_server) -> None:
    notify_config(pytester, http_server.url_for("/hook"), format="json")
    pytester.runpytest("--deploy-target=t").assert_outcomes(passed=4)
    (request,) = http_server.requests_to("/hook")
    assert request.json()["status"] == "success" and "blocks" not in request.json()


def test_slack_escapes_its_control_characters_and_masks_each_text() -> None:
    """A step message saying ``<!channel>`` must not ping a channel; a long one is cut to
    Slack's section limit; a secret is masked in every field."""
    from deploy_plugin.engine.results import DeploymentReport, StepResult
    from deploy_plugin.notify.format import slack_message

    failed = StepResult(
        node_id="d.yaml::t::a::build", group="a", kind="build", file=None, checksum=None,
        command=None, outcome="failed", duration_ms=61_000,
        message="<!channel> & s3cret-value " + "x" * 5000,
    )  # fmt: skip
    report = DeploymentReport(
        project="p", target="t", status="failure", kind="deploy", dry_run=False, who="ci",
        started_at="2026-01-01T00:00:00Z", ended_at="2026-01-01T00:01:01Z",
        duration_ms=61_500, steps=(failed,),
    )  # fmt: skip
    body = slack_message(report, lambda text: text.replace("s3cret-value", "***"))
    (step,) = [b for b in body["blocks"] if "Failed step" in str(b)]
    text = step["text"]["text"]
    assert "&lt;!channel&gt; &amp; *** x" in text and "<!channel>" not in str(body)
    assert len(text) < 3000 and text.endswith("…```")
    assert "1 min 1 s" in body["text"]


def test_slack_names_the_page_that_deploy_html_writes(
    pytester: pytest.Pytester, http_server
) -> None:
    notify_config(pytester, http_server.url_for("/slack"), format="slack")
    pytester.runpytest("--deploy-target=t", "--deploy-html=pages/run.html").assert_outcomes(
        passed=4
    )
    (request,) = http_server.requests_to("/slack")
    page = pytester.path / "pages" / "run.html"
    assert page.is_file()
    assert "HTML report" in request.text and str(page) in request.text, request.text
