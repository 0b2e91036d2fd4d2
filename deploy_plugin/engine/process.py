"""One running step command: its process, its process group, the reading of its output.

A command runs as ``/bin/bash -c COMMAND`` in its own session and process group, with
stdin from /dev/null (:class:`Running`). bash first waits at a gate until the caller has
registered its group (with the guard and the deployment's lock row), so that no instant
is left in which a step runs unregistered. Its output is read as it comes into an
:class:`~deploy_plugin.engine.output.Output`; bash's exit ends the wait (a pidfd wakes the
poll). On timeout, Ctrl-C (or any other exception while waiting) the whole group gets
SIGTERM, then SIGKILL after :data:`KILL_GRACE_S` if anything of it is left
(:mod:`deploy_plugin.engine.procgroups` signals and watches groups).

A step may start a background service that inherits the pipe and never closes it. The
command is over when bash exits: what the pipe still yields within :data:`DRAIN_S` is read,
then the read end is closed.

Every command running now, in any thread, is known (:func:`terminate_running`).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from deploy_plugin.engine import guard, procgroups
from deploy_plugin.engine.output import Output, StepLog
from deploy_plugin.secrets import Masker

BASH = "/bin/bash"
#: Seconds between SIGTERM and SIGKILL when a process group is terminated.
KILL_GRACE_S = 5.0
#: Seconds to keep reading the output after bash exited while something still holds it open.
DRAIN_S = 0.5

_READ_SIZE = 65536
# Upper bound of one wait in the loop; it only matters while a background process keeps the
# output open after bash exited (normally end of output wakes the loop at once).
_TICK_S = 0.05
# Commands running now, for terminate_running(); commands may run in several threads.
_RUNNING: set[Running] = set()
_RUNNING_LOCK = threading.Lock()
# The gate: bash first reads a line from an inherited pipe, which the runner writes once
# the command's process group is registered with its guard and recorded in the lock's row;
# then it closes the pipe and execs ``bash -c COMMAND`` (same pid, same group, the
# parent-death signal kept). A runner killed before that leaves a bash that reads EOF and
# exits with 137, the command never run: no instant in which a step runs unregistered.
# The price is a second start of bash, under a millisecond.
_GATE = 'read -r -u {fd} _ || exit 137; exec {fd}<&-; exec {bash} -c "$0"'


@dataclass(frozen=True)
class Ended:
    """How a command's process ended."""

    returncode: int | None  # negative -N: killed by signal N
    timed_out: bool
    duration_s: float


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
        procgroups.signal_group(pgid, signal.SIGTERM)
    end = time.monotonic() + KILL_GRACE_S
    left = pgids
    while left and time.monotonic() < end:
        left = [pgid for pgid in left if procgroups.group_alive(pgid)]
        if left:
            time.sleep(_TICK_S)
    for pgid in left:
        procgroups.signal_group(pgid, signal.SIGKILL)
    return len(pgids)


class Running:
    """One running command: its process and the reading of its output."""

    def __init__(
        self,
        command: str,
        cwd: Path,
        env: dict[str, str],
        masker: Masker,
        log: StepLog | None,
        holder: list[Running],
    ) -> None:
        self.command = command
        self.output = Output(masker, log)
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

    def abort(self) -> None:
        """Ctrl-C (or SIGTERM) between the start and :meth:`wait`'s own cleanup: the
        command never runs, or its group is terminated."""
        self.close_gate()
        if not self.terminated and self.proc.poll() is None:
            self.terminate_group()

    def forget(self) -> None:
        """bash has ended (reaped): the command is over, no group of it to terminate."""
        with _RUNNING_LOCK:
            _RUNNING.discard(self)
        guard.unregister(self.proc.pid)

    def close_gate(self) -> None:
        """Close the gate; unopened, bash then exits without running the command."""
        gate, self.gate = self.gate, None
        if gate is not None:
            os.close(gate)

    def wait(self, timeout: float | None) -> Ended:
        """Wait for bash to exit (terminating its group at ``timeout``), reading the output."""
        deadline = None if timeout is None else self.started + timeout
        timed_out = False
        try:
            while self.proc.poll() is None:
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    timed_out = True
                    self.terminate_group()
                    break
                self._pump(_TICK_S if deadline is None else min(_TICK_S, deadline - now))
            self._forget_pidfd()
            self._drain()
        except BaseException:
            # Ctrl-C (or anything else) while the command runs must not leave it running.
            if not self.terminated:
                self.terminate_group()
            self._forget_pidfd()
            self._close()
            raise
        self._close()
        return Ended(self.proc.returncode, timed_out, time.monotonic() - self.started)

    # -- process group ---------------------------------------------------------------------

    def terminate_group(self) -> None:
        """SIGTERM the process group, SIGKILL it after the grace period if anything is left."""
        pgid = self.proc.pid  # start_new_session: bash leads its own group
        self.terminated = True
        procgroups.signal_group(pgid, signal.SIGTERM)
        try:
            end = time.monotonic() + KILL_GRACE_S
            while time.monotonic() < end:
                if self.proc.poll() is not None and not procgroups.group_alive(pgid):
                    return
                self._pump(min(_TICK_S, max(end - time.monotonic(), 0)))
            procgroups.signal_group(pgid, signal.SIGKILL)
        except BaseException:
            # A second Ctrl-C during the grace period: don't wait any longer.
            procgroups.signal_group(pgid, signal.SIGKILL)
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
        self.output.feed_bytes(chunk)
        return True

    def _drain(self) -> None:
        """After bash exited: read what comes within DRAIN_S, then stop reading."""
        end = time.monotonic() + DRAIN_S
        while self.fd is not None:
            left = end - time.monotonic()
            if left <= 0:
                self.output.note_background()
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
        self.output.finish()
