"""The migrations of one deployment: its databases' ledgers, its history, its runners.

:class:`Migrations`, the base of :class:`~deploy_plugin.engine.runtime.Deployment`, answers
what a step asks when it applies, skips or undoes a tracked file: is it applied, and
according to what (the database's ledger where one decides,
:mod:`deploy_plugin.engine.ledgers`, else the store's history); which files the history
records as applied that a database lacks (preflight stops, or applies them again under
``--deploy-reapply-missing``); each group's migration runner (one connection, reconciled
with its ledger when opened); the history rows it writes (through the run recorder) and
the checksums of the files.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from deploy_plugin.config import DeployConfig, Group
from deploy_plugin.engine.errors import DeployFailure
from deploy_plugin.engine.host import RunHost
from deploy_plugin.engine.ledgers import (
    DatabaseView,
    Lacking,
    lacking_paragraph,
    psql_ledger,
    recovered_warning,
    run_that_died,
    uses_ledger,
)
from deploy_plugin.engine.recorder import RunRecorder
from deploy_plugin.facts import iso_utc, utcnow, who
from deploy_plugin.migrate.ledger_read import url_problem
from deploy_plugin.plan import AppliedMigration, GroupPlan, file_checksum, is_repeatable
from deploy_plugin.secrets import Masker, redact_url
from deploy_plugin.targets import TargetInfo

if TYPE_CHECKING:
    from deploy_plugin.migrate.runner import MigrationRunner
    from deploy_plugin.plan.cut import Cut
    from deploy_plugin.store.base import MigrationRecord

_LEDGER = "the target database's ledger"


class Subject(NamedTuple):
    """What a deployment deploys: a config, to a target, as these group plans."""

    config: DeployConfig
    target: TargetInfo
    plans: list[GroupPlan]


class Migrations:
    """The tracked files of one deployment (one project, one target): the migrations side
    of :class:`~deploy_plugin.engine.runtime.Deployment`, its base class."""

    def __init__(self, session: RunHost, what: Subject) -> None:
        self.session = session
        self.config, self.target, self.plans = what
        self.masker = Masker()
        self.recorder = RunRecorder(
            self.config.project,
            self.target.name,
            store=session.store,
            open_store=session.open_store_or_none,
            masker=self.masker,
            dry_run=session.options.dry_run,
        )
        self._env: dict[str, str] | None = None  # the steps' environment, once started
        self.database = DatabaseView()  # what each built-in group's database has applied
        # files the store records as applied that the database lacks, applied again under
        # --deploy-reapply-missing: file -> (recorded checksum, the database)
        self.reapplying: dict[str, tuple[str, str]] = {}
        self.checksums: dict[str, str] = {}
        self.migration_runners: dict[str, MigrationRunner] = {}  # group name -> its runner
        self.cut: Cut | None = None  # --deploy-to's: the tracked files this run leaves pending

    @property
    def project(self) -> str:
        return self.config.project

    @property
    def dry_run(self) -> bool:
        return self.session.options.dry_run

    @property
    def env(self) -> dict[str, str]:
        """The steps' environment (built when the deployment starts)."""
        assert self._env is not None, "deployment not started"
        return self._env

    @property
    def deployment_id(self) -> int | None:
        """The store's id of this run (None before it started, or without a store)."""
        return self.recorder.deployment_id

    # ------------------------------------------------------------------ files

    def checksum(self, rel: str) -> str:
        """The SHA-256 of tracked file ``rel``, read once (DeployFailure if unreadable)."""
        if rel not in self.checksums:
            try:
                self.checksums[rel] = file_checksum(self.config.root / rel)
            except OSError as err:
                raise DeployFailure(
                    f"cannot read migration {rel} under {self.config.root}:"
                    f" {err.strerror or err}. Make it readable by this user; nothing of it ran."
                ) from None
        return self.checksums[rel]

    # ------------------------------------------------------------------ history

    def applied(self) -> dict[str, MigrationRecord]:
        """History of this project and target, read once (one query)."""
        return self.recorder.history()

    def record_migration(
        self,
        rel: str,
        *,
        status: str,
        execution_time_ms: int | None,
        error: str | None = None,
        checksum: str | None = None,
        applied_at: datetime | None = None,
        applied_by: str | None = None,
        durable: bool = True,
    ) -> None:
        """Write ``rel``'s history row (its intent goes with it); ``durable=False``: its
        database's ledger row has committed, so no fsync of its own (the run's end syncs
        it, :meth:`RunRecorder.finish`)."""
        # deferred: +30 modules, 31 ms (store.records, platform, store.projects, …)
        from deploy_plugin.store.base import MigrationRecord

        record = MigrationRecord(
            file=rel,
            checksum=checksum or self.checksum(rel),
            applied_at=applied_at or utcnow(),
            applied_by=applied_by or who(),
            execution_time_ms=execution_time_ms,
            status=status,
            error_message=error,
        )
        self.recorder.record_migration(record, durable=durable)

    def begin_intent(self, rel: str) -> None:
        """Record that a shell step is about to apply tracked file ``rel`` (an intent row)."""
        self.recorder.begin_intent(rel, self.checksum(rel), who=who())

    def remember_migration(self, record: MigrationRecord) -> None:
        """Keep a history row the migration runner wrote in the migration's transaction."""
        self.recorder.remember(record)

    # ------------------------------------------------------------------ the truth

    def applied_for_plan(self) -> dict[str, AppliedMigration]:
        """What is applied, by file: for a group whose database's ledger was read, the
        ledger's rows (the database decides); for the others, the history's."""
        applied = {
            f: AppliedMigration(r.checksum, r.status, iso_utc(r.applied_at), r.applied_by)
            for f, r in self.applied().items()
        }
        for plan in self.plans:
            if not self.database.known(plan.group):
                continue
            decides = uses_ledger(plan.group)  # a psql group's ledger only adds what it holds
            for rel in plan.files:
                row = self.database.row(plan.group, rel)
                if row is None:
                    if decides:
                        applied.pop(rel, None)
                else:
                    applied[rel] = AppliedMigration(
                        row.checksum, "success", iso_utc(row.applied_at), row.applied_by
                    )
        return applied

    def applied_record(self, group: Group, rel: str) -> tuple[datetime, str | None, str] | None:
        """(when, by whom, according to what) ``rel`` was applied, or None when it is not.

        A group whose files the built-in executor applies asks its database's ledger; a
        real run whose preflight could not read it answers None until the group's migration
        runner has read it (the step then connects and asks again). A repeatable migration
        applied with another checksum than the file's is not applied: it runs again."""
        found = self._applied_as(group, rel)
        if found is None:
            return None
        when, by, source, checksum = found
        if is_repeatable(rel) and checksum != self.checksum(rel):
            return None
        return when, by, source

    def repeatable_note(self, group: Group, rel: str) -> str | None:
        """Why repeatable migration ``rel``, not applied as it is now, runs: ``repeatable:
        changed`` (applied before with another checksum) or ``repeatable: new``; None for a
        versioned file."""
        if not is_repeatable(rel):
            return None
        return "repeatable: changed" if self._applied_as(group, rel) else "repeatable: new"

    def _applied_as(self, group: Group, rel: str) -> tuple[datetime, str | None, str, str] | None:
        """:meth:`applied_record`, with the checksum applied, whatever the file is now."""
        if uses_ledger(group):
            if self.database.known(group):
                row = self.database.row(group, rel)
                if row is None:
                    return None
                return row.applied_at, row.applied_by, _LEDGER, row.checksum
            if not self.dry_run:
                return None
        elif psql_ledger(group):  # a file its database holds is never applied again
            row = self.database.row(group, rel)
            if row is not None:
                return row.applied_at, row.applied_by, _LEDGER, row.checksum
        record = self.applied().get(rel)
        if record is None or record.status != "success":
            return None
        return record.applied_at, record.applied_by, "the history", record.checksum

    def recover_history(self, group: Group, rel: str) -> str | None:
        """Record in the history a file the database's ledger has and the history lacks
        (a real run); the warning saying what happened, or None when nothing was missing."""
        row = self.database.row(group, rel)
        record = self.applied().get(rel)
        if self.dry_run or row is None:
            return None
        if record is not None and record.status == "success":
            if record.checksum == row.checksum or not is_repeatable(rel):
                return None  # (a repeatable's other checksum: the run died before its row)
        store = self.session.open_store_or_none()
        runs = store.deployments(self.project, self.target.name, limit=50) if store else []
        died = run_that_died([r for r in runs if r.id != self.deployment_id], row.applied_at)
        self.record_migration(
            row.file,
            status="success",
            execution_time_ms=None,
            checksum=row.checksum,
            applied_at=row.applied_at,
            applied_by=row.applied_by,
        )
        return recovered_warning(row, self.database.reads[group.name].table, died)

    def read_ledgers(self, groups: Iterable[Group]) -> tuple[list[str], list[str]]:
        """Preflight: read the ledger of each built-in group among ``groups`` (read-only).

        Returns notes and warnings. A database that cannot be reached fails a dry run (the
        pending set it would show is unknown); a real run asks again when the group's first
        migration connects (an earlier group may start the database). Raises DeployFailure
        when a database lacks files the history records as applied (unless
        ``--deploy-reapply-missing``)."""
        # deferred: +4 modules, 8 ms (migrate.statements, migrate.pg_executor, migrate.executor, …)
        from deploy_plugin.migrate.executor import ConnectError

        notes: list[str] = []
        lacking: list[Lacking] = []
        unreadable: list[str] = []
        files = {plan.group.name: plan.files for plan in self.plans}
        for group in groups:
            decides = uses_ledger(group)
            if not (decides or psql_ledger(group)) or not files.get(group.name):
                continue
            url = self.env.get(group.database_url_env, "")
            if not url:
                continue  # preflight::env names it
            problem = url_problem(url)
            if problem:
                raise DeployFailure(
                    self.masker.mask(
                        f"${group.database_url_env} of group {group.name}: {problem}."
                        " Nothing was run."
                    )
                )
            try:
                found = self.database.read(
                    group, url, base=self.config.root, project=self.project,
                    target=self.target.name,
                )  # fmt: skip
            except ConnectError as err:
                if decides:
                    unreadable.append(self.masker.mask(str(err)))
                else:
                    notes.append(f"group {group.name}: {self.masker.mask(str(err))}")
                continue
            if not found.exists:
                notes.append(
                    f"group {group.name}: the database {found.where} does not exist yet: it has"
                    " applied nothing"
                )
            else:
                notes.append(
                    f"group {group.name}: {len(found.rows)} file(s) applied per the ledger of"
                    f" {found.where}"
                )
            if decides:
                missing = self.database.lacking(group, files[group.name], self.applied())
                if missing.files:
                    lacking.append(missing)
        if unreadable and self.dry_run:
            raise DeployFailure(
                "; ".join(unreadable) + ". A dry run reads which files the target database has"
                " applied from its ledger (read-only) and cannot tell what a real run would"
                " apply without it. Start the database (or set its URL right), or leave the"
                " group out with --skip-group to dry-run the rest. Nothing was run."
            )
        for problem in unreadable:
            notes.append(f"{problem}; asked again before the group's first migration")
        warnings: list[str] = []
        if lacking:
            self._reapply(lacking, warnings)
        return notes, warnings

    def _reapply(self, lacking: list[Lacking], warnings: list[str]) -> None:
        """Stop with the paragraph naming what the database lacks; with
        --deploy-reapply-missing, remember those files (each gets a ``reapply`` audit row
        when applied) and warn."""
        store = self.session.open_store_or_none()
        where = store.describe() if store is not None else "(none)"
        if not self.session.options.reapply_missing:
            raise DeployFailure(
                self.masker.mask(lacking_paragraph(lacking, self.project, self.target.name, where))
            )
        for each in lacking:
            for rel, record in each.files:
                self.reapplying[rel] = (record.checksum, each.where)
                warnings.append(
                    f"{rel}: the store records it applied, but the database {each.where}"
                    " lacks it: it is applied again (--deploy-reapply-missing)"
                )

    def audit_reapplied(self, rel: str) -> None:
        """An audit row for a file applied again because the database lacked it."""
        if rel not in self.reapplying:
            return
        old, where = self.reapplying.pop(rel)
        store = self.session.open_store_or_none()
        if store is not None:
            store.audit(
                self.project, self.target.name, rel, "reapply", old=old, new=self.checksum(rel),
                reason=f"the target database {where} lacked it (--deploy-reapply-missing)",
                who=who(),
            )  # fmt: skip

    # ------------------------------------------------------------------ runners

    def migration_runner(self, group: Group) -> MigrationRunner:
        """The migration runner of a group using the built-in executor (one connection)."""
        # deferred: +8 modules, 19 ms (migrate.statements, migrate.pg_executor, migrate.retries, …)
        from deploy_plugin.migrate.executor import SqlExecutor
        from deploy_plugin.migrate.runner import MigrationRunner

        if group.name not in self.migration_runners:
            url = self.env.get(group.database_url_env, "")
            if not url:
                raise DeployFailure(
                    f"group {group.name!r} applies its migrations with the built-in executor,"
                    f" which reads the database URL from ${group.database_url_env}, but it is"
                    f" not set for target {self.target.name!r}. Set it with `pytest-deploy env"
                    f" set {self.project} {group.database_url_env} - --target"
                    f" {self.target.name}` (the value on stdin), or put"
                    f" {group.database_url_env}=URL in a file readable only by you and pass"
                    " --deploy-env-file FILE."
                )
            executor = SqlExecutor(url, base=self.config.root, source=group.database_url_env)
            runner = MigrationRunner(
                executor, self.session.open_store_or_none(), self.project, self.target.name
            )
            self.migration_runners[group.name] = runner
            self._reconcile(runner, group)
        return self.migration_runners[group.name]

    def _reconcile(self, runner: MigrationRunner, group: Group) -> None:
        """Read the group's ledger on the runner's own connection, the authority from here
        on; stop when the database lacks files the history records as applied (a real run
        whose preflight could not read it: the database was not up yet)."""

        self.database.remember(
            group, runner.ledger.rows(), redact_url(runner.executor.url), runner.ledger.table
        )
        files = next((p.files for p in self.plans if p.group is group), ())
        missing = self.database.lacking(group, files, self.applied())
        if missing.files:  # refused, or (--deploy-reapply-missing) applied again, audited
            self._reapply([missing], [])

    def close_runners(self) -> None:
        """Close the migration runners' connections (never raises: the run's result stands)."""
        for runner in self.migration_runners.values():
            try:
                runner.close()
            except Exception:  # noqa: BLE001 - closing must not hide the run's result
                pass
