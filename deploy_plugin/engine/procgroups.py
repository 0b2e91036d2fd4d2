"""Process groups of running steps, read from /proc, and ending a dead run's groups.

No step outlives its runner (DESIGN §5). Each step command runs as ``bash -c`` leading a
session and process group of its own (:mod:`deploy_plugin.engine.shell`), so three things keep
it from running on after its runner died:

1. **The parent-death signal** (:func:`dying_with_runner`): bash gets SIGKILL the moment
   the runner dies. It covers bash only (and what bash execs in its place): the kernel clears
   it in every child bash forks.
2. **The guard** (:mod:`deploy_plugin.engine.guard`): a small process per runner, told the
   group of each running step over a pipe. When the runner dies, the kernel closes the
   pipe; the guard SIGKILLs the groups still registered (bash's children too: a psql
   that would otherwise commit after its runner died) and exits.
3. **The record**: each running step's group id and its leader's start time are kept in
   the deployment lock's row (``deploy_locks.step_groups``). When everything of a run
   died at once (runner and guard, e.g. SIGKILL of its whole process group), the run that
   takes the lock over ends those groups before it runs anything
   (:func:`end_recorded_groups`).

No instant is left uncovered: a command waits at a gate (:mod:`deploy_plugin.engine.shell`)
until its group is registered with the guard and recorded in the lock's row.

A group is identified by its id and its leader's start time (field 22 of
``/proc/<pid>/stat``, clock ticks since boot), so a pid the kernel gave to another process
since is never signalled. Linux only (``/proc``, ``prctl``); elsewhere nothing is done.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable

#: prctl(2) option: the signal this process gets when its parent thread ends.
PR_SET_PDEATHSIG = 1
#: Upper bound of the wait for killed groups to be gone (SIGKILL is immediate unless a
#: process sleeps uninterruptibly, e.g. on a hung NFS mount).
END_WAIT_S = 30.0
_POLL_S = 0.005


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


# Resolved once, in the parent: the child must not load libraries or look up symbols.
_PRCTL = _load_prctl()


#: util-linux's setpriv, which sets the parent-death signal and execs the command.
SETPRIV = next(
    (path for path in ("/usr/bin/setpriv", "/bin/setpriv") if os.access(path, os.X_OK)), None
)


def dying_with_runner(argv: list[str]) -> tuple[list[str], Callable[[], None] | None]:
    """``argv`` made to die with the runner, and the ``preexec_fn`` to start it with.

    The new process gets ``PR_SET_PDEATHSIG`` = SIGKILL: the kernel kills it the moment the
    runner dies. SIGKILL, not SIGTERM: nobody is left to record what the step did, and a
    command bash execs in its place (``psql ...`` alone) keeps the setting and could catch
    SIGTERM and go on; SIGKILL cannot be caught. The kernel clears the setting in every
    child bash forks: the guard and the lock's record cover those.

    How: with util-linux ``setpriv --pdeathsig KILL`` in front of the command when it is
    installed (it sets the signal and execs bash: same pid, same process group). Else a
    ``preexec_fn`` (:func:`die_with_runner`). Measured on a runner with a 60 MB heap, per
    command: the plain start 1.4 ms, with setpriv 2.7 ms, with the ``preexec_fn`` 6.6 ms
    (a ``preexec_fn`` makes ``subprocess`` fork the whole runner instead of using vfork).
    setpriv cannot check that the runner was still alive when it set the signal; the gate
    of :mod:`deploy_plugin.engine.shell` covers that instant: a runner killed before it
    registered the group never opens the gate, and bash exits without running anything.

    Threads: the signal comes when the *thread* that forked the child ends, not the
    process. Every step command is started and waited for by one call of
    :func:`deploy_plugin.engine.shell.run_command`, in the same thread, which reaps bash before
    it returns; so the forking thread (main thread or a ``max_parallel`` worker) always
    outlives its bash, and a worker thread ending after its last step takes nothing with
    it (tests/test_orphans.py checks both).
    """
    if _PRCTL is None:
        return argv, None
    if SETPRIV is not None:
        return [SETPRIV, "--pdeathsig", "KILL", "--", *argv], None
    return argv, die_with_runner()


def die_with_runner() -> Callable[[], None] | None:
    """The ``preexec_fn`` setting the parent-death signal (None: not Linux).

    In the child, between fork and exec: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, then a check
    that the parent is still the runner. If the runner died before the prctl took effect
    the signal would never come (the child was already re-parented), so the child exits
    at once instead.

    The Python docs call a ``preexec_fn`` unsafe with threads: a lock another thread held
    at fork time stays locked in the child. This function takes none: it calls a
    ``prctl`` resolved beforehand, ``os.getppid`` and ``os._exit`` (CPython resets the GIL
    and its import lock in the child itself).
    """
    prctl = _PRCTL
    if prctl is None:
        return None
    runner = os.getpid()
    kill = int(signal.SIGKILL)

    def child() -> None:
        prctl(PR_SET_PDEATHSIG, kill, 0, 0, 0)
        if os.getppid() != runner:
            os._exit(128 + kill)

    return child


# ------------------------------------------------------------------------- /proc


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after ``(comm)`` (state, ppid, pgrp, session, ...)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
            return handle.read().rpartition(")")[2].split()
    except OSError:
        return None


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot: stat field 22), None if it is gone."""
    fields = _stat(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def is_running(pid: int) -> bool | None:
    """Whether ``pid`` is a live process: False when gone or a zombie (state Z, X: it has
    ended, only its exit status waits to be reaped); None when /proc can't tell."""
    if not os.path.isdir("/proc/self"):
        return None
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def _processes() -> Iterable[tuple[int, list[str]]]:
    try:
        entries = os.listdir("/proc")
    except OSError:
        return
    for entry in entries:
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None and len(fields) > 19:
                yield int(entry), fields


def members(pgid: int, leader_start: int) -> list[int]:
    """Live processes of the step group ``pgid`` whose leader started at ``leader_start``;
    [] when that group is gone (its pid now names another process, or nothing).

    The group's leader (bash) may be gone already (its parent-death signal) while its
    children live on: a group id stays taken while any member lives, so those are the
    group's, provided they look like it: in session ``pgid`` (steps lead a session of
    their own) and started no earlier than the leader.
    """
    leader = _stat(pgid)
    if leader is not None and len(leader) > 19 and int(leader[19]) != leader_start:
        return []  # the pid was given to another process: our group ended before
    found = []
    for pid, fields in _processes():
        if int(fields[2]) != pgid or fields[0] in ("Z", "X"):
            continue
        if leader is None and (int(fields[3]) != pgid or int(fields[19]) < leader_start):
            return []  # a leaderless group that is not what we recorded: leave it alone
        found.append(pid)
    return found


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to process group ``pgid`` (nothing when it is gone)."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def group_alive(pgid: int) -> bool:
    """True while a live (non-zombie) process is in process group ``pgid``.

    Orphans that exit become zombies of PID 1, which may never reap them (as in some
    containers), and a zombie still counts for ``killpg(pgid, 0)``: so look in /proc.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not os.path.isdir("/proc/self"):
        return True  # no /proc: trust killpg
    return any(
        int(fields[2]) == pgid and fields[0] not in ("Z", "X") for _, fields in _processes()
    )


def end_groups(groups: Iterable[tuple[int, int]], wait_s: float = END_WAIT_S) -> list[int]:
    """SIGKILL each recorded group (pgid, leader start time) that still runs here, and wait
    (bounded by ``wait_s``) until /proc shows none of their processes alive.

    Returns the ids of the groups that were running. Raises :class:`GroupsLeft` naming
    what is still alive at the deadline.
    """
    ended = []
    for pgid, leader_start in groups:
        if members(pgid, leader_start):
            ended.append((pgid, leader_start))
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            except PermissionError:
                raise GroupsLeft([pgid]) from None
    deadline = time.monotonic() + wait_s
    left = [pgid for pgid, start in ended if members(pgid, start)]
    while left and time.monotonic() < deadline:
        time.sleep(_POLL_S)  # a poll interval: what is awaited is /proc's state
        left = [pgid for pgid, start in ended if members(pgid, start)]
    if left:
        raise GroupsLeft(left)
    return [pgid for pgid, _ in ended]


class GroupsLeft(Exception):
    """Recorded step groups that could not be ended (not ours to signal, or unkillable)."""

    def __init__(self, pgids: list[int]) -> None:
        super().__init__(", ".join(str(p) for p in pgids))
        self.pgids = pgids


# -------------------------------------------------------------------- the record


def encode(groups: Iterable[tuple[int, int]]) -> str:
    """The ``deploy_locks.step_groups`` value: a JSON list of [pgid, leader start]."""
    return json.dumps(sorted([int(p), int(s)] for p, s in groups), separators=(",", ":"))


def decode(value: str | None) -> list[tuple[int, int]]:
    """The groups of a ``step_groups`` value; [] for NULL, '' or anything unreadable."""
    try:
        loaded = json.loads(value or "[]")
        return [(int(pair[0]), int(pair[1])) for pair in loaded]
    except (ValueError, TypeError, IndexError, KeyError):
        return []
