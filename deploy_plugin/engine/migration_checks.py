"""Preflight's checks of the migrations (see :mod:`deploy_plugin.engine.checks` for how a
check reports): ``migrations-drift`` (each database's ledger read, migrations left in
doubt by a run that died settled, applied files unchanged, the live schema against the
recorded one) and ``downs`` (every migration a rollback, a reversibility check or an
atomic deployment may undo has a down).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from deploy_plugin.engine import schema_drift
from deploy_plugin.engine.checks import Findings
from deploy_plugin.engine.errors import DeployFailure
from deploy_plugin.engine.ledgers import guarded
from deploy_plugin.engine.lint import LintRun, check_lint, start_lint
from deploy_plugin.engine.runtime import Deployment
from deploy_plugin.plan import check_migrations, is_repeatable

if TYPE_CHECKING:
    from deploy_plugin.migrate.downs import Down
    from deploy_plugin.store.records import IntentRecord as Intent


def check_migrations_drift(deployment: Deployment, found: Findings) -> str | None:
    """The database decides what is applied: each built-in group's ledger is read
    (read-only) first; then applied files must be as they were applied. The pending ones
    are linted (:mod:`deploy_plugin.engine.lint`): squawk starts before the ledgers are
    read, and runs meanwhile."""
    lint = start_lint(deployment)
    try:
        return _check_migrations_drift(deployment, found, lint)
    finally:
        if lint is not None:
            lint.stop()


def selected_tracked(deployment: Deployment) -> list[str]:
    """The tracked files of the deployment's selected groups, in run order."""
    selected = {g.name for g in deployment.selected_groups()}
    return [
        rel
        for plan in deployment.plans
        if plan.group.track_migrations and plan.group.name in selected
        for rel in plan.files
    ]


def _check_migrations_drift(
    deployment: Deployment, found: Findings, lint: LintRun | None
) -> str | None:
    tracked = selected_tracked(deployment)
    notes, warnings = deployment.read_ledgers(deployment.selected_groups())
    for note in notes:
        found.note(note)
    for warning in warnings:
        found.warn(warning)
    _check_intents(deployment, found)
    checksums = {rel: deployment.checksum(rel) for rel in tracked}
    applied = deployment.applied_for_plan()
    result = check_migrations(tracked, checksums, applied)
    for warning in result.warnings:
        found.warn(warning)
    found.note(f"{len(result.pending)} pending of {len(tracked)} tracked file(s)")
    cut = deployment.cut  # --deploy-to: the files after it are not applied by this run
    pending = [rel for rel in result.pending if cut is None or cut.reason(rel) is None]
    linted = check_lint(deployment, found, pending, lint)  # said after drift
    _check_schema_drift(deployment, found)
    if result.drift:
        project, target = deployment.project, deployment.target.name
        commands = " ".join(
            f"`pytest-deploy migration accept-checksum {shlex.quote(project)}"
            f" {shlex.quote(rel)} --target {target} --reason TEXT`"
            for rel in tracked
            if rel in applied
            and applied[rel].status == "success"
            and applied[rel].checksum != checksums[rel]
        )
        raise DeployFailure(
            "applied migration(s) changed since they were applied: "
            + "; ".join(result.drift)
            + ". Restore the applied content (add a new migration for the change), or,"
            " when the edit is intended and the database already matches it, accept it"
            f" (an audit row keeps who, when and why): {commands}."
            + (f" {linted}" if linted else "")
        )
    if linted:
        raise DeployFailure(linted)
    return None


def _check_schema_drift(deployment: Deployment, found: Findings) -> None:
    """Warn (fail with --deploy-strict-schema) when a tracked database's schema changed
    since the fingerprint recorded after the last successful run."""
    # deferred: +24 modules, 28 ms (store.records, store.projects, platform, …)
    from deploy_plugin.store.base import StoreError

    try:
        store = deployment.session.store()
        changes, verified = (
            ([], set()) if store is None else schema_drift.drift(deployment.schemas(), store)
        )
    except StoreError as err:
        raise DeployFailure(str(err)) from None
    deployment.schema_verified |= verified
    if changes and deployment.session.options.strict_schema:
        raise DeployFailure(
            deployment.masker.mask("; ".join(changes))
            + ". --deploy-strict-schema: nothing was run. Find out who changed it; put the"
            " change in a migration, or undo it, then run again."
        )
    for change in changes:
        found.warn(deployment.masker.mask(change))
        found.note(f"warning: {deployment.masker.mask(change)}")


def _check_intents(deployment: Deployment, found: Findings) -> None:
    """Fail on a shell-applied migration left "applying" by a run that died."""
    # deferred: +24 modules, 31 ms (store.records, store.projects, platform, …)
    from deploy_plugin.processes import alive_here
    from deploy_plugin.store.base import StoreError
    from deploy_plugin.store.records import format_time

    try:
        store = deployment.session.store()
        intents = store.intents(deployment.project, deployment.target.name) if store else []
    except StoreError as err:
        raise DeployFailure(str(err)) from None
    problems = []
    project, target = deployment.project, deployment.target.name
    for intent in intents:
        if deployment.dry_run and alive_here(intent.host, intent.pid):
            found.note(f"{intent.file}: being applied by pid {intent.pid} now")
            continue
        if _resolve_intent(deployment, intent, found):
            continue
        problems.append(
            f"{intent.file} was being applied by a shell step of deployment"
            f" {intent.deployment_id} ({intent.who}, host {intent.host}, pid {intent.pid},"
            f" started {format_time(intent.started_at)}), which ended before recording whether"
            " it went through. Check the target database, then either record it with"
            f" `pytest-deploy migration mark-applied {project} {intent.file} --target"
            f" {target}` if it was applied, or forget the attempt with `pytest-deploy"
            f" migration forget-intent {project} {intent.file} --target {target}` and"
            " run again to apply it"
        )
    if problems:
        raise DeployFailure(
            "a migration is in doubt: " + "; ".join(problems) + ". Nothing was run."
        )


def _resolve_intent(deployment: Deployment, intent: Intent, found: Findings) -> bool:
    """Settle a psql-applied file left in doubt from its database's ledger, whose row psql
    committed with the file or not at all; False when the database cannot tell (another
    client, no readable ledger)."""
    group = next(
        (p.group for p in deployment.plans if intent.file in p.files and p.group.track_migrations),
        None,
    )
    if group is None or not deployment.database.known(group):
        return False
    if not guarded(group, deployment.config.root, intent.file):
        return False  # no ledger row went with it: the database cannot tell
    row = deployment.database.row(group, intent.file)
    where = deployment.database.reads[group.name].where
    died = (
        f"{intent.file}: deployment {intent.deployment_id} ({intent.who}, pid {intent.pid})"
        " ended while psql applied it"
    )
    if is_repeatable(intent.file):  # its row is the one in doubt's only if the checksums agree
        row = row if row is not None and row.checksum == intent.checksum else None
    elif row is not None and row.checksum != deployment.checksum(intent.file):
        return False  # the file changed since: drift, settled by hand
    if deployment.dry_run:
        would = (
            "has it: a real run records it as applied" if row else "lacks it: it would be applied"
        )
        found.note(f"{died}; the ledger of {where} {would}")
        return True
    if row is not None:
        deployment.recover_history(group, intent.file)  # also removes the intent
        found.warn(
            f"{died}; the ledger of {where} has it (psql committed it with the file):"
            " recorded as applied, not run again"
        )
    else:
        store = deployment.session.store()
        assert store is not None, "an intent was read from it"
        store.forget_intent(deployment.project, deployment.target.name, intent.file)
        found.warn(
            f"{died}; the ledger of {where} lacks it (psql's transaction never committed):"
            " it is applied by this run"
        )
    return True


class DownStep(Protocol):
    """A step that may run a migration's down (a rollback, an undo, a reversibility check)."""

    @property
    def kind(self) -> str: ...

    @property
    def file(self) -> str | None: ...

    @property
    def group_name(self) -> str | None: ...

    @property
    def down(self) -> Down | None: ...


def check_downs(deployment: Deployment, found: Findings, steps: Sequence[DownStep]) -> str | None:
    """A rollback (or reversibility check, or atomic deployment): every migration it will
    undo (check: every pending one; atomic: every one it would apply) has a down, else
    nothing runs. ``steps``: the selected steps that would run a down, in run order."""
    problems = [
        f"{rel} (no tracked group matches it any more, so its down is unknown)"
        for rel in deployment.rollback_orphans
    ]
    applied = deployment.applied()

    def pending(step: DownStep) -> bool:  # and applied by this run (not after --deploy-to)
        if deployment.cut is not None and deployment.cut.reason(step.file) is not None:
            return False
        return getattr(applied.get(step.file or ""), "status", None) != "success"

    steps = [s for s in steps if s.kind == "rollback" or pending(s)]
    for step in steps:
        if step.down is None:
            problems.append(f"{step.file} (group {step.group_name})")
        elif step.down.section:
            group = deployment.config.group(step.group_name or "")
            if group is not None and group.deploy_command is not None:
                found.note(
                    f"{step.file}: its -- migrate:down section runs with the built-in"
                    " SQL executor (a deploy_command takes whole files)"
                )
    if problems:
        what = {
            "rollback": "to roll back",
            "check_rollback": "to check",
        }.get(deployment.kind, "this atomic deployment would apply")
        why = (
            " An atomic deployment undoes what it applied after a failure, so each needs"
            " one (or deploy without --deploy-atomic / atomic: true)."
            if deployment.kind == "deploy"
            else ""
        )
        raise DeployFailure(
            f"{len(problems)} migration(s) {what} have no down: "
            + "; ".join(problems)
            + "."
            + why
            + " Add a down next to each (<dir>/down.sql for <dir>/up.sql, NAME.down.sql"
            " for NAME.up.sql, or a -- migrate:down section), or set the group's down_file"
            " template. Nothing was run."
        )
    for step in steps:
        assert step.down is not None
        found.note(f"{step.file}: down {step.down.file} ({step.down.convention})")
    return None
