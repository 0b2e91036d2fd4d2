"""Lock timeouts with retries for a migration that a ``deploy_command`` applies with psql
(issue 23; the policy and the attempt loop are :mod:`deploy_plugin.migrate.retries`).

The group's ``lock_timeout`` and ``statement_timeout`` reach the server through
``PGOPTIONS`` (``-c lock_timeout=1s``, after any the environment already has), which every
libpq client of the command reads: psql runs one file per step, so a session setting is
the file's setting. An attempt whose psql stopped on SQLSTATE 55P03 is tried again, whole,
only when psql ran the file in one transaction (``-1``, see :mod:`deploy_plugin.engine.psql`):
then nothing of it, ledger row included, was committed. To know a lock timeout in any
server language, the ledger script that psql runs first sets ``VERBOSITY verbose`` (errors
then carry their SQLSTATE); psql's English text is recognised too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from deploy_plugin.engine.shell import CommandResult
from deploy_plugin.migrate.retries import Attempts, LockPolicy, with_lock_retries

#: psql's report of an error with its SQLSTATE (``psql:FILE:LINE: ERROR:  55P03: ...``,
#: ``ERROR`` in the client's language), or the server's English text.
_LOCK_TIMEOUT = re.compile(
    r"(?m)^(?:psql:.*?: )?\S+:\s+55P03: |canceling statement due to lock timeout"
)
_STATEMENT_TIMEOUT = re.compile(
    r"(?m)^(?:psql:.*?: )?\S+:\s+57014: |canceling statement due to statement timeout"
)


def ledger_first(policy: LockPolicy | None) -> str:
    """What the ledger script psql runs first starts with: with a policy, a psql
    meta-command that makes psql's errors show their SQLSTATE (a lock timeout's)."""
    return "" if policy is None else "\\set VERBOSITY verbose\n"


def timeouts_env(env: dict[str, str], policy: LockPolicy | None) -> dict[str, str]:
    """``env`` with the policy's settings added to ``PGOPTIONS`` (its own ones kept first,
    ours after them, so ours win); ``env`` itself without a policy."""
    if policy is None:
        return env
    ours = " ".join(f"-c {name}={value}" for name, value in policy.settings().items())
    before = env.get("PGOPTIONS", "").strip()
    return {**env, "PGOPTIONS": f"{before} {ours}".strip()}


def lock_timed_out(result: CommandResult) -> bool:
    """Whether a failed command's psql stopped on a lock timeout."""
    return not result.ok and not result.timed_out and bool(_LOCK_TIMEOUT.search(result.tail))


def run_with_lock_retries(
    policy: LockPolicy | None,
    run: Callable[[], CommandResult],
    *,
    one_transaction: bool,
    log_path: Path | None = None,
) -> tuple[CommandResult, Attempts | None]:
    """Run the step's command, again after a lock timeout when it ran the file in one
    transaction (else once): the last result, and how the attempts went (None without a
    policy: run once). Each attempt after the first starts with a line of its own in the
    step's log (which every attempt appends to)."""
    if policy is None:
        return run(), None

    def attempt(attempts: Attempts) -> CommandResult:
        if attempts.count > 1 and log_path is not None:
            try:
                with log_path.open("a", encoding="utf-8") as log:
                    log.write(
                        f"--- pytest-deploy: attempt {attempts.count} of {policy.retries + 1},"
                        f" {attempts.waited_s:.1f} s after the first (lock timeout) ---\n"
                    )
            except OSError:
                pass  # the attempt's own output says whether the log can be written
        return run()

    return with_lock_retries(policy, attempt, lock_timed_out if one_transaction else _never)


def _never(result: CommandResult) -> bool:
    return False


def failure_note(result: CommandResult, attempts: Attempts, not_atomic: str | None) -> str:
    """The sentence a failed step's message gains from its timeouts ("" when none);
    ``not_atomic``: why the file did not run in one transaction, if it did not."""
    if lock_timed_out(result):
        why = f"the file did not run in one transaction ({not_atomic})" if not_atomic else None
        return " " + attempts.gave_up(why) + "."
    if attempts.policy.statement_timeout and _STATEMENT_TIMEOUT.search(result.tail):
        return " " + attempts.statement_note() + "."
    return ""
