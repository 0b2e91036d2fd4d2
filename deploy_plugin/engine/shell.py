"""Running one shell command for a step (DESIGN §4, "Shell steps" and "psql safety").

:func:`run_command` is the one way a step runs a command: it refuses what cannot be run
(a missing folder, NUL bytes, strings longer than Linux passes) in one paragraph, wraps
psql (ON_ERROR_STOP, ``-1``), prepares the step's log folder, starts the command with
exactly the environment the caller built (:mod:`deploy_plugin.engine.process`: its own
process group, its output masked, logged and kept in a tail by
:mod:`deploy_plugin.engine.output`) and returns a :class:`CommandResult`.

No command outlives its runner (:mod:`deploy_plugin.engine.procgroups`): bash gets SIGKILL when
the runner dies (the parent-death signal), the runner's guard (:mod:`deploy_plugin.engine.guard`)
SIGKILLs the group of every command still running then, and the group is recorded in the
deployment's lock row while bash runs, for the run that takes the lock over.

A step may start a background service that inherits the output pipe: the command is over
when bash exits. Such a service gets EPIPE/SIGPIPE if it writes to its inherited output
later, so services should redirect their output (``server > server.log 2>&1 &``).
"""

from __future__ import annotations

import re
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from deploy_plugin.engine import guard
from deploy_plugin.engine.output import StepLog, prepare_log_folder
from deploy_plugin.engine.process import Running
from deploy_plugin.engine.psql import psql_wrapped_env
from deploy_plugin.engine.signals import interrupts_deferred
from deploy_plugin.facts import MAX_ARG_CHARS
from deploy_plugin.secrets import Masker

_PSQL_WORD = re.compile(r"\bpsql\b")


@dataclass
class CommandResult:
    """The outcome of :func:`run_command`."""

    command: str
    """The command as run (not masked: mask it for display)."""
    returncode: int | None
    """bash's exit status; negative -N when it was killed by signal N; None if unknown."""
    tail: str
    """The last ``TAIL_BYTES`` (:mod:`deploy_plugin.engine.output`) of the combined stdout
    and stderr, already masked."""
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
            log = StepLog(log_path)
        except OSError as err:
            raise CommandRefused(
                f"cannot write the step's log {log_path}: {err.strerror or err}. Make"
                f" {log_path.parent} writable (or free space on its disk); nothing was run"
            ) from None
    guard.ensure_started()
    holder: list[Running] = []  # filled the moment the process exists: always reaped
    try:
        try:
            with interrupts_deferred():
                run = Running(command, cwd, dict(env), masker, log, holder)
                if groups is not None and run.leader_start is not None:
                    groups.group_started(run.proc.pid, run.leader_start)
        except (OSError, ValueError) as err:
            raise CommandRefused(f"cannot start bash: {err}; nothing was run") from None
        # Only now: a Ctrl-C held while starting was raised above, and the command never ran.
        run.open_gate()
        ended = run.wait(timeout)
        return CommandResult(
            command=command,
            returncode=ended.returncode,
            tail=run.output.tail_text(),
            duration_s=ended.duration_s,
            timed_out=ended.timed_out,
            # a log exists only when the command printed something
            log_path=log_path if run.output.logged else None,
            timeout_s=timeout,
            started_at=run.started_at,
        )
    except BaseException:
        for started in holder:
            started.abort()
        raise
    finally:
        for started in holder:  # bash has ended (reaped): the command is over
            started.forget()
            if groups is not None:
                groups.group_ended(started.proc.pid)
        if log is not None:
            try:
                log.close()
            except OSError:
                pass  # a full disk: the run already said its log stopped
