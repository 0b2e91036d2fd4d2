"""What a deployment did: each step's :class:`StepResult` and the deployment's
:class:`DeploymentReport` (DESIGN §6, the shared report shape).

Both are frozen: hooks get them as they are (``pytest_deploy_after_step``,
``pytest_deploy_finished``), the JSON report file and the webhooks get
:meth:`DeploymentReport.to_json`, and an xdist worker's reports travel to its controller
in that form (:meth:`DeploymentReport.from_json` reads them back).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from deploy_plugin.engine.policy import step_ref
from deploy_plugin.engine.squawk import LintFinding
from deploy_plugin.facts import iso_utc
from deploy_plugin.secrets import Masker
from deploy_plugin.store.records import StepFacts


@dataclass(frozen=True)
class StepResult(StepFacts):
    """What one step of a deployment did, as the reports show it, secrets masked.

    :ivar node_id: the pytest node id (``<config>::<target>::<group>::<name>``).
    :ivar group: the group's name (None for preflight, smoke tests, the health check).
    :ivar kind: ``preflight``, ``pre_deploy``, ``build``, ``test``, ``deploy``,
        ``post_deploy``, ``health_check``, ``smoke``, ``rollback``, ``undo`` or
        ``check_rollback``.
    :ivar file: the root-relative file of a per-file step, else None.
    :ivar checksum: the file's SHA-256 for a tracked migration, else None.
    :ivar command: the command as run (secrets masked), or None.
    :ivar outcome: ``passed``, ``failed`` or ``skipped``.
    :ivar duration_ms: how long it took (its command's own time, when it ran one).
    :ivar message: why it failed or was skipped (or a passed step's remark), or None.
    :ivar started_at: when it began, ISO 8601 UTC (None for a step that never started).
    """

    started_at: str | None = None  # ISO 8601 UTC: when the step (its command) began

    def to_json(self) -> dict[str, Any]:
        """The step in the report's JSON shape (also its store row)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def result_of(
    step: object, masker: Masker, *, outcome: str, duration_ms: int, message: str | None
) -> StepResult:
    """The one builder of a step's result, for deployment steps and smoke tests alike:
    the step's facts (node id, group, kind, file, checksum, command masked, start)."""
    ref = step_ref(step)
    command = getattr(step, "command", None)
    started = getattr(step, "started_at", None)
    return StepResult(
        node_id=ref.nodeid,
        group=ref.group_name,
        kind=ref.kind,
        file=getattr(step, "file", None),
        checksum=getattr(step, "checksum", None),
        command=masker.mask(command) if command else None,
        outcome=outcome,
        duration_ms=duration_ms,
        message=message,
        started_at=iso_utc(started) if started else None,
    )


def deployment_status(
    *,
    interrupted: str | None,
    refused: str | None,
    results: Mapping[str, StepResult],
    failed: bool,
    selected: Iterable[str],
) -> str:
    """``interrupted`` (a signal or Ctrl-C), ``refused`` (a protected target not
    confirmed, or the lock held by another run, and nothing ran), ``failure`` (a step
    failed, a selected step never ran: the session ended early, or a test of the session
    failed before the deployment started, so none of its steps ran), else ``success``."""
    if interrupted:
        return "interrupted"
    if refused and all(
        r.kind == "preflight" or r.outcome == "skipped" for r in results.values()
    ):
        return "refused"
    if failed or any(node_id not in results for node_id in selected):
        return "failure"
    return "success"


#: The fields of a deployment's JSON report, in their order in the file.
_REPORT_FIELDS = (
    "project", "target", "status", "kind", "dry_run", "who", "started_at", "ended_at",
    "duration_ms", "steps", "notes", "lint", "deployment_id",
)  # fmt: skip


@dataclass(frozen=True)
class DeploymentReport:
    """One deployment (one config, one target) in the shared report shape, secrets masked.

    :ivar project: the project's name.
    :ivar target: the target's name.
    :ivar status: ``success``, ``failure``, ``interrupted`` (a signal, Ctrl-C, a crashed
        xdist worker) or ``refused`` (a protected target not confirmed, the lock held by
        another run: nothing ran).
    :ivar kind: ``deploy``, ``rollback`` or ``check_rollback``.
    :ivar dry_run: whether the run only planned.
    :ivar who: ``user@host`` of the run.
    :ivar started_at: ISO 8601 UTC.
    :ivar ended_at: ISO 8601 UTC.
    :ivar duration_ms: from start to end.
    :ivar steps: every selected step that reported, in run order.
    :ivar notes: one-line remarks of the run (selection, identity, a crashed worker).
    :ivar lint: what squawk found in the migrations the run would apply (``groups[].lint``),
        in run order.
    :ivar deployment_id: the store's id of the run (None: not recorded, e.g. a dry run
        without a store).
    :ivar html: the page ``--deploy-html`` writes at the session's end (an absolute
        path), or None without the option.
    :ivar links: the one part a hook may add to, for the hooks after it: a ``tryfirst``
        ``pytest_deploy_finished`` that sets ``report.links["html_url"]`` to the run's
        page as your CI serves it makes notifications link there. Each entry is a
        top-level field of :meth:`to_json` (the webhook's body).
    """

    project: str
    target: str
    status: str
    kind: str
    dry_run: bool
    who: str
    started_at: str
    ended_at: str
    duration_ms: int
    steps: tuple[StepResult, ...]
    notes: tuple[str, ...] = ()
    deployment_id: int | None = None
    lint: tuple[LintFinding, ...] = ()
    html: str | None = None
    links: dict[str, str] = field(default_factory=dict)

    def failed_step(self) -> StepResult | None:
        """The first step that failed (the one that stopped the deployment), if any."""
        return next((s for s in self.steps if s.outcome == "failed"), None)

    def to_json(self) -> dict[str, Any]:
        """The report as the JSON report file holds it (``{"deployments": [this, ...]}``)."""
        data: dict[str, Any] = {name: getattr(self, name) for name in _REPORT_FIELDS}
        data["steps"] = [step.to_json() for step in self.steps]
        data["notes"] = list(self.notes)
        data["lint"] = [finding.to_json() for finding in self.lint]
        if self.html is not None:
            data["html"] = self.html
        return {**data, **{k: v for k, v in self.links.items() if k not in data}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DeploymentReport:
        """The report :meth:`to_json` made (an xdist worker's, read by its controller)."""
        known = {*_REPORT_FIELDS, "html"}
        values = {name: data[name] for name in _REPORT_FIELDS if name in data}
        values["steps"] = tuple(StepResult(**step) for step in data.get("steps", ()))
        values["notes"] = tuple(data.get("notes", ()))
        values["lint"] = tuple(LintFinding.from_json(f) for f in data.get("lint", ()))
        links = {k: v for k, v in data.items() if k not in known and isinstance(v, str)}
        return cls(**values, html=data.get("html"), links=links)
