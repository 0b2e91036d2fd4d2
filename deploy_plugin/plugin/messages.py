"""What collection reports before any deployment exists: the domain failure, the warning,
and the item that passes or fails with a message known at collection (``validate``, an
unknown target).

It needs nothing of a deployment, so that a plain pytest run (no target) that finds a
config imports only this and the config package (issue 14: the plugin's import cost).
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest


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


def domain_name(item: pytest.Item) -> str:
    """The node id below the config file: what reports show as the item's name."""
    return item.nodeid.split("::", 1)[1]


class MessageItem(pytest.Item):
    """An item that only passes, or fails with a message known at collection."""

    kind = "validate"

    def __init__(self, *, failure: str | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.failure = failure

    def runtest(self) -> None:
        if self.failure:
            raise DeployFailure(self.failure)

    def repr_failure(  # a domain message (pytest accepts a str), not a TerminalRepr
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str:
        if isinstance(excinfo.value, DeployFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, domain_name(self)
