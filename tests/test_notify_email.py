"""``notify[].email``: a plain-text email over SMTP, against a real server on 127.0.0.1
(aiosmtpd), with STARTTLS, implicit TLS (smtps://) and AUTH; certificates from trustme.

A failure to send only warns: the deployment's exit code and result stand. The SMTP
password and every secret stay out of the email, the terminal and the warnings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.httpserver import closed_port
from tests.projects import write_config
from tests.smtpserver import smtp_server

PASSWORD = "smtp-pass-canary-7"
TOKEN = "canary-mail-secret"
TO = ["ops@example.com", "Dev Team <dev@example.com>"]


def email_config(pytester: pytest.Pytester, url: str, **extra: Any) -> None:
    entry = {k: extra.pop(k) for k in ("on", "timeout_seconds") if k in extra}
    write_config(
        pytester,
        {
            "project": "p",
            "targets": {"t": {}},
            "groups": [{"name": "a", "order": 1,
                        "build_command": "echo secret is $TOKEN; [ \"$FAIL\" != 1 ]"}],
            "notify": [{"email": {"url": url, "from": "deploy@example.com", "to": TO, **extra},
                        **entry}],
        },
    )  # fmt: skip


def run(pytester: pytest.Pytester, *extra: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--deploy-target=t", f"--deploy-env=TOKEN={TOKEN}", "-p", "no:cacheprovider", *extra
    )


def output(result: pytest.RunResult) -> str:
    return result.stdout.str() + result.stderr.str()


def test_a_failed_deployment_is_mailed_over_starttls_with_auth(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with smtp_server(tmp_path, starttls=True, users={"deploy": PASSWORD}) as server:
        monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_file))
        email_config(pytester, server.url("deploy"), password_env="SMTP_PASSWORD", on=["failure"])
        # on: [failure] only: a successful deployment mails nobody
        run(pytester, f"--deploy-env=SMTP_PASSWORD={PASSWORD}").assert_outcomes(passed=4)
        assert server.received == []
        result = run(pytester, f"--deploy-env=SMTP_PASSWORD={PASSWORD}", "--deploy-env=FAIL=1")
        result.assert_outcomes(passed=3, failed=1)
    assert "NotificationWarning" not in output(result), output(result)
    (mail,) = server.received
    assert mail.tls and mail.login == "deploy"
    assert mail.mail_from == "deploy@example.com"
    assert mail.rcpt_tos == ["ops@example.com", "dev@example.com"]
    assert mail.message["Subject"] == "[pytest-deploy] p → t: failure"
    body = mail.body
    assert body.startswith("p → t: FAILURE in ")
    assert "Status:   failure" in body and "Steps:    3 passed, 1 failed" in body
    assert "Failed step: deploy.yaml::t::a::build" in body
    assert "build command of group a" in body and "secret is ***" in body
    raw = mail.message.as_string()
    for secret in (TOKEN, PASSWORD):
        assert secret not in raw and secret not in output(result)


def test_smtps_sends_over_tls_from_the_start(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with smtp_server(tmp_path, implicit_tls=True, users={"deploy": PASSWORD}) as server:
        monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_file))
        monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)  # from the process environment
        email_config(pytester, server.url("deploy"), password_env="SMTP_PASSWORD")
        result = run(pytester)
        result.assert_outcomes(passed=4)
    (mail,) = server.received
    assert mail.tls and mail.login == "deploy"
    assert mail.message["Subject"] == "[pytest-deploy] p → t: success"
    assert "Failed step" not in mail.body
    assert PASSWORD not in output(result)


def test_plain_smtp_without_a_password_sends_as_it_is_told(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    with smtp_server(tmp_path) as server:
        email_config(pytester, server.url(), starttls=False)
        run(pytester).assert_outcomes(passed=4)
    (mail,) = server.received
    assert not mail.tls and mail.login is None


@pytest.mark.parametrize(
    ("server_options", "extra", "env", "trust", "warning"),
    [
        # the password is never sent over an unencrypted connection
        ({"users": {"deploy": PASSWORD}}, {"password_env": "SMTP_PASSWORD"},
         [f"--deploy-env=SMTP_PASSWORD={PASSWORD}"], True, "password is never sent unencrypted"),
        ({}, {"starttls": True}, [], True, "does not offer STARTTLS, which starttls: true"),
        ({"starttls": True, "users": {"deploy": PASSWORD}}, {"password_env": "SMTP_PASSWORD"},
         ["--deploy-env=SMTP_PASSWORD=wrong-password-1"], True, "SMTPAuthenticationError"),
        ({"starttls": True}, {}, [], False, "CERTIFICATE_VERIFY_FAILED"),
    ],
    ids=["no-starttls-no-password", "starttls-required", "bad-password", "untrusted-cert"],
)  # fmt: skip
def test_a_failure_to_send_only_warns(
    pytester: pytest.Pytester,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    server_options: dict[str, Any],
    extra: dict[str, Any],
    env: list[str],
    trust: bool,
    warning: str,
) -> None:
    monkeypatch.delenv("SMTP_PASSWORD", raising=False)
    with smtp_server(tmp_path, **server_options) as server:
        if trust:
            monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_file))
        user = "deploy" if "password_env" in extra else None
        email_config(pytester, server.url(user), **extra)
        result = run(pytester, *env)
        result.assert_outcomes(passed=4)
    assert result.ret == 0
    text = output(result)
    assert f"notification of p → t (success) to {server.url(user)} failed" in text
    assert warning in text, text
    assert "the deployment's result stands" in text
    assert server.received == []
    assert PASSWORD not in text and "wrong-password-1" not in text


def test_an_unreachable_server_only_warns(pytester: pytest.Pytester) -> None:
    email_config(pytester, f"smtp://127.0.0.1:{closed_port()}", timeout_seconds=2)
    result = run(pytester)
    result.assert_outcomes(passed=4)
    assert result.ret == 0
    assert "ConnectionRefusedError" in output(result)


def test_an_unset_password_env_fails_preflight_and_is_never_sent(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 21: checked before anything runs, as a ``${VAR}`` of the URL; with
    --skip-validation (no preflight::env) the notifier itself refuses to send."""
    monkeypatch.delenv("SMTP_PASSWORD", raising=False)
    with smtp_server(tmp_path, starttls=True, users={"deploy": PASSWORD}) as server:
        monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_file))
        email_config(pytester, server.url("deploy"), password_env="SMTP_PASSWORD")
        refused = run(pytester)
        refused.assert_outcomes(passed=2, failed=1, skipped=1)  # the build never ran
        assert "notify[0].email.password_env names SMTP_PASSWORD" in output(refused)
        skipped = run(pytester, "--skip-validation")
        skipped.assert_outcomes(passed=3, skipped=1)
    assert skipped.ret == 0
    assert (
        "$SMTP_PASSWORD (the SMTP password) is not set for this target; set it with"
        " `pytest-deploy env set p SMTP_PASSWORD - --target t`" in output(skipped)
    )
    assert server.received == []
