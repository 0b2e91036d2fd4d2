"""pytest hooks of pytest-deploy: options, collection, ordering and the session's state.

Reporting (terminal summary, JSON report, JUnit facts) lives in :mod:`deploy_plugin.report`;
collectors and items in :mod:`deploy_plugin.nodes`.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from deploy_plugin import distribution, report
from deploy_plugin.config import DeployConfig, is_config_file
from deploy_plugin.fixtures import TARGET_PARAM, uses_deploy_fixtures
from deploy_plugin.nodes import DeployConfigFile, DeployItem, PreflightItem, StepItem
from deploy_plugin.runtime import Deployment, StepResult, TargetInfo, monotonic_ms

pytest_plugins = ["deploy_plugin.fixtures"]

_SESSION_KEY = pytest.StashKey["DeploySession"]()
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# options that mean nothing without a target, with their flag for the message
_NEEDS_TARGET = {
    "deploy_dry_run": "--dry-run",
    "deploy_groups": "--group",
    "deploy_skip_groups": "--skip-group",
    "deploy_continue_on_failure": "--continue-on-failure",
    "deploy_env": "--deploy-env",
    "deploy_report": "--deploy-report",
}


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from deploy_plugin import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
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
        self.targets: list[str] = list(opt("deploy_target") or config.getini("deploy_target"))
        self.dry_run: bool = opt("deploy_dry_run")
        self.groups: list[str] = opt("deploy_groups")
        self.skip_groups: list[str] = opt("deploy_skip_groups")
        self.continue_on_failure: bool = opt("deploy_continue_on_failure")
        self.no_health_check: bool = opt("deploy_no_health_check")
        self.health_url: str | None = (
            opt("deploy_health_url") or config.getini("deploy_health_url") or None
        )
        self.skip_validation: bool = opt("deploy_skip_validation")
        self.store_url: str | None = (
            opt("deploy_store")
            or os.environ.get("DEPLOY_STORE_URL")
            or config.getini("deploy_store")
            or None
        )
        self.report_path: str | None = opt("deploy_report")
        self.yes: bool = opt("deploy_yes")
        self.cli_env = self._parse_env(opt("deploy_env"))
        self.rootdir = Path(config.rootpath)
        self.junit_properties = config.getini("junit_family") in ("xunit1", "legacy")
        self.deployments: list[Deployment] = []
        self.seen_groups: set[str] = set()
        self.smoke_owner: dict[pytest.Item, Deployment | None] = {}
        self.worker_reports: list[dict[str, Any]] = []
        self._store: Any = None
        self._store_error: str | None = None
        self._store_opened = False

    @staticmethod
    def of(config: pytest.Config) -> DeploySession:
        return config.stash[_SESSION_KEY]

    @staticmethod
    def _parse_env(pairs: list[str]) -> dict[str, str]:
        env: dict[str, str] = {}
        for pair in pairs:
            name, sep, value = pair.partition("=")
            if not sep or not _ENV_NAME.match(name):
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

    def store_shares_database(self, executor: Any) -> bool:
        """Whether the built-in executor's database is the PostgreSQL store's own."""
        store = self.open_store_or_none()
        if store is None or store.kind != "postgresql" or executor.kind != "postgresql":
            return False
        from psycopg.conninfo import conninfo_to_dict

        def key(url: str) -> tuple[str, str, str]:
            info = conninfo_to_dict(url)
            return (
                str(info.get("host") or "localhost").replace("localhost", "127.0.0.1"),
                str(info.get("port") or "5432"),
                str(info.get("dbname") or info.get("user") or ""),
            )

        return key(store.url) == key(executor.url)

    def resolve_target(
        self, config: DeployConfig, name: str
    ) -> tuple[TargetInfo | None, str | None]:
        """The target ``name`` of a config (declared or stored), or why it is unknown."""
        from deploy_plugin.store.base import StoreError

        declared = config.targets.get(name)
        stored, known_stored = None, []
        try:
            store = self.store()
        except StoreError as err:
            if declared is not None:
                return TargetInfo.merge(name, declared, None), None
            return None, str(err)
        if store is not None:
            stored = store.get_target(config.project, name)
            known_stored = [t.name for t in store.list_targets(config.project)]
        if declared is None and stored is None:
            known = [f"{t} (config)" for t in config.targets] + [
                f"{t} (store)" for t in known_stored if t not in config.targets
            ]
            return None, (
                f"unknown target {name!r} for project {config.project!r}"
                f" ({config.path}). Known targets: {', '.join(known) or 'none'}. Declare it"
                f" under `targets:` in the config or add it with `pytest-deploy target add"
                f" {config.project} {name}`; an unknown name never starts a new, empty history."
            )
        return TargetInfo.merge(name, declared, stored), None


def pytest_configure(config: pytest.Config) -> None:
    session = DeploySession(config)
    config.stash[_SESSION_KEY] = session
    from deploy_plugin import notify

    if not config.pluginmanager.is_registered(notify):
        config.pluginmanager.register(notify, "deploy-notify")
    config.addinivalue_line("markers", "deploy_after(group): run a smoke test after that group")
    if not session.targets:
        for dest, flag in _NEEDS_TARGET.items():
            if config.getoption(dest):
                raise pytest.UsageError(
                    f"{flag} needs --deploy-target=NAME: without a target, configs are only"
                    " validated and nothing is deployed"
                )
        return
    if config.getoption("lf", False) or config.getoption("failedfirst", False):
        raise pytest.UsageError(
            "--lf/--ff reorder or drop deployment steps; deployments always run in full order"
        )
    if config.getoption("stepwise", False) or config.getoption("stepwise_skip", False):
        raise pytest.UsageError("--sw would resume a deployment mid-way; run it without --sw")
    distribution.choose_dist_mode(config)
    if config.getoption("xmlpath", None) and config.getini("junit_logging") not in (
        "system-out",
        "all",
    ):
        config.issue_config_time_warning(
            pytest.PytestWarning(
                "pytest-deploy: --junitxml without ini junit_logging=system-out: the steps'"
                " commands and facts will be missing from the XML (set junit_logging ="
                " system-out)"
            ),
            stacklevel=2,
        )


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist controller: schedule each target's deployment on one worker, in order."""
    state = DeploySession.of(config)
    if state.targets and config.getoption("dist") == "loadgroup":
        return distribution.make_scheduler(config, log, state.targets)
    return None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A smoke test runs once per target (id = target name)."""
    if TARGET_PARAM in metafunc.fixturenames:
        targets = DeploySession.of(metafunc.config).targets
        if targets:
            metafunc.parametrize(TARGET_PARAM, targets, indirect=True, ids=targets)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if is_config_file(file_path):
        return DeployConfigFile.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Restore each kept deployment's preflight and health check, and own the order."""
    state = DeploySession.of(config)
    unknown = [g for g in state.groups + state.skip_groups if g not in state.seen_groups]
    if state.targets and unknown and state.seen_groups:
        raise pytest.UsageError(
            f"unknown group(s) {', '.join(map(repr, unknown))} in --group/--skip-group; the"
            f" collected configs have: {', '.join(sorted(state.seen_groups))}"
        )
    kept = set(items)
    smoke: dict[Deployment, list[pytest.Item]] = {}
    for item in items:
        if not isinstance(item, DeployItem) and uses_deploy_fixtures(item):
            deployment = state.deployment_for(item)
            if deployment is not None:
                _place_smoke_test(item, deployment)
                smoke.setdefault(deployment, []).append(item)
    owned = {item for items_ in smoke.values() for item in items_}
    ordered: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for deployment in state.deployments:
        if not any(item in kept for item in deployment.items) and deployment not in smoke:
            continue
        deployment.select(
            sorted(
                [
                    item
                    for item in deployment.items
                    if item in kept or item.kind in ("preflight", "health_check")
                ]
                + smoke.get(deployment, []),
                key=lambda item: item.sort_key,
            )
        )
        tracked = any(g.track_migrations for g in deployment.selected_groups())
        if not tracked:
            dropped += [i for i in deployment.selected if i.name == "migrations-drift"]
            deployment.select([i for i in deployment.selected if i not in dropped])
        ordered.extend(deployment.selected)
    if dropped:
        config.hook.pytest_deselected(items=[i for i in dropped if i in kept])
    result: list[pytest.Item] = []
    inserted = False
    for item in items:
        if isinstance(item, DeployItem) or item in owned:
            if not inserted:
                result.extend(ordered)
                inserted = True
        else:
            result.append(item)
    if not inserted:
        result.extend(ordered)
    items[:] = result
    report.add_suite_properties(config, state)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Ask at the terminal before deploying to a protected target (unless --yes)."""
    state = DeploySession.of(session.config)
    pending = [
        d
        for d in state.deployments
        if d.target.protected and d.selected and not d.dry_run and not state.yes
    ]
    if not pending or session.config.getoption("collectonly"):
        return
    capman = session.config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        capman.suspend_global_capture(in_=True)
    try:
        if not os.isatty(0):
            return  # preflight::protected fails with "pass --yes"
        for deployment in pending:
            name = deployment.target.name
            try:
                answer = input(
                    f"\n{deployment.project} → {name} is a protected target."
                    f" Type its name ({name}) to deploy: "
                )
            except EOFError:
                answer = ""
            deployment.confirmed = answer.strip() == name
    finally:
        if capman is not None:
            capman.resume_global_capture()


def _place_smoke_test(item: pytest.Item, deployment: Deployment) -> None:
    """Give a smoke test its place in the deployment: after a group, or before the health
    check; it then obeys and feeds the deployment's stop policy like a step."""
    mark = item.get_closest_marker("deploy_after")
    item.kind = "smoke"  # type: ignore[attr-defined]
    item.group_name = None  # type: ignore[attr-defined]
    last = len(deployment.plans) + 1
    if mark is None:
        item.sort_key = (last, -1)  # type: ignore[attr-defined]
        return
    group = mark.args[0] if mark.args else mark.kwargs.get("group")
    names = [plan.group.name for plan in deployment.plans]
    if group not in names:
        raise pytest.UsageError(
            f"{item.nodeid}: @pytest.mark.deploy_after({group!r}) names no group of"
            f" {deployment.nodeid}; its groups: {', '.join(names)}"
        )
    item.sort_key = (1 + names.index(group), 10**6)  # type: ignore[attr-defined]


def _smoke_deployment(item: pytest.Item) -> Deployment | None:
    if getattr(item, "kind", None) != "smoke":
        return None
    return DeploySession.of(item.config).deployment_for(item)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    deployment = _smoke_deployment(item)
    if deployment is not None:
        deployment.start()
        blocker = deployment.blocker(item)
        if blocker:
            pytest.skip(f"not run: {blocker} failed")
        item.stash[_SMOKE_START] = time.monotonic()


_SMOKE_START = pytest.StashKey[float]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    rep = yield
    deployment = _smoke_deployment(item)
    if deployment is None or (rep.when != "call" and not rep.failed and not rep.skipped):
        return rep
    if rep.when == "teardown" and not rep.failed:
        return rep
    outcome = "failed" if rep.failed else ("skipped" if rep.skipped else "passed")
    if rep.failed:
        deployment.mark_failed(item)
    message = None
    if rep.failed or rep.skipped:
        message = deployment.masker.mask(str(rep.longreprtext).strip().splitlines()[-1:][0])
    start = item.stash.get(_SMOKE_START, None)
    deployment.add_result(
        StepResult(
            node_id=item.nodeid, group=None, kind="smoke", file=None, checksum=None,
            command=None, outcome=outcome,
            duration_ms=monotonic_ms(start) if start is not None else 0, message=message,
        )
    )  # fmt: skip
    return rep


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Finish a deployment with its last item: lock released, run recorded, hooks told."""
    deployment = getattr(item, "deployment", None) or _smoke_deployment(item)
    if deployment is not None and deployment.selected and deployment.selected[-1] is item:
        deployment.finish()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = DeploySession.of(session.config)
    for deployment in state.deployments:
        if deployment.started_at is not None:
            deployment.finish()
    reports = [d.report() for d in state.deployments if d.started_at is not None]
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        # an xdist worker: the controller reports for everyone
        workeroutput["deploy_reports"] = reports
    else:
        reports += state.worker_reports
        if state.report_path:
            report.write_json(state.report_path, reports)
    store = state.open_store_or_none()
    if store is not None:
        store.close()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: collect the deployments a worker ran."""
    output = getattr(node, "workeroutput", None) or {}
    DeploySession.of(node.config).worker_reports.extend(output.get("deploy_reports", []))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = DeploySession.of(config)
    reports = [d.report() for d in state.deployments if d.results] + state.worker_reports
    report.terminal_summary(terminalreporter, reports)


__all__ = ["DeploySession", "PreflightItem", "StepItem"]
