"""What collection reports before any deployment exists: the item that passes or fails
with a message known at collection (``validate``, an unknown target), and the name reports
show for an item. The failure and warning themselves are the engine's
(:mod:`deploy_plugin.engine.errors`).

It needs nothing of a deployment, so that a plain pytest run (no target) that finds a
config imports only this and the config package (issue 14: the plugin's import cost).
"""

from __future__ import annotations

from typing import Any

import pytest

from deploy_plugin.engine.errors import DeployFailure


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
