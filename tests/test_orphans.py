"""No step outlives its runner (issue 20, item 9), through real processes.

A runner killed with SIGKILL must not leave its running step behind: the step's whole
process group ends with it (the parent-death signal on bash, and the runner's guard that
ends the recorded groups when the runner's end of a pipe closes). When everything of the
runner died at once (its whole process group: runner and guard), the next run that takes
the lock over ends the dead run's recorded groups before its own first step, and says so.

Nothing here waits a fixed time: each wait polls an observable state (a file, /proc,
pg_locks) with a deadline.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
import yaml

from tests.pg import ADMIN_URL, temporary_database

PROJECT = "orph"
TARGET = "t"
WAIT_S = 30.0  # deadline of every poll: only reached when something is wrong
GONE_S = 10.0  # "promptly": a killed runner's step group must be gone within this
T = TypeVar("T")


# --------------------------------------------------------------------------- helpers


def stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after "(comm)": state, ppid, pgrp, ...; None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text.rpartition(")")[2].split()


def start_time(pid: int) -> int:
    fields = stat_fields(pid)
    assert fields is not None, f"process {pid} is gone"
    return int(fields[19])  # field 22 of stat: 3 + 19


def alive(pid: int) -> bool:
    fields = stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = stat_fields(int(entry))
            if fields and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
                members.append(int(entry))
    return members


def wait_for(what: str, check: Callable[[], T], deadline_s: float = WAIT_S) -> T:
    deadline = time.monotonic() + deadline_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting {deadline_s:.0f} s for {what}")
        time.sleep(0.02)  # a poll interval, not a wait for state


def kill_groups(pgids: list[int]) -> None:
    for pgid in pgids:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def read_pids(path: Path) -> list[int]:
    return [int(word) for word in path.read_text().split()] if path.exists() else []


def child_env() -> dict[str, str]:
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_", "PG", "DEPLOY_")) and key != "DATABASE_URL"
    }


def make_project(root: Path, groups: list[dict[str, Any]], files: int = 0) -> Path:
    project = root / "proj"
    (project / "steps").mkdir(parents=True)
    (project / "pytest.ini").write_text("[pytest]\n")
    for i in range(files):
        (project / "steps" / f"s{i}.step").write_text("")
    config = {"project": PROJECT, "targets": {TARGET: {}}, "groups": groups}
    (project / "deploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return project


def pytest_command(store: str | None, *args: str) -> list[str]:
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs",
               f"--deploy-target={TARGET}", *args]  # fmt: skip
    return command + ([f"--deploy-store={store}"] if store else [])


def start_runner(project: Path, store: str | None, *args: str) -> subprocess.Popen[bytes]:
    """A runner in its own process group, output to ``../runner.log``."""
    with open(project.parent / "runner.log", "ab") as log:
        return subprocess.Popen(
            pytest_command(store, *args),
            cwd=project,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def run_to_end(project: Path, store: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        pytest_command(store, *args), cwd=project, env=child_env(), stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The store of a run: the default SQLite file, or a throw-away PostgreSQL database."""
    if request.param == "sqlite":
        yield None
    else:
        with temporary_database("deploy_orphans") as url:
            yield url


def advisory_locks(url: str) -> int:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database ="
            " (SELECT oid FROM pg_database WHERE datname = %s)",
            (name,),
        ).fetchone()
    assert row is not None
    return int(row[0])


# ----------------------------------------------------- kill -9 of the runner alone


def recorded_groups(project: Path) -> list[int]:
    """The process groups the SQLite store's lock row names, sorted."""
    import json
    import sqlite3

    path = project / ".deploy" / "state.sqlite3"
    if not path.exists():
        return []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        try:
            rows = db.execute("SELECT step_groups FROM deploy_locks").fetchall()
        except sqlite3.OperationalError:  # not created yet
            return []
    return sorted(pgid for (value,) in rows for pgid, _ in json.loads(value))


LONG_STEP = 'echo $$ >> ../groups.txt; sleep 1000; echo "end $(date +%s.%N)" >> ../stamps'


@pytest.mark.parametrize("parallel", [False, True], ids=["sequential", "max_parallel"])
def test_kill_9_of_the_runner_ends_its_running_steps_process_groups(
    tmp_path: Path, parallel: bool
) -> None:
    # bash forks `sleep` (two commands): the sleep is the runner's grandchild, out of reach
    # of a parent-death signal set on bash alone.
    if parallel:
        groups = [{"name": "par", "order": 1, "file_patterns": ["steps/*.step"],
                   "max_parallel": 2, "deploy_command": ": {stem}; " + LONG_STEP}]  # fmt: skip
    else:
        groups = [{"name": "long", "order": 1, "deploy_command": LONG_STEP}]
    project = make_project(tmp_path, groups, files=2 if parallel else 0)
    expected = 2 if parallel else 1
    runner = start_runner(project, None)
    pgids: list[int] = []
    try:
        pgids = wait_for(
            "the steps to start",
            lambda: p if len(p := read_pids(tmp_path / "groups.txt")) == expected else None,
        )
        pgids.sort()
        assert all(group_members(pgid) for pgid in pgids)  # bash and its sleep run
        # no wait for the lock row: a command runs only once its group is registered
        os.kill(runner.pid, signal.SIGKILL)  # the runner alone, not its process group
        runner.wait(timeout=WAIT_S)
        deadline = time.monotonic() + GONE_S
        while (left := [p for p in pgids if group_members(p)]) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert left == [], f"step process groups {left} outlived the runner killed with SIGKILL"
        assert not (tmp_path / "stamps").exists()  # no step went on to its end
    finally:
        kill_groups([*pgids, runner.pid])
        if runner.poll() is None:
            runner.kill()
            runner.wait()


def test_a_step_outlives_the_worker_thread_that_is_done(tmp_path: Path) -> None:
    """max_parallel: a worker thread that ran short steps and ended must not take a
    sibling's command with it (the parent-death signal follows the forking thread)."""
    wait_go = "while [ ! -e ../go ]; do sleep 0.02; done"
    command = (
        f"if [ {{stem}} = s0 ]; then echo $$ > ../long.pid; {wait_go}; echo done > ../long.out;"
        " else touch ../short-{stem}; fi"
    )
    groups = [{"name": "par", "order": 1, "file_patterns": ["steps/*.step"],
               "max_parallel": 2, "deploy_command": command}]  # fmt: skip
    project = make_project(tmp_path, groups, files=4)
    runner = start_runner(project, None)
    try:
        long_pid = wait_for("the long step", lambda: read_pids(tmp_path / "long.pid"))[0]
        wait_for("the short steps", lambda: len(list(tmp_path.glob("short-*"))) == 3 or None)
        # the thread that ran s1..s3 has nothing left to do and ends (pool shut down)
        wait_for(
            "the idle worker thread to end",
            lambda: len(os.listdir(f"/proc/{runner.pid}/task")) <= 2 or None,
        )
        assert alive(long_pid)
        (tmp_path / "go").touch()
        assert runner.wait(timeout=WAIT_S) == 0, (tmp_path / "runner.log").read_text()
        assert (tmp_path / "long.out").read_text() == "done\n"
    finally:
        if runner.poll() is None:
            kill_groups([runner.pid])
            runner.wait()


# --------------------------------------------- takeover after everything of a run died

FIRST = (
    'echo "start $RUN $(date +%s.%N)" >> ../stamps;'
    " if [ -s ../grandchild.pid ]; then"
    ' s=$(cut -d" " -f3 /proc/$(cat ../grandchild.pid)/stat 2>/dev/null);'
    ' if [ -n "$s" ] && [ "$s" != Z ]; then echo "A still running when $RUN started"'
    " >> ../stamps; fi; fi"
)
# Run A leaves a grandchild that ignores SIGTERM and outlives bash; run B does nothing.
SECOND = (
    'if [ "$RUN" = A ]; then echo $$ >> ../groups.txt;'
    " bash -c 'trap \"\" TERM; echo $$ > ../grandchild.pid; exec sleep 1000';"
    ' echo "end $RUN $(date +%s.%N)" >> ../stamps; fi'
)


def test_takeover_ends_the_dead_runs_step_group_before_its_own_first_step(
    tmp_path: Path, store: str | None
) -> None:
    groups = [
        {"name": "first", "order": 1, "deploy_command": FIRST},
        {"name": "second", "order": 2, "deploy_command": SECOND},
    ]
    project = make_project(tmp_path, groups)
    run_a = start_runner(project, store, "--deploy-env=RUN=A")
    grandchild = 0
    pgids: list[int] = []
    try:
        grandchild = wait_for(
            "A's grandchild", lambda: read_pids(tmp_path / "grandchild.pid") or None
        )[0]
        pgids = read_pids(tmp_path / "groups.txt")
        # Everything of run A dies at once (runner and whatever it started in its own
        # process group); A's step runs in a session of its own, its grandchild lives on.
        os.killpg(run_a.pid, signal.SIGKILL)
        run_a.wait(timeout=WAIT_S)
        assert alive(grandchild)
        if store is not None:  # the dead backend frees the advisory lock by itself
            wait_for("A's advisory lock to be freed", lambda: advisory_locks(store) == 0)
        run_b = run_to_end(project, store, "--deploy-env=RUN=B")
        assert run_b.returncode == 0, run_b.stdout + run_b.stderr
        output = run_b.stdout + run_b.stderr
        assert f"process group {pgids[0]}" in output, output  # the warning names it
        stamps = (tmp_path / "stamps").read_text().splitlines()
        assert [line.split()[:2] for line in stamps] == [["start", "A"], ["start", "B"]], stamps
        assert not alive(grandchild)
    finally:
        kill_groups([*pgids, run_a.pid])
        if grandchild:
            try:
                os.kill(grandchild, signal.SIGKILL)
            except ProcessLookupError:
                pass


# -------------------------------------- the store's takeover: zombies and reused pids


@pytest.fixture
def zombie() -> Iterator[int]:
    """A process that has exited but is not reaped yet (state Z)."""
    proc = subprocess.Popen(["true"])
    wait_for("a zombie", lambda: (stat_fields(proc.pid) or ["?"])[0] == "Z" or None)
    yield proc.pid
    proc.wait()


@pytest.fixture
def victim() -> Iterator[subprocess.Popen[bytes]]:
    """A process group of its own, led by a process that ignores SIGTERM."""
    proc = subprocess.Popen(["bash", "-c", "trap '' TERM; exec sleep 1000"], start_new_session=True)
    wait_for("the victim to run sleep", lambda: _comm(proc.pid) == "sleep" or None)
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _open(url: str | None, root: Path) -> Any:
    from deploy_plugin.store import open_store

    opened = open_store(url, root, create=True)
    assert opened is not None
    return opened


def _leave_dead_holder(store_url: str | None, root: Path, pid: int, groups: str) -> None:
    """A lock row as a dead run leaves it: holder ``pid`` on this host, ``groups`` recorded
    (PostgreSQL: its advisory lock is free, as after its backend ended)."""
    store = _open(store_url, root)
    try:
        project_id = store.project_id(PROJECT)
    finally:
        store.close()
    host = socket.gethostname()
    if store_url is None:
        import sqlite3

        with sqlite3.connect(root / ".deploy" / "state.sqlite3") as db:
            db.execute(
                "INSERT INTO deploy_locks (project_id, target_name, holder, host, pid,"
                " started_at, step_groups) VALUES (?, ?, 'dead run', ?, ?,"
                " '2026-12-01T00:00:00+00:00', ?)",
                (project_id, TARGET, host, pid, groups),
            )
    else:
        with psycopg.connect(store_url, autocommit=True) as db:
            db.execute(
                "INSERT INTO deploy.deploy_locks (project_id, target_name, holder, host, pid,"
                " started_at, backend_pid, step_groups) VALUES (%s, %s, 'dead run', %s, %s,"
                " now(), 2147483000, %s)",
                (project_id, TARGET, host, pid, groups),
            )


def test_a_zombie_holder_is_dead_and_its_recorded_group_is_ended(
    tmp_path: Path, store: str | None, zombie: int, victim: subprocess.Popen[bytes]
) -> None:
    groups = f"[[{victim.pid}, {start_time(victim.pid)}]]"
    _leave_dead_holder(store, tmp_path, zombie, groups)
    opened = _open(store, tmp_path)
    try:
        lock = opened.acquire_lock(PROJECT, TARGET, holder="me")
        try:
            assert lock.warning is not None
            assert f"process group {victim.pid}" in lock.warning, lock.warning
            # acquire_lock waited until the group was gone: only its zombie is left to reap
            assert not alive(victim.pid)
            assert victim.wait(timeout=WAIT_S) == -signal.SIGKILL
        finally:
            lock.release()
    finally:
        opened.close()


def test_a_reused_pid_is_not_killed(
    tmp_path: Path, store: str | None, zombie: int, victim: subprocess.Popen[bytes]
) -> None:
    # the recorded group's leader started at another time: the pid now names another process
    groups = f"[[{victim.pid}, {start_time(victim.pid) - 1}]]"
    _leave_dead_holder(store, tmp_path, zombie, groups)
    opened = _open(store, tmp_path)
    try:
        lock = opened.acquire_lock(PROJECT, TARGET, holder="me")
        lock.release()
    finally:
        opened.close()
    assert alive(victim.pid)
    assert victim.poll() is None
    assert lock.warning is not None and "Took over" in lock.warning
    assert "SIGKILL" not in lock.warning, lock.warning  # and it does not claim to have killed
