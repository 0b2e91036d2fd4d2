"""Canary secrets never reach any output: terminal, JUnit XML, JSON report, logs, the store."""

from __future__ import annotations

import sqlite3

import pytest
import yaml

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
