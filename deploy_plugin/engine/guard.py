"""The runner's guard: ends the running steps' process groups when the runner dies.

One small process per runner (started with its first step command, in the runner's
process group), reading the read end of a pipe whose write end only the runner holds.
The runner writes ``+ PGID START`` when a step's group starts and ``- PGID 0`` when its
bash has ended. However the runner ends — even SIGKILL, which no handler sees — the
kernel closes its end of the pipe; the guard then SIGKILLs the groups still registered
(:func:`deploy_plugin.engine.procgroups.end_groups`: only those whose leader's start time
matches) and exits. A runner that ended normally has none registered.

It ignores SIGINT, SIGTERM and SIGHUP: Ctrl-C, a CI cancellation or a closed terminal
reach the runner's whole process group, and the guard must outlive the runner to do its
job. The parent-death signal of bash (see :func:`deploy_plugin.engine.procgroups.die_with_runner`)
and the takeover of the lock cover the case where the guard dies too.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

from deploy_plugin.engine import procgroups

_LOCK = threading.Lock()
_owner = 0  # the pid that started the guard below (a forked child starts its own)
_fd: int | None = None  # write end of the guard's pipe
_registered: dict[int, int] = {}  # pgid -> leader start time, re-sent to a new guard


def ensure_started() -> None:
    """Start this process's guard if it is not running, so that registering a command's
    group right after its start is one write on a pipe (the instant between a command's
    start and its registration is the one a killed runner's command escapes the guard)."""
    with _LOCK:
        if _owner != os.getpid() or _fd is None:
            _start()


def register(pgid: int, leader_start: int) -> None:
    """Tell the guard about a running step's group (started on first use)."""
    with _LOCK:
        _registered[pgid] = leader_start
        _send(f"+ {pgid} {leader_start}\n")


def unregister(pgid: int) -> None:
    """The step's bash has ended: its group (a background service, say) is no more the
    guard's to end."""
    with _LOCK:
        if _registered.pop(pgid, None) is not None:
            _send(f"- {pgid} 0\n")


def _send(line: str) -> None:
    global _fd
    fd = _fd if _owner == os.getpid() else _start()
    if fd is None:
        return
    try:
        os.write(fd, line.encode())
    except OSError:  # the guard is gone (or stuck): the other two safeguards remain
        os.close(fd)
        _fd = None


def _start() -> int | None:
    """Start a guard for this process; re-register what runs now. None if it can't."""
    global _owner, _fd
    if _owner != os.getpid():  # a forked copy of the runner: its groups are not ours
        if _fd is not None:
            os.close(_fd)  # the parent's guard must see its pipe close when the parent dies
        _registered.clear()
    _owner, _fd = os.getpid(), None
    if not sys.executable or not os.path.isdir("/proc/self"):
        return None
    read, write = os.pipe()  # both close-on-exec: no step command inherits the write end
    package_parent = str(Path(__file__).resolve().parents[2])  # holds deploy_plugin/
    code = (
        f"import sys; sys.path.insert(0, {package_parent!r});"
        " import deploy_plugin.engine.guard as g; g.main()"
    )
    try:
        # -I -S: no site, no user environment; a few ms once per runner, not per step.
        # posix_spawn: a plain spawn (vfork-like), no Python code in the child.
        os.posix_spawn(
            sys.executable,
            [sys.executable, "-I", "-S", "-c", code],
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, read, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
            ],
        )
    except OSError:
        os.close(write)
        return None
    finally:
        os.close(read)
    os.set_blocking(write, False)  # a stuck guard must never stop the runner
    _fd = write
    lines = "".join(f"+ {pgid} {start}\n" for pgid, start in _registered.items())
    if lines:  # a guard started again (the last one died): what runs now
        try:
            os.write(write, lines.encode())
        except OSError:
            os.close(write)
            _fd = None
    return _fd


def main() -> None:
    """The guard process: read registrations until the runner's end of the pipe closes."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    os.chdir("/")  # hold no folder of the runner's
    groups: dict[int, int] = {}
    pending = b""
    while chunk := os.read(0, 65536):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            op, pgid, start = line.split()
            if op == b"+":
                groups[int(pgid)] = int(start)
            else:
                groups.pop(int(pgid), None)
    try:
        procgroups.end_groups(groups.items())
    except procgroups.GroupsLeft:
        pass  # nothing to tell anyone: the lock's takeover tries again
