"""What a deployment tells its user when something goes wrong: a failure shown as one
paragraph (no traceback), a warning that does not stop the run, and the warning that must
never change a run's outcome.

Plain Python (``warnings`` only): the plugin shows them through pytest, the CLI as text.
"""

from __future__ import annotations

import warnings


class DeployFailure(Exception):
    """A step failed for a reason the user must read: shown without a traceback.

    ``blocking=False``: the deployment's next steps still run (a reversibility check that
    found a difference but left the database as it should be)."""

    def __init__(self, message: str = "", *, blocking: bool = True) -> None:
        super().__init__(message)
        self.blocking = blocking


class DeployWarning(UserWarning):
    """A deployment problem worth reading that does not stop the run."""


def soft_warn(message: str | Warning, category: type[Warning] = UserWarning) -> None:
    """Warn of something that must not change a run's outcome (a page, report or
    notification not written, a store row lost after the steps ran): a filter that makes
    warnings errors (``-W error``) is not obeyed for it, as raising here would skip what
    follows (the lock's release, the summary) and turn a success into a failure; the
    warning still shows in pytest's summary. ``ignore`` filters are obeyed."""
    kind = type(message) if isinstance(message, Warning) else category
    try:
        warnings.warn(message, kind, stacklevel=3)
    except Warning:
        with warnings.catch_warnings():
            warnings.simplefilter("always", kind)
            warnings.warn(message, kind, stacklevel=3)
