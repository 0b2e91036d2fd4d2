"""Reports of deployments in a pytest run: the terminal summary, JUnit suite properties and
testcase names (the JSON report file: :mod:`deploy_plugin.report.json_report`).

A JUnit testcase's ``name`` is the step's place in its deployment's run, zero-padded,
then the node id's path under the target with `` · `` between group and step:
``04 build · pre_deploy[0]``, ``18 health_check``. Jenkins and GitLab show it beside the
classname (``deploy.yaml.production.build``, unchanged); junit2html's matrix sorts a
class's cases by name and xunit-viewer lists the names alone, sorted, so the run order
and the group show in all four. Node ids (terminal, ``-k``, ``--deselect``, the JSON
report) are unchanged. Smoke tests of the deployment take places too (``08 smoke ·
test_home[production]``). A run of several deployments starts each name with ``<project>
→ <target> · ``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from deploy_plugin.engine.results import DeploymentReport, StepResult
from deploy_plugin.engine.runtime import Deployment
from deploy_plugin.facts import who
from deploy_plugin.plugin.session import DeploySession

#: The attribute of a deploy item's reports that carries its testcase name (a plain
#: string: it travels with the report from an xdist worker to the process writing XML).
TESTCASE_NAME = "deploy_testcase_name"


def add_suite_properties(config: pytest.Config, session: DeploySession) -> None:
    """Run-wide facts as JUnit ``<testsuite><properties>`` (valid in every family)."""
    # deferred: +1 modules, 0 ms (plugin.pytest_compat)
    from deploy_plugin.plugin.pytest_compat import junit_xml

    xml = junit_xml(config)
    if xml is None or not session.options.targets:
        return
    xml.add_global_property("deploy.targets", ",".join(session.options.targets))
    xml.add_global_property("deploy.dry_run", str(session.options.dry_run).lower())
    xml.add_global_property("deploy.who", who())


def testcase_name(item: pytest.Item, deployment: Deployment) -> str | None:
    """``<place> <group> · <step>`` (see the module's docstring), or None when the item
    is not among its deployment's selected ones. A smoke test is ``<place> smoke ·
    <test>``. When the run has several deployments (targets, configs), each name starts
    with ``<project> → <target> · ``: the same step of two targets reads apart."""
    place = deployment.positions.get(item.nodeid)
    if place is None:
        return None
    width = max(2, len(str(len(deployment.steps))))
    prefix = deployment.nodeid + "::"
    if item.nodeid.startswith(prefix):
        path = item.nodeid[len(prefix) :]
    else:  # a smoke test: a plain pytest item of the deployment
        path = f"smoke::{item.name}"
    name = f"{place:0{width}d} " + " · ".join(path.split("::", 1))
    if len(DeploySession.of(item.config).deployments) > 1:
        name = f"{deployment.project} → {deployment.target.name} · {name}"
    return name


def name_testcase(config: pytest.Config, report: pytest.TestReport) -> None:
    """Before the JUnit writer sees *report*: its testcase's name, when it carries one."""
    name = getattr(report, TESTCASE_NAME, None)
    if isinstance(name, str):
        # deferred: +1 modules, 1 ms (plugin.pytest_compat)
        from deploy_plugin.plugin.pytest_compat import name_junit_testcase

        name_junit_testcase(config, report, name)


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.2f}s"


def terminal_summary(terminal: Any, reports: list[DeploymentReport]) -> None:
    """Per deployment: status, steps by outcome and group, migrations applied, the plan."""
    if not reports:
        return
    terminal.section("deployment summary")
    for data in reports:
        counts = Counter(step.outcome for step in data.steps)
        what = [] if data.kind == "deploy" else [data.kind.replace("_", " ")]  # rollback ...
        what += ["dry run"] if data.dry_run else []
        mode = f" ({', '.join(what)})" if what else ""
        terminal.write_line(
            f"{data.project} → {data.target}: {data.status.upper()}{mode} — "
            + ", ".join(f"{counts[o]} {o}" for o in ("passed", "failed", "skipped") if counts[o])
            + f" in {_seconds(data.duration_ms)}"
        )
        by_group: dict[str, list[StepResult]] = {}
        for step in data.steps:
            by_group.setdefault(step.group or step.kind, []).append(step)
        for name, steps in by_group.items():
            group_counts = Counter(s.outcome for s in steps)
            total = sum(s.duration_ms for s in steps)
            terminal.write_line(
                f"  {name:<24} "
                + ", ".join(
                    f"{group_counts[o]} {o}"
                    for o in ("passed", "failed", "skipped")
                    if group_counts[o]
                )
                + f"  ({_seconds(total)})"
            )
        applied = [
            s for s in data.steps if s.kind == "deploy" and s.checksum and s.outcome == "passed"
        ]
        undo = [s for s in data.steps if s.kind == "undo" and s.outcome != "skipped"]
        undone = [s for s in undo if s.outcome == "passed"]
        if applied and not data.dry_run:
            back = {s.file for s in undone if s.file}
            gone = sum(1 for s in applied if s.file in back)
            terminal.write_line(
                f"  migrations applied: {len(applied)}" + (f", then undone: {gone}" if gone else "")
            )
        if undo:
            names = [s.node_id.split("::", 2)[-1] for s in undone]
            shown = ", ".join(names[:10]) + (
                f" and {len(names) - 10} more" if len(names) > 10 else ""
            )
            failed = [s.node_id.split("::", 2)[-1] for s in undo if s.outcome == "failed"]
            terminal.write_line(
                f"  undone after the failure (atomic): {len(undone)} step(s)"
                + (f", in this order: {shown}" if names else "")
                + (
                    f"; undo FAILED at {failed[0]}: the deployment is only partly undone"
                    if failed
                    else ""
                )
            )
        if undo:
            stayed = _stayed(data.steps)
            if stayed:
                terminal.write_line(
                    f"  stayed deployed (no rollback_command, nothing to undo): {', '.join(stayed)}"
                )
        for note in data.notes:
            terminal.write_line(f"  note: {note}")
        _lint_lines(terminal, data)
        if data.dry_run:
            terminal.write_line("  plan:")
            for step in data.steps:
                if step.kind == "preflight":
                    continue
                command = step.command or ""
                if step.outcome == "skipped":
                    command = f"(skipped: {step.message})"
                elif step.message:  # a passed step's remark: a repeatable's "changed"
                    command += f" ({step.message})"
                terminal.write_line(f"    {step.node_id}: {command}")


#: Lint findings listed in the terminal summary; the JSON report has them all.
SHOWN_FINDINGS = 20


def _lint_lines(terminal: Any, data: DeploymentReport) -> None:
    """What squawk found in the migrations the run applies (or would apply)."""
    if not data.lint:
        return
    terminal.write_line(f"  lint (squawk): {len(data.lint)} finding(s) in the pending migrations")
    for finding in data.lint[:SHOWN_FINDINGS]:
        terminal.write_line(f"    {finding.text()}")
    if len(data.lint) > SHOWN_FINDINGS:
        terminal.write_line(
            f"    and {len(data.lint) - SHOWN_FINDINGS} more (--deploy-report FILE.json lists all)"
        )


def _stayed(steps: tuple[StepResult, ...]) -> list[str]:
    """Groups of an undone atomic deployment that did something and have no undo step:
    what they did stays deployed (in run order)."""
    undone = {s.group for s in steps if s.kind == "undo"}
    out: list[str] = []
    for step in steps:
        group = step.group
        if (
            group
            and group not in undone
            and group not in out
            and step.kind not in ("preflight", "health_check", "undo")
            and step.outcome == "passed"
        ):
            out.append(group)
    return out
