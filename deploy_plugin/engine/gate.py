"""The promotion gate: ``targets.<name>.requires``.

A deployment to a target that requires others runs only when, on each required target,
the last successful deployment of the same project (a real run of kind ``deploy``: not a
dry run, rollback or reversibility check) used the same config (its sha256) and every
migration this run would apply (its pending files, less those ``--deploy-to`` leaves
pending) whose group runs on that target too is applied there, with the same checksum,
according to the store's history (a repeatable migration, ``R__name.sql``, applied there
with another checksum is not applied there yet: deploying there applies it). In a dry run,
a required target whose dry run passed earlier in the same run is judged by what its
deployment would leave (:class:`Planned`), as the real run will see it.
:func:`gate_verdicts` reads that from a store; :func:`check_gate` is preflight's ``gate``
check; the history page shows each target's verdicts
(:mod:`deploy_plugin.report.html.model`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from deploy_plugin.engine.checks import Findings
from deploy_plugin.engine.errors import DeployFailure
from deploy_plugin.engine.migration_checks import selected_tracked
from deploy_plugin.engine.runtime import Deployment
from deploy_plugin.plan import check_migrations, is_repeatable
from deploy_plugin.store.records import format_time

if TYPE_CHECKING:
    from deploy_plugin.store.base import Store
    from deploy_plugin.store.records import DeploymentRecord

SHORT = 12  # characters of a sha shown (as the history page shows config shas)


@dataclass(frozen=True)
class Planned:
    """A required target's deployment that passed earlier in this dry run: the real run
    deploys it first, so its gate will see what it leaves (its config, these files)."""

    config_sha: str
    applies: Mapping[str, str]  # the files it would apply, by checksum


@dataclass(frozen=True)
class GateVerdict:
    """One required target's verdict on what a run would deploy."""

    project: str
    required: str
    config_sha: str  # the run's config
    success: DeploymentRecord | None  # the required target's last successful deployment
    missing: tuple[str, ...] = ()  # pending files not applied there ("file (failed there)")
    changed: tuple[str, ...] = ()  # pending files applied there with another checksum
    planned: Planned | None = None  # its deployment earlier in this dry run

    @property
    def theirs(self) -> str | None:
        """The config sha the required target has (or would have) succeeded with."""
        if self.planned is not None:
            return self.planned.config_sha
        return None if self.success is None else self.success.config_sha256

    @property
    def passed(self) -> bool:
        return self.theirs == self.config_sha and not self.missing and not self.changed

    def at(self) -> str:
        """When and by whom the last success there started: ``<when> by <who>``."""
        assert self.success is not None
        return f"{format_time(self.success.started_at)} by {self.success.who}"

    def when(self) -> str:
        """The last success there: ``deployment N, <when> by <who>``."""
        if self.planned is not None:
            return "its dry run earlier in this run"
        assert self.success is not None
        return f"deployment {self.success.id}, {self.at()}"

    def differences(self) -> str:
        """What differs there, as clauses joined by "; " (empty when it passed)."""
        theirs = self.theirs
        if theirs is None:
            return f"{self.required!r} has no successful deployment of project {self.project!r}"
        found = []
        if theirs != self.config_sha:
            found.append(
                f"the config differs: this run's is {self.config_sha[:SHORT]}, the last"
                f" success on {self.required!r} used {theirs[:SHORT]} ({self.when()})"
            )
        if self.missing:
            found.append(
                f"{len(self.missing)} migration(s) not applied there: {', '.join(self.missing)}"
            )
        if self.changed:
            found.append(
                f"{len(self.changed)} migration(s) applied there with another checksum:"
                f" {', '.join(self.changed)}"
            )
        return "; ".join(found)

    def line(self) -> str:
        """One line for notes and the history page."""
        if self.passed and self.planned is not None:
            return (
                f"requires {self.required}: ✓ checked against its deployment earlier in this"
                f" run (dry run: same config {self.config_sha[:SHORT]}; it would apply"
                f" {len(self.planned.applies)} migration(s) there first)"
            )
        if self.passed:
            assert self.success is not None
            return (
                f"requires {self.required}: ✓ same config {self.config_sha[:SHORT]} succeeded"
                f" there at {self.at()} (deployment {self.success.id})"
            )
        return f"requires {self.required}: ✗ {self.differences()}"


def gate_verdicts(
    store: Store | None,
    project: str,
    requires: Sequence[str],
    config_sha: str,
    files: Mapping[str, str],
    runs_on: Callable[[str, str], bool] = lambda rel, target: True,
    earlier: Mapping[str, Planned] | None = None,
) -> list[GateVerdict]:
    """The verdict of each required target on deploying ``files`` (the pending files, by
    their checksums) with config ``config_sha``; StoreError on a read problem. A file
    counts for a required target only when ``runs_on(file, target)`` (its group runs
    there). ``earlier``: the required targets whose dry run passed earlier in this one,
    and what they would apply. No store (a dry run before the first real one) has no
    success anywhere."""
    verdicts = []
    for required in requires:
        planned = (earlier or {}).get(required)
        if store is None and planned is None:
            verdicts.append(GateVerdict(project, required, config_sha, None))
            continue
        success = store.last_success(project, required) if store is not None else None
        applied = store.applied_migrations(project, required) if store is not None else {}
        missing, changed = [], []
        for rel, checksum in files.items():
            if not runs_on(rel, required):
                continue  # its group never runs there
            if planned is not None and planned.applies.get(rel) == checksum:
                continue  # the required target's deployment earlier in this run applies it
            record = applied.get(rel)
            if record is None or record.status != "success":
                missing.append(rel if record is None else f"{rel} ({record.status} there)")
            elif record.checksum != checksum:
                there = f"there {record.checksum[:SHORT]}, now {checksum[:SHORT]}"
                if is_repeatable(rel):  # not applied there as it is: deploying there does it
                    missing.append(f"{rel} (repeatable: {there})")
                else:
                    changed.append(f"{rel} ({there})")
        verdicts.append(
            GateVerdict(
                project, required, config_sha, success, tuple(missing), tuple(changed), planned
            )
        )
    return verdicts


def pending_files(deployment: Deployment) -> dict[str, str]:
    """The tracked files a deployment would apply, by checksum: its pending ones (a changed
    ``R__`` file too) less those ``--deploy-to`` leaves pending."""
    tracked = selected_tracked(deployment)
    checksums = {rel: deployment.checksum(rel) for rel in tracked}
    pending = check_migrations(tracked, checksums, deployment.applied_for_plan()).pending
    cut = deployment.cut
    return {rel: checksums[rel] for rel in pending if cut is None or cut.reason(rel) is None}


def planned_earlier(
    deployment: Deployment, requires: Sequence[str], run: Sequence[Deployment]
) -> dict[str, Planned]:
    """In a dry run: the required targets among ``run`` (the run's deployments) whose dry
    run of the same project passed before this one; what each would apply."""
    if not deployment.dry_run:
        return {}
    found = {}
    for other in run:
        if (
            other is not deployment
            and other.target.name in requires
            and other.project == deployment.project
            and other.kind == "deploy"
            and other.started_at is not None
            and other.status == "success"  # every step of it ran and passed
        ):
            found[other.target.name] = Planned(other.config.sha256, pending_files(other))
    return found


def requirements(deployment: Deployment) -> tuple[str, ...]:
    """The targets a deployment must have succeeded on first (none for a rollback or a
    reversibility check: they deploy nothing new)."""
    decl = deployment.config.targets.get(deployment.target.name)
    if decl is None or deployment.kind != "deploy":
        return ()
    return decl.requires


def check_gate(
    deployment: Deployment, found: Findings, run: Sequence[Deployment] = ()
) -> str | None:
    """Preflight's ``gate``: every required target has had the same config and the same
    pending migrations succeed (a dry run checks it too, so that its plan is honest:
    against the dry run of a required target earlier in ``run``, the run's deployments,
    when there is one that passed)."""
    # deferred: +24 modules, 28 ms (store.records, store.projects, store.runs, …)
    from deploy_plugin.store.base import StoreError

    groups = {rel: plan.group for plan in deployment.plans for rel in plan.files}
    requires = requirements(deployment)
    try:
        verdicts = gate_verdicts(
            deployment.session.store(),
            deployment.project,
            requires,
            deployment.config.sha256,
            pending_files(deployment),
            lambda rel, target: groups[rel].applies_to(target),
            planned_earlier(deployment, requires, run),
        )
    except StoreError as err:
        raise DeployFailure(str(err)) from None
    for verdict in verdicts:
        found.note(verdict.line())
    failed = [v for v in verdicts if not v.passed]
    if not failed:
        found.remark = "; ".join(v.line() for v in verdicts)
        return None
    deployment.refused = "the promotion gate is closed"  # nothing runs: never the target's state
    raise DeployFailure(gate_paragraph(deployment.target.name, requires, verdicts))


def gate_paragraph(target: str, requires: Sequence[str], verdicts: Sequence[GateVerdict]) -> str:
    """Preflight's failure: which required target differs, how, where it did succeed, and
    how to fix it."""
    failed = [v for v in verdicts if not v.passed]
    names = " and ".join(repr(r) for r in requires)
    if len(requires) == 1:
        why = f"there: {failed[0].differences()}"
    else:
        why = "; ".join(f"on {v.required!r}: {v.differences()}" for v in failed)
    text = (
        f"promotion gate: target {target!r} requires {names}, and what this run would deploy"
        f" has not succeeded {why}."
    )
    for verdict in verdicts:
        if verdict.passed:
            text += f" It did succeed on {verdict.required!r} ({verdict.when()})."
    fix = " and to ".join(
        f"{v.required!r} first (pytest --deploy-target={v.required})" for v in failed
    )
    if any(v.changed for v in failed):  # deploying it there as it is would be drift
        text += (
            " Restore each migration edited after it was applied there, and put the change"
            " in a new migration."
        )
    return (
        f"{text} Deploy it to {fix}, then run again; the gate compares with the last"
        " successful deployment there. Nothing was run."
    )
