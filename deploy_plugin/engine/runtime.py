"""The state of one deployment (one config, one target) while pytest runs its items.

Items ask their :class:`Deployment` whether they may run, what environment they get,
and where their history goes; the deployment remembers what failed so that later
items are skipped "not run", and what each step did for the reports.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from deploy_plugin.config import DeployConfig, Group
from deploy_plugin.engine import ledgers, steplogs
from deploy_plugin.engine.ledgers import DatabaseView
from deploy_plugin.engine.logs import run_log_dir, step_log_file
from deploy_plugin.engine.policy import StopPolicy, step_ref
from deploy_plugin.engine.recorder import RunRecorder
from deploy_plugin.facts import iso_utc, utcnow, who
from deploy_plugin.plan import AppliedMigration, GroupPlan
from deploy_plugin.plugin.messages import DeployFailure, DeployWarning, soft_warn
from deploy_plugin.plugin.views import DeploymentView
from deploy_plugin.secrets import HTTP_LOGGERS, Masker, MaskingFilter
from deploy_plugin.targets import TargetInfo, step_env

if TYPE_CHECKING:
    from deploy_plugin.identity import Verdict
    from deploy_plugin.plugin.session import DeploySession
    from deploy_plugin.store.base import MigrationRecord
    from deploy_plugin.store.lock import DeployLock


@dataclass(frozen=True)
class StepResult:
    """What one item of a deployment did, as the reports show it (hooks get it read-only)."""

    node_id: str
    group: str | None
    kind: str
    file: str | None
    checksum: str | None
    command: str | None
    outcome: str  # passed | failed | skipped
    duration_ms: int
    message: str | None
    started_at: str | None = None  # ISO 8601 UTC: when the step (its command) began

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Deployment:
    """One config deployed to one target within this pytest session."""

    def __init__(
        self,
        session: DeploySession,
        config: DeployConfig,
        target: TargetInfo,
        plans: list[GroupPlan],
        nodeid: str,
        *,
        kind: str = "deploy",
    ) -> None:
        self.session = session
        self.kind = kind  # deploy | rollback (what the deployments record says)
        self.rollback_orphans: list[str] = []  # applied files no tracked group matches
        self.applied_here: list[str] = []  # migrations this deployment applied, in order
        self.config = config
        self.target = target
        self.plans = plans
        self.nodeid = nodeid
        self.items: list[Any] = []  # every item collected for it, in run order
        self.selected: list[Any] = []  # those kept after selection, in run order (select())
        self.positions: dict[str, int] = {}  # node id -> 1-based place in self.selected
        self._bounds: dict[str, list[Any]] = {}
        self.policy = StopPolicy(continue_on_failure=session.options.continue_on_failure)
        self.results: dict[str, StepResult] = {}
        self.schema_verified: set[str] = set()  # groups whose schema preflight found as recorded
        self.started_at: datetime | None = None
        self.ended_at: datetime | None = None
        self._env: dict[str, str] | None = None
        self._env_sources: dict[str, str] = {}
        self.masker = Masker()
        self._log_filter: MaskingFilter | None = None
        self._view: DeploymentView | None = None
        self.recorder = RunRecorder(
            config.project,
            target.name,
            store=session.store,
            open_store=session.open_store_or_none,
            masker=self.masker,
            dry_run=session.options.dry_run,
        )
        self._migration_runners: dict[str, Any] = {}
        self._runners: dict[str, Any] = {}
        self.checksums: dict[str, str] = {}
        self.log_dir: Path | None = None
        self.finished = False
        self.confirmed = False  # a protected target's run confirmed at the terminal
        self.groups_started: set[str] = set()  # groups whose first item ran (group hooks)
        self.database = DatabaseView()  # what each built-in group's database has applied
        # files the store records as applied that the database lacks, applied again under
        # --deploy-reapply-missing: file -> (recorded checksum, the database)
        self.reapplying: dict[str, tuple[str, str]] = {}
        self.interrupted: str | None = None  # why the session stopped under it (a signal)
        # why the run was refused before anything ran (a protected target not confirmed,
        # the lock held by another run): recorded as "refused", never as the latest state
        self.refused: str | None = None
        self.notes: list[str] = []  # one-line remarks for the summary (selection)
        self.gated: str | None = None  # a test of the session that failed before it started

    # ------------------------------------------------------------------ identity

    def structural_names(self, env_names: Iterable[str] = ()) -> list[str]:
        """Names that are never masked: project, targets, groups, env var names, files."""
        names = [self.config.project, self.target.name, *self.config.targets, *env_names]
        for plan in self.plans:
            names += [plan.group.name, *plan.files]
        return names

    @property
    def dry_run(self) -> bool:
        return self.session.options.dry_run

    @property
    def atomic(self) -> bool:
        """Whether a failure undoes this deployment (``--deploy-atomic`` or ``atomic: true``)."""
        return self.kind == "deploy" and bool(self.session.options.atomic or self.config.atomic)

    def view(self) -> DeploymentView:
        """This deployment as hooks see it (read-only; its env once it started)."""
        if self._view is not None and self._view.deployment_id == self.deployment_id:
            return self._view
        view = DeploymentView(
            project=self.project,
            target=self.target,
            config=self.config,
            dry_run=self.dry_run,
            env=MappingProxyType(self._env or {}),
            deployment_id=self.deployment_id,
            _masker=self.masker,
        )
        if self._env is not None:  # complete once started: kept for every later hook call
            self._view = view
        return view

    @property
    def deployment_id(self) -> int | None:
        """The store's id of this run (None before it started, or without a store)."""
        return self.recorder.deployment_id

    @property
    def lock(self) -> DeployLock | None:
        return self.recorder.lock

    @lock.setter
    def lock(self, lock: DeployLock | None) -> None:
        self.recorder.lock = lock

    @property
    def project(self) -> str:
        return self.config.project

    def health_url(self) -> str | None:
        """The health URL this run polls, as written (``${VAR}`` not expanded); None when
        the config has no health check. ``--deploy-health-url`` > the target's > the config's."""
        check = self.config.health_check
        if check is None:
            return None
        return self.session.options.health_url or self.target.health_check_url or check.url

    def selected_of(self, *kinds: str) -> list[Any]:
        """The selected deployment items of these kinds, in run order (a smoke test, a
        plain pytest item, has no kind and is never one of them)."""
        return [i for i in self.selected if getattr(i, "kind", None) in kinds]

    def selected_groups(self) -> list[Group]:
        """Groups that kept at least one item after selection, in run order."""
        names = {getattr(item, "group_name", None) for item in self.selected}
        return [p.group for p in self.plans if p.group.name in names]

    # ------------------------------------------------------------------ policy

    def blocker(self, item: Any) -> str | None:
        """Why ``item`` must not run (see :class:`StopPolicy`), if so."""
        if self.gated:
            return self.gated  # the session's own tests run first and gate the deployment
        ref = step_ref(item)
        runner = self._runners.get(ref.group_name or "")
        if self.policy.lock_lost or self.policy.store_failed:
            return self.policy.blocker(ref)
        if ref.kind == "undo":
            return None  # undo items run after a failure: they decide themselves
        if runner is not None and runner.started(item):
            return None  # it ran beside the failed step: it reports its own outcome
        return self.policy.blocker(ref)

    def select(self, items: list[Any]) -> None:
        """Set the items this run keeps, in run order, and each group's last one."""
        self.selected = items
        self.positions = {item.nodeid: place for place, item in enumerate(items, start=1)}
        self._bounds = {}
        for item in items:
            name = getattr(item, "group_name", None)
            if name:
                self._bounds.setdefault(name, [item, item])[1] = item

    def last_of_group(self, item: Any) -> bool:
        return self._bounds.get(item.group_name, [None, None])[1] is item

    def mark_failed(self, item: Any, *, store_error: bool = False, blocking: bool = True) -> None:
        self.policy.record_failure(step_ref(item), store_error=store_error, blocking=blocking)

    # ------------------------------------------------------------------ start

    def start(self) -> None:
        """Called before the first item of this deployment runs."""
        if self.started_at is not None:
            return
        from deploy_plugin.store.base import StoreError

        self.started_at = utcnow()
        failed_tests = self.session.failed_tests
        self.gated = failed_tests[0] if failed_tests else None
        problem = refusal = None
        try:
            verdict = self._identity()
            refusal = verdict.refusal
            withhold = refusal is not None or verdict.withhold_env
            stored_env = {} if withhold else self.recorder.stored_env()
        except StoreError as err:
            # the environment is still built (without stored vars) so that later items
            # can report "not run" after this first one failed with the store's paragraph
            stored_env, problem = {}, str(err)
        watched = {var for g in self.config.groups for var in g.required_env_vars}
        watched |= {g.database_url_env for g in self.config.groups if g.track_migrations}
        built = step_env(
            self.target,
            stored_env,
            self.session.cli_env,
            watched=watched,
            masker=self.masker,
            env_file=self.session.file_env,
            structural=self.structural_names(watched),
        )
        env, sources = built.values, built.sources
        self._log_filter = MaskingFilter(self.masker)
        for logger in HTTP_LOGGERS:
            logging.getLogger(logger).addFilter(self._log_filter)
        self._env, self._env_sources = env, sources
        if problem is None and refusal is None:
            self.recorder.start(
                who=who(),
                config_snapshot=self.config.source_text,
                config_sha256=self.config.sha256,
                started_at=self.started_at,
                kind=self.kind,
            )
        if not self.dry_run:
            stamp = self.started_at.strftime("%Y%m%dT%H%M%S")
            self.log_dir = run_log_dir(
                self.session.rootdir, str(self.deployment_id or stamp), self.project,
                self.target.name,
            )  # fmt: skip
            steplogs.mark(
                self.log_dir, self.project, self.target.name, self.started_at, self.deployment_id
            )
        if problem:
            raise StoreError(problem)
        if refusal:
            raise DeployFailure(refusal)

    def env_for_plan(self) -> dict[str, str]:
        """The stored env vars this deployment gets, read now (a saved plan's facts): none
        when the store's verdict on its project withholds them."""
        verdict = self._verdict(bind=False)
        if verdict.refusal or verdict.withhold_env:
            return {}
        return self.recorder.stored_env()

    def _verdict(self, *, bind: bool) -> Verdict:
        """The store's verdict on this config's claim to its project (deploy_plugin.identity)."""
        from deploy_plugin import identity

        store = self.session.store()
        if store is None:  # a dry run without a store: nothing stored to give away
            return identity.Verdict()
        try:
            shown = self.config.path.resolve().relative_to(self.session.rootdir.resolve())
        except ValueError:
            shown = self.config.path
        return identity.check(store, self.config, shown=shown.as_posix(), bind=bind, who=who())

    def _identity(self) -> Verdict:
        """The verdict, read before anything of the project is; a real run binds an unbound
        project (and notes it), a warning is shown once."""
        verdict = self._verdict(bind=not self.dry_run)
        if verdict.note:
            self.notes.append(verdict.note)
        if verdict.warning:
            self.notes.append(f"warning: {verdict.warning}")
            soft_warn(DeployWarning(verdict.warning))
        return verdict

    @property
    def env(self) -> dict[str, str]:
        assert self._env is not None, "deployment not started"
        return self._env

    def env_source(self, name: str) -> str | None:
        return self._env_sources.get(name)

    def log_path(self, item: Any) -> Path | None:
        """``<logs>/<group>/<step>.log`` (a hash keeps cleaned-up names apart)."""
        if self.log_dir is None:
            return None
        return step_log_file(self.log_dir, item.name, item.group_name or item.kind)

    # ------------------------------------------------------------------ history

    def applied(self) -> dict[str, MigrationRecord]:
        """History of this project and target, read once (one query)."""
        return self.recorder.history()

    def applied_for_plan(self) -> dict[str, AppliedMigration]:
        """What is applied, by file: the database's ledger where it decides (ledgers.py)."""
        return ledgers.applied_for_plan(self)

    def applied_record(self, group: Group, rel: str) -> tuple[datetime, str | None, str] | None:
        """(when, by whom, according to what) ``rel`` was applied, or None (ledgers.py)."""
        return ledgers.applied_record(self, group, rel)

    def recover_history(self, group: Group, rel: str) -> str | None:
        """Record a file the ledger has and the history lacks; the warning (ledgers.py)."""
        return ledgers.recover_history(self, group, rel)

    def read_ledgers(self, groups: Iterable[Group]) -> tuple[list[str], list[str]]:
        """Preflight: read each built-in group's ledger read-only (ledgers.py)."""
        return ledgers.read_ledgers(self, groups)

    def checksum(self, rel: str) -> str:
        if rel not in self.checksums:
            from deploy_plugin.plan import file_checksum

            try:
                self.checksums[rel] = file_checksum(self.config.root / rel)
            except OSError as err:
                raise DeployFailure(
                    f"cannot read migration {rel} under {self.config.root}:"
                    f" {err.strerror or err}. Make it readable by this user; nothing of it ran."
                ) from None
        return self.checksums[rel]

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
    ) -> None:
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
        self.recorder.record_migration(record)

    def migration_runner(self, group: Group) -> Any:
        """The migration runner of a group using the built-in executor (one connection)."""
        from deploy_plugin.migrate.executor import SqlExecutor
        from deploy_plugin.migrate.runner import MigrationRunner

        if group.name not in self._migration_runners:
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
            self._migration_runners[group.name] = runner
            self._reconcile(runner, group)
        return self._migration_runners[group.name]

    def _reconcile(self, runner: Any, group: Group) -> None:
        ledgers.reconcile(self, runner, group)

    def audit_reapplied(self, rel: str) -> None:
        """An audit row for a file applied again because the database lacked it."""
        ledgers.audit_reapplied(self, rel)

    def begin_intent(self, rel: str) -> None:
        """Record that a shell step is about to apply tracked file ``rel`` (an intent row)."""
        self.recorder.begin_intent(rel, self.checksum(rel), who=who())

    def remember_migration(self, record: MigrationRecord) -> None:
        """Keep a history row the migration runner wrote in the migration's transaction."""
        self.recorder.remember(record)

    def parallel_runner(self, group: Group) -> Any:
        """The runner of a ``max_parallel`` group's per-file steps (made by its first)."""
        from deploy_plugin.engine.parallel import ParallelRunner

        if group.name not in self._runners:
            siblings = [
                i
                for i in self.selected
                if getattr(i, "group_name", None) == group.name
                and i.kind == "deploy"
                and getattr(i, "file", None) is not None
            ]
            self._runners[group.name] = ParallelRunner(siblings, group.max_parallel)
        return self._runners[group.name]

    # ------------------------------------------------------------------ results

    def step_result(
        self, item: Any, *, outcome: str, duration_ms: int, message: str | None
    ) -> StepResult:
        """The one builder of a step's result, for deploy items and smoke tests alike: the
        item's facts (node id, group, kind, file, checksum, command masked)."""
        ref = step_ref(item)
        command = getattr(item, "command", None)
        return StepResult(
            node_id=ref.nodeid,
            group=ref.group_name,
            kind=ref.kind,
            file=getattr(item, "file", None),
            checksum=getattr(item, "checksum", None),
            command=self.masker.mask(command) if command else None,
            outcome=outcome,
            duration_ms=duration_ms,
            message=message,
            started_at=iso_utc(started) if (started := getattr(item, "started_at", None)) else None,
        )

    def add_result(self, result: StepResult, *, batch: bool = False) -> None:
        """Keep a step's result and record it in the store.

        ``batch`` lets per-file deploy steps share one store transaction (up to
        STEP_BATCH rows, flushed at the group's end, on a failure and at the end); the
        migration history itself is never batched.
        """
        self.results[result.node_id] = result
        self.recorder.add_step(result.as_dict(), batch=batch)

    @property
    def status(self) -> str:
        """``interrupted`` (a signal or Ctrl-C), ``refused`` (a protected target not
        confirmed, or the lock held by another run, and nothing ran), ``failure`` (a step
        failed, a selected
        step never ran: the session ended early, or a test of the session failed before
        the deployment started, so none of its steps ran), else ``success``."""
        if self.interrupted:
            return "interrupted"
        if self.refused and all(
            r.kind == "preflight" or r.outcome == "skipped" for r in self.results.values()
        ):
            return "refused"
        if self.policy.any_failed or self.gated:
            return "failure"
        if any(item.nodeid not in self.results for item in self.selected):
            return "failure"
        return "success"

    def check_lock(self) -> None:
        """Stop the deployment when its lock is gone (never two deployers at once)."""
        if self.lock is None or self.policy.lock_lost:
            return
        why = self.lock.lost()
        if why:
            self.policy.lock_lost = why
            raise DeployFailure(
                f"the deployment lock of project {self.project!r}, target"
                f" {self.target.name!r} was lost: {why}. Another run may be deploying now,"
                " so this one stopped before this step; check the target, then run again."
            )

    def finish(self) -> None:
        """Close executors, release the lock, record the end of the run (idempotent)."""
        if self.finished:
            return
        self.finished = True
        if self._log_filter is not None:
            for logger in HTTP_LOGGERS:
                logging.getLogger(logger).removeFilter(self._log_filter)
        self.ended_at = utcnow()
        for runner in self._migration_runners.values():
            try:
                runner.close()
            except Exception:  # noqa: BLE001 - closing must not hide the run's result
                pass
        for parallel in self._runners.values():
            parallel.close()  # commands a session that ended early left running
        if not self.dry_run:
            from deploy_plugin.engine import schema_drift

            schema_drift.record(self)  # for the next run's drift warning; never raises
        self._prune_logs()
        # teardown never raises (JUnit has no <error>): a store problem here only warns
        self.recorder.finish(self.status)
        try:
            self.session.config.hook.pytest_deploy_finished(
                deployment=self.view(), report=self.report()
            )
        except Exception as err:  # noqa: BLE001 - a plugin's bug must not undo the run's result
            soft_warn(
                self.masker.mask(f"pytest-deploy: a pytest_deploy_finished hook failed: {err!r}")
            )

    def _prune_logs(self) -> None:
        """Keep the last ``deploy_keep_logs`` runs of step logs of this project and target,
        this one included; only while this run holds the target's lock (never two at once)."""
        if self.log_dir is None or self.lock is None:
            return
        keep = self.session.options.keep_logs
        problems = steplogs.prune(self.log_dir, self.project, self.target.name, keep)
        if problems:
            soft_warn(
                f"pytest-deploy: could not remove old step logs (ini deploy_keep_logs = {keep}):"
                f" {'; '.join(problems)}. Remove them by hand or make them writable"
            )

    def report(self) -> dict[str, Any]:
        """This deployment in the shared report shape (DESIGN §6)."""
        started = self.started_at or utcnow()
        ended = self.ended_at or utcnow()
        ordered = [self.results[i.nodeid] for i in self.selected if i.nodeid in self.results]
        return {
            "project": self.project,
            "target": self.target.name,
            "status": self.status,
            "kind": self.kind,
            "dry_run": self.dry_run,
            "who": who(),
            "started_at": iso_utc(started),
            "ended_at": iso_utc(ended),
            "duration_ms": int((ended - started).total_seconds() * 1000),
            "steps": [r.as_dict() for r in ordered],
            "notes": list(self.notes),
            "deployment_id": self.deployment_id,  # the store's run id (None: not recorded)
            **self._html_field(),
        }

    def _html_field(self) -> dict[str, str]:
        """``html``: the page ``--deploy-html`` writes at the session's end (notifications
        link it); absent without the option."""
        path = self.session.options.html
        return {"html": os.path.abspath(path)} if path else {}
