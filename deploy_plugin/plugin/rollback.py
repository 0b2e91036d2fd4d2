"""Rolling back migrations (``--deploy-rollback=N``, ``--deploy-rollback-to=FILE``).

A rollback is a deployment whose steps are ``<config>::<target>::<group>::rollback[<file>]``,
one per applied migration in the range, newest first. It has the deployment's preflight
(protected target, lock, env, files, drift) plus ``preflight::downs``, which names every
migration in the range without a down file before anything runs. Each down runs in one
transaction with its ledger row removed and, when the store is that database, its history
row set to ``rolled_back``; a failing down is rolled back and stops the run. A rolled-back
migration is pending again: the next deployment applies it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from deploy_plugin.config import DeployConfig, render_command
from deploy_plugin.engine.ledgers import guarded
from deploy_plugin.engine.runtime import Deployment
from deploy_plugin.facts import monotonic_ms, who
from deploy_plugin.migrate.downs import Down, find_down, read_down, rollback_range, undoes_nothing
from deploy_plugin.plan import file_values, plan_group
from deploy_plugin.plugin.items import DeployItem, skip
from deploy_plugin.plugin.messages import DeployFailure
from deploy_plugin.targets import TargetInfo

if TYPE_CHECKING:
    from deploy_plugin.plugin.session import DeploySession


class NothingToRollBack(pytest.Item):
    """``<config>::<target>::rollback``: skipped, "nothing to roll back" (exit 0)."""

    kind = "rollback"

    def __init__(self, *, reason: str, note: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reason, self.note = reason, note

    def runtest(self) -> None:
        # the summary's line, only once the run goes on (a refused run says nothing of it)
        from deploy_plugin.plugin.session import DeploySession

        DeploySession.of(self.config).summary_notes.append(self.note)
        skip(self.reason)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, 0, self.nodeid.split("::", 1)[1]


class RollbackGroupNode(pytest.Collector):
    """The rollback steps of one group (they run newest first across groups)."""

    def __init__(
        self, *, deployment: Deployment, entries: list[tuple[int, str, Down | None]], **kw: Any
    ) -> None:
        super().__init__(**kw)
        self.deployment = deployment
        self.entries = entries

    def collect(self) -> Iterator[pytest.Item]:
        for position, rel, down in self.entries:
            item = RollbackItem.from_parent(
                self, name=f"rollback[{rel}]", deployment=self.deployment, migration=rel, down=down
            )
            item.sort_key = (1, position)
            yield item


class RollbackItem(DeployItem):
    """``<group>::rollback[<file>]``: run the down of one applied migration."""

    kind = "rollback"

    def __init__(self, *, migration: str, down: Down | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.group_name = self.parent.name if self.parent is not None else None
        self.file = migration
        self.down = down
        if down is not None:
            self.command = self._describe(down)

    def _describe(self, down: Down) -> str:
        group = self.deployment.config.group(self.group_name or "")
        where = f"the -- migrate:down section of {down.file}" if down.section else down.file
        if group is not None and group.deploy_command is not None and not down.section:
            return self._shell_command(down)
        return f"roll back {self.file} with {where} (built-in SQL executor)"

    def _shell_command(self, down: Down) -> str:
        deployment = self.deployment
        group = deployment.config.group(self.group_name or "")
        assert group is not None and group.deploy_command is not None
        values = {"target": deployment.target.name, "project": deployment.project}
        values |= {"group": group.name, **file_values(deployment.config.root, down.file)}
        return render_command(group.deploy_command, values)

    def execute(self) -> None:
        deployment = self.deployment
        assert self.down is not None, "preflight::downs stops a range with a missing down"
        group = deployment.config.group(self.group_name or "")
        assert group is not None
        record = deployment.applied().get(self.file or "")
        if record is None or record.status != "success":
            skip(f"not applied to {deployment.target.name} any more: nothing to roll back")
        self.checksum = record.checksum
        empty = self._empty_down()
        if deployment.dry_run:
            self.notes.append("dry run: not executed" + (f" ({empty})" if empty else ""))
            return
        if group.deploy_command is None or self.down.section:
            self._rollback_builtin(group)
        else:
            self._rollback_shell()
        if empty:  # run through, never silently: the schema still has what the up made
            self.remark = empty
            self.deploy_warning(empty)

    def _empty_down(self) -> str | None:
        """"nothing undone: ..." when this migration's down holds no statement."""
        assert self.down is not None
        try:
            data = read_down(self.deployment.config.root, self.down)
        except OSError:
            return None  # the run reports the unreadable file
        if not undoes_nothing(data):
            return None
        where = "its -- migrate:down section" if self.down.section else self.down.file
        return f"nothing undone: the down of {self.file} ({where}) is empty"

    def _rollback_builtin(self, group: Any) -> None:
        from deploy_plugin.migrate.executor import ConnectError, MigrationError

        deployment, rel = self.deployment, self.file or ""
        assert self.down is not None and self.checksum is not None
        started = time.monotonic()
        try:
            runner = deployment.migration_runner(group)
        except ConnectError as err:
            raise DeployFailure(
                deployment.masker.mask(f"rolling back {rel} failed: {err}")
            ) from None
        # When the store is another database its row cannot commit with the down: it says
        # "rolled_back" first. A run killed after the down committed then leaves history
        # and schema agreeing; one killed before leaves the ledger row, from which the next
        # deployment records the file applied again (Deployment._reconcile).
        previous = deployment.applied().get(rel)
        ahead = not runner.same_database
        if ahead:
            deployment.record_migration(
                rel, status="rolled_back", execution_time_ms=None, checksum=self.checksum
            )
        try:
            done = runner.rollback(
                rel, self.down, deployment.config.root, checksum=self.checksum, who=who()
            )
        except (MigrationError, ConnectError) as err:
            # the down's transaction is rolled back: the history row stays (again) "success"
            if ahead and previous is not None:
                deployment.recorder.record_migration(previous)
            raise DeployFailure(
                deployment.masker.mask(f"rolling back {rel} failed: {err}")
            ) from None
        deployment.database.note_undone(group, rel)
        if done.recorded:
            deployment.remember_migration(done.record)
        else:
            deployment.record_migration(
                rel,
                status="rolled_back",
                execution_time_ms=done.record.execution_time_ms,
                checksum=self.checksum,
            )
        self.notes.append(
            f"rolled back in {done.record.execution_time_ms or monotonic_ms(started)} ms"
        )

    def _rollback_shell(self) -> None:
        from deploy_plugin.engine.shell import run_command

        deployment, rel = self.deployment, self.file or ""
        assert self.down is not None and self.command is not None
        self.log_path = deployment.log_path(self)
        psqlrc_dir = deployment.session.rootdir / ".deploy" / "psql"
        env, one = deployment.env, False
        group = deployment.config.group(self.group_name or "")
        if group is not None and guarded(group, deployment.config.root, self.down.file):
            # the up's ledger row goes in the down's own psql transaction (DESIGN §5)
            from deploy_plugin.engine.psql import ledger_env
            from deploy_plugin.migrate.ledger import psql_forget_sql

            sql = psql_forget_sql(deployment.project, deployment.target.name, rel)
            root = deployment.config.root
            env = {**env, **ledger_env(psqlrc_dir, root=root, rel=self.down.file, sql=sql)}
            one = True
        try:
            result = run_command(
                self.command,
                cwd=deployment.config.root,
                env=env,
                masker=deployment.masker,
                timeout=None,
                log_path=self.log_path,
                psqlrc_dir=psqlrc_dir,
                psql_single_transaction=one,
                groups=deployment.lock,
            )
        finally:
            if one:
                from deploy_plugin.engine.psql import drop_ledger_sql

                drop_ledger_sql(env)
        self.output = result.tail
        self.log_path = result.log_path  # None when the command printed nothing
        if not result.ok:
            last = [line for line in result.tail.splitlines() if line.strip()][-3:]
            raise DeployFailure(
                deployment.masker.mask(
                    f"rolling back {rel} failed: `{self.command}` {result.explain()}."
                    + (" Last output: " + " | ".join(last) if last else "")
                )
            )
        deployment.record_migration(
            rel,
            status="rolled_back",
            execution_time_ms=int(result.duration_s * 1000),
            checksum=self.checksum,
        )


def collect_rollback(
    node: pytest.Collector, session: DeploySession, config: DeployConfig, target: TargetInfo
) -> Iterator[pytest.Item | pytest.Collector]:
    """The items of a rollback of ``config`` on ``target`` (see the module's docstring)."""
    from deploy_plugin.plugin.nodes import PreflightNode
    from deploy_plugin.store.base import StoreError

    if session.usage_problems:
        return  # the request is refused (exit 2, one paragraph): nothing to collect
    every = [
        plan_group(config, g, target.name)
        for g in config.groups
        if g.track_migrations and g.applies_to(target.name)
    ]
    tracked = [p for p in every if session.group_selected(p.group.name)]
    unselected = [p.group.name for p in every if p not in tracked]
    group_of = {rel: p.group.name for p in every for rel in p.files}
    try:
        store = session.store()
        history = store.migration_history(config.project, target.name) if store else []
    except StoreError as err:
        session.usage_problems.append(str(err))
        return
    applied = [r.file for r in history if r.status == "success"]
    options = session.options
    wanted = rollback_range(
        applied,
        group_of,
        steps=options.rollback,
        to=_relative(config, options.rollback_to, applied),
        skipped_groups=unselected,
    )
    if wanted.problem:
        session.usage_problems.append(wanted.problem)
        return
    if not wanted.files:
        reason = "nothing to roll back: " + _why_empty(
            config, target, applied, group_of, unselected, options.rollback_to
        )
        yield NothingToRollBack.from_parent(
            node, name="rollback", reason=reason, note=f"{config.project} → {target.name}: {reason}"
        )
        return
    deployment = Deployment(session, config, target, tracked, node.nodeid, kind="rollback")
    by_group: dict[str, list[tuple[int, str, Down | None]]] = {}
    for position, (rel, group_name) in enumerate(wanted.files):
        plan = next((p for p in tracked if p.group.name == group_name), None)
        if plan is None:
            deployment.rollback_orphans.append(rel)
            continue
        down = find_down(config.root, plan.group, rel)
        by_group.setdefault(plan.group.name, []).append((position, rel, down))
    session.deployments.append(deployment)
    yield PreflightNode.from_parent(node, name="preflight", deployment=deployment)
    for plan in tracked:
        if plan.group.name in by_group:
            yield RollbackGroupNode.from_parent(
                node, name=plan.group.name, deployment=deployment, entries=by_group[plan.group.name]
            )


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
    from pathlib import Path

    given = Path(path)
    for base in (config.root, Path.cwd()):
        try:
            return (base / given).resolve().relative_to(config.root.resolve()).as_posix()
        except ValueError:
            continue
    return path
