"""The handle of a held deployment lock."""

from __future__ import annotations

from collections.abc import Callable

from .records import LockInfo


class DeployLock:
    """A held deployment lock; release it with :meth:`release` or by leaving a ``with``.

    ``warning`` is set when a stale lock (dead holder on this host) was taken over.
    """

    def __init__(
        self,
        project: str,
        target: str,
        info: LockInfo,
        release: Callable[[], None],
        warning: str | None = None,
        check: Callable[[], str | None] | None = None,
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

    @property
    def released(self) -> bool:
        """Whether :meth:`release` already ran."""
        return self._released

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
