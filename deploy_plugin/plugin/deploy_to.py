"""``--deploy-to=FILE`` in a pytest session: the cut of each deployment, made when it is
collected (:mod:`deploy_plugin.plan.cut` says which files it leaves pending).

A FILE that names no tracked file of the run, several, or one already applied to the
target (a repeatable ``R__*.sql`` changed since it was applied is pending, not applied)
refuses the run before anything ran (exit 4, one paragraph, no deployment recorded), as
does one that a saved plan being applied holds no step of (:func:`_beyond_plan`).
Otherwise every step stays collected: a tracked file after the cut is reported skipped
("after --deploy-to FILE, left pending") by its own step, and the summary notes the cut.
A saved plan made with ``--deploy-to`` holds the steps up to the cut only, so applying it
applies exactly those (:func:`planned`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from deploy_plugin.engine.errors import DeployFailure
from deploy_plugin.facts import iso_utc
from deploy_plugin.plan import is_repeatable, match_group
from deploy_plugin.plan.cut import deploy_to_cut

if TYPE_CHECKING:
    from deploy_plugin.plugin.deployment import Deployment
    from deploy_plugin.plugin.options import DeployOptions
    from deploy_plugin.plugin.session import DeploySession


def options_problem(options: DeployOptions) -> str | None:
    """Why ``--deploy-to`` cannot run with the other options given (one paragraph), if so."""
    if options.deploy_to is None:
        return None
    other = (
        "--deploy-rollback" if options.rollback is not None
        else "--deploy-rollback-to" if options.rollback_to is not None
        else "--deploy-check-rollback" if options.check_rollback
        else None
    )  # fmt: skip
    if other is None:
        return None
    return (
        f"--deploy-to={options.deploy_to} and {other} cannot run together: --deploy-to"
        f" applies pending migrations up to a file, {other} undoes or checks migrations."
        " Run them one after the other. Nothing was run."
    )


def cut_deployment(session: DeploySession, deployment: Deployment) -> bool:
    """Make ``deployment``'s cut; False (and the run's usage problem) when ``--deploy-to``
    cannot be carried out for it."""
    # deferred: +49 modules, 52 ms (store.records, store.projects, store.lock, …)
    from deploy_plugin.store.base import StoreError

    given = session.options.deploy_to
    assert given is not None
    config, target = deployment.config, deployment.target
    selected = {p.group.name for p in deployment.plans}
    tracked = [(rel, p.group.name) for p in deployment.plans if p.group.track_migrations
               for rel in p.files]  # fmt: skip
    left_out = [
        (rel, g.name)
        for g in config.groups
        if g.track_migrations and g.applies_to(target.name) and g.name not in selected
        for rel in match_group(config, g).files
    ]
    try:
        store = session.store()
        history = store.applied_migrations(config.project, target.name) if store else {}
    except StoreError:
        history = {}  # the store's problem is reported by the deployment's first step
    applied = {
        rel: f"applied {iso_utc(r.applied_at)} by {r.applied_by or 'unknown'}"
        for rel, r in history.items()
        if r.status == "success" and not _changed(deployment, rel, r.checksum)
    }
    cut = deploy_to_cut(
        given, tracked, left_out=left_out, applied=applied, project=config.project,
        target=target.name, root=config.root, cwd=Path.cwd(),
    )  # fmt: skip
    if not isinstance(cut, str):
        cut = _beyond_plan(session, deployment, cut.file, dict(tracked)[cut.file]) or cut
    if isinstance(cut, str):
        if cut not in session.usage_problems:  # several targets: said once
            session.usage_problems.append(cut)
        return False
    deployment.cut = cut
    deployment.notes.append(cut.note([rel for rel in cut.after if rel not in applied]))
    return True


def _changed(deployment: Deployment, rel: str, checksum: str) -> bool:
    """Whether ``rel`` is a repeatable migration changed since it was applied with
    ``checksum`` (pending again: it runs again). Its checksum is the deployment's, read
    once for the run (preflight and its step use the same)."""
    if not is_repeatable(rel):
        return False
    try:
        return deployment.checksum(rel) != checksum
    except DeployFailure:
        return True  # unreadable: not applied as it is (its step says why)


def _beyond_plan(
    session: DeploySession, deployment: Deployment, rel: str, group: str
) -> str | None:
    """Applying a saved plan: why ``--deploy-to`` cannot name ``rel`` (the plan holds no
    step applying it), if so. A plan fixes its steps; an earlier FILE than the plan's
    cut is refused by the plan's own check (a planned step is not in the run)."""
    plan = session.saved_plan
    key = (deployment.config.project, deployment.target.name)
    planned = next((d for d in plan.deployments if d.key == key), None) if plan else None
    if planned is None:  # no plan, or one that does not deploy here (its check says so)
        return None
    if f"{deployment.nodeid}::{group}::deploy[{rel}]" in {s.node_id for s in planned.steps}:
        return None
    given, path = session.options.deploy_to, session.options.plan
    return (
        f"--deploy-to={given}: {rel} is not in the saved plan {path}, which fixes the steps"
        " it applies (a plan made with --deploy-to holds the steps up to its cut only)."
        f" Apply the plan without --deploy-to, or make a new plan with --dry-run"
        f" --deploy-to={given} --deploy-plan-out=FILE and apply that. Nothing was run."
    )


def planned(deployment: Deployment, item: Any) -> bool:
    """Whether a saved plan holds ``item``: not a file's own step after the cut (a plan
    made with --deploy-to applies only up to FILE, whatever the apply's options)."""
    cut = deployment.cut
    if cut is None or getattr(item, "owner", None) is not None:  # one an item carries
        return True
    return (
        getattr(item, "kind", None) != "deploy" or cut.reason(getattr(item, "file", None)) is None
    )
