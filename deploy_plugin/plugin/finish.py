"""The session's end: the hooks of pytest-deploy that finish every deployment, write the
reports (JSON, saved plan, HTML history page), set the exit status and print the terminal
summary. Under xdist a worker hands its deployments' reports to the controller, which
reports for everyone.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from deploy_plugin.engine.errors import soft_warn
from deploy_plugin.plugin.session import DeploySession

#: The exit status of a run refused before anything ran (bad input: a saved plan that does
#: not match, a rollback request that cannot be carried out): pytest's usage error, as for
#: a bad option, never its INTERRUPTED (2) (README "Exit codes").
PLAN_REFUSED = pytest.ExitCode.USAGE_ERROR


class FinishHooks:
    """Session-end hooks (registered in ``pytest_configure`` as ``deploy-finish``)."""

    def __init__(self, state: DeploySession) -> None:
        self.state = state
        self.worker = hasattr(state.config, "workerinput")  # its controller reports

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.state.options.targets:
            return self._end(session)
        # deferred: +2 modules, 1 ms (engine.signals, engine): only with a target
        from deploy_plugin.engine.signals import interrupts_noted

        # a late Ctrl-C or signal must not cut short the deployments' records and reports
        with interrupts_noted() as noted:
            self._end(session)
        if noted:
            names = ", ".join(sorted({signal.Signals(n).name for n in noted}))
            soft_warn(
                f"pytest-deploy: {names} arrived while the run was ending; it recorded its"
                " deployments and wrote its reports first"
            )
        return None

    def _end(self, session: pytest.Session) -> None:
        state = self.state
        for deployment in state.deployments:
            if deployment.started_at is not None:
                deployment.finish()
        if state.options.targets:
            # deferred: +10 modules, 19 ms (plugin.xdist, config.parsing, config.validation, …)
            from deploy_plugin.plugin.xdist import CRASH_WATCH

            crash_watch = session.config.pluginmanager.get_plugin(CRASH_WATCH)
            if crash_watch is not None:  # the xdist controller's
                crash_watch.settle_lost()  # deployments of crashed workers not yet settled
        reports = [d.report() for d in state.deployments if d.started_at is not None]
        if state.options.plan_out and state.options.targets and not state.plan_refusal:
            # deferred: +12 modules, 31 ms (plan.steps, plugin.plans, saved_plans, …)
            import deploy_plugin.plugin.plans as plan_glue

            state.plan_message = plan_glue.write(state)
        workeroutput = getattr(session.config, "workeroutput", None)
        if workeroutput is not None:
            # an xdist worker: the controller reports for everyone (in the JSON shape)
            workeroutput["deploy_reports"] = [r.to_json() for r in reports]
            workeroutput["deploy_refusal"] = state.refusal
        else:
            reports += state.worker_reports
            if state.options.report:
                # deferred: +10 modules, 12 ms (engine.results, engine.squawk, secrets, …)
                from deploy_plugin.report.json_report import write_json

                write_json(state.options.report, reports)
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
        # deferred: +8 modules, 19 ms (engine.results, engine.squawk, secrets, …)
        from deploy_plugin.engine.results import DeploymentReport

        output = getattr(node, "workeroutput", None) or {}
        reports = output.get("deploy_reports", [])
        self.state.worker_reports.extend(DeploymentReport.from_json(r) for r in reports)
        if output.get("deploy_refusal") and not self.state.refusal:
            self.state.refusal = output["deploy_refusal"]  # found by a worker's collection

    def pytest_terminal_summary(
        self, terminalreporter: Any, exitstatus: int, config: pytest.Config
    ) -> None:
        state = self.state
        reports = [d.report() for d in state.deployments if d.results] + state.worker_reports
        if reports:
            # deferred: +36 modules, 74 ms (engine.ledgers, secrets, secrets, …)
            import deploy_plugin.plugin.summary as report

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

    # deferred: +116 modules, 162 ms (report.html.model, store.records, engine.checks, …)
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
        entry = ran.setdefault(r.project, {"targets": [], "config": None, "ids": []})
        entry["targets"].append(r.target)
        if r.deployment_id is not None:
            entry["ids"].append(r.deployment_id)
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
