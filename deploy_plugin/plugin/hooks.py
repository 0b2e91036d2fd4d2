"""pytest hooks of pytest-deploy: configuration, collection, ordering, the run's end.

Options and shared state live in :mod:`~deploy_plugin.plugin.session`, collectors in
:mod:`~deploy_plugin.plugin.nodes`, items in :mod:`~deploy_plugin.plugin.items` and
:mod:`~deploy_plugin.plugin.preflight`, smoke tests in :mod:`~deploy_plugin.plugin.smoke`,
reporting in :mod:`deploy_plugin.report.summary`, xdist scheduling in
:mod:`~deploy_plugin.plugin.xdist`, option checks in :mod:`~deploy_plugin.plugin.configure`,
saved plans in :mod:`~deploy_plugin.plugin.plans`, the ``deploy.sh`` fallback in
:mod:`~deploy_plugin.plugin.script`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from deploy_plugin.plugin.messages import soft_warn
from deploy_plugin.plugin.options import NEEDS_TARGET, TARGET_PARAM, add_options
from deploy_plugin.plugin.session import DeploySession

if TYPE_CHECKING:
    from deploy_plugin.engine.runtime import Deployment

# What deploys is imported by the hooks that need it, so that the plugin's own import (every
# pytest run, deployment or not) stays light (issue 14: under 60 ms).

#: File names that may be configs (DESIGN §1): tested before anything is imported for them.
_CONFIG_NAMES = ("deploy.yaml", "deploy.yml", "deploy.json")
_CONFIG_ENDINGS = (".deploy.yaml", ".deploy.yml", ".deploy.json")

pytest_plugins = ["deploy_plugin.plugin.fixtures"]

#: The exit status of a run refused before anything ran (bad input: a saved plan that does
#: not match, a rollback request that cannot be carried out).
PLAN_REFUSED = 2


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    import deploy_plugin.plugin.hookspecs as hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    session = DeploySession.install(config)
    config.pluginmanager.register(DeployPlugin(session), "deploy-session")
    config.addinivalue_line("markers", "deploy_after(group): run a smoke test after that group")
    if session.options.targets:  # notifications are about deployments: none without a target
        import deploy_plugin.notify.notifier as notify

        if not config.pluginmanager.is_registered(notify):
            config.pluginmanager.register(notify, "deploy-notify")
    else:
        for dest, flag in NEEDS_TARGET.items():
            if config.getoption(dest):
                raise pytest.UsageError(
                    f"{flag} needs --deploy-target=NAME: without a target, configs are only"
                    " validated and nothing is deployed"
                )
        return
    problem = session.options.rollback_problem()
    if problem:
        # a bad request (issue 11: exit 2, one paragraph, nothing run): refused once
        # collection is done, like a rollback FILE that is not applied
        session.usage_problems.append(problem)
    if config.getoption("lf", False) or config.getoption("failedfirst", False):
        raise pytest.UsageError(
            "--lf/--ff reorder or drop deployment steps; deployments always run in full order"
        )
    if config.getoption("stepwise", False) or config.getoption("stepwise_skip", False):
        raise pytest.UsageError("--sw would resume a deployment mid-way; run it without --sw")
    import deploy_plugin.plugin.configure as configure
    import deploy_plugin.plugin.guards as guards
    import deploy_plugin.plugin.xdist as distribution

    guards.check_options(config)  # --reruns, pytest-timeout's thread method

    configure.read_env_files(config, session)
    configure.check_plan_options(config, session)
    distribution.choose_dist_mode(config)
    if session.options.report:
        configure.check_writable(session.options.report)
    if config.getoption("xmlpath", None) and config.getini("junit_logging") not in (
        "system-out",
        "all",
    ):
        configure.option_warning(
            config,
            "pytest-deploy: --junitxml without ini junit_logging=system-out: the steps'"
            " commands and facts will be missing from the XML (set junit_logging ="
            " system-out)",
        )


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    name = file_path.name
    if name.endswith(_CONFIG_ENDINGS) or name in _CONFIG_NAMES:
        from deploy_plugin.config import is_config_file

        if is_config_file(file_path):
            from deploy_plugin.plugin.nodes import DeployConfigFile

            return DeployConfigFile.from_parent(parent, path=file_path)
    if file_path.name == "deploy.sh":
        from deploy_plugin.plugin.script import DeployScriptFile, is_fallback_script

        if is_fallback_script(file_path, parent.config.rootpath):
            return DeployScriptFile.from_parent(parent, path=file_path)
    return None


class DeployPlugin:
    """The plugin object of one pytest session, registered in ``pytest_configure``: its hooks
    share the session's options and deployments (``self.state``)."""

    def __init__(self, state: DeploySession) -> None:
        self.state = state
        self.junit = False  # whether --junitxml writes here (this process)
        # an xdist worker tags its reports for the controller (deploy_plugin.plugin.crashes)
        self.worker = hasattr(state.config, "workerinput")
        self.crash_watch: Any = None  # the xdist controller's CrashWatch

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if not self.state.options.targets:
            return  # the suite's deploy.* properties describe a deployment
        import deploy_plugin.report.summary as report
        from deploy_plugin.plugin.pytest_compat import junit_xml

        self.junit = junit_xml(session.config) is not None

        report.add_suite_properties(session.config, self.state)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Any:
        """Run the items with SIGTERM/SIGHUP turned into KeyboardInterrupt (like Ctrl-C)."""
        if not self.state.options.targets:
            return (yield)
        from deploy_plugin.engine.signals import interrupt_on_termination

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
        if state.options.targets and config.getoption("dist") == "loadgroup":
            import deploy_plugin.plugin.xdist as distribution
            from deploy_plugin.plugin.crashes import CrashWatch

            # a crashed worker ends its deployments: never rescheduled, reported here
            self.crash_watch = CrashWatch(state)
            config.pluginmanager.register(self.crash_watch, "deploy-crash-watch")
            return distribution.make_scheduler(config, log, state.options.targets)
        return None

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """A smoke test runs once per target (id = target name)."""
        if TARGET_PARAM in metafunc.fixturenames:
            targets = self.state.options.targets
            if targets:
                metafunc.parametrize(TARGET_PARAM, targets, indirect=True, ids=targets)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        """Restore each kept deployment's preflight and health check, and own the order."""
        state = self.state
        if state.usage_problems:
            state.refusal = " ".join(state.usage_problems)
            items.clear()  # nothing runs; the paragraph and exit 2 at the session's end
            return
        selection = state.options.groups + state.options.skip_groups
        unknown = [g for g in selection if g not in state.seen_groups]
        if state.options.targets and unknown and state.seen_groups:
            raise pytest.UsageError(
                f"unknown group(s) {', '.join(map(repr, unknown))} in --group/--skip-group; the"
                f" collected configs have: {', '.join(sorted(state.seen_groups))}"
            )
        if not state.deployments:
            return  # nothing to deploy (no target, or nothing of a config for it)
        import deploy_plugin.plugin.smoke as smoke
        from deploy_plugin.plugin.fixtures import uses_deploy_fixtures
        from deploy_plugin.plugin.items import DeployItem

        kept = set(items)
        if state.saved_plan is not None:
            self._select_planned(config, items, kept)
        smoke_tests: dict[Deployment, list[pytest.Item]] = {}
        for item in items:
            if not isinstance(item, DeployItem) and uses_deploy_fixtures(item):
                deployment = state.deployment_for(item)
                if deployment is not None:
                    smoke.place(item, deployment)
                    smoke_tests.setdefault(deployment, []).append(item)
        owned = {item for items_ in smoke_tests.values() for item in items_}
        import deploy_plugin.plugin.guards as guards

        marked = guards.mark_problems(
            config, [i for i in items if isinstance(i, DeployItem) or i in owned]
        )
        if marked:  # refused like a bad rollback request: exit 2, nothing run (also
            # from an xdist worker, whose refusal the controller reports: testnodedown)
            state.refusal = " ".join([*state.usage_problems, guards.marks_refusal(marked)])
            items.clear()
            return
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
                        if (item in kept or item.kind in ("preflight", "health_check"))
                        and item not in state.dropped
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
        if not ordered and state.deployments:
            # every step of every deployment deselected: pytest alone would say "no tests ran"
            for deployment in state.deployments:
                groups = ", ".join(p.group.name for p in deployment.plans)
                state.unselected.append(
                    f"no group selected: -k/-m/--group deselected every step of"
                    f" {deployment.nodeid.split('::')[0]} for target {deployment.target.name!r}"
                    f" (groups: {groups or 'none for this target'}); nothing was deployed"
                )
        if dropped:
            # a check restored after -k/-m deselected it, then dropped (no tracked group
            # left), is deselected again, so pytest's "N selected" counts what runs
            state.dropped.update(dropped)
            config.hook.pytest_deselected(
                items=[i for i in dropped if i in kept or i not in state.deselected]
            )
        # the session's own tests first: one that fails stops the deployments (gate)
        plain = [i for i in items if not isinstance(i, DeployItem) and i not in owned]
        items[:] = plain + ordered

    def _select_planned(
        self, config: pytest.Config, items: list[pytest.Item], kept: set[pytest.Item]
    ) -> None:
        """Applying a saved plan: the steps it names run, no other (preflight always)."""
        plan = self.state.saved_plan
        assert plan is not None
        planned = {s.node_id for d in plan.deployments for s in d.steps}
        extra = [
            item
            for deployment in self.state.deployments
            for item in deployment.items
            if item.kind != "preflight" and item.nodeid not in planned
        ]
        self.state.dropped.update(extra)
        kept.difference_update(extra)
        deselected = [item for item in extra if item in items]
        if deselected:
            config.hook.pytest_deselected(items=deselected)

    @pytest.hookimpl(tryfirst=True)
    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        """A deployment that keeps any item gets its preflight and health check back (see
        modifyitems): they are not deselected, so they are taken out of what pytest counts."""
        state = self.state
        if not items or not state.deployments:
            return
        from deploy_plugin.plugin.items import DeployItem

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
            if item.kind == "health_check":
                item.deployment.notes.append(
                    "health check kept though -k/-m deselected it: a deployment that runs any"
                    " step ends with its health check; pass --no-health-check to skip it"
                )

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Check a saved plan being applied; ask at the terminal before deploying to a
        protected target (unless --yes)."""
        state = self.state
        if state.saved_plan is not None and not session.config.getoption("collectonly"):
            import deploy_plugin.plugin.plans as plan_glue

            state.plan_refusal = plan_glue.check(state)
            if state.plan_refusal:
                session.items.clear()  # nothing runs; exit 2 at the session's end
                return
        if (
            state.options.plan_out
            and state.deployments
            and not session.config.getoption("collectonly")
        ):
            import deploy_plugin.plugin.plans as plan_glue

            state.plan_refusal = plan_glue.no_store(state)  # no store: no key to sign with
            if state.plan_refusal:
                session.items.clear()
                return
        pending = [
            d
            for d in state.deployments
            if d.target.protected
            and d.selected
            and not d.dry_run
            and not state.options.yes
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
        import deploy_plugin.plugin.smoke as smoke

        smoke.setup(item)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        rep = yield
        if not self.state.deployments:
            return rep
        import deploy_plugin.plugin.reporter as reporter
        import deploy_plugin.plugin.smoke as smoke
        from deploy_plugin.plugin.items import DeployItem

        reporter.observe(item, rep)
        deployment = item.deployment if isinstance(item, DeployItem) else smoke.deployment_of(item)
        if rep.failed and deployment is None:
            self.state.failed_tests.append(item.nodeid)
        if self.worker and deployment is not None:
            import deploy_plugin.plugin.crashes as crashes

            crashes.tag(item, rep, deployment)
        return rep

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Before the JUnit writer records a report (here or from a worker): its name."""
        if not self.junit:
            return  # no deployment item anywhere, or no JUnit writer to name testcases for
        from deploy_plugin.report.summary import name_testcase

        name_testcase(self.state.config, report)

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        """Finish a deployment with its last item: lock released, run recorded, hooks told."""
        if not self.state.deployments:
            return
        import deploy_plugin.plugin.smoke as smoke

        deployment = getattr(item, "deployment", None) or smoke.deployment_of(item)
        if deployment is not None and deployment.selected and deployment.selected[-1] is item:
            deployment.finish()

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        state = self.state
        for deployment in state.deployments:
            if deployment.started_at is not None:
                deployment.finish()
        if self.crash_watch is not None:
            self.crash_watch.settle_lost()  # deployments of crashed workers not yet settled
        reports = [d.report() for d in state.deployments if d.started_at is not None]
        if state.options.plan_out and state.options.targets and not state.plan_refusal:
            import deploy_plugin.plugin.plans as plan_glue

            state.plan_message = plan_glue.write(state)
        workeroutput = getattr(session.config, "workeroutput", None)
        if workeroutput is not None:
            # an xdist worker: the controller reports for everyone
            workeroutput["deploy_reports"] = reports
            workeroutput["deploy_refusal"] = state.refusal
        else:
            reports += state.worker_reports
            if state.options.report:
                import deploy_plugin.report.summary as report

                report.write_json(state.options.report, reports)
        if session.exitstatus == 0 and any(
            d.status != "success" for d in state.deployments if d.started_at is not None
        ):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # e.g. a step that never ran
        if state.plan_refusal or state.refusal:
            session.exitstatus = PLAN_REFUSED
        elif state.plan_failed and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # the plan asked for is missing
        if workeroutput is None and state.options.html:
            _write_html(state)
        store = state.open_store_or_none()
        if store is not None:
            store.close()

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist controller: collect the deployments a worker ran."""
        output = getattr(node, "workeroutput", None) or {}
        self.state.worker_reports.extend(output.get("deploy_reports", []))
        if output.get("deploy_refusal") and not self.state.refusal:
            self.state.refusal = output["deploy_refusal"]  # found by a worker's collection

    def pytest_terminal_summary(
        self, terminalreporter: Any, exitstatus: int, config: pytest.Config
    ) -> None:
        state = self.state
        reports = [d.report() for d in state.deployments if d.results] + state.worker_reports
        if reports:
            import deploy_plugin.report.summary as report

            report.terminal_summary(terminalreporter, reports)
        unselected = state.unselected + ([] if state.deployments else state.unselected_groups)
        for line in unselected:
            terminalreporter.write_line(f"pytest-deploy: {line}", yellow=True)
        if state.plan_message:
            terminalreporter.write_line(state.plan_message)
        if state.plan_refusal:
            terminalreporter.write_line(f"pytest-deploy: {state.plan_refusal}", red=True)
        if state.refusal and not self.worker:  # a worker's: its controller says it
            # one paragraph on stderr, like pytest's own usage errors
            sys.stderr.write(f"ERROR: {' '.join(state.refusal.split())}\n")
        for note in state.summary_notes:  # e.g. "nothing to roll back" (no deployment ran)
            terminalreporter.write_line(note)


def _write_html(state: DeploySession) -> None:
    """``--deploy-html``: this run's targets with their history; a problem only warns."""

    from deploy_plugin.report.html import try_write_history_page
    from deploy_plugin.store.base import StoreError

    ran: dict[str, dict[str, Any]] = {}  # project → targets, config, this run's ids
    started = [d for d in state.deployments if d.started_at is not None]
    for d in started:
        entry = ran.setdefault(d.project, {"targets": [], "config": d.config, "ids": []})
        entry["targets"].append(d.target.name)
        if d.deployment_id is not None:
            entry["ids"].append(d.deployment_id)
    for r in state.worker_reports:  # under xdist: what each worker deployed
        entry = ran.setdefault(r["project"], {"targets": [], "config": None, "ids": []})
        entry["targets"].append(r["target"])
        if r.get("deployment_id") is not None:
            entry["ids"].append(r["deployment_id"])
    path = Path(state.options.html or "")
    if not ran:
        soft_warn(f"pytest-deploy: history page {path} not written: no deployment ran")
        return
    try:
        store = state.store()
    except StoreError as err:
        soft_warn(f"pytest-deploy: history page {path} not written: {err}")
        return
    for project, entry in ran.items():
        # several projects in one run: one page each, named after the project
        out = path if len(ran) == 1 else path.with_name(f"{path.stem}-{project}{path.suffix}")
        try_write_history_page(
            store, project, out, config=entry["config"],
            targets=list(dict.fromkeys(entry["targets"])), highlight=entry["ids"],
            rootdir=state.rootdir,
        )  # fmt: skip


__all__ = ["DeployPlugin", "DeploySession"]
