"""A tracked group's already-applied files, run and reported by one item (issue 22).

A re-run of a deployment finds most of its migrations applied: each would be a pytest
item that only reports itself skipped, and pytest's run protocol costs more per item than
that decision. So when a group's collector finds two or more of its files recorded as
applied in the store's history (a repeatable migration: with the file's checksum), it
collects one :class:`AppliedItem`,
``<config>::<target>::<group>::applied``, in their place. At run time the item asks, file
by file, exactly what the file's own step would ask (the database's ledger where it
decides, else the history, read after the lock) and reports itself skipped "N files
already applied", its report listing each file with when and by whom. A file found not
applied then (rolled back since the run was collected) fails the item: nothing is applied
by it; the next run applies the file with a step of its own.

Each file stays one step of the deployment (an :class:`AppliedFile` in its selected steps,
with the node id its own item would have): the JSON report, the store's step rows, the
step hooks and a saved plan see one step per file, as before.

Each file has its own item when ``--deploy-reapply-missing`` is given (a file the database
lacks is applied again by its own step) or when a command-line node id names a step of the
group (``CONFIG::t::group::deploy[FILE]``: that id is then found). ``-k FILE`` selects the
item carrying FILE (its keywords include each file): it reports every file it carries.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from deploy_plugin.engine.errors import DeployFailure
from deploy_plugin.engine.views import StepView
from deploy_plugin.facts import monotonic_ms
from deploy_plugin.plan import is_repeatable
from deploy_plugin.plugin.items import DeployItem, skip
from deploy_plugin.plugin.steps import applied_reason

if TYPE_CHECKING:
    from deploy_plugin.plan import GroupPlan, Step
    from deploy_plugin.plugin.deployment import Deployment

#: The fewest applied files of a group one item carries (one file keeps its own step).
FEWEST = 2
#: Files named in the skip reason (every one is in the item's report section).
NAMED = 3


def applied_steps(node: pytest.Collector, deployment: Deployment, plan: GroupPlan) -> list[Step]:
    """The per-file steps of ``plan`` that one :class:`AppliedItem` carries: those whose
    file the store's history records as applied, when there are at least ``FEWEST`` and
    nothing asks for each file's own item."""
    # deferred: +20 modules, 32 ms (store.records, store.projects, store.base, …)
    from deploy_plugin.store.base import StoreError

    group = plan.group
    if (
        deployment.kind != "deploy"
        or not group.track_migrations
        or deployment.session.options.reapply_missing
        or _named_below(node)
    ):
        return []
    try:  # read now, apart from the run's own read (made under the deployment's lock)
        store = deployment.session.store()
        history = (
            store.applied_migrations(deployment.project, deployment.target.name) if store else {}
        )
    except StoreError:
        return []  # the store's problem is reported by the deployment's first step
    steps = [
        s
        for s in plan.steps
        if s.kind == "deploy"
        and s.tracked
        and s.file is not None
        and (record := history.get(s.file)) is not None
        and record.status == "success"
        and (not is_repeatable(s.file) or _unchanged(deployment, s.file, record.checksum))
    ]
    return steps if len(steps) >= FEWEST else []


def _unchanged(deployment: Deployment, rel: str, checksum: str) -> bool:
    """Whether repeatable migration ``rel`` is as it was applied (a changed one runs again,
    with its own item; one that cannot be read too: its step reports why)."""
    try:
        return deployment.checksum(rel) == checksum
    except DeployFailure:
        return False


def _named_below(node: pytest.Collector) -> bool:
    """Whether a command-line argument is a node id of something below ``node``."""
    below = node.nodeid.split("::", 1)[1] + "::"
    invoked, mine = node.config.invocation_params.dir, Path(node.path).resolve()
    for arg in node.config.args:
        path, sep, rest = arg.partition("::")
        if sep and rest.startswith(below) and (invoked / path).resolve() == mine:
            return True
    return False


class AppliedFile:
    """One file an :class:`AppliedItem` carries: the step its own item would have been (same
    node id, kind, group, file, command), as the deployment and its reports see steps."""

    kind = "deploy"

    def __init__(self, owner: AppliedItem, step: Step) -> None:
        self.owner = owner
        self.step = step
        self.name = step.name
        self.nodeid = f"{owner.parent.nodeid}::{step.name}" if owner.parent else step.name
        self.group_name = step.group.name
        self.file = step.file
        self.command = step.command  # masked in the reports
        self.checksum: str | None = None
        self.location = owner.location
        self.outcome: tuple[str, str | None, int] | None = None  # once its check ran

    @property
    def sort_key(self) -> tuple[int, int]:
        return self.owner.sort_key  # together, where the item runs

    @property
    def started_at(self) -> Any:
        return self.owner.started_at

    def skip_reason(self) -> str:
        """Why this step runs no command (a parallel group asks its siblings)."""
        return f"{self.file}: already applied (reported by {self.owner.nodeid})"

    def view(self) -> StepView:
        masker = self.owner.deployment.masker
        return StepView(
            self.nodeid, self.name, self.group_name, self.kind, self.file,
            masker.mask(self.command) if self.command else None,
        )  # fmt: skip


class AppliedItem(DeployItem):
    """``<group>::applied``: the group's files recorded as applied when collected."""

    kind = "deploy"

    def __init__(self, *, steps: list[Step], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.group_name = steps[0].group.name
        self.files = [AppliedFile(self, step) for step in steps]
        # -k FILE selects the item carrying FILE
        self.extra_keyword_matches.update(f.file for f in self.files if f.file)

    def deploy_steps(self) -> list[Any]:
        return list(self.files)

    def step_outcomes(self) -> list[tuple[Any, tuple[str, str | None, int]]]:
        mine = super().step_outcomes()[0][1]  # "not run", or what stopped the item
        return [(f, f.outcome or mine) for f in self.files]

    def changes_something(self) -> bool:
        return False  # it only reports: no lock round trip

    def execute(self) -> None:
        deployment = self.deployment
        group = self.files[0].step.group
        lacking = []
        for applied in self.files:
            started = time.monotonic()
            assert applied.file is not None
            applied.checksum = deployment.checksum(applied.file)
            reason = applied_reason(deployment, applied.step)
            if reason is None and applied.step.command is None and not deployment.dry_run:
                # the built-in executor's ledger was not read at preflight: connect, read it
                # deferred: +4 modules, 17 ms (migrate.statements, migrate.pg_executor, …)
                from deploy_plugin.migrate.executor import ConnectError

                try:
                    deployment.migration_runner(group)
                except ConnectError as err:
                    raise DeployFailure(deployment.masker.mask(str(err))) from None
                reason = applied_reason(deployment, applied.step)
            if reason is None:
                lacking.append(applied.file)
                continue
            recovered = deployment.recover_history(group, applied.file)
            if recovered:
                self.deploy_warning(recovered)
            applied.outcome = ("skipped", reason, monotonic_ms(started))
            self.notes.append(reason)
        if lacking:
            raise DeployFailure(
                f"{', '.join(lacking)} of group {self.group_name}: recorded as applied when"
                " this run was collected, and not applied now (rolled back by another run"
                " meanwhile?); nothing of it ran. Run the deployment again: its next run"
                " applies them, each with a step of its own."
            )
        files = [f.file or "" for f in self.files]
        named = ", ".join(files if len(files) <= NAMED else [*files[: NAMED - 1], "…", files[-1]])
        skip(f"{len(files)} files already applied: {named} (each with when and by whom in this"
             " step's report)")  # fmt: skip


def collect_applied(
    node: pytest.Collector, deployment: Deployment, plan: GroupPlan, position: int
) -> tuple[AppliedItem | None, list[Step]]:
    """The item carrying ``plan``'s applied files (None when each keeps its own item) and
    the steps left to collect one by one."""
    carried = applied_steps(node, deployment, plan)
    if not carried:
        return None, list(plan.steps)
    item = AppliedItem.from_parent(node, name="applied", deployment=deployment, steps=carried)
    item.sort_key = (position, plan.steps.index(carried[0]))
    taken = {id(step) for step in carried}
    return item, [s for s in plan.steps if id(s) not in taken]
