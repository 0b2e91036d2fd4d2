"""Reports of deployments: terminal summary, JSON report file and JUnit suite properties."""

from __future__ import annotations

import json
import os
import warnings
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from deploy_plugin.facts import who

if TYPE_CHECKING:
    from deploy_plugin.session import DeploySession


def add_suite_properties(config: pytest.Config, session: DeploySession) -> None:
    """Run-wide facts as JUnit ``<testsuite><properties>`` (valid in every family)."""
    from deploy_plugin.pytest_compat import junit_xml

    xml = junit_xml(config)
    if xml is None or not session.targets:
        return
    xml.add_global_property("deploy.targets", ",".join(session.targets))
    xml.add_global_property("deploy.dry_run", str(session.dry_run).lower())
    xml.add_global_property("deploy.who", who())


def write_json(path: str, reports: list[dict[str, Any]]) -> None:
    """``{"deployments": [...]}`` in the shared report shape, written atomically."""
    data = {"deployments": reports}
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, target)
    except OSError as err:
        warnings.warn(f"pytest-deploy: --deploy-report {path} not written: {err}", stacklevel=1)


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.2f}s"


def terminal_summary(terminal: Any, reports: list[dict[str, Any]]) -> None:
    """Per deployment: status, steps by outcome and group, migrations applied, the plan."""
    if not reports:
        return
    terminal.section("deployment summary")
    for data in reports:
        counts = Counter(step["outcome"] for step in data["steps"])
        mode = " (dry run)" if data["dry_run"] else ""
        terminal.write_line(
            f"{data['project']} → {data['target']}: {data['status'].upper()}{mode} — "
            + ", ".join(f"{counts[o]} {o}" for o in ("passed", "failed", "skipped") if counts[o])
            + f" in {_seconds(data['duration_ms'])}"
        )
        by_group: dict[str, list[dict[str, Any]]] = {}
        for step in data["steps"]:
            by_group.setdefault(step["group"] or step["kind"], []).append(step)
        for name, steps in by_group.items():
            group_counts = Counter(s["outcome"] for s in steps)
            total = sum(s["duration_ms"] for s in steps)
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
            s
            for s in data["steps"]
            if s["kind"] == "deploy" and s["checksum"] and s["outcome"] == "passed"
        ]
        if applied and not data["dry_run"]:
            terminal.write_line(f"  migrations applied: {len(applied)}")
        for note in data.get("notes", ()):
            terminal.write_line(f"  note: {note}")
        if data["dry_run"]:
            terminal.write_line("  plan:")
            for step in data["steps"]:
                if step["kind"] == "preflight":
                    continue
                command = step["command"] or ""
                if step["outcome"] == "skipped":
                    command = f"(skipped: {step['message']})"
                terminal.write_line(f"    {step['node_id']}: {command}")
