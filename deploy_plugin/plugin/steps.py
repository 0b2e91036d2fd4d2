"""Group steps: a pre_deploy/post_deploy hook, build, test or deploy step runs its command
(or applies a tracked file with the built-in SQL executor) and records its outcome and
its migration's history row. Their base, :class:`~deploy_plugin.plugin.items.DeployItem`,
holds the stop policy every item shares.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from deploy_plugin.engine import lock_retries
from deploy_plugin.engine.errors import DeployFailure
from deploy_plugin.engine.psql import drop_ledger_sql, ledger_env, runs_psql_from_path
from deploy_plugin.engine.shell import CommandRefused, CommandResult, run_command
from deploy_plugin.facts import iso_utc, monotonic_ms, who
from deploy_plugin.migrate.ledger import psql_guard_sql
from deploy_plugin.migrate.retries import Attempts, LockPolicy
from deploy_plugin.plan import Step, links_note
from deploy_plugin.plugin.deployment import Deployment
from deploy_plugin.plugin.items import DeployItem, skip


def _sentence(text: str) -> str:
    """``text`` ending with one full stop (a question keeps its mark)."""
    return text if text.endswith((".", "?", "!")) else text + "."


def applied_reason(deployment: Deployment, step: Step) -> str | None:
    """``<file>: applied <when> by <who>`` when the tracked file of ``step`` is applied, as
    the deployment answers (the database's ledger where it decides, else the history)."""
    assert step.file is not None, "a tracked step has a file"
    found = deployment.applied_record(step.group, step.file)
    if found is None:
        return None
    when, by, source = found
    # named: -rs folds identical reasons at one location (the group line)
    applied = f"applied {iso_utc(when)} by {by}"
    if source != "the history":
        applied += f" (per {source})"
    return f"{step.file}: {applied}"


class StepItem(DeployItem):
    """A pre_deploy/post_deploy hook, build, test or deploy step of a group."""

    def __init__(self, *, step: Step, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.step = step
        self._asked: tuple[str | None] | None = None  # changes_something()'s skip reason
        self.attempts: Attempts | None = None  # of a psql-applied file with a lock policy
        self.kind = step.kind
        self.group_name = step.group.name
        self.file = step.file
        if step.command is not None:
            self.command = step.command  # masked when the item has run (see runtest)

    @property
    def migration(self) -> str:
        """The tracked file of this step (asked only of tracked steps, which have one)."""
        assert self.step.file is not None, "a tracked step has a file"
        return self.step.file

    def skip_reason(self) -> str | None:
        """Why this step has nothing to do (no matching file, already applied), if so."""
        step, deployment = self.step, self.deployment
        group = step.group
        if (
            step.kind == "deploy"
            and step.file is None
            and (group.track_migrations or group.deploy_per_file)
        ):
            links = next((p.outside_links for p in deployment.plans if p.group is group), ())
            return (
                f"no file under {deployment.config.root} matches"
                f" {', '.join(group.file_patterns)}: nothing to deploy"
                + (f"; {links_note(links)}" if links else "")
            )
        if step.tracked:
            self.checksum = deployment.checksum(self.migration)
            applied = applied_reason(deployment, step)
            if applied is None and deployment.cut is not None:
                return deployment.cut.reason(step.file)  # after --deploy-to FILE: not now
            return applied
        return None

    def changes_something(self) -> bool:
        reason = self.skip_reason()
        self._asked = (reason,)  # execute() runs next: asked once per run
        return reason is None

    def execute(self) -> None:
        step, deployment = self.step, self.deployment
        reason = self._asked[0] if self._asked is not None else self.skip_reason()
        self._asked = None
        builtin = step.tracked and step.command is None
        if reason is None and builtin and not deployment.dry_run:
            # a file to apply: connect (once per group), which reads the target's ledger on
            # the connection that applies; that may show this file applied already
            self._open_migration_runner()
            reason = self.skip_reason()
        if reason:
            if step.tracked:
                recovered = deployment.recover_history(step.group, self.migration)
                if recovered:
                    self.deploy_warning(recovered)
            skip(reason)
        if step.tracked:  # a repeatable migration says why it runs (changed, or new)
            self._remark(deployment.repeatable_note(step.group, self.migration), summary=False)
        if step.command is None:
            self.command = f"apply {step.file} with the built-in SQL executor"
            if not deployment.dry_run:
                self._apply_builtin()
            return
        if deployment.dry_run:
            self.notes.append("dry run: not executed")
            return
        if step.tracked:
            deployment.begin_intent(self.migration)
        if step.group.max_parallel > 1 and step.kind == "deploy" and step.file is not None:
            runner = deployment.parallel_runner(step.group)
            result = runner.result_for(self)
            if result is None:
                skip(f"not run: {runner.failed} failed")
        else:
            try:
                result = self.run_step_command()
            except DeployFailure as err:
                if step.tracked:  # nothing ran: the intent goes with a "failed" row
                    deployment.record_migration(
                        self.migration, status="failed", execution_time_ms=0, error=str(err)
                    )
                raise
        self.conclude(result)

    def run_step_command(self) -> CommandResult:
        """Run this step's command; safe in a worker thread (of the store it only writes
        the command's process group to the lock row, which the lock does thread-safely)."""
        deployment, step = self.deployment, self.step
        assert step.command is not None, "a shell step has a command"
        self.log_path = deployment.log_path(self)
        psqlrc_dir = deployment.session.rootdir / ".deploy" / "psql"
        env = deployment.env
        one_transaction = self.atomic_under_psql() is None
        policy = LockPolicy.of(step.group) if step.tracked and step.kind == "deploy" else None
        if one_transaction:  # the file's ledger row commits in psql's own transaction
            sql = lock_retries.ledger_first(policy) + psql_guard_sql(
                deployment.project, deployment.target.name, self.migration,
                deployment.checksum(self.migration), who(),
            )  # fmt: skip
            env = {
                **env,
                **ledger_env(psqlrc_dir, root=deployment.config.root, rel=self.migration, sql=sql),
            }
        env = lock_retries.timeouts_env(env, policy)
        try:
            result, self.attempts = lock_retries.run_with_lock_retries(
                policy, lambda: self._run_command(env, psqlrc_dir, one_transaction),
                one_transaction=one_transaction, log_path=self.log_path,
            )  # fmt: skip
            return result
        finally:
            if one_transaction:
                drop_ledger_sql(env)

    def _run_command(
        self, env: dict[str, str], psqlrc_dir: Path, one_transaction: bool
    ) -> CommandResult:
        deployment, step = self.deployment, self.step
        assert step.command is not None, "a shell step has a command"
        try:
            return run_command(
                step.command,
                cwd=deployment.config.root,
                env=env,
                masker=deployment.masker,
                timeout=(
                    step.group.timeout_seconds
                    if step.group.timeout_seconds is not None
                    else deployment.session.options.timeout
                ),
                log_path=self.log_path,
                psqlrc_dir=psqlrc_dir,
                psql_single_transaction=one_transaction,
                groups=deployment.lock,
            )
        except CommandRefused as err:
            raise DeployFailure(
                deployment.masker.mask(
                    f"{step.kind} command of group {step.group.name} could not run: {err}."
                )
            ) from None

    def atomic_under_psql(self) -> str | None:
        """None when this step is a tracked migration that psql applies in one transaction
        (``-1``); else why the file does not run in one transaction."""
        step = self.step
        if not step.tracked or step.kind != "deploy" or step.command is None:
            return "not a migration"
        # deferred: +1 modules, 3 ms (migrate.statements)
        from deploy_plugin.migrate.statements import no_transaction

        if not runs_psql_from_path(step.command):
            return "the command does not run the psql found on PATH"
        try:
            text = (self.deployment.config.root / self.migration).read_text(errors="replace")
        except OSError:
            return "the file cannot be read"
        if no_transaction(text):
            return "the file is marked -- deploy:no-transaction"
        return None

    def conclude(self, result: CommandResult) -> None:
        """Record the outcome (and the migration's history row); fail with a short message."""
        deployment, step = self.deployment, self.step
        self.output = result.tail
        retried = self.attempts is not None and self.attempts.count > 1  # one log, one step
        if not retried:
            self.log_path = result.log_path  # None when the command printed nothing
        elapsed = int(result.duration_s * 1000)  # the command's own time, also in parallel
        if result.started_at is not None and not retried:
            self.started_at = result.started_at  # a parallel step's command began earlier
            self.command_ms = elapsed  # ... and the step row's interval is the command's
        if result.ok:
            if step.tracked:
                history = self.attempts.history() if self.attempts else None
                deployment.record_migration(
                    self.migration, status="success", execution_time_ms=elapsed, error=history
                )
                deployment.applied_here.append(self.migration)
                if self.attempts is not None:
                    self._remark(self.attempts.applied(), summary=True)
            return
        last = [line for line in result.tail.splitlines() if line.strip()][-3:]
        tail = (" Last output: " + _sentence(" | ".join(last))) if last else " It printed nothing."
        message = (
            f"{step.kind} command of group {step.group.name}"
            f" `{deployment.masker.mask(step.command or '')}` failed: {_sentence(result.explain())}"
            f"{tail}"
        )
        if step.tracked:
            why = self.atomic_under_psql()
            message += (
                " psql ran the file in one transaction (-1): nothing of it was committed."
                if why is None
                else f" The file did not run in one transaction ({why}): statements before"
                " the failing one may be committed; check the database before running again."
            )
            if self.attempts is not None:
                message += lock_retries.failure_note(result, self.attempts, why)
            deployment.record_migration(
                self.migration, status="failed", execution_time_ms=elapsed, error=message
            )
        raise DeployFailure(message)

    def _open_migration_runner(self) -> None:
        """Connect the group's migration runner (reconciling the history with the ledger)."""
        # deferred: +4 modules, 9 ms (migrate.statements, migrate.pg_executor, migrate.executor, …)
        from deploy_plugin.migrate.executor import ConnectError

        deployment = self.deployment
        try:
            deployment.migration_runner(self.step.group)
        except ConnectError as err:
            message = deployment.masker.mask(str(err))
            deployment.record_migration(
                self.migration, status="failed", execution_time_ms=0, error=message
            )
            raise DeployFailure(message) from None

    def _apply_builtin(self) -> None:
        # deferred: +4 modules, 12 ms (migrate.statements, migrate.pg_executor, migrate.executor, …)
        from deploy_plugin.migrate.executor import AlreadyApplied, ConnectError, MigrationError

        deployment, step = self.deployment, self.step
        started = time.monotonic()
        try:
            runner = deployment.migration_runner(step.group)
            root, upcoming = deployment.config.root, deployment.next_file(self)
            applied = runner.apply(
                self.migration,
                root / self.migration,
                checksum=deployment.checksum(self.migration),
                who=who(),
                policy=LockPolicy.of(step.group),
                upcoming=(upcoming, root / upcoming) if upcoming else None,
            )
        except AlreadyApplied as err:
            raise DeployFailure(deployment.masker.mask(str(err))) from None  # no "failed" row
        except (MigrationError, ConnectError) as err:
            message = deployment.masker.mask(str(err))
            deployment.record_migration(
                self.migration,
                status="failed",
                execution_time_ms=monotonic_ms(started),
                error=message,
            )
            raise DeployFailure(message) from None
        deployment.database.note_applied(step.group, applied.ledger_row)
        if applied.recorded:
            deployment.remember_migration(applied.record)
        else:
            # store and target differ: the row follows the commit; the target's ledger
            # already holds the truth if we die before it (DESIGN §5), so the row needs no
            # fsync of its own: the run's end syncs it (issue 23 #7)
            deployment.record_migration(
                self.migration,
                status="success",
                execution_time_ms=applied.record.execution_time_ms,
                error=applied.record.error_message,  # how its lock retries went, if any
                durable=False,
            )
        deployment.applied_here.append(self.migration)
        deployment.audit_reapplied(self.migration)
        self.notes.append(f"applied in {applied.record.execution_time_ms} ms")
        self._remark(applied.remark, summary=applied.retried)

    def _remark(self, text: str | None, *, summary: bool) -> None:
        """A migration's word on its timeouts, in its notes and the reports' message (and,
        for one applied after lock retries, the terminal summary's notes)."""
        if text:
            self.remark = f"{self.remark}; {text}" if self.remark else text
            self.notes.append(text)
            if summary:
                self.deployment.notes.append(f"{self.file} {text}")
