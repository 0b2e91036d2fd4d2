"""A deployment run by pytest: the engine's :class:`~deploy_plugin.engine.runtime.Deployment`
with the pytest items collected for it.

The engine knows the steps as references (node id, kind, group); this keeps the items
themselves: every one collected for the deployment, the ones kept after selection in run
order (smoke tests among them), and the runner that starts a ``max_parallel`` group's
per-file commands side by side.
"""

from __future__ import annotations

from typing import Any

import pytest

from deploy_plugin.config import Group
from deploy_plugin.engine import runtime
from deploy_plugin.engine.host import RunHost
from deploy_plugin.engine.migrations import Subject
from deploy_plugin.engine.parallel import ParallelRunner
from deploy_plugin.engine.policy import step_ref


class Deployment(runtime.Deployment):
    """One config deployed to one target within this pytest session."""

    def __init__(self, session: RunHost, what: Subject, nodeid: str, kind: str) -> None:
        super().__init__(session, what, nodeid, kind)
        # every DeployItem collected for it, in collection order (plugin.items registers
        # each: that module imports this one, so they are typed by what they share)
        self.items: list[Any] = []
        self.selected: list[pytest.Item] = []  # kept after selection, in run order
        self._next_files: dict[str, str] | None = None  # built-in tracked file -> the next

    def next_file(self, item: Any) -> str | None:
        """The tracked file the built-in executor applies after ``item``'s in its group
        (run order), if any: the migration runner reads it while the server runs this one."""
        if self._next_files is None:
            self._next_files = {}
            last: dict[str | None, str] = {}  # group -> its last built-in file so far
            for each in self.selected_of("deploy"):
                step = getattr(each, "step", None)
                if step is None or not step.tracked or step.command is not None or not each.file:
                    continue
                if each.group_name in last:
                    self._next_files[last[each.group_name]] = each.file
                last[each.group_name] = each.file
        return self._next_files.get(item.file) if item.file else None

    def select(self, items: list[pytest.Item]) -> None:
        """Set the items this run keeps, in run order (smoke tests among them)."""
        self.selected = items
        self.select_steps([step_ref(item) for item in items])

    def selected_of(self, *kinds: str) -> list[Any]:
        """The selected deployment items of these kinds, in run order (a smoke test, a
        plain pytest item, has no kind and is never one of them)."""
        return [i for i in self.selected if getattr(i, "kind", None) in kinds]

    def parallel_runner(self, group: Group) -> ParallelRunner:
        """The runner of a ``max_parallel`` group's per-file steps (made by its first)."""
        if group.name not in self.parallel:
            siblings = [
                i
                for i in self.selected_of("deploy")
                if i.group_name == group.name and i.file is not None
            ]
            self.parallel[group.name] = ParallelRunner(siblings, group.max_parallel)
        return self.parallel[group.name]
