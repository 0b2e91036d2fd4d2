"""Issue 9: signals, honest statuses, the lock's health and shell migrations in doubt.

Every test runs pytest as a real process (signals need one) in a small project of its own,
and waits on observable state (a pid file, a row, pg_stat_activity), never on a sleep.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from tests.pg import ADMIN_URL
from tests.procs import alive

WAIT_S = 30.0


def project(tmp_path: Path, groups: list[dict[str, Any]], conftest: str = "") -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "pytest.ini").write_text("[pytest]\n")
    config = {"project": "sig", "targets": {"t": {}}, "groups": groups}
    (root / "deploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    if conftest:
        (root / "conftest.py").write_text(conftest)
    return root


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs",
            "--deploy-target=t", *args]  # fmt: skip


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DEPLOY_"))}


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(*args), cwd=root, env=env(), capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def start(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command(*args), cwd=root, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def wait_for(what: str, check: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + WAIT_S
    while not (value := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)  # a poll interval, not a wait for state
    return value


def deployments(root: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(root / ".deploy" / "state.sqlite3") as conn:
        return conn.execute("SELECT id, status, host, pid FROM deployments ORDER BY id").fetchall()


def lock_rows(root: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(root / ".deploy" / "state.sqlite3") as conn:
        return conn.execute("SELECT holder, pid FROM deploy_locks").fetchall()


SLOW_STEP = {
    "name": "slow",
    "order": 1,
    # the step's shell writes its pid, then waits; its child (sleep) is in its group too
    "deploy_command": "echo $$ > step.pid; sleep 60",
}
AFTER = {"name": "after", "order": 2, "deploy_command": "touch after.ran"}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_termination_signal_is_handled_like_ctrl_c(tmp_path: Path, sig: signal.Signals):
    root = project(tmp_path, [SLOW_STEP, AFTER])
    report = root / "report.json"
    proc = start(root, f"--deploy-report={report}")
    pid_file = root / "step.pid"
    wait_for("the step to start", lambda: pid_file.exists() and pid_file.read_text().strip())
    step_pid = int(pid_file.read_text())
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, output  # pytest's "interrupted"
    assert "Traceback" not in output, output
    wait_for("the step's process group to be gone", lambda: not alive(step_pid))
    assert not (root / "after.ran").exists()
    (row,) = deployments(root)
    assert row[1] == "interrupted", row
    assert lock_rows(root) == []  # released: the next run needs no takeover
    (deployment,) = json.loads(report.read_text())["deployments"]
    assert deployment["status"] == "interrupted"
    slow = next(s for s in deployment["steps"] if s["node_id"].endswith("slow::deploy"))
    assert slow["outcome"] == "failed" and sig.name in slow["message"]


def test_a_run_killed_outright_is_marked_interrupted_by_the_next(tmp_path: Path):
    root = project(tmp_path, [SLOW_STEP])
    proc = start(root)
    wait_for("the step to start", lambda: (root / "step.pid").exists())
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    os.kill(int((root / "step.pid").read_text()), signal.SIGKILL)  # its orphaned step
    (killed,) = deployments(root)
    assert killed[1] == "running" and killed[3] == proc.pid
    (root / "deploy.yaml").write_text(
        yaml.safe_dump({"project": "sig", "targets": {"t": {}}, "groups": [AFTER]})
    )
    rerun = run(root)
    assert rerun.returncode == 0, rerun.stdout
    assert f"deployment {killed[0]} (host {killed[2]}, pid {proc.pid})" in rerun.stdout
    assert [row[1] for row in deployments(root)] == ["interrupted", "success"]


EXIT_IN_HOOK = """
import pytest

def pytest_deploy_before_group(deployment, group):
    if group.name == "after":
        pytest.exit("stopped by a plugin")
"""

FAILING_AFTER_STEP = """
def pytest_deploy_after_step(deployment, step, result):
    if step.node_id.endswith("first::deploy"):
        raise RuntimeError("after-step hook broke")
"""


def test_a_session_ended_early_is_not_recorded_as_success(tmp_path: Path):
    first = {"name": "first", "order": 1, "deploy_command": "true"}
    root = project(tmp_path, [first, AFTER], conftest=EXIT_IN_HOOK)
    report = root / "report.json"
    result = run(root, f"--deploy-report={report}")
    assert result.returncode != 0, result.stdout
    assert not (root / "after.ran").exists()
    (deployment,) = json.loads(report.read_text())["deployments"]
    assert deployment["status"] != "success"
    assert [row[1] for row in deployments(root)] != ["success"]


def test_a_failing_after_step_hook_fails_the_deployment(tmp_path: Path):
    first = {"name": "first", "order": 1, "deploy_command": "true"}
    root = project(tmp_path, [first, AFTER], conftest=FAILING_AFTER_STEP)
    report = root / "report.json"
    result = run(root, f"--deploy-report={report}")
    assert result.returncode == 1, result.stdout
    assert "after-step hook broke" in result.stdout
    assert not (root / "after.ran").exists()  # the deployment stopped there
    (deployment,) = json.loads(report.read_text())["deployments"]
    assert deployment["status"] == "failure"
    assert [row[1] for row in deployments(root)] == ["failure"]


# Two groups: the first runs until the file ``go`` exists (while the test takes its lock away).
UNTIL_GO = [
    {
        "name": "one",
        "order": 1,
        "deploy_command": "touch one.ran; while [ ! -e go ]; do sleep 0.05; done",
    },
    {"name": "two", "order": 2, "deploy_command": "touch two.ran"},
]


# -- the PostgreSQL lock lost mid-deployment ----------------------------------------------


def test_a_lost_postgres_lock_stops_the_deployment(tmp_path: Path, pg_database: str):
    root = project(tmp_path, UNTIL_GO)
    report = root / "report.json"
    proc = start(root, f"--deploy-store={pg_database}", f"--deploy-report={report}")
    dbname = pg_database.rsplit("/", 1)[1]
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        wait_for("the first step to run", lambda: (root / "one.ran").exists())
        # what a restarted server does to the lock's session: it ends
        (backend,) = admin.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND database ="
            " (SELECT oid FROM pg_database WHERE datname = %s)",
            (dbname,),
        ).fetchone()
        admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
        (root / "go").touch()
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, output
    assert not (root / "two.ran").exists(), output
    assert "deployment lock of project 'sig', target 't' was lost" in output, output
    (deployment,) = json.loads(report.read_text())["deployments"]
    steps = {s["node_id"].split("::t::")[1]: s for s in deployment["steps"]}
    assert steps["two::deploy"]["outcome"] == "failed"
    assert deployment["status"] == "failure"


# -- the SQLite lock removed and taken by another run mid-deployment -----------------------

# Run by a subprocess: take the lock of sig/t in the project's store, say so, wait for stdin.
TAKE_LOCK = """
import sys
from pathlib import Path
from deploy_plugin.store import open_store
store = open_store(None, Path(sys.argv[1]))
lock = store.acquire_lock("sig", "t", holder="the-other-run")
print("locked", flush=True)
sys.stdin.readline()
lock.release()
"""


def test_a_lost_sqlite_lock_stops_the_deployment(tmp_path: Path):
    root = project(tmp_path, UNTIL_GO)
    report = root / "report.json"
    proc = start(root, f"--deploy-report={report}")
    wait_for("the first step to run", lambda: (root / "one.ran").exists())
    cli = Path(sys.executable).with_name("pytest-deploy")
    unlock = subprocess.run(
        [str(cli), "unlock", "sig", "--target", "t", "--yes"],
        cwd=root, env=env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert unlock.returncode == 0, unlock.stdout + unlock.stderr
    other = subprocess.Popen(
        [sys.executable, "-c", TAKE_LOCK, str(root)], cwd=root, env=env(), text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "locked"
        (root / "go").touch()
        output, _ = proc.communicate(timeout=60)
        assert proc.returncode == 1, output
        assert not (root / "two.ran").exists(), output
        assert "deployment lock of project 'sig', target 't' was lost" in output, output
        assert "its lock row was removed" in output, output
        (deployment,) = json.loads(report.read_text())["deployments"]
        steps = {s["node_id"].split("::t::")[1]: s for s in deployment["steps"]}
        assert steps["two::deploy"]["outcome"] == "failed"
        assert deployment["status"] == "failure"
        assert lock_rows(root) == [("the-other-run", other.pid)]  # its row stays its own
    finally:
        other.kill()
        other.wait()


# -- shell migrations in doubt ---------------------------------------------------------


def test_a_shell_migration_in_doubt_stops_the_next_run_until_resolved(tmp_path: Path):
    group = {
        "name": "migrations",
        "order": 1,
        "file_patterns": ["migrations/*.sql"],
        "deploy_command": "echo $$ > step.pid; while [ ! -e go ]; do sleep 0.05; done; "
        "cat {file} >> applied.log",
    }
    root = project(tmp_path, [group])
    (root / "migrations").mkdir()
    (root / "migrations" / "001_a.sql").write_text("SELECT 1;\n")
    proc = start(root)
    wait_for("the migration step to start", lambda: (root / "step.pid").exists())
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    os.kill(int((root / "step.pid").read_text()), signal.SIGKILL)
    (root / "go").touch()
    rerun = run(root)
    assert rerun.returncode == 1, rerun.stdout
    assert "a migration is in doubt: migrations/001_a.sql" in rerun.stdout
    assert "pytest-deploy migration mark-applied sig migrations/001_a.sql --target t" in (
        rerun.stdout
    )
    assert "pytest-deploy migration forget-intent sig migrations/001_a.sql" in rerun.stdout
    assert not (root / "applied.log").exists()
    cli = Path(sys.executable).with_name("pytest-deploy")
    forgot = subprocess.run(
        [str(cli), "migration", "forget-intent", "sig", "migrations/001_a.sql", "-t", "t"],
        cwd=root, env=env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert forgot.returncode == 0, forgot.stdout + forgot.stderr
    final = run(root)
    assert final.returncode == 0, final.stdout
    assert (root / "applied.log").read_text() == "SELECT 1;\n"


def test_deploy_status_marks_a_dead_run_interrupted(tmp_path: Path):
    root = project(tmp_path, [SLOW_STEP])
    proc = start(root)
    wait_for("the step to start", lambda: (root / "step.pid").exists())
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    os.kill(int((root / "step.pid").read_text()), signal.SIGKILL)
    cli = Path(sys.executable).with_name("pytest-deploy")
    status = subprocess.run(
        [str(cli), "deploy", "status", "sig", "--json"],
        cwd=root, env=env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert f"pid {proc.pid}" in status.stderr and "interrupted" in status.stderr
    (target,) = json.loads(status.stdout)["targets"]
    assert target["latest"]["status"] == "interrupted"


def test_sigterm_to_the_cli_reaches_the_run_it_started(tmp_path: Path):
    """Issue 9 #4: SIGTERM to ``pytest-deploy deploy run`` recorded the run as success."""
    root = project(tmp_path, [SLOW_STEP, AFTER])
    cli = Path(sys.executable).with_name("pytest-deploy")
    proc = subprocess.Popen(
        [str(cli), "deploy", "run", "sig", "--target", "t", "--json"],
        cwd=root, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    pid_file = root / "step.pid"
    wait_for("the step to start", lambda: pid_file.exists() and pid_file.read_text().strip())
    step_pid = int(pid_file.read_text())
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err  # interrupted: a failed run, not a refused request (2)
    wait_for("the step's process group to be gone", lambda: not alive(step_pid))
    assert not (root / "after.ran").exists()
    (deployment,) = json.loads(out)["deployments"]
    assert deployment["status"] == "interrupted", out
    assert [row[1] for row in deployments(root)] == ["interrupted"]


def test_a_session_ended_early_stops_the_parallel_commands_it_started(tmp_path: Path):
    """With -x pytest stops at the first failure; the per-file commands the group started
    beside it were never asked for and ran on: the deployment's end stops them."""
    group = {
        "name": "fns",
        "order": 1,
        "file_patterns": ["fns/*.txt"],
        "max_parallel": 2,
        # a fails once b runs (a bounded wait on b's pid file), so b is surely started
        "deploy_command": "if [ {name} = a.txt ]; then for i in $(seq 600); do"
        " [ -s ../b.pid ] && exit 1; sleep 0.05; done; exit 1; fi;"
        " echo $$ > ../b.pid; sleep 30; touch ../b.done",
    }
    root = project(tmp_path, [group])
    (root / "fns").mkdir()
    for name in ("a.txt", "b.txt"):
        (root / "fns" / name).write_text(name)
    proc = start(root, "-x", "--no-health-check")
    wait_for("b's command to start", lambda: (tmp_path / "b.pid").exists())
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, output
    assert not (tmp_path / "b.done").exists(), output
    assert not alive(int((tmp_path / "b.pid").read_text())), output


EXIT_IN_STEP_HOOK = """
import pytest

def pytest_deploy_before_step(deployment, step):
    if step.node_id.endswith("after::deploy"):
        pytest.exit("stopped by a plugin")
"""


def test_a_step_stopped_by_pytest_exit_is_in_the_report(tmp_path: Path):
    first = {"name": "first", "order": 1, "deploy_command": "true"}
    root = project(tmp_path, [first, AFTER], conftest=EXIT_IN_STEP_HOOK)
    report = root / "report.json"
    result = run(root, f"--deploy-report={report}")
    assert result.returncode != 0, result.stdout
    (deployment,) = json.loads(report.read_text())["deployments"]
    steps = {s["node_id"].split("::t::")[1]: s for s in deployment["steps"]}
    assert steps["after::deploy"]["outcome"] == "failed", steps
    assert "stopped by a plugin" in steps["after::deploy"]["message"]
    assert deployment["status"] != "success"


#: A conftest that sends this run a SIGTERM from inside one function of the deployment's
#: end (the windows a CI cancellation can hit), and notes when pytest_deploy_finished runs.
SIGNAL_AT = """
import os
import signal

import deploy_plugin.engine.checks as checks
from deploy_plugin.engine.recorder import RunRecorder
from deploy_plugin.engine.runtime import Deployment
from deploy_plugin.store.base import Store

OWNERS = {{"Deployment": Deployment, "RunRecorder": RunRecorder, "Store": Store}}
OWNER, NAME = {where!r}.split(".")


def signalled(original):
    def call(*args, **kwargs):
        value = original(*args, **kwargs)  # the store has committed what it does
        os.kill(os.getpid(), signal.SIGTERM)
        return value
    return call


setattr(OWNERS[OWNER], NAME, signalled(getattr(OWNERS[OWNER], NAME)))


def pytest_deploy_finished(deployment, report):
    with open("finished.hook", "w") as f:
        f.write(report.status)
"""

#: Where the signal lands: closing the runners, recording the end, right after the store
#: committed the lock or the run's row (before the engine kept them).
WINDOWS = ["Deployment.close_runners", "RunRecorder.finish", "Store.acquire_lock",
           "Store.start_deployment"]  # fmt: skip


@pytest.mark.parametrize("early", [False, True], ids=["last-teardown", "session-end"])
@pytest.mark.parametrize("where", WINDOWS)
def test_a_signal_while_the_run_starts_or_ends_still_records_it_and_frees_the_lock(
    tmp_path: Path, where: str, early: bool
) -> None:
    """A SIGTERM that lands while the deployment takes its lock, records its start, or ends
    (from its last item's teardown, or from pytest's session end after -x stopped it early)
    never leaves the run ``running`` with its lock held, and the report is still written."""
    groups = [{"name": "first", "order": 1, "deploy_command": "false" if early else "true"},
              {"name": "second", "order": 2, "deploy_command": "true"}]  # fmt: skip
    root = project(tmp_path, groups, conftest=SIGNAL_AT.format(where=where))
    result = run(root, "-x", "--deploy-report=r.json")
    output = result.stdout + result.stderr
    assert "Traceback" not in output and result.returncode in (1, 2), output
    ((_, status, _, _),) = deployments(root)
    assert status in ("success", "failure", "interrupted"), (status, output)
    assert lock_rows(root) == [], output
    assert (root / "r.json").exists() and (root / "finished.hook").exists(), output
    (root / "conftest.py").unlink()
    rerun = run(root)  # nothing to take over: the lock was released
    assert "took over" not in rerun.stdout.lower(), rerun.stdout
