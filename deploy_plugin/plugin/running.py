"""While items run: the run hooks of pytest-deploy.

Every item runs through pytest's own protocol; these hooks only wrap it: signals become
KeyboardInterrupt, a smoke test starts its deployment, each report is handed to the one
reporter (:mod:`deploy_plugin.plugin.reporter`) and named for JUnit, a deployment finishes
in its last item's teardown, and under xdist each target's deployment is scheduled on
one worker (:mod:`deploy_plugin.plugin.xdist`).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import pytest

from deploy_plugin.plugin.session import DeploySession

if TYPE_CHECKING:
    from deploy_plugin.closed_stdout import GuardedStream


class RunHooks:
    """Run hooks (registered in ``pytest_configure`` as ``deploy-run``)."""

    def __init__(self, state: DeploySession) -> None:
        self.state = state
        self.junit = False  # whether --junitxml writes here (this process)
        # an xdist worker tags its reports for the controller (deploy_plugin.plugin.crashes)
        self.worker = hasattr(state.config, "workerinput")
        self.stdout_guard: GuardedStream | None = None  # the terminal reporter's file

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self.stdout_guard is not None and sys.stdout is self.stdout_guard:
            sys.stdout = self.stdout_guard.stream  # the reporter has it; others get theirs
        if not self.state.options.targets:
            return  # the suite's deploy.* properties describe a deployment
        # deferred: +39 modules, 56 ms (engine.runtime, engine.results, migrate.ledger, …)
        import deploy_plugin.plugin.summary as report
        from deploy_plugin.plugin.pytest_compat import junit_xml

        self.junit = junit_xml(session.config) is not None
        report.add_suite_properties(session.config, self.state)

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """The reporter's last lines wait in stdout's buffer: flush them through the guard,
        so that the interpreter's final flush never meets a closed pipe."""
        if self.stdout_guard is not None:
            self.stdout_guard.flush()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Any:
        """Run the items with SIGTERM/SIGHUP turned into KeyboardInterrupt (like Ctrl-C)."""
        if not self.state.options.targets:
            return (yield)
        # deferred: +2 modules, 1 ms (engine.signals, engine)
        from deploy_plugin.engine.signals import interrupt_on_termination

        with interrupt_on_termination():
            return (yield)

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        """The session was interrupted (Ctrl-C, a signal, ``pytest.exit``): the step it
        stopped is recorded (pytest reports none), every started deployment ends
        ``interrupted``."""
        deployments = self.state.deployments
        if not deployments:
            return
        # deferred: +61 modules, 110 ms (engine.runtime, engine.results, plan.steps, …)
        import deploy_plugin.plugin.reporter as reporter

        reporter.report_interrupted(deployments)
        why = str(excinfo.value) or "interrupted (Ctrl-C)"
        for deployment in deployments:
            if deployment.started_at is not None and not deployment.finished:
                deployment.interrupted = deployment.interrupted or why

    @pytest.hookimpl(optionalhook=True, tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """xdist controller: schedule each target's deployment on one worker, in order."""
        targets = self.state.options.targets
        if targets and config.getoption("dist") == "loadgroup":
            # deferred: +21 modules, 34 ms (plugin.crashes, plugin.xdist, engine.results, …)
            import deploy_plugin.plugin.xdist as distribution
            from deploy_plugin.plugin.crashes import CrashWatch

            # a crashed worker ends its deployments: never rescheduled, reported by it
            config.pluginmanager.register(CrashWatch(self.state), distribution.CRASH_WATCH)
            return distribution.make_scheduler(config, log, targets)
        return None

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if not self.state.deployments:
            return
        # deferred: +6 modules, 4 ms (engine.policy, plugin.smoke, facts, …)
        import deploy_plugin.plugin.smoke as smoke

        smoke.setup(item)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        rep = yield
        if not self.state.deployments:
            return rep
        # deferred: +61 modules, 72 ms (engine.runtime, migrate.ledger, engine.results, …)
        import deploy_plugin.plugin.reporter as reporter
        import deploy_plugin.plugin.smoke as smoke
        from deploy_plugin.plugin.items import DeployItem

        reporter.observe(item, rep)
        deployment = item.deployment if isinstance(item, DeployItem) else smoke.deployment_of(item)
        if rep.failed and deployment is None:
            self.state.failed_tests.append(item.nodeid)
        if self.worker and deployment is not None:
            # deferred: +11 modules, 16 ms (plugin.crashes, engine.results, engine.squawk, …)
            import deploy_plugin.plugin.crashes as crashes

            crashes.tag(item, rep, deployment)
        return rep

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Before the JUnit writer records a report (here or from a worker): its name."""
        if not self.junit:
            return  # no deployment item anywhere, or no JUnit writer to name testcases for
        # deferred: +38 modules, 55 ms (engine.results, engine.runtime, targets, …)
        from deploy_plugin.plugin.summary import name_testcase

        name_testcase(self.state.config, report)

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        """Finish a deployment with its last item: lock released, run recorded, hooks told."""
        if not self.state.deployments:
            return
        # deferred: +6 modules, 4 ms (engine.policy, plugin.smoke, facts, …)
        import deploy_plugin.plugin.smoke as smoke

        deployment = getattr(item, "deployment", None) or smoke.deployment_of(item)
        if deployment is None or not deployment.selected:
            return
        last = deployment.selected[-1]
        if getattr(last, "owner", last) is item:  # its last step (maybe one item carries)
            deployment.finish()
