"""Options of pytest-deploy and the state one pytest session shares between its parts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deploy_plugin.config import ENV_NAME_RE, DeployConfig
from deploy_plugin.fixtures import TARGET_PARAM
from deploy_plugin.runtime import Deployment
from deploy_plugin.targets import TargetInfo

_SESSION_KEY = pytest.StashKey["DeploySession"]()

# options that mean nothing without a target, with their flag for the message
NEEDS_TARGET = {
    "deploy_dry_run": "--dry-run",
    "deploy_groups": "--group",
    "deploy_skip_groups": "--skip-group",
    "deploy_continue_on_failure": "--continue-on-failure",
    "deploy_env": "--deploy-env",
    "deploy_report": "--deploy-report",
}


def add_options(parser: pytest.Parser) -> None:
    """The command-line options and ini keys of DESIGN §6."""
    group = parser.getgroup("deploy", "deployments (pytest-deploy)")
    group.addoption(
        "--deploy-target",
        action="append",
        default=[],
        dest="deploy_target",
        metavar="NAME",
        help="deploy every collected config to this target (repeatable: one deployment each)",
    )
    group.addoption(
        "--dry-run",
        action="store_true",
        dest="deploy_dry_run",
        help="plan only: show every command, run none, change nothing",
    )
    group.addoption(
        "--group",
        action="append",
        default=[],
        dest="deploy_groups",
        metavar="NAME",
        help="deploy only this group (repeatable)",
    )
    group.addoption(
        "--skip-group",
        action="append",
        default=[],
        dest="deploy_skip_groups",
        metavar="NAME",
        help="leave this group out (repeatable)",
    )
    group.addoption(
        "--continue-on-failure",
        action="store_true",
        dest="deploy_continue_on_failure",
        help="after a failed group, carry on with the next group",
    )
    group.addoption(
        "--no-health-check",
        action="store_true",
        dest="deploy_no_health_check",
        help="do not run the health check",
    )
    group.addoption(
        "--deploy-health-url",
        dest="deploy_health_url",
        metavar="URL",
        help="poll this URL instead of the config's health_check.url",
    )
    group.addoption(
        "--skip-validation",
        action="store_true",
        dest="deploy_skip_validation",
        help="do not check required env vars (drift, the lock and the config are still checked)",
    )
    group.addoption(
        "--deploy-store",
        dest="deploy_store",
        metavar="URL",
        help="store URL: postgresql://... or sqlite:///PATH "
        "(default: $DEPLOY_STORE_URL, ini deploy_store, else <rootdir>/.deploy/state.sqlite3)",
    )
    group.addoption(
        "--deploy-env",
        action="append",
        default=[],
        dest="deploy_env",
        metavar="KEY=VALUE",
        help="set an env var for this run's steps (a secret: masked everywhere)",
    )
    group.addoption(
        "--deploy-report",
        dest="deploy_report",
        metavar="FILE.json",
        help="write the deployments' results as JSON",
    )
    group.addoption(
        "--yes",
        action="store_true",
        dest="deploy_yes",
        help="confirm a deployment to a protected target without asking",
    )
    parser.addini("deploy_target", "default deploy targets (linelist)", type="linelist")
    parser.addini("deploy_store", "store URL (see --deploy-store)")
    parser.addini("deploy_health_url", "health URL override (see --deploy-health-url)")


class DeploySession:
    """Options and shared state of pytest-deploy for one pytest session."""

    def __init__(self, config: pytest.Config) -> None:
        opt = config.getoption
        self.config = config
        # each target once, in the order given
        self.targets: list[str] = list(
            dict.fromkeys(opt("deploy_target") or config.getini("deploy_target"))
        )
        self.dry_run: bool = opt("deploy_dry_run")
        self.groups: list[str] = opt("deploy_groups")
        self.skip_groups: list[str] = opt("deploy_skip_groups")
        self.continue_on_failure: bool = opt("deploy_continue_on_failure")
        self.no_health_check: bool = opt("deploy_no_health_check")
        self.health_url: str | None = (
            opt("deploy_health_url") or config.getini("deploy_health_url") or None
        )
        self.skip_validation: bool = opt("deploy_skip_validation")
        from deploy_plugin.store import store_url

        self.store_url = store_url(opt("deploy_store"), config.getini("deploy_store"))
        self.report_path: str | None = opt("deploy_report")
        self.yes: bool = opt("deploy_yes")
        self.cli_env = self._parse_env(opt("deploy_env"))
        self.rootdir = Path(config.rootpath)
        self.junit_properties = config.getini("junit_family") in ("xunit1", "legacy")
        self.deployments: list[Deployment] = []
        self.seen_groups: set[str] = set()
        self.smoke_owner: dict[pytest.Item, Deployment | None] = {}
        self.deselected: set[pytest.Item] = set()  # what -k/-m/... deselected
        self.dropped: set[pytest.Item] = set()  # drift checks with no tracked group left
        self.worker_reports: list[dict[str, Any]] = []
        self._store: Any = None
        self._store_error: str | None = None
        self._store_opened = False

    @staticmethod
    def of(config: pytest.Config) -> DeploySession:
        return config.stash[_SESSION_KEY]

    @staticmethod
    def install(config: pytest.Config) -> DeploySession:
        session = config.stash[_SESSION_KEY] = DeploySession(config)
        return session

    @staticmethod
    def _parse_env(pairs: list[str]) -> dict[str, str]:
        env: dict[str, str] = {}
        for pair in pairs:
            name, sep, value = pair.partition("=")
            if not sep or not ENV_NAME_RE.match(name):
                raise pytest.UsageError(
                    f"--deploy-env expects KEY=VALUE with KEY a shell variable name"
                    f" (letters, digits, _), got {name if sep else pair!r}"
                )
            env[name] = value
        return env

    # -- smoke tests

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
        if self.groups and name not in self.groups:
            return False
        return name not in self.skip_groups

    # -- store

    def store(self) -> Any:
        """The store, opened once (a dry run never creates one: None when missing)."""
        from deploy_plugin.store import open_store
        from deploy_plugin.store.base import StoreError

        if not self._store_opened:
            self._store_opened = True
            try:
                self._store = open_store(self.store_url, self.rootdir, create=not self.dry_run)
            except StoreError as err:
                self._store_error = str(err)
        if self._store_error:
            raise StoreError(self._store_error)
        return self._store

    def open_store_or_none(self) -> Any:
        """The store if it is already open and healthy; never opens or raises."""
        return self._store if self._store_opened and not self._store_error else None

    def resolve_target(
        self, config: DeployConfig, name: str
    ) -> tuple[TargetInfo | None, str | None]:
        """The target ``name`` of a config (declared or stored), or why it is unknown."""
        from deploy_plugin import targets
        from deploy_plugin.store.base import StoreError

        try:
            store = self.store()
        except StoreError as err:
            declared = config.targets.get(name)
            if declared is not None:  # the store's problem is reported by the first step
                return TargetInfo.merge(name, declared, None), None
            return None, str(err)
        return targets.resolve(config, name, store)
