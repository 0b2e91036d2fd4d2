"""Running one shell command for a step (DESIGN §4, "Shell steps" and "psql safety").

A command runs as ``/bin/bash -c COMMAND`` in its own session and process group, with stdin
from /dev/null and exactly the environment the caller built. Its stdout and stderr share one
pipe, read as it comes: each piece is masked, appended to the step's log file (made by the
first piece: a silent step leaves none) and kept in a bounded tail, so a step printing
gigabytes never grows the runner's memory.

On timeout, Ctrl-C (or any other exception while waiting) the whole process group gets
SIGTERM, then SIGKILL after :data:`KILL_GRACE_S` if anything of it is left.

No command outlives its runner (:mod:`deploy_plugin.engine.procgroups`): bash gets SIGKILL when
the runner dies (the parent-death signal), the runner's guard (:mod:`deploy_plugin.engine.guard`)
SIGKILLs the group of every command still running then, and the group is recorded in the
deployment's lock row while bash runs, for the run that takes the lock over.

A step may start a background service that inherits the pipe and never closes it. The
command is over when bash exits: what the pipe still yields within :data:`DRAIN_S` is read,
then the read end is closed. Such a service gets EPIPE/SIGPIPE if it writes to its inherited
output later, so services should redirect their output (``server > server.log 2>&1 &``).
"""

from __future__ import annotations

import codecs
import errno
import os
import re
import select
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Protocol, TextIO

from deploy_plugin.engine import guard, procgroups
from deploy_plugin.engine.psql import psql_wrapped_env
from deploy_plugin.facts import MAX_ARG_CHARS
from deploy_plugin.secrets import Masker

BASH = "/bin/bash"
#: How much of the combined output a :class:`CommandResult` keeps, in bytes of UTF-8.
TAIL_BYTES = 8192
#: Seconds between SIGTERM and SIGKILL when a process group is terminated.
KILL_GRACE_S = 5.0
#: Seconds to keep reading the output after bash exited while something still holds it open.
DRAIN_S = 0.5
#: A line longer than this (in characters) is masked and written in pieces.
MAX_PENDING_CHARS = 65536

_READ_SIZE = 65536
# Upper bound of one wait in the loop; it only matters while a background process keeps the
# output open after bash exited (normally end of output wakes the loop at once).
_TICK_S = 0.05
_PSQL_WORD = re.compile(r"\bpsql\b")
# Commands running now, for terminate_running(); run_command may be called from threads.
_RUNNING: set[_Run] = set()
_RUNNING_LOCK = threading.Lock()
# The gate: bash first reads a line from an inherited pipe, which the runner writes once
# the command's process group is registered with its guard and recorded in the lock's row;
# then it closes the pipe and execs ``bash -c COMMAND`` (same pid, same group, the
# parent-death signal kept). A runner killed before that leaves a bash that reads EOF and
# exits with 137, the command never run: no instant in which a step runs unregistered.
# The price is a second start of bash, under a millisecond.
_GATE = 'read -r -u {fd} _ || exit 137; exec {fd}<&-; exec {bash} -c "$0"'
_BACKGROUND_NOTE = (
    "\n[pytest-deploy] the command exited but a background process still holds its output "
    "open; stopped reading. Redirect the output of background services to a file.\n"
)


@dataclass
class CommandResult:
    """The outcome of :func:`run_command`."""

    command: str
    """The command as run (not masked: mask it for display)."""
    returncode: int | None
    """bash's exit status; negative -N when it was killed by signal N; None if unknown."""
    tail: str
    """The last :data:`TAIL_BYTES` of the combined stdout and stderr, already masked."""
    duration_s: float
    timed_out: bool
    log_path: Path | None
    timeout_s: float | None = None
    """The timeout that applied, for messages."""
    started_at: datetime | None = None
    """When the command was started (UTC), for the history page's Gantt chart."""

    @property
    def ok(self) -> bool:
        """True when the command exited with status 0 in time."""
        return self.returncode == 0 and not self.timed_out

    def explain(self) -> str:
        """One short line saying how the command ended, for failure messages."""
        if self.timed_out:
            return f"timed out after {self.timeout_s:g} s; the process group was terminated"
        code = self.returncode
        if code is None:
            return "killed before its exit status was known"
        if code < 0:
            return f"killed by {_signal_name(-code)}"
        if code == 127:
            return "exit status 127: command not found — is it installed and on PATH?"
        if code == 126:
            return "exit status 126: not executable — check its permissions and #! line"
        if code > 128 and _signal_name(code - 128, default=None):
            return f"exit status {code}: a process was killed by {_signal_name(code - 128)}"
        return f"exit status {code}"


def _signal_name(number: int, default: str | None = "") -> str | None:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}" if default == "" else default


_INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP while a command's process is started and recorded.

    A KeyboardInterrupt raised inside ``Popen`` after the fork (or before the process is
    recorded) would leave a running process group nobody terminates. A signal that arrives
    meanwhile is acted on right after, where the caller's cleanup covers the process.
    Main thread only (only it receives signals).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def remember(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)

    previous = {sig: signal.signal(sig, remember) for sig in _INTERRUPTS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if pending:
            handler = previous[signal.Signals(pending[0])]
            if callable(handler):
                handler(pending[0], None)  # e.g. raises KeyboardInterrupt
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), pending[0])


class GroupRecord(Protocol):
    """Where a running command's process group is recorded (the deployment's lock)."""

    def group_started(self, pgid: int, leader_start: int) -> None:
        """Record the group ``pgid`` whose leader (bash) started at ``leader_start``."""

    def group_ended(self, pgid: int) -> None:
        """Forget the group: its bash has ended."""


class CommandRefused(Exception):
    """A command that could not be started; the message is one paragraph for the user."""


class MissingDirectory(CommandRefused, FileNotFoundError):
    """The command's working directory does not exist."""


def _check_runnable(command: str, env: Mapping[str, str]) -> None:
    """Refuse what the kernel would refuse with a traceback: NUL bytes, strings too long."""
    if "\0" in command:
        raise CommandRefused("the command contains a NUL byte; remove it. Nothing was run")
    if len(command.encode()) >= MAX_ARG_CHARS:
        raise CommandRefused(
            f"the command is {len(command.encode()):,} bytes long; Linux passes at most"
            f" {MAX_ARG_CHARS:,} bytes in one argument. Put it in a script and run that."
            " Nothing was run"
        )
    for name, value in env.items():
        if "\0" in value or "\0" in name:
            raise CommandRefused(
                f"the environment variable {name} holds a NUL byte, which no process"
                " environment can carry; fix its value. Nothing was run"
            )
        if len(name.encode()) + len(value.encode()) + 1 >= MAX_ARG_CHARS:
            raise CommandRefused(
                f"the environment variable {name} is {len(value.encode()):,} bytes long;"
                f" Linux passes at most {MAX_ARG_CHARS:,} bytes per variable. Keep large"
                " values in a file and pass its path. Nothing was run"
            )


def prepare_log_folder(folder: Path) -> None:
    """Make a log folder and its missing parents (0700, like the store: a masked log still
    shows what a deployment did, to its owner only); OSError when it cannot be written."""
    if not folder.is_dir():
        missing = [p for p in (folder, *folder.parents) if not p.exists()]
        for parent in reversed(missing):  # no umask change: it is process-wide
            parent.mkdir(mode=0o700, exist_ok=True)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, "Permission denied")


def _create_log(log_path: Path) -> TextIO:
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    return open(fd, "a", encoding="utf-8", newline="")  # noqa: SIM115 - closed by the caller


def open_log(log_path: Path) -> TextIO:
    """Open a log for appending: folders 0700 and file 0600 (see :func:`prepare_log_folder`)."""
    prepare_log_folder(log_path.parent)
    return _create_log(log_path)


class _StepLog:
    """A step's log, made by its first write: a step that prints nothing leaves no file
    (issue 14: on some disks creating a file costs more than running ``true``). Its folder
    is checked before the step runs (:func:`prepare_log_folder`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.made = False
        self._file: TextIO | None = None

    def write(self, text: str) -> None:
        if self._file is None:
            self._file = _create_log(self.path)
            self.made = True
        self._file.write(text)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def run_command(
    command: str,
    *,
    cwd: Path,
    env: Mapping[str, str],
    masker: Masker,
    timeout: float | None = None,
    log_path: Path | None = None,
    psqlrc_dir: Path | None = None,
    psql_single_transaction: bool = False,
    groups: GroupRecord | None = None,
) -> CommandResult:
    """Run *command* with ``bash -c`` in *cwd* with exactly *env*; see the module docstring.

    When the command names ``psql`` and *psqlrc_dir* is given, psql runs with ON_ERROR_STOP
    (:func:`psql_wrapped_env`; with ``-1`` too when ``psql_single_transaction``). The
    output is masked with *masker* as it is written to
    *log_path* (appended; parent folders created) and to the result's tail.
    KeyboardInterrupt and other exceptions terminate the process group and propagate.
    *groups* (the deployment's lock) records the command's process group while bash runs,
    so a run taking the lock over after this runner died can end it.
    """
    if not Path(cwd).is_dir():
        raise MissingDirectory(f"working directory {cwd} does not exist; nothing was run")
    _check_runnable(command, env)
    if psqlrc_dir is not None and _PSQL_WORD.search(command):
        env = psql_wrapped_env(env, psqlrc_dir, single_transaction=psql_single_transaction)
    log = None
    if log_path is not None:
        try:
            prepare_log_folder(log_path.parent)
            log = _StepLog(log_path)
        except OSError as err:
            raise CommandRefused(
                f"cannot write the step's log {log_path}: {err.strerror or err}. Make"
                f" {log_path.parent} writable (or free space on its disk); nothing was run"
            ) from None
    guard.ensure_started()
    holder: list[_Run] = []  # filled the moment the process exists, so it is always reaped
    try:
        try:
            with _interrupts_deferred():
                run = _Run(command, cwd, dict(env), masker, log, holder)
                if groups is not None and run.leader_start is not None:
                    groups.group_started(run.proc.pid, run.leader_start)
        except (OSError, ValueError) as err:
            raise CommandRefused(f"cannot start bash: {err}; nothing was run") from None
        # Only now: a Ctrl-C held while starting was raised above, and the command never ran.
        run.open_gate()
        return run.wait(timeout, log_path)
    except BaseException:
        # Ctrl-C (or SIGTERM) between the process's start and wait()'s own cleanup
        for started in holder:
            started.close_gate()
            if not started.terminated and started.proc.poll() is None:
                started._terminate_group()
        raise
    finally:
        with _RUNNING_LOCK:
            for started in holder:
                _RUNNING.discard(started)
        for started in holder:  # bash has ended (reaped): the command is over
            guard.unregister(started.proc.pid)
            if groups is not None:
                groups.group_ended(started.proc.pid)
        if log is not None:
            try:
                log.close()
            except OSError:
                pass  # a full disk: the run already said its log stopped


def terminate_running() -> int:
    """Terminate the process group of every command running now, in any thread.

    For Ctrl-C with steps running in worker threads: KeyboardInterrupt reaches only the main
    thread, which calls this. Each group gets SIGTERM, then SIGKILL after :data:`KILL_GRACE_S`
    if anything of it is left; the threads' :func:`run_command` calls then return results
    saying how their command was killed. Returns the number of groups signalled.
    """
    with _RUNNING_LOCK:
        pgids = [run.proc.pid for run in _RUNNING]
    for pgid in pgids:
        _signal_group(pgid, signal.SIGTERM)
    end = time.monotonic() + KILL_GRACE_S
    left = pgids
    while left and time.monotonic() < end:
        left = [pgid for pgid in left if _group_alive(pgid)]
        if left:
            time.sleep(_TICK_S)
    for pgid in left:
        _signal_group(pgid, signal.SIGKILL)
    return len(pgids)


class _Run:
    """One running command: its process and the reading of its output."""

    def __init__(
        self,
        command: str,
        cwd: Path,
        env: dict[str, str],
        masker: Masker,
        log: _StepLog | None,
        holder: list[_Run],
    ) -> None:
        self.command = command
        self.masker = masker
        self.log = log
        self.step_log = log  # kept when self.log is dropped (the disk filled up)
        self.log_error: str | None = None
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pending = ""  # decoded output not yet masked: at most the current line
        self.tail: deque[str] = deque()
        self.tail_chars = 0
        self.started = time.monotonic()
        self.started_at = datetime.now(timezone.utc)
        self.terminated = False
        # Started and recorded under the lock: terminate_running() (Ctrl-C with steps in
        # worker threads) waits for a command being started instead of missing it.
        # bash dies with the runner: see procgroups.dying_with_runner (how, and its cost).
        # It waits at the gate until its group is registered (see _GATE).
        gate_read, gate_write = os.pipe()
        self.gate: int | None = gate_write
        gated = [BASH, "-c", _GATE.format(fd=gate_read, bash=BASH), command]
        argv, preexec = procgroups.dying_with_runner(gated)
        try:
            with _RUNNING_LOCK:
                self.proc = subprocess.Popen(
                    argv,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=preexec,
                    pass_fds=(gate_read,),
                )
                holder.append(self)
                _RUNNING.add(self)
        except BaseException:
            self.close_gate()
            raise
        finally:
            os.close(gate_read)
        # The group's identity: its id (bash's pid) and bash's start time, so that a pid the
        # kernel gives to another process later is never taken for it.
        self.leader_start = procgroups.start_time(self.proc.pid)
        if self.leader_start is not None:
            guard.register(self.proc.pid, self.leader_start)
        assert self.proc.stdout is not None
        self.fd: int | None = self.proc.stdout.fileno()
        self.poller = select.poll()
        self.poller.register(self.fd, select.POLLIN)
        # bash's exit wakes the poll too (Linux 5.3+): no sleeping between the end of its
        # output and its exit, as Popen.wait(timeout) does (0.5 ms, then 1, 2 ...)
        self.pidfd: int | None = None
        if hasattr(os, "pidfd_open"):
            try:
                self.pidfd = os.pidfd_open(self.proc.pid)
            except OSError:
                pass  # an older kernel: Popen.wait below
            else:
                self.poller.register(self.pidfd, select.POLLIN)

    def open_gate(self) -> None:
        """Let bash run the command (its group is registered now)."""
        if self.gate is not None:
            try:
                os.write(self.gate, b"\n")
            except OSError:
                pass  # bash is gone already (killed): wait() reports how
            self.close_gate()

    def close_gate(self) -> None:
        """Close the gate; unopened, bash then exits without running the command."""
        gate, self.gate = self.gate, None
        if gate is not None:
            os.close(gate)

    def wait(self, timeout: float | None, log_path: Path | None) -> CommandResult:
        deadline = None if timeout is None else self.started + timeout
        timed_out = False
        try:
            while self.proc.poll() is None:
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    timed_out = True
                    self._terminate_group()
                    break
                self._pump(_TICK_S if deadline is None else min(_TICK_S, deadline - now))
            self._forget_pidfd()
            self._drain()
        except BaseException:
            # Ctrl-C (or anything else) while the command runs must not leave it running.
            if not self.terminated:
                self._terminate_group()
            self._forget_pidfd()
            self._close()
            raise
        self._close()
        return CommandResult(
            command=self.command,
            returncode=self.proc.returncode,
            tail=self._tail_text(),
            duration_s=time.monotonic() - self.started,
            timed_out=timed_out,
            # a log exists only when the command printed something
            log_path=log_path if self.step_log is not None and self.step_log.made else None,
            timeout_s=timeout,
            started_at=self.started_at,
        )

    # -- process group ---------------------------------------------------------------------

    def _terminate_group(self) -> None:
        """SIGTERM the process group, SIGKILL it after the grace period if anything is left."""
        pgid = self.proc.pid  # start_new_session: bash leads its own group
        self.terminated = True
        _signal_group(pgid, signal.SIGTERM)
        try:
            end = time.monotonic() + KILL_GRACE_S
            while time.monotonic() < end:
                if self.proc.poll() is not None and not _group_alive(pgid):
                    return
                self._pump(min(_TICK_S, max(end - time.monotonic(), 0)))
            _signal_group(pgid, signal.SIGKILL)
        except BaseException:
            # A second Ctrl-C during the grace period: don't wait any longer.
            _signal_group(pgid, signal.SIGKILL)
            raise
        finally:
            self.proc.wait()

    # -- output ----------------------------------------------------------------------------

    def _pump(self, wait_s: float) -> None:
        """Read what the output has within *wait_s*, or wait for bash once output ended."""
        if self.pidfd is not None and self.proc.returncode is not None:
            self._forget_pidfd()  # bash is gone (its group may not be): poll output only
        if self.fd is not None or self.pidfd is not None:
            for fd, _ in self.poller.poll(wait_s * 1000):
                if fd == self.fd:
                    self._read_once()
                    break
        elif self.proc.returncode is None:
            try:
                self.proc.wait(wait_s)
            except subprocess.TimeoutExpired:
                pass
        else:
            time.sleep(wait_s)  # only while waiting for a terminated group to be gone

    def _read_once(self) -> bool:
        """Read one chunk; return False at end of output (and stop reading)."""
        assert self.fd is not None
        chunk = os.read(self.fd, _READ_SIZE)
        if not chunk:
            self._close()
            return False
        self._feed(self.decoder.decode(chunk))
        return True

    def _drain(self) -> None:
        """After bash exited: read what comes within DRAIN_S, then stop reading."""
        end = time.monotonic() + DRAIN_S
        while self.fd is not None:
            left = end - time.monotonic()
            if left <= 0:
                at_line_start = not self.pending and (not self.tail or self.tail[-1][-1:] == "\n")
                self._feed(_BACKGROUND_NOTE if not at_line_start else _BACKGROUND_NOTE[1:])
                break
            if self.poller.poll(left * 1000):
                self._read_once()

    def _forget_pidfd(self) -> None:
        if self.pidfd is not None:
            self.poller.unregister(self.pidfd)
            os.close(self.pidfd)
            self.pidfd = None

    def _close(self) -> None:
        """Stop reading: flush what is pending and close the read end."""
        if self.fd is not None:
            self.poller.unregister(self.fd)
            self.fd = None
            assert self.proc.stdout is not None
            self.proc.stdout.close()
        self._feed(self.decoder.decode(b"", final=True))
        if self.pending:
            self._emit(self.pending)
            self.pending = ""
        if self.log is not None:
            try:
                self.log.flush()
            except OSError as err:
                self.log_error = f"the log stopped: {err.strerror or err}"
                self._close_log()
        if self.log_error:
            self._emit(f"\n[pytest-deploy] {self.log_error}; the step's output is kept here\n")

    def _close_log(self) -> None:
        log, self.log = self.log, None
        if log is not None:
            try:
                log.close()
            except OSError:
                pass  # its buffer could not be written: that is what log_error says

    def _feed(self, text: str) -> None:
        # Masking works on whole lines, so a secret is never split between two pieces; a line
        # too long to hold is cut where Masker.safe_cut says no secret or URL is split.
        self.pending += text
        newline = self.pending.rfind("\n")
        if newline >= 0:
            self._emit(self.pending[: newline + 1])
            self.pending = self.pending[newline + 1 :]
        while len(self.pending) > MAX_PENDING_CHARS:
            # safe_cut gives 0 only for one URL or secret longer than the limit: flush anyway.
            cut = self.masker.safe_cut(self.pending) or len(self.pending)
            self._emit(self.pending[:cut])
            self.pending = self.pending[cut:]

    def _emit(self, text: str) -> None:
        masked = self.masker.mask(text)
        if self.log is not None:
            try:
                self.log.write(masked)
            except OSError as err:  # e.g. disk full: the step goes on, its tail is kept
                self.log_error = f"the log stopped: {err.strerror or err}"
                self._close_log()
        if len(masked) > TAIL_BYTES:
            masked = masked[-TAIL_BYTES:]
        self.tail.append(masked)
        self.tail_chars += len(masked)
        while self.tail_chars - len(self.tail[0]) >= TAIL_BYTES:
            self.tail_chars -= len(self.tail.popleft())

    def _tail_text(self) -> str:
        data = "".join(self.tail).encode("utf-8")[-TAIL_BYTES:]
        # The cut may fall inside a multi-byte character: drop its partial bytes.
        return data.decode("utf-8", errors="ignore")


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    """True while a live (non-zombie) process is in process group *pgid*.

    Orphans that exit become zombies of PID 1, which may never reap them (as in some
    containers), and a zombie still counts for ``killpg(pgid, 0)``: so look in /proc.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True  # no /proc: trust killpg
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:
            continue
        # After the "(comm)" field: state, ppid, pgrp, ...
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False
