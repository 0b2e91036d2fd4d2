"""Schema drift: the live schema against the fingerprint recorded after the last run that
changed it (DESIGN §5; ``--deploy-strict-schema`` turns the warning into a failure).

After each successful run, and each failed one that applied or undid a migration (not a
dry run, never after the lock was lost), the fingerprint of every selected tracked group's
database (its ``database_url_env``) is recorded in the store; preflight's
``migrations-drift`` check reads the live schema again and names what changed outside
pytest-deploy since then. Reading the catalogs changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from deploy_plugin.config import Group
from deploy_plugin.engine.errors import soft_warn
from deploy_plugin.engine.results import StepResult
from deploy_plugin.secrets import Masker

if TYPE_CHECKING:
    from deploy_plugin.migrate.fingerprint import Fingerprint
    from deploy_plugin.store.base import Store


@dataclass(frozen=True)
class Schemas:
    """The databases of one deployment's selected tracked groups, and how to reach them."""

    project: str
    target: str
    groups: tuple[Group, ...]
    env: Mapping[str, str]
    root: Path

    def live(self, group: Group) -> Fingerprint | None:
        """The schema of ``group``'s database now (None without a URL); ConnectError if
        the database cannot be reached."""
        # deferred: +33 modules, 36 ms (migrate.statements, migrate.ledger, migrate.pg_executor, …)
        from deploy_plugin.migrate.executor import SqlExecutor
        from deploy_plugin.migrate.fingerprint import fingerprint

        url = self.env.get(group.database_url_env, "")
        if not url:
            return None
        if url.lower().startswith("sqlite:"):
            name = url.split("://", 1)[-1].split("?", 1)[0][1:]
            if name != ":memory:" and not (self.root / name).exists():
                return None  # never create a database file just to read it
        with SqlExecutor(url, base=self.root, source=group.database_url_env) as db:
            return fingerprint(db.connection, db.kind)


def drift(schemas: Schemas, store: Store) -> tuple[list[str], set[str]]:
    """What changed in each tracked group's database since the recorded fingerprint, and
    the groups whose schema is as recorded."""
    # deferred: +33 modules, 39 ms (hashlib, migrate.statements, plan.files, …)
    from deploy_plugin.migrate.executor import ConnectError
    from deploy_plugin.migrate.fingerprint import Fingerprint, diff

    found: list[str] = []
    verified: set[str] = set()
    for group in schemas.groups:
        where = (schemas.project, schemas.target, group.name)
        recorded_digest = store.fingerprint_digest(*where)
        if recorded_digest is None:
            continue
        try:
            live = schemas.live(group)
        except ConnectError as err:
            found.append(f"group {group.name}: the schema could not be read ({err})")
            continue
        if live is None:
            continue
        if live.digest() == recorded_digest:
            verified.add(group.name)
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
    return found, verified


def _ran_anything(results: Iterable[StepResult]) -> bool:
    """Whether any step other than the checks ran (a command, a migration, a smoke test)."""
    return any(
        result.outcome != "skipped" and result.kind not in ("preflight", "health_check")
        for result in results
    )


def _changed_tracked(results: Iterable[StepResult], tracked: set[str]) -> bool:
    """Whether a migration step of a tracked group passed (applied, rolled back, undone,
    checked): the run changed that schema itself."""
    return any(
        result.outcome == "passed"
        and result.group in tracked
        and result.kind in ("deploy", "rollback", "undo", "check_rollback")
        and result.file is not None
        for result in results
    )


def record(
    schemas: Schemas,
    store: Store,
    *,
    results: list[StepResult],
    succeeded: bool,
    verified: set[str],
    deployment_id: int | None,
    masker: Masker,
) -> None:
    """Record each tracked group's fingerprint after a real run (never raises): a
    successful one, or a failed one that applied or undid a migration before it failed
    (what it left is pytest-deploy's doing, not a change outside it); the caller skips a
    run that lost its lock. An unchanged schema keeps its row: the deployment it names is
    the first that left it so. A run in which only the checks ran does not read a schema
    its preflight found as recorded (``verified``): a change made meanwhile is outside
    pytest-deploy, for the next run to name."""
    quiet = not _ran_anything(results)
    if not succeeded and not _changed_tracked(results, {g.name for g in schemas.groups}):
        return  # failed before a migration of it was applied or undone: it changed none
    for group in schemas.groups:
        if quiet and group.name in verified:
            continue  # preflight found it as recorded, and nothing ran since
        try:
            live = schemas.live(group)
            where = (schemas.project, schemas.target, group.name)
            if live is not None and store.fingerprint_digest(*where) != live.digest():
                store.record_fingerprint(
                    *where, live.objects, digest=live.digest(), deployment_id=deployment_id
                )
        except Exception as err:  # noqa: BLE001 - the run's result stands
            soft_warn(
                masker.mask(
                    f"pytest-deploy: the schema fingerprint of group {group.name} was not"
                    f" recorded: {err}"
                )
            )
