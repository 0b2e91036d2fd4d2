"""pytest hooks of pytest-deploy: configuration, collection, ordering, the run's end.

Options and shared state live in :mod:`deploy_plugin.session`, collectors in
:mod:`deploy_plugin.nodes`, items in :mod:`deploy_plugin.items` and
:mod:`deploy_plugin.preflight`, smoke tests in :mod:`deploy_plugin.smoke`, reporting in
:mod:`deploy_plugin.report`, xdist scheduling in :mod:`deploy_plugin.distribution`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from deploy_plugin import distribution, report, reporter, smoke
from deploy_plugin.config import is_config_file
from deploy_plugin.fixtures import uses_deploy_fixtures
from deploy_plugin.items import DeployItem
from deploy_plugin.nodes import DeployConfigFile
from deploy_plugin.options import NEEDS_TARGET, TARGET_PARAM, add_options
from deploy_plugin.runtime import Deployment
from deploy_plugin.session import DeploySession

pytest_plugins = ["deploy_plugin.fixtures"]


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from deploy_plugin import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    session = DeploySession.install(config)
    config.pluginmanager.register(DeployPlugin(session), "deploy-session")
    from deploy_plugin import notify

    if not config.pluginmanager.is_registered(notify):
        config.pluginmanager.register(notify, "deploy-notify")
    config.addinivalue_line("markers", "deploy_after(group): run a smoke test after that group")
    if not session.targets:
        for dest, flag in NEEDS_TARGET.items():
            if config.getoption(dest):
                raise pytest.UsageError(
                    f"{flag} needs --deploy-target=NAME: without a target, configs are only"
                    " validated and nothing is deployed"
                )
        return
    problem = session.options.rollback_problem()
    if problem:
        raise pytest.UsageError(problem)
    if config.getoption("lf", False) or config.getoption("failedfirst", False):
        raise pytest.UsageError(
            "--lf/--ff reorder or drop deployment steps; deployments always run in full order"
        )
    if config.getoption("stepwise", False) or config.getoption("stepwise_skip", False):
        raise pytest.UsageError("--sw would resume a deployment mid-way; run it without --sw")
    distribution.choose_dist_mode(config)
    if session.report_path:
        _check_writable(session.report_path)
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


def _check_writable(path: str) -> None:
    """Refuse a --deploy-report path that could never be written, before deploying."""
    if Path(path).is_dir():
        raise pytest.UsageError(
            f"--deploy-report {path}: that is a folder; give a file name, e.g. {path}/report.json"
        )
    folder = Path(path).absolute().parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise pytest.UsageError(
            f"--deploy-report {path}: {folder} is not a writable folder; choose another path"
        )


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if is_config_file(file_path):
        return DeployConfigFile.from_parent(parent, path=file_path)
    return None


class DeployPlugin:
    """The plugin object of one pytest session, registered in ``pytest_configure``: its hooks
    share the session's options and deployments (``self.state``)."""

    def __init__(self, state: DeploySession) -> None:
        self.state = state

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        report.add_suite_properties(session.config, self.state)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Any:
        """Run the items with SIGTERM/SIGHUP turned into KeyboardInterrupt (like Ctrl-C)."""
        if not self.state.targets:
            return (yield)
        from deploy_plugin.signals import interrupt_on_termination

        with interrupt_on_termination():
            return (yield)

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        """The session was interrupted: every started deployment ends ``interrupted``."""
        why = str(excinfo.value) or "interrupted (Ctrl-C)"
        for deployment in self.state.deployments:
            if deployment.started_at is not None and not deployment.finished:
                deployment.interrupted = deployment.interrupted or why

    @pytest.hookimpl(optionalhook=True, tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """xdist controller: schedule each target's deployment on one worker, in order."""
        state = self.state
        if state.targets and config.getoption("dist") == "loadgroup":
            return distribution.make_scheduler(config, log, state.targets)
        return None

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """A smoke test runs once per target (id = target name)."""
        if TARGET_PARAM in metafunc.fixturenames:
            targets = self.state.targets
            if targets:
                metafunc.parametrize(TARGET_PARAM, targets, indirect=True, ids=targets)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        """Restore each kept deployment's preflight and health check, and own the order."""
        state = self.state
        if state.usage_problems:
            raise pytest.UsageError(" ".join(state.usage_problems))
        unknown = [g for g in state.groups + state.skip_groups if g not in state.seen_groups]
        if state.targets and unknown and state.seen_groups:
            raise pytest.UsageError(
                f"unknown group(s) {', '.join(map(repr, unknown))} in --group/--skip-group; the"
                f" collected configs have: {', '.join(sorted(state.seen_groups))}"
            )
        kept = set(items)
        smoke_tests: dict[Deployment, list[pytest.Item]] = {}
        for item in items:
            if not isinstance(item, DeployItem) and uses_deploy_fixtures(item):
                deployment = state.deployment_for(item)
                if deployment is not None:
                    smoke.place(item, deployment)
                    smoke_tests.setdefault(deployment, []).append(item)
        owned = {item for items_ in smoke_tests.values() for item in items_}
        ordered: list[pytest.Item] = []
        dropped: list[pytest.Item] = []
        for deployment in state.deployments:
            if not any(item in kept for item in deployment.items) and deployment not in smoke_tests:
                continue
            deployment.select(
                sorted(
                    [
                        item
                        for item in deployment.items
                        if item in kept or item.kind in ("preflight", "health_check")
                    ]
                    + smoke_tests.get(deployment, []),
                    key=smoke.sort_key,
                )
            )
            tracked = any(g.track_migrations for g in deployment.selected_groups())
            if not tracked:
                dropped += [i for i in deployment.selected if i.name == "migrations-drift"]
                deployment.select([i for i in deployment.selected if i not in dropped])
            ordered.extend(deployment.selected)
        if dropped:
            state.dropped.update(dropped)
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

    @pytest.hookimpl(tryfirst=True)
    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        """A deployment that keeps any item gets its preflight and health check back (see
        modifyitems): they are not deselected, so they are taken out of what pytest counts."""
        if not items:
            return
        state = self.state
        state.deselected.update(items)
        kept_deployments = {
            d for d in state.deployments if any(i not in state.deselected for i in d.items)
        }
        restored = [
            item
            for item in items
            if isinstance(item, DeployItem)
            and item.kind in ("preflight", "health_check")
            and item.deployment in kept_deployments
            and item not in state.dropped
        ]
        for item in restored:
            items.remove(item)
            state.deselected.discard(item)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Ask at the terminal before deploying to a protected target (unless --yes)."""
        state = self.state
        pending = [
            d
            for d in state.deployments
            if d.target.protected and d.selected and not d.dry_run and not state.yes
            and d.kind != "check_rollback"  # the check needs --yes: never typed in passing
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

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        smoke.setup(item)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        rep = yield
        reporter.observe(item, rep)
        return rep

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        """Finish a deployment with its last item: lock released, run recorded, hooks told."""
        deployment = getattr(item, "deployment", None) or smoke.deployment_of(item)
        if deployment is not None and deployment.selected and deployment.selected[-1] is item:
            deployment.finish()

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        state = self.state
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
        if session.exitstatus == 0 and any(
            d.status != "success" for d in state.deployments if d.started_at is not None
        ):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # e.g. a step that never ran
        store = state.open_store_or_none()
        if store is not None:
            store.close()

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist controller: collect the deployments a worker ran."""
        output = getattr(node, "workeroutput", None) or {}
        self.state.worker_reports.extend(output.get("deploy_reports", []))

    def pytest_terminal_summary(
        self, terminalreporter: Any, exitstatus: int, config: pytest.Config
    ) -> None:
        state = self.state
        reports = [d.report() for d in state.deployments if d.results] + state.worker_reports
        report.terminal_summary(terminalreporter, reports)
        for note in state.summary_notes:  # e.g. "nothing to roll back" (no deployment ran)
            terminalreporter.write_line(note)


__all__ = ["DeployPlugin", "DeploySession"]
