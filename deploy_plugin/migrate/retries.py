"""Lock timeouts with retries (issue 23): what each attempt of a migration sets, the pause
between attempts, the attempt loop, and the words the reports use for it.

A migration that waits behind a long transaction keeps its ACCESS EXCLUSIVE request in the
lock queue, and every reader of the table queues behind it. A group's ``lock_timeout``
makes the attempt give up instead: PostgreSQL cancels it with SQLSTATE 55P03
(lock_not_available) and its transaction, ledger row included, rolls back. The migration
is then tried again, whole, up to ``lock_retries`` times, after a pause of 0.1 s, 0.2 s,
0.4 s ... (doubling, at most 5 s; no jitter: one deployment per project and target runs at
a time, so no two attempts race). ``statement_timeout`` is set the same way and never
retried: a statement too slow once is as slow the next time.

The built-in executor (:class:`deploy_plugin.migrate.runner.MigrationRunner`) and the psql
steps (:mod:`deploy_plugin.engine.lock_retries`) share :func:`with_lock_retries`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from deploy_plugin.config import Group

#: SQLSTATE of a lock wait cancelled by lock_timeout (or a NOWAIT that found a lock taken).
LOCK_NOT_AVAILABLE = "55P03"
#: SQLSTATE of a statement cancelled by statement_timeout (or by a cancel request).
QUERY_CANCELED = "57014"
FIRST_PAUSE_S = 0.1
MAX_PAUSE_S = 5.0

T = TypeVar("T")


@dataclass(frozen=True)
class LockPolicy:
    """A tracked group's timeouts and retries (durations as the config writes them)."""

    lock_timeout: str | None = None
    statement_timeout: str | None = None
    retries: int = 0

    @classmethod
    def of(cls, group: Group) -> LockPolicy | None:
        """The group's policy, or None when it sets none of the keys."""
        if group.lock_timeout is None and group.statement_timeout is None:
            return None  # (lock_retries needs lock_timeout: the config says so)
        return cls(group.lock_timeout, group.statement_timeout, group.lock_retries)

    def settings(self) -> dict[str, str]:
        """The server settings of each attempt, e.g. ``{"lock_timeout": "1s"}``."""
        pairs = (("lock_timeout", self.lock_timeout), ("statement_timeout", self.statement_timeout))
        return {name: value for name, value in pairs if value is not None}

    def pause_s(self, failed: int) -> float:
        """Seconds to wait after the ``failed``-th attempt timed out on a lock."""
        return min(FIRST_PAUSE_S * 2.0 ** (failed - 1), MAX_PAUSE_S)

    def describe(self) -> str:
        """``lock_timeout 1s, lock_retries 3`` (the keys that are set)."""
        parts = [f"{name} {value}" for name, value in self.settings().items()]
        if self.lock_timeout is not None:
            parts.append(f"lock_retries {self.retries}")
        return ", ".join(parts)


@dataclass
class Attempts:
    """How a migration's attempts went: how many ran, and the seconds lost before the last
    one began (the attempts that timed out on a lock and the pauses after them) or, when
    every attempt timed out, before the last one ended."""

    policy: LockPolicy
    count: int = 0
    waited_s: float = 0.0
    timed_out: bool = False  # the last attempt timed out on a lock

    def applied(self) -> str | None:
        """``applied after 3 attempts (waited 2.1 s on locks)``; None after one attempt."""
        if self.count <= 1:
            return None
        return f"applied after {self.count} attempts (waited {self.waited_s:.1f} s on locks)"

    def history(self) -> str | None:
        """What the history row of a migration applied after retries keeps, or None."""
        if self.count <= 1:
            return None
        return (
            f"lock_not_available on {self.count - 1} attempt(s) ({self.policy.describe()});"
            f" {self.applied()}"
        )

    def gave_up(self, not_retried: str | None = None) -> str:
        """The sentence added to a last failure that was a lock timeout; ``not_retried``:
        why the attempt was not tried again (something of it may have stayed applied)."""
        if not_retried:
            return f"lock_not_available ({self.policy.describe()}); not tried again: {not_retried}"
        tries = "1 attempt" if self.count == 1 else f"{self.count} attempts"
        return (
            f"lock_not_available after {tries} ({self.policy.describe()}; waited"
            f" {self.waited_s:.1f} s): every attempt rolled back, nothing of the file was"
            " committed. Another session holds a lock the migration needs for longer than"
            " that: find it in pg_locks and pg_stat_activity, then deploy again, or raise"
            " lock_timeout or lock_retries"
        )

    def statement_note(self) -> str:
        """The sentence added to a failure cancelled by statement_timeout."""
        return (
            f"The group's statement_timeout is {self.policy.statement_timeout}: a statement that"
            " runs longer is cancelled and the migration rolled back (not tried again); raise"
            " statement_timeout or make the statement faster"
        )


def with_lock_retries(
    policy: LockPolicy,
    attempt: Callable[[Attempts], T],
    timed_out: Callable[[T], bool],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[T, Attempts]:
    """Run ``attempt`` until ``timed_out`` says its outcome was not a lock timeout, or
    ``policy.retries`` more attempts have timed out too; return the last outcome and how
    the attempts went. ``timed_out`` must be true only for an attempt that left nothing
    behind (its transaction rolled back). ``attempt`` is given the attempts so far (its
    own counted), e.g. to write them in the history row that commits with it."""
    attempts = Attempts(policy)
    started = time.monotonic()
    while True:
        attempts.count += 1
        outcome = attempt(attempts)
        attempts.timed_out = timed_out(outcome)
        if not attempts.timed_out or attempts.count > policy.retries:
            if attempts.timed_out:
                attempts.waited_s = time.monotonic() - started
            return outcome, attempts
        sleep(policy.pause_s(attempts.count))
        attempts.waited_s = time.monotonic() - started
