"""Processes on this host as /proc shows them: liveness, start times, the members of a
step's process group, and ending recorded groups.

Below the store and the engine alike (it imports nothing of ours): the store ends a dead
lock holder's recorded step groups when it takes the lock over, the engine's guard ends a
dead runner's, and both tell a live pid from a dead one here. How step commands come to
lead groups of their own, and why they are recorded, is told in
:mod:`deploy_plugin.engine.procgroups`.

A group is identified by its id and its leader's start time (field 22 of
``/proc/<pid>/stat``, clock ticks since boot), so a pid the kernel gave to another process
since is never signalled. Linux only; elsewhere /proc can't tell and nothing is ended.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterable

#: Upper bound of the wait for killed groups to be gone (SIGKILL is immediate unless a
#: process sleeps uninterruptibly, e.g. on a hung NFS mount).
END_WAIT_S = 30.0
_POLL_S = 0.005


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


def alive_here(host: str, pid: int) -> bool:
    """Whether ``pid`` is a running process on this host (another host: unknown → False).

    The one liveness check of the store, the runner and the CLI. A pid we may not signal
    (another user's) counts as alive; a zombie (ended, not reaped yet: state Z in
    /proc/<pid>/stat) counts as dead.
    """
    if host != socket.gethostname() or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass
    return is_running(pid) is not False
