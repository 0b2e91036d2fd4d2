"""Rolling back migrations: which ones (``--deploy-rollback=N``, ``--deploy-rollback-to=FILE``)
and how each down runs.

:func:`rollback_plan` turns the history into the range to roll back, newest first, each
file with its group and down (or why there is nothing to roll back). Repeatable
migrations (``R__name.sql``) are left out, and the rollback says so. A down runs in one
transaction with its ledger row removed: with the built-in executor
(:func:`roll_back_builtin`, the history row in the same transaction when the store is that
database) or with the group's ``deploy_command`` through psql (:func:`roll_back_shell`);
a failing down is rolled back and stops the run. Atomic deployments undo with the same
functions (:mod:`deploy_plugin.engine.atomic`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from deploy_plugin.config import DeployConfig, Group, render_command
from deploy_plugin.engine import psql
from deploy_plugin.engine.errors import DeployFailure
from deploy_plugin.engine.ledgers import guarded
from deploy_plugin.engine.runtime import Deployment
from deploy_plugin.engine.shell import CommandResult, run_command
from deploy_plugin.facts import monotonic_ms, who
from deploy_plugin.migrate.downs import Down, find_down, read_down, rollback_range, undoes_nothing
from deploy_plugin.migrate.ledger import psql_forget_sql
from deploy_plugin.plan import GroupPlan, file_values, is_repeatable, plan_group
from deploy_plugin.targets import TargetInfo

#: (place in the range, file, its down) of one group's files to roll back.
Entry = tuple[int, str, "Down | None"]


@dataclass
class RollbackPlan:
    """What a rollback of one config on one target undoes."""

    tracked: list[GroupPlan] = field(default_factory=list)  # the selected tracked groups
    entries: dict[str, list[Entry]] = field(default_factory=dict)  # group -> its files
    orphans: list[str] = field(default_factory=list)  # files no tracked group matches
    nothing: str | None = None  # "nothing to roll back: ..." when the range is empty
    problem: str | None = None  # why the request cannot be carried out (exit 2)
    repeatables: list[str] = field(default_factory=list)  # applied R__ files: left out

    def left_out(self) -> str | None:
        """The note saying which repeatable migrations the rollback leaves out, if any."""
        if not self.repeatables:
            return None
        return (
            "a rollback leaves repeatable migrations out (re-applied when changed, never"
            f" undone): {', '.join(self.repeatables)}"
        )


def rollback_plan(
    config: DeployConfig,
    target: TargetInfo,
    history: list[str],
    *,
    selected: Callable[[str], bool],
    steps: int | None,
    to: str | None,
) -> RollbackPlan:
    """The range to roll back: ``history`` (the applied files, oldest first), ``steps``
    (--deploy-rollback=N) or ``to`` (--deploy-rollback-to=FILE) of the groups
    ``selected`` keeps."""
    every = [
        plan_group(config, g, target.name)
        for g in config.groups
        if g.track_migrations and g.applies_to(target.name)
    ]
    tracked = [p for p in every if selected(p.group.name)]
    unselected = [p.group.name for p in every if p not in tracked]
    group_of = {rel: p.group.name for p in every for rel in p.files}
    kept = {p.group.name for p in tracked}
    repeatables = [f for f in history if is_repeatable(f) and group_of.get(f) in kept]
    history = [f for f in history if not is_repeatable(f)]
    if to is not None and is_repeatable(to):
        return RollbackPlan(
            problem=f"--deploy-rollback-to={to}: {to} is a repeatable migration, which a"
            " rollback leaves out (it is applied again whenever it changes, never undone)."
            " Give a versioned migration. Nothing was run."
        )
    wanted = rollback_range(
        history, group_of, steps=steps, to=_relative(config, to, history),
        skipped_groups=unselected,
    )  # fmt: skip
    if wanted.problem:
        return RollbackPlan(problem=wanted.problem)
    if not wanted.files:
        why = _why_empty(config, target, history, group_of, unselected, to)
        if repeatables:
            why += f" ({RollbackPlan(repeatables=repeatables).left_out()})"
        return RollbackPlan(nothing=f"nothing to roll back: {why}")
    plan = RollbackPlan(tracked=tracked, repeatables=repeatables)
    for position, (rel, group_name) in enumerate(wanted.files):
        group_plan = next((p for p in tracked if p.group.name == group_name), None)
        if group_plan is None:
            plan.orphans.append(rel)
            continue
        down = find_down(config.root, group_plan.group, rel)
        plan.entries.setdefault(group_plan.group.name, []).append((position, rel, down))
    return plan


def _why_empty(
    config: DeployConfig,
    target: TargetInfo,
    applied: list[str],
    group_of: dict[str, str],
    unselected: list[str],
    to: str | None,
) -> str:
    """Why a rollback's range is empty, as the rest of "nothing to roll back: ..."."""
    if not applied:
        return f"no migration of project {config.project!r} is applied to target {target.name!r}"
    left_out = set(unselected)
    kept = [f for f in applied if group_of.get(f) not in left_out]
    if not kept:
        left = ", ".join(unselected)
        return f"no applied migration belongs to the selected group(s) (left out: {left})"
    if to is not None:
        return f"{_relative(config, to, applied) or to} is the newest applied migration"
    return "the range is empty"  # not reached: N >= 1 and something applied


def _relative(config: DeployConfig, path: str | None, applied: list[str]) -> str | None:
    """``--deploy-rollback-to`` as a root-relative path (it may be given from elsewhere)."""
    if path is None or path in applied:
        return path
    given = Path(path)
    for base in (config.root, Path.cwd()):
        try:
            return (base / given).resolve().relative_to(config.root.resolve()).as_posix()
        except ValueError:
            continue
    return path


# --------------------------------------------------------------------------- one down


def down_command(deployment: Deployment, group: Group | None, rel: str, down: Down) -> str:
    """What rolling back ``rel`` runs, as reported: the group's ``deploy_command`` given
    the down file, or the built-in executor (always for a ``-- migrate:down`` section)."""
    where = f"the -- migrate:down section of {down.file}" if down.section else down.file
    if group is not None and group.deploy_command is not None and not down.section:
        values = {"target": deployment.target.name, "project": deployment.project}
        values |= {"group": group.name, **file_values(deployment.config.root, down.file)}
        return render_command(group.deploy_command, values)
    return f"roll back {rel} with {where} (built-in SQL executor)"


def empty_down(root: Path, rel: str, down: Down) -> str | None:
    """ "nothing undone: ..." when the down of ``rel`` holds no statement."""
    try:
        data = read_down(root, down)
    except OSError:
        return None  # the run reports the unreadable file
    if not undoes_nothing(data):
        return None
    where = "its -- migrate:down section" if down.section else down.file
    return f"nothing undone: the down of {rel} ({where}) is empty"


def roll_back_builtin(
    deployment: Deployment, group: Group, rel: str, down: Down, checksum: str
) -> str:
    """Run the down of ``rel`` with the built-in executor; a note saying how long it took.

    When the store is another database its row cannot commit with the down: it says
    "rolled_back" first. A run killed after the down committed then leaves history and
    schema agreeing; one killed before leaves the ledger row, from which the next
    deployment records the file applied again (``Migrations.migration_runner``)."""
    # deferred: +4 modules, 8 ms (migrate.statements, migrate.pg_executor, migrate.executor, …)
    from deploy_plugin.migrate.executor import ConnectError, MigrationError

    started = time.monotonic()
    try:
        runner = deployment.migration_runner(group)
    except ConnectError as err:
        raise DeployFailure(deployment.masker.mask(f"rolling back {rel} failed: {err}")) from None
    previous = deployment.applied().get(rel)
    ahead = not runner.same_database
    if ahead:
        deployment.record_migration(
            rel, status="rolled_back", execution_time_ms=None, checksum=checksum
        )
    try:
        done = runner.rollback(rel, down, deployment.config.root, checksum=checksum, who=who())
    except (MigrationError, ConnectError) as err:
        # the down's transaction is rolled back: the history row stays (again) "success"
        if ahead and previous is not None:
            deployment.recorder.record_migration(previous)
        raise DeployFailure(deployment.masker.mask(f"rolling back {rel} failed: {err}")) from None
    deployment.database.note_undone(group, rel)
    if done.recorded:
        deployment.remember_migration(done.record)
    else:
        deployment.record_migration(
            rel,
            status="rolled_back",
            execution_time_ms=done.record.execution_time_ms,
            checksum=checksum,
        )
    return f"rolled back in {done.record.execution_time_ms or monotonic_ms(started)} ms"


def roll_back_shell(
    deployment: Deployment,
    group: Group | None,
    rel: str,
    down: Down,
    *,
    command: str,
    checksum: str,
    log_path: Path | None,
) -> CommandResult:
    """Run ``command`` (the group's ``deploy_command`` given the down of ``rel``); psql
    removes the up's ledger row in the down's own transaction (DESIGN §5). When it passed,
    its history row says ``rolled_back``; a failure is the caller's to report
    (:func:`shell_failure`)."""
    psqlrc_dir = deployment.session.rootdir / ".deploy" / "psql"
    env, one = deployment.env, False
    root = deployment.config.root
    if group is not None and guarded(group, root, down.file):
        sql = psql_forget_sql(deployment.project, deployment.target.name, rel)
        env = {**env, **psql.ledger_env(psqlrc_dir, root=root, rel=down.file, sql=sql)}
        one = True
    try:
        result = run_command(
            command,
            cwd=root,
            env=env,
            masker=deployment.masker,
            timeout=None,
            log_path=log_path,
            psqlrc_dir=psqlrc_dir,
            psql_single_transaction=one,
            groups=deployment.lock,
        )
    finally:
        if one:
            psql.drop_ledger_sql(env)
    if result.ok:
        deployment.record_migration(
            rel, status="rolled_back", execution_time_ms=int(result.duration_s * 1000),
            checksum=checksum,
        )  # fmt: skip
    return result


def shell_failure(deployment: Deployment, rel: str, command: str, result: CommandResult) -> str:
    """The paragraph of a down whose command failed (its last lines of output)."""
    last = [line for line in result.tail.splitlines() if line.strip()][-3:]
    return deployment.masker.mask(
        f"rolling back {rel} failed: `{command}` {result.explain()}."
        + (" Last output: " + " | ".join(last) if last else "")
    )
