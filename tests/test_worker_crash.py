"""An xdist worker that dies under a deployment ends that deployment (issue 20 #10).

xdist gives a crashed worker's pending items to a replacement worker; for a deployment
that would run its later steps without preflight or lock, and run a step that kills its
worker again and again. Here the step kills its own worker (bash's parent, ``$PPID``, is
the worker process that started it) and stamps a file each time it runs.
"""

from __future__ import annotations

import json
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.projects import write_config

CRASH = "echo {target}-{group} >> stamps; kill -9 $PPID; sleep 30"
STAMP = "echo {target}-{group} >> stamps"


def crashing_project(pytester: pytest.Pytester) -> None:
    """Target ``t`` crashes its worker in its second group; target ``u`` deploys fine."""
    write_config(
        pytester,
        {
            "project": "p",
            "targets": {"t": {"env": {"CRASH": "1"}}, "u": {"env": {"CRASH": "0"}}},
            "groups": [
                {"name": "one", "order": 1, "build_command": STAMP},
                {"name": "boom", "order": 2,
                 "build_command": f'if [ "$CRASH" = 1 ]; then {CRASH}; else {STAMP}; fi'},
                {"name": "three", "order": 3, "build_command": STAMP,
                 "post_deploy": [STAMP]},
            ],
        },
    )  # fmt: skip


def rows(root: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(root / ".deploy" / "state.sqlite3") as conn:
        return conn.execute(sql).fetchall()


def test_a_crashed_worker_ends_its_deployment(pytester: pytest.Pytester) -> None:
    crashing_project(pytester)
    result = pytester.runpytest_subprocess(
        "--deploy-target=t", "--deploy-target=u", "-n", "2", "-p", "no:cacheprovider",
        "-rs", "--deploy-report=report.json", "--junitxml=deploy.xml",
        "-o", "junit_logging=system-out",
    )  # fmt: skip
    # the crashing step ran once; nothing of t ran after it, on any worker
    stamps = (pytester.path / "stamps").read_text().split()
    assert [s for s in stamps if s.startswith("t-")] == ["t-one", "t-boom"]
    assert [s for s in stamps if s.startswith("u-")] == ["u-one", "u-boom", "u-three", "u-three"]
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # t: 3 preflight + one passed, boom failed once, three's two steps not run;
    # u: 3 preflight + 4 steps passed
    result.assert_outcomes(passed=11, failed=1, skipped=2)
    result.stdout.fnmatch_lines(["*not run: worker crashed*"])
    # xdist replaces the worker (other targets may still need one); it runs none of t

    (t_report,) = [
        d for d in json.loads((pytester.path / "report.json").read_text())["deployments"]
        if d["target"] == "t"
    ]  # fmt: skip
    assert t_report["status"] == "interrupted"
    outcomes = {s["node_id"].split("::", 2)[2]: s for s in t_report["steps"]}
    assert outcomes["one::build"]["outcome"] == "passed"
    assert outcomes["boom::build"]["outcome"] == "failed"
    assert "crashed" in outcomes["boom::build"]["message"]
    for later in ("three::build", "three::post_deploy[0]"):
        assert outcomes[later]["outcome"] == "skipped"
        assert outcomes[later]["message"].startswith("not run: worker crashed")

    statuses = dict(rows(pytester.path, "SELECT target_name, status FROM deployments"))
    assert statuses == {"t": "interrupted", "u": "success"}
    recorded = dict(
        rows(
            pytester.path,
            "SELECT s.node_id, s.outcome FROM deployment_steps s JOIN deployments d"
            " ON d.id = s.deployment_id WHERE d.target_name = 't'",
        )
    )
    assert recorded["deploy.yaml::t::boom::build"] == "failed"
    assert recorded["deploy.yaml::t::three::build"] == "skipped"
    assert rows(pytester.path, "SELECT * FROM deploy_locks") == []  # the dead run's lock

    # JUnit: the crashed step is one testcase with one <failure>, no <error>
    root = ET.parse(pytester.path / "deploy.xml").getroot()
    boom = [c for c in root.iter("testcase") if c.get("classname", "").endswith("t.boom")]
    assert len(boom) == 1
    assert boom[0].find("failure") is not None and boom[0].find("error") is None
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    assert suite is not None
    assert (suite.get("failures"), suite.get("errors")) == ("1", "0")


def test_the_next_run_deploys_from_its_preflight(pytester: pytest.Pytester) -> None:
    """After a crash the target is free: the next run (no crash) takes the lock without a
    stale-lock warning and deploys every step, preflight first."""
    crashing_project(pytester)
    pytester.runpytest_subprocess("--deploy-target=t", "-n", "2", "-p", "no:cacheprovider")
    (pytester.path / "stamps").unlink()
    result = pytester.runpytest_subprocess(
        "--deploy-target=t", "-p", "no:cacheprovider", "--deploy-env", "CRASH=0"
    )
    result.assert_outcomes(passed=7)
    assert (pytester.path / "stamps").read_text().split() == [
        "t-one",
        "t-boom",
        "t-three",
        "t-three",
    ]
    result.stdout.no_fnmatch_line("*stale*")
