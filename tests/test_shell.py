"""Tests for deploy_plugin.engine.shell: real bash processes, process groups and real psql."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from deploy_plugin.engine import process
from deploy_plugin.engine.output import TAIL_BYTES
from deploy_plugin.engine.psql import psql_wrapped_env
from deploy_plugin.engine.shell import CommandResult, run_command
from deploy_plugin.secrets import Masker


def run(command: str, cwd: Path, **kwargs) -> CommandResult:
    kwargs.setdefault("env", dict(os.environ))
    kwargs.setdefault("masker", Masker())
    return run_command(command, cwd=cwd, **kwargs)


def alive(pid: int) -> bool:
    """True while *pid* runs. A zombie counts as gone: in containers PID 1 may never reap."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def wait_for(condition: Callable[[], object], what: str, timeout: float = 15.0) -> None:
    """Wait until *condition* holds (observable state), failing after a generous bound."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.01)


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text else None


@pytest.fixture
def pids_to_kill() -> Iterator[list[int]]:
    """Pids a test started in the background; killed at teardown whatever happened."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def call_with_hang_guard(function: Callable[[], CommandResult], bound_s: float = 30.0):
    """Call *function* in a thread so that a hang fails the test instead of blocking it."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["result"] = function()
        except BaseException as exc:  # pragma: no cover - reported below
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(bound_s)
    assert not thread.is_alive(), "run_command did not return"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]


# -- environment, working directory, stdin -------------------------------------------------


def test_env_is_passed_exactly(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "ONLY_THIS": "value with spaces"}
    result = run("env", tmp_path, env=env)
    lines = result.tail.splitlines()
    assert "ONLY_THIS=value with spaces" in lines
    assert not [line for line in lines if line.startswith(("HOME=", "USER="))]


def test_runs_in_cwd_with_bash(tmp_path: Path) -> None:
    result = run('pwd -P; echo "$BASH"', tmp_path)
    assert result.tail.splitlines() == [str(tmp_path.resolve()), "/bin/bash"]


def test_stdin_is_dev_null(tmp_path: Path) -> None:
    # `cat` would wait forever on an inherited terminal or pipe.
    result = call_with_hang_guard(lambda: run("cat; echo end", tmp_path))
    assert result.ok and result.tail == "end\n"


def test_missing_cwd_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="working directory .*missing does not exist"):
        run("true", tmp_path / "missing")


def test_runs_in_its_own_session(tmp_path: Path) -> None:
    result = run("ps -o sid= -p $$; echo $$", tmp_path)
    sid, pid = result.tail.split()
    assert sid == pid != str(os.getsid(0))


# -- exit status -----------------------------------------------------------------------------


def test_success(tmp_path: Path) -> None:
    result = run("echo hello", tmp_path)
    assert result.ok and result.returncode == 0 and not result.timed_out
    assert result.tail == "hello\n" and result.command == "echo hello"
    assert result.explain() == "exit status 0"


def test_exit_status(tmp_path: Path) -> None:
    result = run("echo to stderr >&2; exit 3", tmp_path)
    assert not result.ok and result.returncode == 3
    assert result.explain() == "exit status 3"
    assert result.tail == "to stderr\n"


def test_command_not_found(tmp_path: Path) -> None:
    result = run("no-such-command-for-pytest-deploy --flag", tmp_path)
    assert result.returncode == 127
    assert result.explain() == "exit status 127: command not found — is it installed and on PATH?"
    assert "no-such-command-for-pytest-deploy: command not found" in result.tail


def test_not_executable(tmp_path: Path) -> None:
    (tmp_path / "deploy.sh").write_text("#!/bin/sh\necho hi\n")
    result = run("./deploy.sh", tmp_path)
    assert result.returncode == 126
    assert result.explain().startswith("exit status 126: not executable")


def test_killed_by_signal(tmp_path: Path) -> None:
    result = run("kill -TERM $$", tmp_path)
    assert result.returncode == -signal.SIGTERM
    assert result.explain() == "killed by SIGTERM"


def test_child_killed_by_signal(tmp_path: Path) -> None:
    result = run("bash -c 'kill -KILL $$'; exit $?", tmp_path)
    assert result.returncode == 137
    assert result.explain() == "exit status 137: a process was killed by SIGKILL"


def test_explain_without_exit_status() -> None:
    result = CommandResult("x", None, "", 0.0, False, None)
    assert not result.ok
    assert result.explain() == "killed before its exit status was known"


# -- timeout and process groups --------------------------------------------------------------


def test_timeout_terminates_the_whole_process_group(tmp_path: Path, pids_to_kill) -> None:
    command = "echo $$ > bash.pid; sleep 30 & echo $! > child.pid; echo started; wait"
    result = run(command, tmp_path, timeout=0.5)
    bash_pid, child_pid = read_pid(tmp_path / "bash.pid"), read_pid(tmp_path / "child.pid")
    assert bash_pid and child_pid
    pids_to_kill.append(child_pid)
    assert result.timed_out and not result.ok
    assert result.returncode == -signal.SIGTERM
    assert result.explain() == "timed out after 0.5 s; the process group was terminated"
    assert result.tail == "started\n"
    assert not alive(child_pid) and not alive(bash_pid)


def test_a_command_that_closes_its_output_is_still_waited_for(tmp_path: Path) -> None:
    # the end of output is not the end of the command: it is waited for (its exit wakes
    # the wait, issue 14), and a timeout still applies; nothing is left open either way
    run("true", tmp_path)  # the runner's guard (its pipe) starts with the first command
    fds = len(os.listdir("/proc/self/fd"))
    done = run("echo closing; exec >&- 2>&-; sleep 0.3; touch done", tmp_path)
    assert done.ok and done.tail == "closing\n" and (tmp_path / "done").exists()
    stuck = run("exec >&- 2>&-; sleep 30", tmp_path, timeout=0.5)
    assert stuck.timed_out and not stuck.ok
    assert len(os.listdir("/proc/self/fd")) == fds


def test_sigkill_after_grace_when_sigterm_is_ignored(
    tmp_path: Path, pids_to_kill, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process, "KILL_GRACE_S", 0.2)
    # Ignored signals are inherited: neither bash nor its child `sleep` obey SIGTERM.
    # the timeout leaves bash time to start and write child.pid on a loaded machine
    command = "trap '' TERM; sleep 30 & echo $! > child.pid; wait"
    result = run(command, tmp_path, timeout=2.0)
    child_pid = read_pid(tmp_path / "child.pid")
    assert child_pid
    pids_to_kill.append(child_pid)
    assert result.timed_out and result.returncode == -signal.SIGKILL
    assert not alive(child_pid)


def test_ctrl_c_terminates_the_process_group(tmp_path: Path, pids_to_kill) -> None:
    script = tmp_path / "runner.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, signal, sys
            from pathlib import Path
            from deploy_plugin.secrets import Masker
            from deploy_plugin.engine.shell import run_command

            signal.signal(signal.SIGINT, signal.default_int_handler)
            command = "echo $$ > bash.pid; sleep 30 & echo $! > child.pid; wait"
            try:
                run_command(command, cwd=Path(sys.argv[1]), env=dict(os.environ),
                            masker=Masker())
            except KeyboardInterrupt:
                sys.exit(42)
            sys.exit(0)
            """
        )
    )
    runner = subprocess.Popen([sys.executable, str(script), str(tmp_path)])
    try:
        wait_for(lambda: read_pid(tmp_path / "child.pid"), "the command to start its child")
        bash_pid, child_pid = read_pid(tmp_path / "bash.pid"), read_pid(tmp_path / "child.pid")
        assert bash_pid and child_pid
        pids_to_kill.append(child_pid)
        assert alive(child_pid)
        runner.send_signal(signal.SIGINT)
        assert runner.wait(timeout=30) == 42  # KeyboardInterrupt was re-raised
    finally:
        runner.kill()
        runner.wait()
    assert not alive(bash_pid) and not alive(child_pid)


def test_terminate_running_stops_commands_of_other_threads(tmp_path: Path, pids_to_kill) -> None:
    # Ctrl-C reaches only the main thread; steps running in worker threads are stopped by it.
    results: dict[int, CommandResult] = {}

    def step(number: int) -> None:
        command = f"sleep 30 & echo $! > child{number}.pid; wait"
        results[number] = run(command, tmp_path)

    threads = [threading.Thread(target=step, args=(n,), daemon=True) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for n in (1, 2):
        wait_for(lambda n=n: read_pid(tmp_path / f"child{n}.pid"), f"step {n} to start")
        pids_to_kill.append(read_pid(tmp_path / f"child{n}.pid"))
    assert process.terminate_running() == 2
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive()
    assert [results[n].explain() for n in (1, 2)] == ["killed by SIGTERM"] * 2
    assert not any(alive(pid) for pid in pids_to_kill)
    assert process.terminate_running() == 0


@pytest.mark.parametrize("launcher", ["", "setsid ", "nohup "])
def test_background_service_holding_the_output_does_not_hang(
    tmp_path: Path, pids_to_kill, launcher: str
) -> None:
    command = f"echo before; {launcher}sleep 30 & echo $! > service.pid; echo after"
    before = set(os.listdir("/proc/self/fd"))
    result = call_with_hang_guard(lambda: run(command, tmp_path, log_path=tmp_path / "step.log"))
    service_pid = read_pid(tmp_path / "service.pid")
    assert service_pid
    pids_to_kill.append(service_pid)
    assert result.ok and not result.timed_out
    assert result.tail.startswith("before\nafter\n")
    assert "a background process still holds its output open" in result.tail
    # The service is left running, and our end of its output was closed (no leaked reader).
    assert alive(service_pid)
    assert len(os.listdir("/proc/self/fd")) <= len(before)
    assert (tmp_path / "step.log").read_text() == result.tail


def test_no_reader_left_behind(tmp_path: Path, pids_to_kill) -> None:
    threads = threading.active_count()
    fds = len(os.listdir("/proc/self/fd"))
    result = run("sleep 30 & echo $! > service.pid", tmp_path)
    pids_to_kill.append(read_pid(tmp_path / "service.pid"))
    assert result.ok
    assert threading.active_count() == threads
    assert len(os.listdir("/proc/self/fd")) == fds


# -- output: log file, tail, masking ---------------------------------------------------------


def test_big_output_keeps_a_bounded_tail_and_a_complete_log(tmp_path: Path) -> None:
    size = 50_000_000
    log = tmp_path / "logs" / "run 1" / "step.log"
    tracemalloc.start()
    try:
        result = run(
            f"yes 'a line of output' | head -c {size}; echo; echo last line", tmp_path, log_path=log
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.ok
    assert log.stat().st_size == size + len("\nlast line\n")
    assert len(result.tail.encode()) <= TAIL_BYTES
    line = "a line of output\n"
    assert result.tail.endswith(line + line[: size % len(line)] + "\nlast line\n")
    assert peak < 2_000_000  # the output was never held whole


def test_big_output_without_newlines(tmp_path: Path) -> None:
    size = 10_000_000
    log = tmp_path / "step.log"
    result = run(f"head -c {size} /dev/zero | tr '\\0' x", tmp_path, log_path=log)
    assert result.ok and log.stat().st_size == size
    assert result.tail == "x" * TAIL_BYTES


def test_log_is_appended(tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    run("echo first", tmp_path, log_path=log)
    run("echo second", tmp_path, log_path=log)
    assert log.read_text() == "first\nsecond\n"


def test_tail_is_utf8_and_invalid_bytes_are_replaced(tmp_path: Path) -> None:
    result = run(r"printf 'caf\xc3\xa9 \xff\n'; printf '%.0sé' $(seq 5000)", tmp_path)
    assert result.tail.startswith("é") or result.tail.startswith("café")
    assert len(result.tail.encode()) <= TAIL_BYTES
    result = run(r"printf 'caf\xc3\xa9 \xff\n'", tmp_path)
    assert result.tail == "café \ufffd\n"


def test_secrets_are_masked_in_log_and_tail(tmp_path: Path) -> None:
    secret = "s3cr3t-t0ken-value"
    env = {**os.environ, "API_TOKEN": secret}
    log = tmp_path / "step.log"
    command = 'echo "token=$API_TOKEN"; echo "err $API_TOKEN" >&2; printf %s "$API_TOKEN"'
    result = run(command, tmp_path, env=env, masker=Masker([secret]), log_path=log)
    for text in (log.read_text(), result.tail):
        assert secret not in text
        assert text == "token=***\nerr ***\n***"
    # The command itself is returned as run: callers mask it for display.
    assert result.command == command


def test_secrets_in_very_long_lines_are_masked(tmp_path: Path) -> None:
    # Lines longer than MAX_PENDING_CHARS are flushed in pieces: no piece splits a secret,
    # wherever the reads happen to cut.
    secret = "long-line-s3cr3t"
    program = (
        "import sys\n"
        f"s = {secret!r}\n"
        "for n in (65530, 65535, 1, 100000, 7, 131070):\n"
        "    sys.stdout.write('x' * n + s)\n"
        "    sys.stdout.flush()\n"
        "sys.stdout.write('postgresql://u:url-pass@h/db' + 'y' * 70000)\n"
    )
    (tmp_path / "emit.py").write_text(program)
    log = tmp_path / "step.log"
    result = run(
        f"{shlex.quote(sys.executable)} emit.py", tmp_path, masker=Masker([secret]), log_path=log
    )
    text = log.read_text()
    assert secret not in text and "url-pass" not in text
    assert text.count("***") == 7
    assert "postgresql://u:***@h/db" in text
    assert result.ok and secret not in result.tail


def test_url_passwords_are_masked_without_being_secrets(tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    result = run(
        "echo connecting to postgresql://app:hunter22@db.internal:5432/app", tmp_path, log_path=log
    )
    expected = "connecting to postgresql://app:***@db.internal:5432/app\n"
    assert result.tail == expected and log.read_text() == expected


# -- quoting ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "with space.sql",
        "it's.sql",
        'say "hi".sql',
        "$(touch pwned).sql",
        "`touch pwned`.sql",
        "semi;colon&amp.sql",
        "$HOME.sql",
        "-dash.sql",
        "star*.sql",
    ],
)
def test_quoted_file_names_reach_the_command_literally(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text(f"content of {name}\n")
    result = run(f"printf '%s\\n' {shlex.quote(name)}; cat -- {shlex.quote(name)}", tmp_path)
    assert result.ok, result.tail
    assert result.tail == f"{name}\ncontent of {name}\n"
    assert not (tmp_path / "pwned").exists()


# -- psql safety -----------------------------------------------------------------------------


def test_psql_wrapped_env_without_a_user_psqlrc(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = psql_wrapped_env({"HOME": str(home), "KEEP": "1"}, tmp_path / "rc")
    assert env["KEEP"] == "1"
    assert Path(env["PSQLRC"]).read_text() == "\\set ON_ERROR_STOP on\n"


def test_psql_wrapped_env_includes_the_user_psqlrc_first(tmp_path: Path) -> None:
    home = tmp_path / "it's home"
    home.mkdir()
    (home / ".psqlrc").write_text("\\set ON_ERROR_STOP off\n")
    original = {"HOME": str(home)}
    env = psql_wrapped_env(original, tmp_path / "rc")
    assert "PSQLRC" not in original
    quoted = str(home / ".psqlrc").replace("'", "''")
    assert Path(env["PSQLRC"]).read_text() == f"\\i '{quoted}'\n\\set ON_ERROR_STOP on\n"
    # An explicit $PSQLRC is the user's file; a PSQLRC that is already ours is not included.
    custom = tmp_path / "custom_psqlrc"
    custom.write_text("")
    env = psql_wrapped_env({"HOME": str(home), "PSQLRC": str(custom)}, tmp_path / "rc")
    assert Path(env["PSQLRC"]).read_text().startswith(f"\\i '{custom}'\n")
    again = psql_wrapped_env(env, tmp_path / "rc")
    assert Path(again["PSQLRC"]).read_text() == "\\set ON_ERROR_STOP on\n"


def test_psqlrc_is_set_only_for_commands_that_run_psql(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    rc_dir = tmp_path / "rc"
    result = run('echo "${PSQLRC-unset}"', tmp_path, env=env, psqlrc_dir=rc_dir)
    assert result.tail == "unset\n"
    result = run('echo "${PSQLRC-unset}" # psql', tmp_path, env=env, psqlrc_dir=rc_dir)
    assert result.tail == f"{rc_dir / 'psqlrc'}\n"
    result = run('echo "${PSQLRC-unset}" # psql', tmp_path, env=env)  # no psqlrc_dir
    assert result.tail == "unset\n"


def table_exists(database_url: str, table: str) -> bool:
    import psycopg

    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
        return bool(row and row[0])


SEED_COMMAND = "psql $DATABASE_URL -f {file}"  # the seed's exact deploy_command


@pytest.fixture
def failing_migration(tmp_path: Path) -> tuple[Path, str]:
    """A project root holding a migration whose second statement fails, and the command."""
    root = tmp_path / "project"
    (root / "migrations").mkdir(parents=True)
    (root / "migrations" / "002_broken.sql").write_text(
        "CREATE TABLE first_table (id int);\n"
        "INSERT INTO no_such_table VALUES (1);\n"
        "CREATE TABLE after_failure (id int);\n"
    )
    command = SEED_COMMAND.replace("{file}", shlex.quote("migrations/002_broken.sql"))
    return root, command


def psql_env(database_url: str, home: Path) -> dict[str, str]:
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "PSQLRC"}
    return {**env, "HOME": str(home), "DATABASE_URL": database_url}


def test_psql_without_the_wrapper_passes_a_failing_file(
    tmp_path: Path, pg_database: str, failing_migration: tuple[Path, str]
) -> None:
    root, command = failing_migration
    env = psql_env(pg_database, tmp_path / "home")
    result = run(command, root, env=env)  # no psqlrc_dir: psql as the seed runs it
    assert result.returncode == 0, result.tail
    assert 'relation "no_such_table" does not exist' in result.tail
    assert table_exists(pg_database, "after_failure")  # it carried on past the error


def test_psql_with_the_wrapper_fails_the_step(
    tmp_path: Path, pg_database: str, failing_migration: tuple[Path, str]
) -> None:
    root, command = failing_migration
    home = tmp_path / "home"
    env = psql_env(pg_database, home)
    # The user's own psqlrc is read (its \echo shows) but cannot turn ON_ERROR_STOP off.
    (home / ".psqlrc").write_text("\\echo user-psqlrc-was-read\n\\set ON_ERROR_STOP off\n")
    result = run(command, root, env=env, psqlrc_dir=tmp_path / "deploy" / "psql")
    assert result.returncode == 3 and not result.ok, result.tail
    assert result.explain() == "exit status 3"
    assert "user-psqlrc-was-read" in result.tail
    assert 'relation "no_such_table" does not exist' in result.tail
    assert table_exists(pg_database, "first_table")
    assert not table_exists(pg_database, "after_failure")  # stopped at the error


def test_psql_dash_x_still_stops_at_the_first_error(
    tmp_path: Path, pg_database: str, failing_migration: tuple[Path, str]
) -> None:
    """Issue 9 #6: ``psql -X`` skips every psqlrc, ours included; ON_ERROR_STOP must hold."""
    root, command = failing_migration
    env = psql_env(pg_database, tmp_path / "home")
    result = run(command.replace("psql ", "psql -X ", 1), root, env=env, psqlrc_dir=tmp_path / "rc")
    assert result.returncode == 3 and not result.ok, result.tail
    assert not table_exists(pg_database, "after_failure")  # stopped at the error


def test_ctrl_c_right_after_the_process_starts_still_stops_it(tmp_path: Path) -> None:
    """The window issue 15 #13 suspected: Ctrl-C after Popen created the process but before
    run_command recorded it. Popen is wrapped to deliver SIGINT exactly there."""
    script = tmp_path / "runner.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, signal, subprocess, sys, time
            from pathlib import Path
            from deploy_plugin.secrets import Masker
            from deploy_plugin.engine.shell import run_command

            folder = Path(sys.argv[1])
            real = subprocess.Popen

            class Interrupted(real):
                def __init__(self, *args, **kwargs):
                    super().__init__(*args, **kwargs)
                    # bash runs (it waits at its gate until its group is registered: the
                    # command itself never starts here); then Ctrl-C
                    (folder / "started.pid").write_text(str(self.pid))
                    os.kill(os.getpid(), signal.SIGINT)

            subprocess.Popen = Interrupted
            signal.signal(signal.SIGINT, signal.default_int_handler)
            try:
                run_command("echo $$ > bash.pid; exec sleep 30", cwd=folder,
                            env=dict(os.environ), masker=Masker())
            except KeyboardInterrupt:
                sys.exit(42)
            sys.exit(0)
            """
        )
    )
    runner = subprocess.run([sys.executable, str(script), str(tmp_path)], timeout=60)
    assert runner.returncode == 42
    bash_pid = read_pid(tmp_path / "started.pid")
    assert bash_pid and not alive(bash_pid)
    assert not (tmp_path / "bash.pid").exists()  # the command never started


def test_terminate_running_waits_for_a_command_being_started(
    tmp_path: Path, pids_to_kill, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C with steps in worker threads: a command whose process exists but is not yet
    recorded must not be missed (the race behind a flaky run of the test above)."""
    started, asked = threading.Event(), threading.Event()
    real = subprocess.Popen

    class SlowToReturn(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            # bash runs, waiting at its gate (the command starts once its group is recorded)
            (tmp_path / "bash.pid").write_text(str(self.pid))
            started.set()
            asked.wait(10)  # returns (and gets recorded) only once terminate_running runs

    monkeypatch.setattr(process.subprocess, "Popen", SlowToReturn)
    results: list[CommandResult] = []
    thread = threading.Thread(
        target=lambda: results.append(run("echo $$ > bash.pid; exec sleep 30", tmp_path)),
        daemon=True,
    )
    thread.start()
    assert started.wait(10)
    asked.set()
    assert process.terminate_running() == 1
    thread.join(30)
    assert not thread.is_alive() and results[0].explain() == "killed by SIGTERM"
    bash_pid = read_pid(tmp_path / "bash.pid")
    pids_to_kill.append(bash_pid)
    assert not alive(bash_pid)
