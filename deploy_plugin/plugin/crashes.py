"""An xdist worker that dies ends the deployments it was running (issue 20 #10).

A worker's deployment reports (``workeroutput``) reach xdist's controller only when the
worker ends cleanly. So that a crash loses nothing, each worker tags its reports
(:func:`tag`): the setup report of a deployment's first item carries the deployment's
facts and steps (:data:`RUN`), and each step's report its result (:data:`STEP`); the
reports travel to the controller as they are made.

In the controller, :class:`CrashWatch` keeps those tags. When a worker dies,
:class:`deploy_plugin.plugin.xdist.DeployScheduling` keeps the unfinished unit of each of
its deployments from going to another worker; xdist then reports the item that was
running failed (``pytest_handlecrashitem``: here it becomes a ``<failure>``, with a
paragraph), and the watch reports every other unfinished item skipped "not run: worker
crashed (...)", ends the deployment ``interrupted`` in the store (missing step rows
added, the dead worker's lock removed) and in the JSON report. A deployment the dead
worker had finished before keeps the outcome its steps had.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pytest

from deploy_plugin.engine.errors import soft_warn
from deploy_plugin.engine.results import DeploymentReport
from deploy_plugin.facts import iso_utc, utcnow, who

if TYPE_CHECKING:
    from deploy_plugin.plugin.deployment import Deployment
    from deploy_plugin.plugin.session import DeploySession
    from deploy_plugin.plugin.xdist import EndedUnit

#: Report attribute: a deployment's facts and steps (setup report of its first item).
RUN = "deploy_run"
#: Report attribute: a step's result (the report in whose phase its result was made).
STEP = "deploy_step"
#: The reason of a step a crash left unfinished (its end says which worker and item).
NOT_RUN = "not run: worker crashed"


# ------------------------------------------------------------------------- worker side


def tag(item: pytest.Item, rep: pytest.TestReport, deployment: Deployment) -> None:
    """On an xdist worker, after the reporter saw ``rep``: tag it for the controller."""
    first = deployment.selected[0] if deployment.selected else None
    if rep.when == "setup" and first is not None and getattr(first, "owner", first) is item:
        setattr(rep, RUN, _run_facts(item.config, deployment))
    if rep.when == "call" or rep.skipped or rep.failed:
        steps = item.deploy_steps() if hasattr(item, "deploy_steps") else [item]
        results = [r for s in steps if (r := deployment.results.get(s.nodeid)) is not None]
        if results:
            started = deployment.started_at
            setattr(
                rep,
                STEP,
                {
                    "key": deployment.nodeid,
                    "deployment_id": deployment.deployment_id,
                    "started_at": iso_utc(started) if started else None,
                    "results": [r.to_json() for r in results],  # each step the item ran
                },
            )


def _run_facts(config: pytest.Config, deployment: Deployment) -> dict[str, Any]:
    # deferred: +34 modules, 61 ms (engine.runtime, plan.steps, engine.migrations, …)
    from deploy_plugin.plugin.summary import testcase_name

    junit = bool(getattr(config.option, "xmlpath", None))
    return {
        "key": deployment.nodeid,
        "project": deployment.project,
        "target": deployment.target.name,
        "kind": deployment.kind,
        "dry_run": deployment.dry_run,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "steps": [
            {
                "node_id": item.nodeid,
                "group": getattr(item, "group_name", None),
                "kind": getattr(item, "kind", "smoke"),
                "file": getattr(item, "file", None),
                "location": [item.location[0], item.location[1]],
                "testcase": testcase_name(item, deployment) if junit else None,
            }
            for item in deployment.selected
        ],
        # the items that run them (an item may carry several steps: applied files)
        "items": [getattr(s, "owner", s).nodeid for s in deployment.selected],
    }


# --------------------------------------------------------------------- controller side


@dataclass
class _Run:
    """What the controller knows of one deployment run by a worker."""

    worker: str
    facts: dict[str, Any]
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    deployment_id: int | None = None
    started_at: str | None = None
    settled: bool = False

    def step(self, node_id: str) -> dict[str, Any] | None:
        return next((s for s in self.facts["steps"] if s["node_id"] == node_id), None)


class CrashWatch:
    """xdist controller: the tags of every worker's deployments, and what a crash ends."""

    def __init__(self, state: DeploySession) -> None:
        self.state = state
        self.runs: dict[str, _Run] = {}  # deployment key (config::target) -> run
        self.owner: dict[str, str] = {}  # node id of a started deployment's item -> key
        self.crashed: dict[str, str] = {}  # worker id -> why it went down
        self._after: list[tuple[pytest.TestReport, list[pytest.TestReport]]] = []

    # -- what the workers tell

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Any:
        facts = getattr(report, RUN, None)
        if isinstance(facts, dict):
            node = getattr(report, "node", None)
            worker = str(getattr(getattr(node, "gateway", None), "id", "?"))
            self.runs[facts["key"]] = _Run(worker, facts)
            for node_id in [s["node_id"] for s in facts["steps"]] + facts["items"]:
                self.owner[node_id] = facts["key"]
        step = getattr(report, STEP, None)
        if isinstance(step, dict) and step.get("key") in self.runs:
            run = self.runs[step["key"]]
            run.results.update((r["node_id"], r) for r in step["results"])
            run.deployment_id = step.get("deployment_id") or run.deployment_id
            run.started_at = step.get("started_at") or run.started_at
        result = yield
        for crash, queued in list(self._after):
            if crash is report:  # the crashed item is reported: now the ones it left
                self._after.remove((crash, queued))
                for skipped in queued:
                    self.state.config.hook.pytest_runtest_logreport(report=skipped)
        return result

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", None) or {}
        if error is not None and "deploy_reports" not in output:
            self.crashed[str(node.gateway.id)] = str(error)

    # -- a crash

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport, sched: Any) -> None:
        """Turn xdist's report of the crashed item into a step failure with a paragraph,
        queue "not run" reports of what the crash left, settle the runs it ended."""
        take = getattr(sched, "take_ended", None)
        ended: list[EndedUnit] = take() if take is not None else []
        if not ended:
            return
        worker = ended[0].worker
        if worker not in self.crashed:
            return  # Ctrl-C: the worker ended its deployments and reported them itself
        reason = f"{NOT_RUN} ({worker} died while running {crashitem})"
        key = self.owner.get(crashitem)
        run = self.runs.get(key) if key else None
        crash_message = None
        if any(crashitem in unit.pending for unit in ended):
            # a crash after the step's call, while pytest finished it, is its teardown's
            # error (the step's own outcome stands); else the step's failure, as JUnit's
            # schema has it (xdist says when="???": an <error>)
            called = run is not None and crashitem in run.results
            crash_message = self._crash_paragraph(worker, crashitem, run, called=called)
            report.longrepr = crash_message
            report.when = "teardown" if called else "call"
            step = run.step(crashitem) if run else None
            if step is not None:  # xdist names the config file alone
                path, line = step["location"]
                report.location = (path, line, crashitem.split("::", 1)[-1])
            self._name(report, run, crashitem)
        queued = []
        for unit in ended:
            for nodeid in unit.pending:
                if nodeid != crashitem:
                    queued.append(self._not_run(report, nodeid, reason))
        self._after.append((report, queued))
        for key in dict.fromkeys(self.owner.get(n) for u in ended for n in u.pending):
            if key in self.runs and not self.runs[key].settled:
                self._settle(self.runs[key], crashitem, crash_message, reason)

    def _crash_paragraph(
        self, worker: str, crashitem: str, run: _Run | None, *, called: bool
    ) -> str:
        which = f" of {run.facts['project']} → {run.facts['target']}" if run else ""
        if called:
            return (
                f"xdist worker {worker} crashed (its process died) after this step{which}"
                " ran, while pytest finished it (its teardown, where the deployment's end is"
                " recorded and pytest_deploy_finished hooks run); the step's own outcome"
                " stands. Check the deployment's record (`pytest-deploy deploy status`)."
            )
        return (
            f"xdist worker {worker} crashed (its process died) while running this step"
            f"{which}: the step may have done part of its work. The deployment ended"
            " interrupted; its later steps were not run, here or on another worker (xdist's"
            " replacement worker runs none of them). Check the target, then deploy again:"
            " the next run starts from its preflight."
        )

    def _not_run(self, crash: pytest.TestReport, nodeid: str, reason: str) -> pytest.TestReport:
        """A skipped report of an item the crash left, as pytest reports a skip."""
        run = self.runs.get(self.owner.get(nodeid, ""))
        step = run.step(nodeid) if run else None
        path, line = (step["location"][0], step["location"][1]) if step else (nodeid, None)
        path = path if step else nodeid.split("::", 1)[0]
        rep = pytest.TestReport(
            nodeid=nodeid,
            location=(path, line, nodeid.split("::", 1)[-1]),
            keywords={},
            outcome="skipped",
            longrepr=(path, (line or 0) + 1, f"Skipped: {reason}"),
            when="call",
        )
        rep.node = getattr(crash, "node", None)  # type: ignore[attr-defined]
        self._name(rep, run, nodeid)
        return rep

    @staticmethod
    def _name(rep: pytest.TestReport, run: _Run | None, nodeid: str) -> None:
        # deferred: +34 modules, 62 ms (engine.runtime, plugin.options, targets, …)
        from deploy_plugin.plugin.summary import TESTCASE_NAME

        step = run.step(nodeid) if run else None
        if step and step.get("testcase"):
            setattr(rep, TESTCASE_NAME, step["testcase"])

    # -- settling a run

    def settle_lost(self) -> None:
        """At the session's end: the runs of crashed workers not settled by a crash report
        (the worker died between items, or before any report of an item came)."""
        for run in self.runs.values():
            if run.worker in self.crashed and not run.settled:
                reason = f"{NOT_RUN} ({run.worker} died: {self.crashed[run.worker]})"
                self._settle(run, None, None, reason)

    def _settle(
        self, run: _Run, crashitem: str | None, crash_message: str | None, reason: str
    ) -> None:
        """The run's report, its store row and its lock, as the dead worker left them."""
        run.settled = True
        steps = []
        for step in run.facts["steps"]:
            node_id = step["node_id"]
            done = run.results.get(node_id)
            if done is not None:
                steps.append(done)
                continue
            failed = node_id == crashitem
            steps.append(
                {
                    **{k: step[k] for k in ("node_id", "group", "kind", "file")},
                    "checksum": None,
                    "command": None,
                    "outcome": "failed" if failed else "skipped",
                    "duration_ms": 0,
                    "message": crash_message if failed else reason,
                    "started_at": None,
                }
            )
        missing = len(run.results) < len(run.facts["steps"])
        failed_any = any(s["outcome"] == "failed" for s in steps)
        status = "interrupted" if missing else ("failure" if failed_any else "success")
        now = utcnow()
        started = run.started_at or iso_utc(now)
        self.state.worker_reports.append(
            DeploymentReport.from_json({
                "project": run.facts["project"],
                "target": run.facts["target"],
                "status": status,
                "kind": run.facts["kind"],
                "dry_run": run.facts["dry_run"],
                "who": who(),
                "started_at": started,
                "ended_at": iso_utc(now),
                "duration_ms": _ms_between(started, now),
                "steps": steps,
                "notes": [_note(run.worker, crashitem)] if status == "interrupted" else [],
                "deployment_id": run.deployment_id,
            })  # fmt: skip
        )
        if status == "interrupted":
            self._record(run, steps)

    def _record(self, run: _Run, steps: list[dict[str, Any]]) -> None:
        """Store: the steps' missing rows, the run ``interrupted``, the dead worker's lock
        removed (a store problem only warns: the next run marks a dead run interrupted)."""
        # deferred: +27 modules, 43 ms (store.history, store.records, store.projects, …)
        from deploy_plugin.store.base import StoreError

        project, target = run.facts["project"], run.facts["target"]
        try:
            store = self.state.store()
            if store is None:
                return
            if run.deployment_id is not None:
                recorded = {s.node_id for s in store.deployment_steps(run.deployment_id)}
                rows = [s for s in steps if s["node_id"] not in recorded]
                if rows and not run.facts["dry_run"]:
                    store.record_steps(run.deployment_id, rows)
                store.finish_deployment(run.deployment_id, "interrupted")
            lock = store.lock_info(project, target)
        except StoreError as err:
            soft_warn(f"pytest-deploy: the crashed run of {project} → {target}: {err}")
            return
        if lock is not None and (lock.host, lock.pid) == (run.facts["host"], run.facts["pid"]):
            try:
                store.break_lock(project, target)
            except StoreError:
                pass  # PostgreSQL: the dead worker's session frees its advisory lock itself


def _note(worker: str, crashitem: str | None) -> str:
    where = f" while running {crashitem}" if crashitem else ""
    return (
        f"xdist worker {worker} crashed{where}: the deployment ended there and ran on no"
        " other worker"
    )


def _ms_between(started: str, now: Any) -> int:
    try:
        begun = datetime.fromisoformat(started.replace("Z", "+00:00"))
    except ValueError:
        return 0
    return max(0, int((now - begun).total_seconds() * 1000))
