"""Schema drift: the live schema against the fingerprint recorded after the last run that
changed it (DESIGN §5; ``--deploy-strict-schema`` turns the warning into a failure).

After each successful run, and each failed one that applied or undid a migration (not a
dry run, never after the lock was lost), the fingerprint of every selected tracked group's
database (its ``database_url_env``) is recorded in the store; preflight's
``migrations-drift`` check reads the live schema again and names what changed outside
pytest-deploy since then. Reading the catalogs changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deploy_plugin.config import Group
from deploy_plugin.plugin.messages import soft_warn

if TYPE_CHECKING:
    from deploy_plugin.engine.runtime import Deployment
    from deploy_plugin.migrate.fingerprint import Fingerprint


def _tracked(deployment: Deployment) -> list[Group]:
    return [g for g in deployment.selected_groups() if g.track_migrations]


def live_fingerprint(deployment: Deployment, group: Group) -> Fingerprint | None:
    """The schema of ``group``'s database now (None without a URL); ConnectError if the
    database cannot be reached."""
    from deploy_plugin.migrate.executor import SqlExecutor
    from deploy_plugin.migrate.fingerprint import fingerprint

    url = deployment.env.get(group.database_url_env, "")
    if not url:
        return None
    if url.lower().startswith("sqlite:"):
        name = url.split("://", 1)[-1].split("?", 1)[0][1:]
        if name != ":memory:" and not (deployment.config.root / name).exists():
            return None  # never create a database file just to read it
    with SqlExecutor(url, base=deployment.config.root, source=group.database_url_env) as db:
        return fingerprint(db.connection, db.kind)


def drift(deployment: Deployment, store: Any) -> list[str]:
    """What changed in each tracked group's database since the recorded fingerprint."""
    from deploy_plugin.migrate.executor import ConnectError
    from deploy_plugin.migrate.fingerprint import Fingerprint, diff

    found: list[str] = []
    for group in _tracked(deployment):
        where = (deployment.project, deployment.target.name, group.name)
        recorded_digest = store.fingerprint_digest(*where)
        if recorded_digest is None:
            continue
        try:
            live = live_fingerprint(deployment, group)
        except ConnectError as err:
            found.append(f"group {group.name}: the schema could not be read ({err})")
            continue
        if live is None:
            continue
        if live.digest() == recorded_digest:
            deployment.schema_verified.add(group.name)
            continue
        recorded = store.fingerprint_of(*where)  # the objects: only to name the changes
        if recorded is None:
            continue
        _, objects, deployment_id = recorded
        changes = diff(Fingerprint(objects), live)
        shown = "; ".join(changes[:10]) + (f"; and {len(changes) - 10} more" if len(changes) > 10
                                           else "")  # fmt: skip
        found.append(
            f"the schema of group {group.name}'s database changed outside pytest-deploy since"
            f" deployment {deployment_id}: {shown}"
        )
    return found


def _ran_anything(deployment: Deployment) -> bool:
    """Whether any step other than the checks ran (a command, a migration, a smoke test)."""
    return any(
        result.outcome != "skipped" and result.kind not in ("preflight", "health_check")
        for result in deployment.results.values()
    )


def _changed_tracked(deployment: Deployment) -> bool:
    """Whether a migration step of a tracked group passed (applied, rolled back, undone,
    checked): the run changed that schema itself."""
    tracked = {g.name for g in _tracked(deployment)}
    return any(
        result.outcome == "passed"
        and result.group in tracked
        and result.kind in ("deploy", "rollback", "undo", "check_rollback")
        and result.file is not None
        for result in deployment.results.values()
    )


def record(deployment: Deployment) -> None:
    """Record each tracked group's fingerprint after a run (never raises): a successful
    one, or a failed one that applied or undid a migration before it failed (what it left
    is pytest-deploy's doing, not a change outside it), never after the lock was lost. An unchanged
    schema keeps its row: the deployment it names is the first that left it so. A run in
    which only the checks ran does not read a schema its preflight found as recorded: a
    change made meanwhile is outside pytest-deploy, for the next run to name."""
    store = deployment.session.open_store_or_none()
    if store is None or deployment.dry_run:
        return
    if deployment.policy.lock_lost:
        return  # another deployer may hold the target now: what is there is not ours
    quiet = not _ran_anything(deployment)
    if deployment.status != "success" and not _changed_tracked(deployment):
        return  # failed before a migration of it was applied or undone: it changed none
    for group in _tracked(deployment):
        if quiet and group.name in deployment.schema_verified:
            continue  # preflight found it as recorded, and nothing ran since
        try:
            live = live_fingerprint(deployment, group)
            where = (deployment.project, deployment.target.name, group.name)
            if live is not None and store.fingerprint_digest(*where) != live.digest():
                store.record_fingerprint(
                    deployment.project, deployment.target.name, group.name, live.objects,
                    digest=live.digest(), deployment_id=deployment.deployment_id,
                )  # fmt: skip
        except Exception as err:  # noqa: BLE001 - the run's result stands
            soft_warn(
                deployment.masker.mask(
                    f"pytest-deploy: the schema fingerprint of group {group.name} was not"
                    f" recorded: {err}"
                )
            )
