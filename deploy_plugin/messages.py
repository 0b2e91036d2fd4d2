"""What collection reports before any deployment exists: the domain failure, the warning,
and the item that passes or fails with a message known at collection (``validate``, an
unknown target).

It needs nothing of a deployment, so that a plain pytest run (no target) that finds a
config imports only this and the config package (issue 14: the plugin's import cost).
"""

from __future__ import annotations

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
