"""Deployment items: the stop policy, facts and results every step shares, and the
step and health-check items (preflight checks are in :mod:`deploy_plugin.plugin.preflight`).

Every item does its work in the call phase and renders a short domain failure.
"""

from __future__ import annotations

import time
import warnings
from datetime import datetime
from typing import Any, NoReturn

import pytest

from deploy_plugin.engine.errors import DeployFailure, DeployWarning
from deploy_plugin.engine.policy import LOCK_LOST
from deploy_plugin.engine.shell import CommandRefused, CommandResult, run_command
from deploy_plugin.engine.views import StepView
from deploy_plugin.facts import iso_utc, monotonic_ms, utcnow, who
from deploy_plugin.plan import Step, links_note
from deploy_plugin.plugin.deployment import Deployment
from deploy_plugin.plugin.messages import domain_name
from deploy_plugin.plugin.pytest_compat import skip_at_item
from deploy_plugin.plugin.session import DeploySession
from deploy_plugin.targets import expand_vars

#: What a step's call did: (outcome, masked message, duration in ms), for the reporter.
STEP_OUTCOME = pytest.StashKey[tuple[str, "str | None", int]]()


def skip(reason: str) -> NoReturn:
    """Skip the running item, reported at the item's location (not this module's)."""
    skip_at_item(reason)


def _sentence(text: str) -> str:
    """``text`` ending with one full stop (a question keeps its mark)."""
    return text if text.endswith((".", "?", "!")) else text + "."


# --------------------------------------------------------------------------- items


class DeployItem(pytest.Item):
    """Base of every item of a deployment: the stop policy, facts and results."""

    kind = "step"
    group_name: str | None = None
    file: str | None = None
    #: Whether its runtest runs only pytest-deploy's own Python code (its commands run in
    #: processes with output pipes of their own): see :mod:`deploy_plugin.plugin.protocol`.
    short_protocol = False

    def __init__(self, *, deployment: Deployment, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deployment = deployment
        self.command: str | None = None  # masked, as reported
        self.checksum: str | None = None
        self.output: str = ""  # masked tail of the step's output
        self.log_path: Any = None
        self.notes: list[str] = []
        self.remark: str | None = None  # a passed step's message in the reports (masked)
        self.extra_facts: dict[str, str] = {}  # a check's own facts (lint findings)
        self.started_at: datetime | None = None  # when it began (its command, if it ran one)
        self.command_ms: int | None = None  # its command's own duration, when it ran one
        self.sort_key: tuple[int, int] = (0, 0)  # run order within the deployment
        deployment.items.append(self)

    # -- running

    def runtest(self) -> None:
        from deploy_plugin.store.base import StoreError

        deployment = self.deployment
        hook = self.config.hook
        started = time.monotonic()
        self.started_at = utcnow()
        outcome, message = "passed", None
        interrupted = False
        group = deployment.config.group(self.group_name) if self.group_name else None
        try:
            deployment.start()
            blocker = deployment.blocker(self)
            if blocker:
                skip(f"not run: {blocker}" + ("" if blocker == LOCK_LOST else " failed"))
            if self.changes_something():
                deployment.check_lock()  # a step that only skips needs no lock round trip
            used = DeploySession.of(self.config).hook_used
            if group is not None and group.name not in deployment.groups_started:
                deployment.groups_started.add(group.name)
                if used("pytest_deploy_before_group"):
                    hook.pytest_deploy_before_group(deployment=deployment.view(), group=group)
            if used("pytest_deploy_before_step"):
                hook.pytest_deploy_before_step(deployment=deployment.view(), step=self.view())
            self.execute()
            message = self.remark  # a passed step's own word for the reports, if any
        except pytest.skip.Exception as err:
            outcome, message = "skipped", str(err.msg)
            raise
        except (DeployFailure, StoreError) as err:
            outcome, message = "failed", deployment.masker.mask(str(err))
            blocking = getattr(err, "blocking", True)
            deployment.mark_failed(self, store_error=isinstance(err, StoreError), blocking=blocking)
            raise DeployFailure(message) from None
        except KeyboardInterrupt as err:
            why = str(err) or "interrupted (Ctrl-C)"
            outcome, message = "failed", deployment.masker.mask(why)
            deployment.interrupted = deployment.interrupted or why
            deployment.mark_failed(self)
            interrupted = True  # pytest makes no report of this call: record it here
            raise
        except pytest.fail.Exception as err:
            # another plugin stopped the step (pytest-timeout's signal method): a paragraph
            from deploy_plugin.plugin.guards import stopped_message

            outcome = "failed"
            message = deployment.masker.mask(stopped_message(err, domain_name(self)))
            deployment.mark_failed(self)
            raise DeployFailure(message) from None
        except BaseException as err:
            outcome, message = "failed", deployment.masker.mask(f"{type(err).__name__}: {err}")
            deployment.mark_failed(self)
            interrupted = isinstance(err, pytest.exit.Exception)  # no report either
            raise
        finally:
            if self.command:
                # secrets and URL passwords, also for a step that never ran ("not run")
                self.command = deployment.masker.mask(self.command)
            # a command's own time goes with its own start (a parallel group's later items
            # only collect results their commands already have)
            elapsed = self.command_ms if self.command_ms is not None else monotonic_ms(started)
            self.stash[STEP_OUTCOME] = (outcome, message, elapsed)
            if interrupted:
                from deploy_plugin.plugin import reporter

                reporter.report_step(self, None)

    def view(self) -> StepView:
        """This step as hooks see it (read-only)."""
        return StepView(
            self.nodeid, self.name, self.group_name, self.kind, self.file,
            self.deployment.masker.mask(self.command) if self.command else None,
        )  # fmt: skip

    def execute(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def changes_something(self) -> bool:
        """False when this step will only report itself skipped (nothing to do)."""
        return True

    def facts(self, outcome: str) -> tuple[dict[str, str], str]:
        """The step's facts (for JUnit properties) and its report section's text."""
        facts = {
            "target": self.deployment.target.name,
            "group": self.group_name or "",
            "kind": self.kind,
            "file": self.file or "",
            "checksum": self.checksum or "",
            "command": self.command or "",
            "dry_run": str(self.deployment.dry_run).lower(),
            "outcome": outcome,
            **self.extra_facts,
        }
        lines = [f"{key}: {value}" for key, value in facts.items() if value]  # none empty
        lines += self.notes
        if self.log_path is not None:
            lines.append(f"log: {self.log_path}")
        if self.output:
            lines += ["--- output (masked, last 8 KiB) ---", self.output.rstrip("\n")]
        return facts, "\n".join(lines) + "\n"

    def repr_failure(  # a domain message (pytest accepts a str), not a TerminalRepr
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str:
        if isinstance(excinfo.value, DeployFailure):
            return self.deployment.masker.mask(str(excinfo.value))
        return self.deployment.masker.mask(str(super().repr_failure(excinfo)))

    def deploy_warning(self, text: str) -> None:
        """A :class:`DeployWarning` shown at this step's line of the config (not at the
        plugin's source line), also kept in the step's notes."""
        path, line, _ = self.reportinfo()
        warnings.warn_explicit(DeployWarning(text), DeployWarning, str(path), (line or 0) + 1)
        self.notes.append(f"warning: {text}")

    def reportinfo(self) -> tuple[Any, int | None, str]:
        # the group's (or health check's) line in the config: skips are reported there
        config = self.deployment.config
        group = config.group(self.group_name) if self.group_name else None
        line = group.line if group is not None else config.line_of(self.kind)
        return self.path, (line - 1 if line else 0), domain_name(self)


class StepItem(DeployItem):
    """A pre_deploy/post_deploy hook, build, test or deploy step of a group."""

    short_protocol = True

    def __init__(self, *, step: Step, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.step = step
        self._asked: tuple[str | None] | None = None  # changes_something()'s skip reason
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
            found = deployment.applied_record(group, self.migration)
            if found is not None:
                when, by, source = found
                # named: -rs folds identical reasons at one location (the group line)
                applied = f"applied {iso_utc(when)} by {by}"
                if source != "the history":
                    applied += f" (per {source})"
                return f"{self.migration}: {applied}"
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
        if one_transaction:  # the file's ledger row commits in psql's own transaction
            from deploy_plugin.engine.psql import ledger_env
            from deploy_plugin.migrate.ledger import psql_guard_sql

            sql = psql_guard_sql(
                deployment.project, deployment.target.name, self.migration,
                deployment.checksum(self.migration), who(),
            )  # fmt: skip
            env = {
                **env,
                **ledger_env(psqlrc_dir, root=deployment.config.root, rel=self.migration, sql=sql),
            }
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
        finally:
            if one_transaction:
                from deploy_plugin.engine.psql import drop_ledger_sql

                drop_ledger_sql(env)

    def atomic_under_psql(self) -> str | None:
        """None when this step is a tracked migration that psql applies in one transaction
        (``-1``); else why the file does not run in one transaction."""
        step = self.step
        if not step.tracked or step.kind != "deploy" or step.command is None:
            return "not a migration"
        from deploy_plugin.engine.psql import runs_psql_from_path
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
        self.log_path = result.log_path  # None when the command printed nothing
        elapsed = int(result.duration_s * 1000)  # the command's own time, also in parallel
        if result.started_at is not None:
            self.started_at = result.started_at  # a parallel step's command began earlier
            self.command_ms = elapsed  # ... and the step row's interval is the command's
        if result.ok:
            if step.tracked:
                deployment.record_migration(
                    self.migration, status="success", execution_time_ms=elapsed
                )
                deployment.applied_here.append(self.migration)
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
            deployment.record_migration(
                self.migration, status="failed", execution_time_ms=elapsed, error=message
            )
        raise DeployFailure(message)

    def _open_migration_runner(self) -> None:
        """Connect the group's migration runner (reconciling the history with the ledger)."""
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
        from deploy_plugin.migrate.executor import AlreadyApplied, ConnectError, MigrationError

        deployment, step = self.deployment, self.step
        started = time.monotonic()
        try:
            runner = deployment.migration_runner(step.group)
            applied = runner.apply(
                self.migration,
                deployment.config.root / self.migration,
                checksum=deployment.checksum(self.migration),
                who=who(),
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
            # already holds the truth if we die before it (DESIGN §5)
            deployment.record_migration(
                self.migration,
                status="success",
                execution_time_ms=applied.record.execution_time_ms,
            )
        deployment.applied_here.append(self.migration)
        deployment.audit_reapplied(self.migration)
        self.notes.append(f"applied in {applied.record.execution_time_ms} ms")


class HealthCheckItem(DeployItem):
    """``<target>::health_check``: poll the service until it answers as expected."""

    kind = "health_check"

    def execute(self) -> None:
        deployment = self.deployment
        check = deployment.config.health_check
        assert check is not None
        url = expand_vars(deployment.health_url() or check.url, deployment.env)
        self.command = deployment.masker.mask(f"GET {url} expecting {check.expected_status}")
        if deployment.dry_run:
            self.notes.append(
                f"dry run: would poll {deployment.masker.mask(url)} for {check.expected_status}"
            )
            return
        from deploy_plugin.engine.health import poll_health  # requests: imported only when polling

        result = poll_health(url, check.expected_status, check.timeout_seconds)
        self.notes.append(deployment.masker.mask(result.describe()))
        if not result.ok:
            raise DeployFailure(deployment.masker.mask(result.describe()))
