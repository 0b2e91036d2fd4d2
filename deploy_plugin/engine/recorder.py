"""The run recorder: every store write of one deployment run, in one place (DESIGN §5).

It records the run's start (status ``running``, host and pid), the migration history
(read once, then kept current), intents of shell-applied migrations, the step rows
(batched: up to :data:`STEP_BATCH` per store transaction), the run's end and the release
of its lock. Writes at the end never raise: the steps' outcomes stand, and a lost row is
a warning saying so. It knows no pytest.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deploy_plugin.engine.errors import soft_warn
from deploy_plugin.engine.signals import interrupts_deferred
from deploy_plugin.secrets import Masker

if TYPE_CHECKING:
    from deploy_plugin.config import DeployConfig
    from deploy_plugin.identity import Verdict
    from deploy_plugin.store.base import MigrationRecord, Store
    from deploy_plugin.store.lock import DeployLock

STEP_BATCH = 200  # per-file step rows written per store transaction at most


class RunRecorder:
    """The store side of one deployment (one project and target)."""

    def __init__(
        self,
        project: str,
        target: str,
        *,
        store: Callable[[], Store | None],
        open_store: Callable[[], Store | None],
        masker: Masker,
        dry_run: bool,
    ) -> None:
        """``store`` opens the store when needed (StoreError); ``open_store`` returns it
        only when already open and healthy (for writes that must never raise)."""
        self.project = project
        self.target = target
        self._store = store
        self._open_store = open_store
        self.masker = masker
        self.dry_run = dry_run
        self.deployment_id: int | None = None
        self.lock: DeployLock | None = None
        self._history: dict[str, MigrationRecord] | None = None
        self._pending_steps: list[dict[str, Any]] = []
        self.unsynced = False  # history rows written without a durable commit, not yet synced

    # -- the run's row

    def start(
        self,
        *,
        who: str,
        config_snapshot: str,
        config_sha256: str,
        started_at: datetime,
        kind: str = "deploy",
    ) -> int | None:
        """Record the run as ``running``; its id (None without a store: a dry run)."""
        store = self._store()
        if store is not None:
            with interrupts_deferred():  # a signal right after the commit: the id is kept first
                self.deployment_id = store.start_deployment(
                    self.project,
                    self.target,
                    who=who,
                    config_snapshot=self.masker.mask(config_snapshot),
                    config_sha256=config_sha256,
                    dry_run=self.dry_run,
                    started_at=started_at,
                    kind=kind,
                )
        return self.deployment_id

    def verdict(self, config: DeployConfig, rootdir: Path, *, bind: bool) -> Verdict:
        """The store's verdict on ``config``'s claim to its project (``deploy_plugin.identity``);
        ``bind``: a real run binds an unbound project to it."""
        # deferred: +23 modules, 22 ms (inspect, platform, socket, …)
        from deploy_plugin import facts, identity

        store = self._store()
        if store is None:  # a dry run without a store: nothing stored to give away
            return identity.Verdict()
        try:
            shown = config.path.resolve().relative_to(rootdir.resolve())
        except ValueError:
            shown = config.path
        return identity.check(store, config, shown=shown.as_posix(), bind=bind, who=facts.who())

    def stored_env(self) -> dict[str, str]:
        store = self._store()
        return store.env_values(self.project, self.target) if store else {}

    # -- migration history

    def history(self) -> dict[str, MigrationRecord]:
        """The history of this project and target, read once (one query), kept current."""
        if self._history is None:
            store = self._store()
            self._history = store.applied_migrations(self.project, self.target) if store else {}
        return self._history

    def record_migration(self, record: MigrationRecord, *, durable: bool = True) -> None:
        """Write a history row (its error text masked); removes the file's intent too.

        ``durable=False`` for the row of a file whose target's ledger row committed with
        it (the built-in executor, another database than the store's): written at once
        without a commit's fsync; :meth:`finish` syncs it before the run ends."""
        # deferred: +11 modules, 5 ms (inspect, ast, dis, …)
        from dataclasses import replace

        store = self._store()
        if store is None:
            return
        if record.error_message:
            record = replace(record, error_message=self.masker.mask(record.error_message))
        store.record_migration(self.project, self.target, record, durable=durable)
        self.unsynced = self.unsynced or not durable
        self.remember(record)

    def remember(self, record: MigrationRecord) -> None:
        """Keep a row another writer stored (the migration runner, in the migration's
        own transaction)."""
        if self._history is not None:
            self._history[record.file] = record

    def begin_intent(self, rel: str, checksum: str, *, who: str) -> None:
        """Note that a shell step is about to apply tracked file ``rel``."""
        store = self._store()
        if store is not None:
            store.begin_intent(
                self.project, self.target, rel, checksum, deployment_id=self.deployment_id,
                who=who,
            )  # fmt: skip

    # -- steps

    def add_step(self, row: dict[str, Any], *, batch: bool) -> None:
        """Record a step's row; ``batch`` lets it wait for the next write (at most
        STEP_BATCH rows); a failed step is written at once. Nothing in a dry run."""
        if self.dry_run or self.deployment_id is None or self._open_store() is None:
            return
        self._pending_steps.append(row)
        if not batch or row.get("outcome") == "failed" or len(self._pending_steps) >= STEP_BATCH:
            self.flush()

    def flush(self) -> None:
        """Write the step rows not yet in the store (a store problem only warns)."""
        # deferred: +67 modules, 60 ms (store.history, store.records, store.projects, …)
        from deploy_plugin.store.base import StoreError

        store = self._open_store()
        pending, self._pending_steps = self._pending_steps, []
        if not pending or store is None or self.deployment_id is None:
            return
        try:
            store.record_steps(self.deployment_id, pending)
        except StoreError as err:
            # the steps' own outcomes stand; their rows are what is lost, and we say so
            soft_warn(f"pytest-deploy: {len(pending)} step(s) not recorded: {err}")

    # -- the end

    def finish(self, status: str) -> None:
        """Flush the steps, record the run's end and release the lock; never raises."""
        # deferred: +67 modules, 63 ms (store.history, store.records, store.projects, …)
        from deploy_plugin.store.base import StoreError

        self.flush()
        try:
            store = self._open_store()
            if store is not None and self.deployment_id is not None:
                # a durable commit: it syncs the history rows written without one before it
                store.finish_deployment(self.deployment_id, status)
                self.unsynced = False
        except StoreError as err:
            soft_warn(f"pytest-deploy: end of run not recorded: {err}")
        if self.unsynced:
            soft_warn(
                "pytest-deploy: the history rows of this run's migrations may not be synced"
                " to disk: the end of the run was not recorded. The target databases'"
                " ledgers hold them; the next deployment records any row lost from them."
            )
        if self.lock is not None:
            try:
                self.lock.release()
            except StoreError as err:
                soft_warn(f"pytest-deploy: lock not released: {err}")
            self.lock = None
