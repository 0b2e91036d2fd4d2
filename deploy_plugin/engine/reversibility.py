"""The reversibility check (``--deploy-check-rollback``): does each down really undo its up?

For a throw-away or CI database. For each pending migration of the tracked groups (but
the repeatable ones, ``R__name.sql``, which have no down: :func:`left_out` names them), in
order (:func:`check_plans`): fingerprint the schema (:mod:`deploy_plugin.migrate.fingerprint`),
apply the up, apply the down, fingerprint again, then apply the up again and record it
applied (:func:`check_migration`). Verdicts:

* *reversible*: the check passes;
* *schema differs*: it fails naming each difference; the check goes on (the up is applied
  again, so the database is where a deployment would leave it);
* *down fails*: it fails with the down's file, line and error (its transaction rolled
  back, the up stays applied); the check goes on;
* *redo fails*: it fails, and nothing after it runs: the database's state is unknown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from deploy_plugin.config import DeployConfig, Group
from deploy_plugin.engine.errors import DeployFailure
from deploy_plugin.engine.runtime import Deployment
from deploy_plugin.facts import who
from deploy_plugin.migrate.downs import Down, read_down, undoes_nothing
from deploy_plugin.plan import GroupPlan, is_repeatable, plan_group
from deploy_plugin.targets import TargetInfo

if TYPE_CHECKING:
    from deploy_plugin.migrate.runner import MigrationRunner


def check_plans(
    config: DeployConfig, target: TargetInfo, selected: Callable[[str], bool]
) -> list[GroupPlan]:
    """The tracked groups ``selected`` keeps, each with only its per-file steps (none for a
    repeatable migration: it has no down, and runs again whenever it changes)."""
    plans: list[GroupPlan] = []
    for group in config.groups:
        if group.track_migrations and group.applies_to(target.name) and selected(group.name):
            full = plan_group(config, group, target.name)
            steps = tuple(s for s in full.steps if s.tracked and not is_repeatable(s.file or ""))
            plans.append(GroupPlan(group, steps, full.files, full.unmatched_patterns))
    return plans


def left_out(plans: list[GroupPlan]) -> str | None:
    """The note naming the repeatable migrations the check leaves out, if any."""
    files = [rel for plan in plans for rel in plan.files if is_repeatable(rel)]
    if not files:
        return None
    return (
        "the reversibility check leaves repeatable migrations out (no down: they are applied"
        f" again whenever they change): {', '.join(files)}"
    )


def check_command(rel: str, down: Down | None) -> str:
    """What the check of ``rel`` does, as reported."""
    where = "?"
    if down is not None:
        where = "its -- migrate:down section" if down.section else down.file
    return f"check {rel}: up, down ({where}), compare schemas, up again"


def refuse_deploy_command(group: Group) -> None:
    """DeployFailure when ``group`` applies its files with a ``deploy_command``."""
    if group.deploy_command is not None:
        raise DeployFailure(
            f"group {group.name!r} applies its migrations with a deploy_command; the"
            " reversibility check runs ups and downs with the built-in SQL executor only."
            " Remove deploy_command (DATABASE_URL is then used) to check this group."
        )


def check_migration(
    deployment: Deployment,
    group: Group,
    rel: str,
    down: Down,
    *,
    runner: MigrationRunner,
    apply: Callable[[], None],
    notes: list[str],
) -> None:
    """Up (``apply``, which fails and stops like in a deployment), down, compare, up
    again; the verdict goes to ``notes``, a failing one is a DeployFailure (one that
    lets the check go on is not blocking)."""
    # deferred: +5 modules, 11 ms (migrate.statements, migrate.pg_executor, migrate.fingerprint, …)
    from deploy_plugin.migrate.executor import ConnectError, MigrationError
    from deploy_plugin.migrate.fingerprint import diff, fingerprint

    connection, kind = runner.executor.connection, runner.executor.kind
    before = fingerprint(connection, kind)
    apply()
    checksum = deployment.checksum(rel)
    try:
        done = runner.rollback(rel, down, deployment.config.root, checksum=checksum, who=who())
    except (MigrationError, ConnectError) as err:
        notes.append("verdict: down fails")
        raise DeployFailure(
            deployment.masker.mask(
                f"down fails: {err}. Its transaction was rolled back, so {rel} stays"
                " applied; the check goes on with the next migration."
            ),
            blocking=False,
        ) from None
    deployment.database.note_undone(group, rel)
    if done.recorded:
        deployment.remember_migration(done.record)
    else:
        deployment.record_migration(
            rel, status="rolled_back", execution_time_ms=done.record.execution_time_ms
        )
    differences = diff(before, fingerprint(connection, kind))
    empty = (
        f" Its down ({down.file}) is empty: it undoes nothing."
        if undoes_nothing(read_down(deployment.config.root, down))
        else ""
    )
    try:
        apply()
    except DeployFailure as err:
        notes.append("verdict: redo fails")
        found = f" (the down also left: {'; '.join(differences)})" if differences else ""
        raise DeployFailure(
            f"redo fails: applying {rel} again after its down: {err}{found}.{empty} The"
            " database's state is unknown, so nothing after it was checked."
        ) from None
    if differences:
        notes.append("verdict: schema differs")
        raise DeployFailure(
            f"schema differs: after the down of {rel} ({down.file}) the schema is not what"
            f" it was before the up: {'; '.join(differences)}.{empty} {rel} was applied"
            " again; the check goes on.",
            blocking=False,
        )
    notes.append("verdict: reversible")
