"""Canary secrets never reach any output: terminal, JUnit XML, JSON report, logs, the store."""

from __future__ import annotations

import json
import sqlite3

import pytest
import yaml

from tests.projects import write_project

STORED = "stored-canary-7f3a"
CLI = "cli-canary-91bd"
PROCESS = "process-canary-c0de"
URL_PASSWORD = "url-canary-5e5e"


@pytest.mark.parametrize("fail", [False, True], ids=["passing", "failing"])
def test_canaries_are_masked_everywhere(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fail: bool
) -> None:
    from deploy_plugin.store import open_store

    echo_all = (
        'echo "stored=$STORED_SECRET cli=$CLI_TOKEN process=$API_KEY url=$DB_URL";'
        ' echo "$STORED_SECRET" >&2'
    )
    config = {
        "project": "p",
        "targets": {"t": {}},
        "groups": [
            {
                "name": "a",
                "order": 1,
                "required_env_vars": ["STORED_SECRET", "CLI_TOKEN", "API_KEY", "DB_URL"],
                "build_command": echo_all,
                "test_command": f"{echo_all}; exit {int(fail)}",
                "post_deploy": ["echo done"],
            }
        ],
        "health_check": {"url": "http://127.0.0.1:1/${STORED_SECRET}", "timeout_seconds": 0.3},
    }
    (pytester.path / "deploy.yaml").write_text(yaml.safe_dump(config))
    store = open_store(None, pytester.path)
    store.set_env("p", "t", "STORED_SECRET", STORED)
    store.close()
    monkeypatch.setenv("API_KEY", PROCESS)
    monkeypatch.setenv("DB_URL", f"postgresql://app:{URL_PASSWORD}@127.0.0.1/x")
    result = pytester.runpytest(
        "--deploy-target=t", f"--deploy-env=CLI_TOKEN={CLI}", "--junitxml=out.xml",
        "-o", "junit_logging=all", "--deploy-report=report.json", "-rA",
    )  # fmt: skip
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == 1  # the health check (passing run) or the test step
    texts = {
        "terminal": result.stdout.str() + result.stderr.str(),
        "junit": (pytester.path / "out.xml").read_text(),
        "report": (pytester.path / "report.json").read_text(),
    }
    for log in (pytester.path / ".deploy" / "logs").rglob("*.log"):
        texts[str(log)] = log.read_text()
    db = sqlite3.connect(pytester.path / ".deploy" / "state.sqlite3")
    for table in ("deployments", "deployment_steps"):
        texts[table] = repr(db.execute(f"SELECT * FROM {table}").fetchall())
    assert (
        "stored=*** cli=*** process=*** url=postgresql://app:***@127.0.0.1/x" in texts["terminal"]
    )
    for where, text in texts.items():
        for canary in (STORED, CLI, PROCESS, URL_PASSWORD):
            assert canary not in text, f"{canary} leaked into {where}"


# -- issue 9 #10: the leaks found from outside ---------------------------------------------

SECRET = "leak-canary/+ 8a2f"  # "/", "+" and " " change under URL encoding


def test_debug_logs_finished_hooks_and_webhook_warnings_are_masked(
    pytester: pytest.Pytester, http_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    http_server.set_route("/health", 200)
    http_server.set_route("/hook", 500)
    config = {
        "project": "p",
        "targets": {"t": {}},
        "groups": [{"name": "a", "order": 1, "deploy_command": "echo $TOKEN_X"}],
        "health_check": {"url": http_server.url_for("/health") + "?key=${TOKEN_X}"},
        "notify": [{"webhook": http_server.url_for("/hook") + "?t=${TOKEN_X}"}],
    }
    (pytester.path / "deploy.yaml").write_text(yaml.safe_dump(config))
    pytester.makeconftest(
        """
        def pytest_deploy_finished(deployment, report):
            raise RuntimeError("hook saw " + deployment.env["TOKEN_X"])
        """
    )
    result = pytester.runpytest_subprocess(
        "--deploy-target=t", f"--deploy-env=TOKEN_X={SECRET}", "--log-level=DEBUG",
        "--junitxml=out.xml", "-o", "junit_logging=all", "-rA", "-W", "always",
    )  # fmt: skip
    terminal = result.stdout.str() + result.stderr.str()
    assert "hook saw ***" in terminal, terminal  # the hook's failure is shown, masked
    assert "/hook?t=" in terminal  # the webhook warning is shown, masked
    xml = (pytester.path / "out.xml").read_text()
    from urllib.parse import quote, quote_plus

    for where, text in (("terminal", terminal), ("junit", xml)):
        for form in (SECRET, quote(SECRET, safe=""), quote_plus(SECRET), quote(SECRET)):
            assert form not in text, f"{form!r} leaked into {where}"


def test_a_process_database_url_password_is_masked_on_its_own(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    password = "dbpass-canary-41"
    monkeypatch.setenv("DATABASE_URL", f"postgresql://app:{password}@127.0.0.1:1/x")
    config = {
        "project": "p",
        "targets": {"t": {}},
        "groups": [
            {
                "name": "a",
                "order": 1,
                "required_env_vars": ["DATABASE_URL"],
                "deploy_command": "python3 -c \"import os, urllib.parse as u;"
                " print('pw', u.urlparse(os.environ['DATABASE_URL']).password)\"",
            }
        ],
    }
    (pytester.path / "deploy.yaml").write_text(yaml.safe_dump(config))
    result = pytester.runpytest("--deploy-target=t", "-rA", "--deploy-report=r.json")
    text = result.stdout.str() + (pytester.path / "r.json").read_text()
    assert "pw ***" in text and password not in text
    for log in (pytester.path / ".deploy" / "logs").rglob("*"):
        assert password not in (log.read_text() if log.is_file() else "")
        # step logs are the owner's only, like the store
        assert log.stat().st_mode & 0o077 == 0, f"{log} is {oct(log.stat().st_mode)}"


def test_a_not_run_step_never_shows_a_url_password(pytester: pytest.Pytester) -> None:
    write_project(
        pytester,
        {"groups": [
            {"name": "first", "order": 1, "build_command": "exit 3"},
            {"name": "second", "order": 2,
             "build_command": "psql postgresql://admin:hunter2pw@127.0.0.1:1/db -c 'select 1'"},
        ]},
    )  # fmt: skip
    result = pytester.runpytest(
        "--deploy-target=t", "--junitxml=out.xml", "-o", "junit_logging=system-out",
        "--deploy-report=r.json",
    )  # fmt: skip
    result.assert_outcomes(passed=3, failed=1, skipped=1)
    for text in (
        result.stdout.str(),
        (pytester.path / "out.xml").read_text(),
        (pytester.path / "r.json").read_text(),
    ):
        assert "hunter2pw" not in text
    steps = json.loads((pytester.path / "r.json").read_text())["deployments"][0]["steps"]
    assert steps[-1]["command"].startswith("psql postgresql://admin:***@127.0.0.1:1/db")


def test_a_config_value_named_like_a_secret_is_masked(pytester: pytest.Pytester) -> None:
    """Issue 24 #3: the name rule (KEY, SECRET, TOKEN, PASS) applies to a target's config
    ``env`` values as to process values: terminal, step log, store and report; a URL
    password in any config value too."""
    key, password = "cfg-key-canary-77", "cfg-pass-canary-78"
    config = {
        "project": "p",
        "targets": {
            "t": {
                "env": {
                    "API_KEY": key,
                    "REPLICA": f"postgresql://app:{password}@127.0.0.1:1/x",
                    "REGION": "eu-west-1",
                }
            }
        },
        "groups": [
            {"name": "a", "order": 1, "deploy_command": "echo key=$API_KEY r=$REPLICA $REGION"}
        ],
    }
    (pytester.path / "deploy.yaml").write_text(yaml.safe_dump(config))
    result = pytester.runpytest("--deploy-target=t", "-rA", "--deploy-report=r.json")
    result.assert_outcomes(passed=4)
    text = result.stdout.str() + (pytester.path / "r.json").read_text()
    assert "key=***" in text and "eu-west-1" in text
    for canary in (key, password):
        assert canary not in text
        for log in (pytester.path / ".deploy" / "logs").rglob("*"):
            assert canary not in (log.read_text() if log.is_file() else "")
        for store in (pytester.path / ".deploy").glob("state.sqlite3*"):
            assert canary.encode() not in store.read_bytes()
