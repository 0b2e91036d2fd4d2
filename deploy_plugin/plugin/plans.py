"""Saved plans in a pytest session: write one after a dry run, check one before a run.

The facts and their comparison are :mod:`deploy_plugin.saved_plans`; this module gathers
a deployment's facts from its items, store and environment, and is called by the plugin
(writing at the session's end, checking when collection is finished) and by
``preflight::lock`` (:func:`claim`: the last check and the plan's one use, under the lock).

A plan is signed with its projects' plan keys, kept in the store (see
:mod:`deploy_plugin.saved_plans`). A dry run never creates a store, so a dry run against a
store that does not exist yet (or has an older schema) writes no plan: :func:`no_store`
refuses ``--deploy-plan-out`` before anything runs and says how to create the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deploy_plugin import saved_plans
from deploy_plugin.engine.errors import DeployFailure
from deploy_plugin.facts import iso_utc, utcnow, who
from deploy_plugin.plan import file_checksum
from deploy_plugin.saved_plans import DeploymentFacts, PlannedStep, SavedPlan

if TYPE_CHECKING:
    from deploy_plugin.plugin.deployment import Deployment
    from deploy_plugin.plugin.session import DeploySession
    from deploy_plugin.store.base import MigrationRecord


def planned_command(item: Any) -> str | None:
    """The unmasked command an item would run (None: no shell command)."""
    step = getattr(item, "step", None)
    if step is not None:
        return step.command  # type: ignore[no-any-return]
    if getattr(item, "kind", None) == "health_check":
        deployment = item.deployment
        check = deployment.config.health_check
        return f"GET {deployment.health_url()} expecting {check.expected_status}"
    return None


def facts(
    deployment: Deployment,
    plan_id: str,
    key: bytes,
    *,
    stored_env: Mapping[str, str],
    history: Mapping[str, MigrationRecord],
) -> DeploymentFacts:
    """What ``deployment`` would do now, and what decides it."""
    session = deployment.session
    config = deployment.config
    try:
        config_path = config.path.resolve().relative_to(session.rootdir.resolve()).as_posix()
    except ValueError:
        config_path = str(config.path)
    # deferred: +2 modules, 4 ms (plan.cut, plugin.deploy_to)
    from deploy_plugin.plugin.deploy_to import planned

    steps = []
    for item in deployment.selected:
        if getattr(item, "kind", None) == "preflight" or not planned(deployment, item):
            continue
        command = planned_command(item)
        steps.append(
            PlannedStep(
                item.nodeid,
                deployment.masker.mask(command) if command is not None else None,
                saved_plans.command_hash(command),
            )
        )
    files: dict[str, str] = {}
    for group_plan in deployment.plans:
        for rel in group_plan.files:
            try:
                files[rel] = file_checksum(config.root / rel)
            except OSError as err:
                files[rel] = f"unreadable: {err.strerror or err}"
    env = {**deployment.target.env, **stored_env, **session.file_env, **session.cli_env}
    return DeploymentFacts(
        project=deployment.project,
        target=deployment.target.name,
        config=config_path,
        config_sha256=config.sha256,
        steps=tuple(steps),
        files=files,
        env=saved_plans.env_hashes(key, plan_id, env),
        applied={f: r.checksum for f, r in history.items() if r.status == "success"},
    )


def _deployments(session: DeploySession) -> list[Deployment]:
    return [d for d in session.deployments if d.selected]


# --------------------------------------------------------------------------- writing


def no_store(session: DeploySession) -> str | None:
    """Before a dry run with --deploy-plan-out: why no plan can be made (no store to keep
    the plan key in), or None. Reads only; the store's own errors say what they are."""
    # deferred: +33 modules, 62 ms (store.records, store.projects, store.history, …)
    from deploy_plugin.store import default_store_path, describe_url
    from deploy_plugin.store.base import StoreError

    try:
        if session.store() is not None:
            return None
        why = "does not exist yet (or has an older schema)"
    except StoreError as err:
        why = f"cannot be opened ({err})"
    url = session.options.store
    where = describe_url(url) if url else str(default_store_path(session.rootdir))
    return (
        f"no plan written to {session.options.plan_out}: the store {where} {why}, and a dry"
        " run never creates or upgrades one, while a plan is signed with a key the store"
        " keeps. Create the store first — `pytest-deploy target add PROJECT TARGET`, or a"
        " real run (pytest --deploy-target=T) — then make the plan again. Nothing was run."
    )


def write(session: DeploySession) -> str:
    """After a dry run: write the plan file (only when every deployment passed); a line
    for the terminal saying what was done."""
    path = session.options.plan_out
    assert path is not None
    deployments = _deployments(session)
    failed = [f"{d.project} → {d.target.name}" for d in deployments if d.status != "success"]
    if failed or not deployments:
        session.plan_failed = True
        why = f"the dry run of {', '.join(failed)} failed" if failed else "nothing was planned"
        return f"pytest-deploy: no plan written to {path}: {why}"
    # deferred: +33 modules, 37 ms (store.records, store.projects, store.history, …)
    from deploy_plugin.store.base import StoreError

    try:
        store = session.store()
        if store is None:
            raise StoreError("the store does not exist")
        keys = {d.project: store.plan_key(d.project, create=True) for d in deployments}
        plan = SavedPlan(
            id=session.plan_id,
            created_at=iso_utc(utcnow()),
            created_by=who(),
            deployments=tuple(
                facts(
                    d,
                    session.plan_id,
                    keys[d.project],
                    stored_env=d.env_for_plan(),
                    history=d.applied(),
                )
                for d in deployments
            ),
            store_id=store.store_id,
        )
    except StoreError as err:
        session.plan_failed = True
        return f"pytest-deploy: no plan written to {path}: {err}"
    target = Path(path)
    temporary = target.with_name(target.name + ".tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(saved_plans.dump(plan, keys), encoding="utf-8")
        temporary.replace(target)  # whole or not at all
    except OSError as err:
        session.plan_failed = True
        return f"pytest-deploy: no plan written to {path}: {err.strerror or err}"
    steps = sum(len(d.steps) for d in plan.deployments)
    names = dict.fromkeys(d.target for d in plan.deployments)
    targets = " ".join(f"--deploy-target={t}" for t in names)
    return (
        f"pytest-deploy: plan {plan.id} ({steps} step(s)) written to {path}; apply it once"
        f" with: pytest {targets} --deploy-plan={path}"
    )


# --------------------------------------------------------------------------- applying


def check(session: DeploySession) -> str | None:
    """Before anything runs: why the saved plan is refused (one paragraph naming each
    difference), or None when this run is exactly what it planned. Reads only."""
    # deferred: +33 modules, 61 ms (store.records, store.base, store.projects, …)
    from deploy_plugin.store.base import StoreError

    plan = session.saved_plan
    assert plan is not None
    path = str(session.options.plan)
    deployments = _deployments(session)
    problems = saved_plans.scope_differences(
        plan, [(d.project, d.target.name) for d in deployments]
    )
    planned = {d.key: d for d in plan.deployments}
    try:
        store = session.store()
        keys = {p: store.plan_key(p, create=False) if store else None for p in plan.projects}
        broken = saved_plans.integrity_problems(plan, store.store_id if store else None, keys)
        if broken:  # nothing else it says can be trusted
            return saved_plans.refusal(path, plan, broken, verified=False)
        for use in store.plan_uses(plan.id) if store is not None else []:
            problems.append(
                f"its id was already used: applied to {use.project} → {use.target} by"
                f" {use.who} at {iso_utc(use.used_at)} (deployment {use.deployment_id});"
                " a plan is applied once"
            )
            break
        for deployment in deployments:
            key = (deployment.project, deployment.target.name)
            if key not in planned:
                continue
            project, target = key
            key_of = keys[project]
            if key_of is None:
                continue  # not planned: scope_differences named it
            now = facts(
                deployment,
                plan.id,
                key_of,
                stored_env=deployment.env_for_plan(),
                history=store.applied_migrations(project, target) if store else {},
            )
            problems += saved_plans.differences(planned[key], now)
    except StoreError as err:
        problems.append(f"the store could not be read ({err})")
    return saved_plans.refusal(path, plan, problems) if problems else None


def claim(deployment: Deployment, session: DeploySession) -> str | None:
    """Under the deployment's lock: check once more (nobody else can change the history
    now), then record the plan's use; DeployFailure if it differs or is used already."""
    plan = session.saved_plan
    if plan is None:
        return None
    key = (deployment.project, deployment.target.name)
    planned = next(d for d in plan.deployments if d.key == key)
    store = session.store()
    plan_key = store.plan_key(key[0], create=False)
    path = str(session.options.plan)
    if plan_key is None:  # checked before; a store changed under us
        raise DeployFailure(saved_plans.refusal(path, plan, ["the project has no plan key"]))
    now = facts(
        deployment,
        plan.id,
        plan_key,
        stored_env=deployment.env_for_plan(),
        history=deployment.applied(),
    )
    problems = saved_plans.differences(planned, now)
    if problems:
        raise DeployFailure(saved_plans.refusal(path, plan, problems))
    if not store.use_plan(
        plan.id, key[0], key[1], who=who(), deployment_id=deployment.deployment_id
    ):
        raise DeployFailure(
            saved_plans.refusal(
                path, plan, [f"its id was already used for {key[0]} → {key[1]} (by another run)"]
            )
        )
    return f"saved plan {plan.id} ({path}): checked under the lock, its use recorded"
