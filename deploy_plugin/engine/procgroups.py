"""Process groups of running steps: started to die with their runner, and ended after it.

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
   (:func:`deploy_plugin.store.lock.end_dead_holders_groups`).

No instant is left uncovered: a command waits at a gate (:mod:`deploy_plugin.engine.shell`)
until its group is registered with the guard and recorded in the lock's row.

Reading /proc and ending recorded groups (:func:`end_groups`, :func:`start_time`) live in
:mod:`deploy_plugin.processes`, below the store, which ends a dead holder's groups itself.
Linux only (``/proc``, ``prctl``); elsewhere nothing is done.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

# Used by the guard and the shell as procgroups.*: one import for everything about groups.
from deploy_plugin.processes import GroupsLeft, end_groups, group_alive, signal_group, start_time

__all__ = [
    "GroupsLeft",
    "die_with_runner",
    "dying_with_runner",
    "end_groups",
    "group_alive",
    "signal_group",
    "start_time",
]

#: prctl(2) option: the signal this process gets when its parent thread ends.
PR_SET_PDEATHSIG = 1


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
