"""The handle of a held deployment lock, and the step groups its row records.

How a lock is taken is each store's (``sqlite_lock.py``: a row; ``postgres_lock.py``: an
advisory lock); what is shared is here: the :class:`DeployLock` handle, the record of the
process groups of the holder's running step commands (``deploy_locks.step_groups``), and
ending those a dead holder left running when its lock is taken over.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterable

from deploy_plugin.processes import GroupsLeft, end_groups

from .errors import StoreError
from .records import LockInfo


class DeployLock:
    """A held deployment lock; release it with :meth:`release` or by leaving a ``with``.

    ``warning`` is set when a stale lock (dead holder on this host) was taken over.

    While held it records the process groups of the step commands running now
    (:meth:`group_started`, :meth:`group_ended`; any thread) in its row, through the
    store's ``record_groups``: the run that takes the lock over after this runner died ends
    them (:func:`end_dead_holders_groups`).
    """

    def __init__(
        self,
        project: str,
        target: str,
        info: LockInfo,
        release: Callable[[], None],
        warning: str | None = None,
        check: Callable[[], str | None] | None = None,
        record_groups: Callable[[str], None] | None = None,
    ) -> None:
        self.project = project
        self.target = target
        self.holder = info.holder
        self.host = info.host
        self.pid = info.pid
        self.started_at = info.started_at
        self.warning = warning
        self._release = release
        self._check = check
        self._released = False
        self._record_groups = record_groups
        self._groups: dict[int, int] = {}
        self._groups_mutex = threading.Lock()  # writes in the order the set changed

    def group_started(self, pgid: int, leader_start: int) -> None:
        """Record a step command's process group; StoreError when the store fails."""
        with self._groups_mutex:
            self._groups[pgid] = leader_start
            self._write_groups()

    def group_ended(self, pgid: int) -> None:
        """Forget a step command's group (its bash ended). A store failure here is left
        to the next write to report: the group is gone either way."""
        with self._groups_mutex:
            if self._groups.pop(pgid, None) is not None:
                try:
                    self._write_groups()
                except StoreError:
                    pass

    def _write_groups(self) -> None:
        if self._record_groups is not None and not self._released:
            self._record_groups(encode_groups(self._groups.items()))

    def release(self) -> None:
        """Release the lock; calling it again does nothing."""
        if not self._released:
            self._released = True
            self._release()

    def lost(self) -> str | None:
        """Why the lock is no longer held (e.g. the PostgreSQL session ended), or None.

        Asked before each step: a deployment whose lock is gone stops, so two deployers
        never overlap. Costs no round trip while the connection is quiet.
        """
        if self._released:
            return "the lock was released"
        return self._check() if self._check is not None else None

    def __enter__(self) -> DeployLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "released" if self._released else "held"
        return f"<DeployLock {self.project}/{self.target} {state} by {self.holder}>"


def end_dead_holders_groups(old: LockInfo) -> str:
    """End the step commands a dead lock holder left running on this host (SIGKILL of
    their recorded process groups, waiting until /proc shows them gone).

    Returns the sentence the takeover warning adds ("" when nothing was recorded).
    Raises :class:`StoreError` when a group is still there after SIGKILL (uninterruptible
    sleep, or another user's process): the caller must then give the lock back.
    """
    if not old.step_groups:
        return ""
    ids = ", ".join(f"process group {pgid}" for pgid, _ in old.step_groups)
    if old.host != socket.gethostname():
        return (
            f" Its step commands ({ids}) ran on host {old.host}: this run cannot see them;"
            " make sure they are stopped there."
        )
    try:
        ended = end_groups(old.step_groups)
    except GroupsLeft as left:
        raise StoreError(
            f"The dead holder's step command (process group {left}) is still running after"
            " SIGKILL (uninterruptible sleep, or another user's process). Stop it (`ps -o"
            f" pid,stat,cmd -g {left.pgids[0]}`), then run again; this run did not start."
        ) from None
    if not ended:
        return f" Its recorded step commands ({ids}) are no longer running."
    done = ", ".join(f"process group {pgid}" for pgid in ended)
    return f" Its step commands still running here were ended first (SIGKILL): {done}."


def encode_groups(groups: Iterable[tuple[int, int]]) -> str:
    """The ``deploy_locks.step_groups`` value: a JSON list of [pgid, leader start]."""
    return json.dumps(sorted([int(p), int(s)] for p, s in groups), separators=(",", ":"))


def decode_groups(value: str | None) -> tuple[tuple[int, int], ...]:
    """The groups of a ``step_groups`` value; () for NULL, '' or anything unreadable."""
    try:
        loaded = json.loads(value or "[]")
        return tuple((int(pair[0]), int(pair[1])) for pair in loaded)
    except (ValueError, TypeError, IndexError, KeyError):
        return ()
