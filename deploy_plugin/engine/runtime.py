"""The state of one deployment (one config, one target) while its steps run.

Steps ask their :class:`Deployment` whether they may run, what environment they get and
where their history goes; the deployment remembers what failed so that later steps are
skipped "not run", and what each step did for the reports. It knows its steps as plain
references (node id, kind, group: :class:`~deploy_plugin.engine.policy.StepRef`) and its
run through :class:`~deploy_plugin.engine.host.RunHost`; the migrations side is
:class:`~deploy_plugin.engine.migrations.Migrations`, what it did
:mod:`deploy_plugin.engine.results`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from deploy_plugin.config import Group
from deploy_plugin.engine import schema_drift, steplogs
from deploy_plugin.engine.errors import DeployFailure, DeployWarning, soft_warn
from deploy_plugin.engine.host import RunHost
from deploy_plugin.engine.logs import NamedStep, run_log_dir, step_log_file
from deploy_plugin.engine.migrations import Migrations, Subject
from deploy_plugin.engine.policy import StepRef, StopPolicy, step_ref
from deploy_plugin.engine.results import (
    DeploymentReport,
    StepResult,
    deployment_status,
    result_of,
)
from deploy_plugin.engine.schema_drift import Schemas
from deploy_plugin.engine.signals import interrupts_deferred
from deploy_plugin.engine.squawk import LintFinding
from deploy_plugin.engine.views import DeploymentView
from deploy_plugin.facts import iso_utc, utcnow, who
from deploy_plugin.secrets import HTTP_LOGGERS, MaskingFilter
from deploy_plugin.targets import step_env

if TYPE_CHECKING:
    from deploy_plugin.engine.parallel import ParallelRunner
    from deploy_plugin.identity import Verdict
    from deploy_plugin.store.lock import DeployLock


class Deployment(Migrations):
    """One config deployed to one target within this run."""

    def __init__(self, session: RunHost, what: Subject, nodeid: str, kind: str) -> None:
        super().__init__(session, what)
        self.kind = kind  # deploy | rollback | check_rollback (what the record says)
        self.rollback_orphans: list[str] = []  # applied files no tracked group matches
        self.applied_here: list[str] = []  # migrations this deployment applied, in order
        self.nodeid = nodeid
        self.steps: list[StepRef] = []  # the selected steps, in run order (select_steps())
        self.positions: dict[str, int] = {}  # node id -> 1-based place in self.steps
        self._last_of: dict[str, str] = {}  # group -> node id of its last selected step
        self.policy = StopPolicy(continue_on_failure=session.options.continue_on_failure)
        self.results: dict[str, StepResult] = {}
        self.schema_verified: set[str] = set()  # groups whose schema preflight found as recorded
        self.lint_findings: list[LintFinding] = []  # squawk's, in the files it would apply
        self.started_at: datetime | None = None
        self.ended_at: datetime | None = None
        self._env_sources: dict[str, str] = {}
        self._log_filter: MaskingFilter | None = None
        self._view: DeploymentView | None = None
        self.parallel: dict[str, ParallelRunner] = {}  # max_parallel groups' runners
        self.log_dir: Path | None = None
        self.finished = False
        self.confirmed = False  # a protected target's run confirmed at the terminal
        self.groups_started: set[str] = set()  # groups whose first step ran (group hooks)
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
    def atomic(self) -> bool:
        """Whether a failure undoes this deployment (``--deploy-atomic`` or ``atomic: true``)."""
        return self.kind == "deploy" and (self.session.options.atomic or self.config.atomic)

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
    def lock(self) -> DeployLock | None:
        return self.recorder.lock

    @lock.setter
    def lock(self, lock: DeployLock | None) -> None:
        self.recorder.lock = lock

    def health_url(self) -> str | None:
        """The health URL this run polls, as written (``${VAR}`` not expanded); None when
        the config has no health check. ``--deploy-health-url`` > the target's > the config's."""
        check = self.config.health_check
        if check is None:
            return None
        return self.session.options.health_url or self.target.health_check_url or check.url

    def selected_groups(self) -> list[Group]:
        """Groups that kept at least one step after selection, in run order."""
        names = {step.group_name for step in self.steps}
        return [p.group for p in self.plans if p.group.name in names]

    def schemas(self) -> Schemas:
        """The databases of the selected tracked groups (schema drift)."""
        groups = tuple(g for g in self.selected_groups() if g.track_migrations)
        env = self._env or {}
        return Schemas(self.project, self.target.name, groups, env, self.config.root)

    # ------------------------------------------------------------------ policy

    def select_steps(self, steps: Sequence[StepRef]) -> None:
        """Set the steps this run keeps, in run order (each group's last one is known)."""
        self.steps = list(steps)
        self.positions = {step.nodeid: place for place, step in enumerate(steps, start=1)}
        self._last_of = {step.group_name: step.nodeid for step in steps if step.group_name}

    def last_of_group(self, step: object) -> bool:
        ref = step_ref(step)
        return self._last_of.get(ref.group_name or "") == ref.nodeid

    def blocker(self, step: object) -> str | None:
        """Why ``step`` must not run (see :class:`StopPolicy`), if so."""
        if self.gated:
            return self.gated  # the session's own tests run first and gate the deployment
        ref = step_ref(step)
        runner = self.parallel.get(ref.group_name or "")
        if self.policy.lock_lost or self.policy.store_failed:
            return self.policy.blocker(ref)
        if ref.kind == "undo":
            return None  # undo steps run after a failure: they decide themselves
        if runner is not None and runner.started(step):
            return None  # it ran beside the failed step: it reports its own outcome
        return self.policy.blocker(ref)

    def mark_failed(
        self, step: object, *, store_error: bool = False, blocking: bool = True
    ) -> None:
        self.policy.record_failure(step_ref(step), store_error=store_error, blocking=blocking)

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

    # ------------------------------------------------------------------ start

    def start(self) -> None:
        """Called before the first step of this deployment runs."""
        if self.started_at is not None:
            return
        # deferred: +24 modules, 29 ms (store.records, store.projects, platform, …)
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
            # the environment is still built (without stored vars) so that later steps
            # can report "not run" after this first one failed with the store's paragraph
            stored_env, problem = {}, str(err)
        watched = {var for g in self.config.groups for var in g.required_env_vars}
        watched |= {g.database_url_env for g in self.config.groups if g.track_migrations}
        built = step_env(
            self.target,
            stored_env,
            dict(self.session.cli_env),
            watched=watched,
            masker=self.masker,
            env_file=dict(self.session.file_env),
            structural=self.structural_names(watched),
        )
        self._log_filter = MaskingFilter(self.masker)
        for logger in HTTP_LOGGERS:
            logging.getLogger(logger).addFilter(self._log_filter)
        self._env, self._env_sources = built.values, built.sources
        if problem is None and refusal is None:
            self.recorder.start(
                who=who(),
                config_snapshot=self.config.source_text,
                config_sha256=self.config.sha256,
                started_at=self.started_at,
                kind=self.kind,
            )
        if not self.dry_run:
            run = str(self.deployment_id or self.started_at.strftime("%Y%m%dT%H%M%S"))
            self.log_dir = run_log_dir(self.session.rootdir, run, self.project, self.target.name)
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
        verdict = self.recorder.verdict(self.config, self.session.rootdir, bind=False)
        if verdict.refusal or verdict.withhold_env:
            return {}
        return self.recorder.stored_env()

    def _identity(self) -> Verdict:
        """The verdict, read before anything of the project is; a real run binds an unbound
        project (and notes it), a warning is shown once."""
        verdict = self.recorder.verdict(self.config, self.session.rootdir, bind=not self.dry_run)
        if verdict.note:
            self.notes.append(verdict.note)
        if verdict.warning:
            self.notes.append(f"warning: {verdict.warning}")
            soft_warn(DeployWarning(verdict.warning))
        return verdict

    def env_source(self, name: str) -> str | None:
        return self._env_sources.get(name)

    def log_path(self, step: NamedStep) -> Path | None:
        """``<logs>/<group>/<step>.log`` (a hash keeps cleaned-up names apart)."""
        if self.log_dir is None:
            return None
        return step_log_file(self.log_dir, step.name, step.group_name or step.kind)

    # ------------------------------------------------------------------ results

    def step_result(
        self, step: object, *, outcome: str, duration_ms: int, message: str | None
    ) -> StepResult:
        """The result of one of its steps or smoke tests (see :func:`result_of`)."""
        return result_of(
            step, self.masker, outcome=outcome, duration_ms=duration_ms, message=message
        )

    def add_result(self, result: StepResult, *, batch: bool = False) -> None:
        """Keep a step's result and record it in the store.

        ``batch`` lets per-file deploy steps share one store transaction (up to
        STEP_BATCH rows, flushed at the group's end, on a failure and at the end); the
        migration history itself is never batched.
        """
        self.results[result.node_id] = result
        self.recorder.add_step(result.to_json(), batch=batch)

    @property
    def status(self) -> str:
        """How it ended so far (see :func:`deployment_status`)."""
        return deployment_status(
            interrupted=self.interrupted, refused=self.refused, results=self.results,
            failed=self.policy.any_failed or self.gated is not None,
            selected=[step.nodeid for step in self.steps],
        )  # fmt: skip

    def report(self) -> DeploymentReport:
        """This deployment in the shared report shape (DESIGN §6)."""
        started = self.started_at or utcnow()
        ended = self.ended_at or utcnow()
        html = self.session.options.html
        return DeploymentReport(
            project=self.project,
            target=self.target.name,
            status=self.status,
            kind=self.kind,
            dry_run=self.dry_run,
            who=who(),
            started_at=iso_utc(started),
            ended_at=iso_utc(ended),
            duration_ms=int((ended - started).total_seconds() * 1000),
            steps=tuple(self.results[s.nodeid] for s in self.steps if s.nodeid in self.results),
            notes=tuple(self.notes),
            lint=tuple(self.lint_findings),
            deployment_id=self.deployment_id,  # the store's run id (None: not recorded)
            # the page --deploy-html writes at the session's end (notifications link it)
            html=os.path.abspath(html) if html else None,
        )

    # ------------------------------------------------------------------ the end

    def finish(self) -> None:
        """Close executors, release the lock, record the end of the run, tell the run's
        extensions (idempotent). Ctrl-C, SIGTERM and SIGHUP are held until all of it is
        done, then acted on: a signal never leaves a run "running" with its lock held."""
        if self.finished:
            return
        with interrupts_deferred():
            self.finished = True
            if self._log_filter is not None:
                for logger in HTTP_LOGGERS:
                    logging.getLogger(logger).removeFilter(self._log_filter)
            self.ended_at = utcnow()
            self.close_runners()
            for parallel in self.parallel.values():
                parallel.close()  # commands a session that ended early left running
            self._record_schemas()
            self._prune_logs()
            self.recorder.finish(self.status)  # never raises: a store problem warns
            try:  # teardown never raises (JUnit has no <error>)
                self.session.deployment_finished(self.view(), self.report())
            except Exception as err:  # noqa: BLE001 - a plugin's bug must not undo the result
                soft_warn(self.masker.mask(
                    f"pytest-deploy: a pytest_deploy_finished hook failed: {err!r}"))  # fmt: skip

    def _record_schemas(self) -> None:
        """The tracked schemas as this real run left them, for the next run's drift
        warning (never raises; never after the lock was lost: another deployer may hold
        the target now, what is there is not ours)."""

        store = self.session.open_store_or_none()
        if self.dry_run or store is None or self.policy.lock_lost:
            return
        schema_drift.record(
            self.schemas(), store, results=list(self.results.values()),
            succeeded=self.status == "success", verified=self.schema_verified,
            deployment_id=self.deployment_id, masker=self.masker,
        )  # fmt: skip

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
