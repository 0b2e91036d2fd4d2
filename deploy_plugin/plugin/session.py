"""The state one pytest session shares between pytest-deploy's parts: the run's one frozen
:class:`~deploy_plugin.plugin.options.DeployOptions` (read as ``session.options.x``, never
copied), what configuration read besides (env files), the deployments collected, what
selection and refusals found, and the store, opened once."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from deploy_plugin.plugin.options import TARGET_PARAM, DeployOptions
from deploy_plugin.store import default_store_path, open_store, store_home

if TYPE_CHECKING:  # imported when a deployment needs them: plain pytest runs stay light
    from deploy_plugin.config import DeployConfig
    from deploy_plugin.engine.results import DeploymentReport
    from deploy_plugin.engine.views import DeploymentView
    from deploy_plugin.plugin.deployment import Deployment
    from deploy_plugin.saved_plans import SavedPlan
    from deploy_plugin.targets import TargetInfo

_SESSION_KEY = pytest.StashKey["DeploySession"]()


class DeploySession:
    """pytest-deploy's shared state for one pytest session (its options: ``options``)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.options = options = DeployOptions.from_pytest(config)
        # the steps' env vars given for this run: --deploy-env parsed (a malformed pair is
        # a usage error now), and --deploy-env-file's (read in pytest_configure)
        self.cli_env = options.env_values()
        self.file_env: dict[str, str] = {}
        # saved plans: the plan being applied (--deploy-plan), the id of one being made
        self.saved_plan: SavedPlan | None = None
        self._plan_id: str | None = None
        self.plan_message: str | None = None  # what became of --deploy-plan-out
        self.plan_refusal: str | None = None  # why --deploy-plan was refused
        self.plan_failed = False  # --deploy-plan-out asked for a plan that was not written
        self.usage_problems: list[str] = []  # found while collecting (e.g. a rollback's FILE)
        self.refusal: str | None = None  # them, as the run's refusal (exit 4, nothing ran)
        self.summary_notes: list[str] = []  # lines for the terminal summary
        self.rootdir = Path(config.rootpath)
        self.junit_properties = config.getini("junit_family") in ("xunit1", "legacy")
        self.deployments: list[Deployment] = []
        self.seen_groups: set[str] = set()
        self.smoke_owner: dict[pytest.Item, Deployment | None] = {}
        self.deselected: set[pytest.Item] = set()  # what -k/-m/... deselected
        self.dropped: set[pytest.Item] = set()  # drift checks with no tracked group left
        self.worker_reports: list[DeploymentReport] = []  # xdist: what each worker deployed
        self.unselected: list[str] = []  # deployments whose every item was deselected
        # configs of which --group/--skip-group kept no group (said when nothing deploys)
        self.unselected_groups: list[str] = []
        # node ids of the session's own tests (not steps, not smoke tests) that failed: a
        # deployment that has not started yet does not start (issue 15 #8)
        self.failed_tests: list[str] = []
        self._store: Any = None
        self._store_error: str | None = None
        self._store_opened = False
        # the embedded store's folder: its first config's (store_home), else the rootdir
        self._store_home: Path | None = None

    def hook_used(self, name: str) -> bool:
        """Whether any plugin or conftest implements our hook ``name``: a step builds the
        views it would pass only then (issue 14: per-step cost). Asked while items run,
        when every conftest is registered."""
        hook = getattr(self.config.hook, name)
        return bool(hook.get_hookimpls())

    def deployment_finished(self, deployment: DeploymentView, report: DeploymentReport) -> None:
        """A deployment ended: its ``pytest_deploy_finished`` hooks (the engine's callback)."""
        self.config.hook.pytest_deploy_finished(deployment=deployment, report=report)

    @staticmethod
    def of(config: pytest.Config) -> DeploySession:
        return config.stash[_SESSION_KEY]

    @staticmethod
    def install(config: pytest.Config) -> DeploySession:
        session = config.stash[_SESSION_KEY] = DeploySession(config)
        return session

    # -- smoke tests

    @property
    def plan_id(self) -> str:
        """The id of the plan this run makes (--deploy-plan-out), drawn when first asked."""
        if self._plan_id is None:
            # deferred: +3 modules, 9 ms (saved_plans, hmac, secrets)
            from deploy_plugin.saved_plans import new_plan_id

            self._plan_id = new_plan_id()
        return self._plan_id

    def deployment_for(self, item: pytest.Item) -> Deployment | None:
        """The deployment a smoke test belongs to: its target's, nearest config first."""
        callspec = getattr(item, "callspec", None)
        target = callspec.params.get(TARGET_PARAM) if callspec else None
        if target is None:
            return None
        if item in self.smoke_owner:
            return self.smoke_owner[item]
        candidates = [d for d in self.deployments if d.target.name == target]
        path = Path(item.path)

        def nearness(deployment: Deployment) -> int:
            folder = deployment.config.path.parent
            return len(folder.parts) if folder in path.parents else -1

        best = max(candidates, key=nearness, default=None)
        self.smoke_owner[item] = best
        return best

    # -- selection

    def group_selected(self, name: str) -> bool:
        groups = self.options.groups
        if groups and name not in groups:
            return False
        return name not in self.options.skip_groups

    # -- store

    def store(self) -> Any:
        """The store, opened once (a dry run never creates one: None when missing)."""
        # deferred: +24 modules, 43 ms (store.records, secrets, store.projects, …)
        from deploy_plugin.store.base import StoreError

        if not self._store_opened:
            self._store_opened = True
            self._store_home = self._store_home or self.rootdir
            try:
                self._store = open_store(
                    self.options.store, self._store_home, create=not self.options.dry_run
                )
            except StoreError as err:
                self._store_error = str(err)
        if self._store_error:
            raise StoreError(self._store_error)
        return self._store

    def _same_store(self, config: DeployConfig) -> str | None:
        """Why ``config`` cannot run in this session: its embedded store is not the one
        this run opened (the first config's), if so. A named store is every config's."""

        if self.options.store is not None:
            return None
        home = store_home(config.path, self.rootdir)
        if self._store_home is None:
            self._store_home = home
        if home == self._store_home:
            return None
        return (
            f"the config {config.path} keeps its embedded store in"
            f" {default_store_path(home)}, and this run already uses"
            f" {default_store_path(self._store_home)} (its first config's): one run uses one"
            " store. Run each project on its own (`pytest PATH`), or move one store next to"
            " the other (or pass --deploy-store to name one)."
        )

    def open_store_or_none(self) -> Any:
        """The store if it is already open and healthy; never opens or raises."""
        return self._store if self._store_opened and not self._store_error else None

    def resolve_target(
        self, config: DeployConfig, name: str
    ) -> tuple[TargetInfo | None, str | None]:
        """The target ``name`` of a config (declared or stored), or why it is unknown."""
        # deferred: +25 modules, 34 ms (store.records, targets, store.projects, …)
        from deploy_plugin import targets
        from deploy_plugin.store.base import StoreError

        problem = self._same_store(config)
        if problem:
            return None, problem
        try:
            store = self.store()
        except StoreError as err:
            declared = config.targets.get(name)
            if declared is not None:  # the store's problem is reported by the first step
                return targets.TargetInfo.merge(name, declared, None), None
            return None, str(err)
        return targets.resolve(config, name, store)
