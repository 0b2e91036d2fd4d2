"""Atomic deployments (``--deploy-atomic`` or ``atomic: true``): what a failure undoes, in
which order, and when an undo step runs.

Each group gets its undo steps up front (:func:`undo_plan`), placed after every other step
of the deployment, groups in reverse order: the down of each tracked migration (newest
first; a repeatable one, ``R__name.sql``, has none and stays applied), run when this
deployment applied it; or the group's ``rollback_command`` (per
file, in reverse, when it names a file placeholder), run when the group completed. An undo
step runs only after a failure (or an interrupt), and not after an earlier undo failed:
the state is then half undone, and more undoing would make it worse
(:func:`undo_blocker`).
"""

from __future__ import annotations

from dataclasses import dataclass

from deploy_plugin.config import FILE_PLACEHOLDERS, placeholders, render_command
from deploy_plugin.engine.errors import DeployFailure
from deploy_plugin.engine.runtime import Deployment
from deploy_plugin.migrate.downs import Down, find_down
from deploy_plugin.plan import GroupPlan, Step, file_values, is_repeatable

NOTHING_TO_UNDO = "deployment succeeded: nothing to undo"


@dataclass(frozen=True)
class Undo:
    """One undo step of a group: a migration's down, or a ``rollback_command`` step."""

    name: str  # ``undo[<file>]`` or ``undo``
    sort_key: tuple[int, int]  # its place in the deployment's run order
    migration: str | None = None  # the tracked file whose down runs
    down: Down | None = None
    step: Step | None = None  # the rollback_command to run


def undo_plan(deployment: Deployment, plan: GroupPlan) -> list[Undo]:
    """The undo steps of one group, each with its place after everything else."""
    group, config = plan.group, deployment.config
    position = len(deployment.plans) - deployment.plans.index(plan)
    base = position * 100_000  # groups in reverse order, each group's steps in reverse

    def place(index: int) -> tuple[int, int]:
        return (len(deployment.plans) + 2, base + index)

    if group.track_migrations:
        return [
            Undo(f"undo[{rel}]", place(index), rel, find_down(config.root, group, rel))
            for index, rel in enumerate(reversed(plan.files))
            if not is_repeatable(rel)  # no down: it stays applied (run again when changed)
        ]
    if group.rollback_command is None:
        return []
    values = {"target": deployment.target.name, "project": deployment.project}
    values["group"] = group.name
    per_file = any(n in FILE_PLACEHOLDERS for n in placeholders(group.rollback_command))
    targets: list[str | None] = list(reversed(plan.files)) if per_file else [None]
    undos = []
    for index, rel in enumerate(targets):
        extra = file_values(config.root, rel) if rel is not None else {}
        command = render_command(group.rollback_command, {**values, **extra})
        step = Step(f"undo[{rel}]" if rel else "undo", group, "undo", command, rel, False)
        undos.append(Undo(step.name, place(index), step=step))
    return undos


def undo_blocker(deployment: Deployment) -> str | None:
    """Why an undo step does not run, if so: an undo step failed, or nothing failed."""
    policy = deployment.policy
    undo_failed = next(
        (s.nodeid for s in deployment.steps if s.kind == "undo" and s.nodeid in policy.failed),
        None,
    )
    if undo_failed:
        return f"not run: {undo_failed} failed"
    if not (policy.failed or policy.soft_failed) and not deployment.interrupted:
        return NOTHING_TO_UNDO
    return None


def undo_migration_blocker(deployment: Deployment, rel: str, down: Down | None) -> str | None:
    """Why the down of ``rel`` is not run (it was not applied by this deployment), if so;
    DeployFailure when it was and has no down."""
    if rel not in deployment.applied_here:
        return f"{rel} was not applied by this deployment: nothing to undo"
    if down is None:
        raise DeployFailure(
            f"{rel} was applied by this deployment but has no down file, so it"
            " cannot be undone; undo it by hand (the history says it is applied)."
        )
    return None


def group_completed(deployment: Deployment, group: str) -> bool:
    """Whether every step of ``group`` ran to the end (passed, or skipped as applied): its
    ``rollback_command`` undoes only a group that completed."""
    steps = [s for s in deployment.steps if s.group_name == group and s.kind != "undo"]
    for step in steps:
        result = deployment.results.get(step.nodeid)
        if result is None or result.outcome == "failed":
            return False
        if result.outcome == "skipped" and (result.message or "").startswith("not run"):
            return False
    return bool(steps)
