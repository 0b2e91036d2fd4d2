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


class FakeWorker:
    """What xdist's scheduler uses of a worker: its id, and the items it is sent."""

    def __init__(self, name: str) -> None:
        self.gateway = type("Gateway", (), {"id": name})()
        self.shutting_down = False
        self.sent: list[int] = []

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent.extend(indices)

    def shutdown(self) -> None:
        self.shutting_down = True


def test_the_scheduler_ends_a_started_deployment_and_moves_one_not_started(
    pytester: pytest.Pytester,
) -> None:
    """The scheduler itself: of a crashed worker's units, the deployment it had started
    ends (its unfinished items are handed back as ended, never sent again); the one it
    had not started yet goes to another worker, whole."""
    from deploy_plugin.plugin.xdist import make_scheduler

    write_config(
        pytester,
        {"project": "p", "targets": {"t": {}, "u": {}, "v": {}},
         "groups": [{"name": "g", "order": 1, "build_command": "true"}]},
    )  # fmt: skip
    config = pytester.parseconfig("--tx", "2*popen", "-p", "xdist")
    ids = [f"deploy.yaml::{t}::{s}" for t in "tuv" for s in ("preflight::lock", "g::build")]
    sched = make_scheduler(config, None, ["t", "u", "v"])
    a, b = FakeWorker("gw0"), FakeWorker("gw1")
    for worker in (a, b):
        sched.add_node(worker)
        sched.add_node_collection(worker, ids)
    sched.schedule()
    assert [ids[i] for i in a.sent] == ids[0:2] + ids[4:6]  # t, then v queued behind it
    assert [ids[i] for i in b.sent] == ids[2:4]  # u
    sched.mark_test_complete(a, 0)  # t's lock step ran; a dies running t's build

    assert sched.remove_node(a) == "deploy.yaml::t::g::build"
    (ended,) = sched.take_ended()
    assert (ended.worker, ended.pending) == ("gw0", ("deploy.yaml::t::g::build",))
    # xdist starts a replacement worker (b was told to stop once the queue was empty)
    c = FakeWorker("gw2")
    sched.add_node(c)
    sched.add_node_collection(c, ids)
    sched.schedule()
    assert [ids[i] for i in c.sent] == ids[4:6]  # v, whole; nothing of t
    assert [ids[i] for i in b.sent] == ids[2:4]


def test_a_crash_after_the_last_step_keeps_the_steps_outcomes(pytester: pytest.Pytester) -> None:
    """The worker dies in the deployment's end (a pytest_deploy_finished hook): every step
    ran and keeps its outcome, once; the crash is an error of the last item's teardown."""
    crashing_project(pytester)
    pytester.makeconftest(
        "import os, signal\n\n"
        "def pytest_deploy_finished(deployment, report):\n"
        "    if deployment.target.name == 't':\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = pytester.runpytest_subprocess(
        "--deploy-target=t", "-n", "2", "-p", "no:cacheprovider", "--deploy-report=report.json",
        "--deploy-env", "CRASH=0",
    )  # fmt: skip
    result.assert_outcomes(passed=7, errors=1)
    result.stdout.fnmatch_lines(["*crashed (its process died) after this step*"])
    (report,) = json.loads((pytester.path / "report.json").read_text())["deployments"]
    assert report["status"] == "success"
    assert [s["outcome"] for s in report["steps"]] == ["passed"] * 7
    assert len(report["steps"]) == len({s["node_id"] for s in report["steps"]})
    assert rows(pytester.path, "SELECT status FROM deployments") == [("success",)]
