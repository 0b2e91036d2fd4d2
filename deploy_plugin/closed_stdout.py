"""A closed stdout never changes a deployment (issue 21: ``pytest … -v | head -13``).

When the reader of stdout goes away (``head`` has its lines, a CI log collector stops),
every later write to the pipe fails with EPIPE (Python ignores SIGPIPE, so it is a
BrokenPipeError). pytest on its own lets that error out of whichever hook was writing:
the hooks after it are skipped (JUnit's record of the step among them), the session ends
as an internal error, and ``console_main`` returns 1. A deployment must not depend on
who reads its output, so under ``--deploy-target`` the run goes on as if stdout were open:
every step runs and is recorded, nothing more is written, and the exit status is the
run's own.

How: the terminal reporter is made in pytest's ``pytest_configure`` with ``sys.stdout`` as
its file, and all of pytest's terminal output (xdist's too) goes through that file. Our
``pytest_configure`` runs before the terminal plugin's, so for that moment ``sys.stdout``
is a :class:`GuardedStream`: a write that meets EPIPE is caught there, inside the write,
so no hook is cut short. Catching it in a hook wrapper instead would be too late (pluggy
has already skipped the hook's later implementations). The guard then points every
descriptor of this process on the dead pipe at /dev/null (:func:`silence`): fd 1, and the
copy pytest's capture keeps to restore fd 1 after each test (found by the pipe's identity
in /proc/self/fd, so no private attribute is read). Later writes, from anyone, then
succeed into /dev/null, up to the interpreter's own flush at exit.
"""

from __future__ import annotations

import os
import stat
import sys
from typing import Any, TextIO


def pipe_identity(stream: Any) -> tuple[int, int] | None:
    """(device, inode) of the pipe or socket under ``stream``; None for anything that
    never fails with EPIPE (a terminal, a file) or has no descriptor (a capture)."""
    try:
        status = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return None
    if not (stat.S_ISFIFO(status.st_mode) or stat.S_ISSOCK(status.st_mode)):
        return None
    return status.st_dev, status.st_ino


def silence(identity: tuple[int, int]) -> None:
    """Point every descriptor of this process on the pipe ``identity`` (its reader gone)
    at /dev/null, so that no later write to it fails."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        names = ["0", "1", "2"]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for number in sorted(set(map(int, names)) - {null}):
            try:
                status = os.fstat(number)
            except OSError:
                continue  # closed meanwhile (e.g. the listing's own descriptor)
            if (status.st_dev, status.st_ino) == identity:
                os.dup2(null, number, inheritable=os.get_inheritable(number))
    finally:
        os.close(null)


class GuardedStream:
    """``stream`` (a text stream on a pipe) whose writes never fail with EPIPE: the first
    one that would fail silences the pipe (see the module's docstring) and is dropped."""

    def __init__(self, stream: TextIO, identity: tuple[int, int]) -> None:
        self.stream = stream
        self.identity = identity

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            self.closed_pipe()
            return len(text)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            self.closed_pipe()

    def closed_pipe(self) -> None:
        """The reader is gone: silence the pipe, then empty the buffer into /dev/null."""
        silence(self.identity)
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)  # isatty, encoding, fileno…: the stream's own


def guard_stdout(pluginmanager: Any) -> GuardedStream | None:
    """Make ``sys.stdout`` a GuardedStream for pytest's terminal reporter to take as its
    file (call it from ``pytest_configure`` before the terminal plugin's). None, and
    nothing changed, when stdout is no pipe or the reporter already exists; the caller
    puts the stream back once the reporter is made."""
    identity = pipe_identity(sys.stdout)
    if identity is None or pluginmanager.has_plugin("terminalreporter"):
        return None
    guard = GuardedStream(sys.stdout, identity)
    sys.stdout = guard  # a TextIO in all that is used (the rest goes to the stream)
    return guard
