"""Whether a config may use a stored project: its identity, not only its name (issue 20 §7).

A stored project is found by name, and a name is only what a config says — or, without a
``project:`` key, the name of its root folder, which two unrelated checkouts easily share
(``deploy``). What stays the same in every clone of one project (a developer's, CI's) and
differs between two projects is the config file itself, so the identity lives there: the
``project_id`` key that ``pytest-deploy init`` writes (a random UUID, committed with the
config). The store binds a project name to the first ``project_id`` that deploys it; from
then on a config with another id, or none, is refused before it reads anything of the
project (env vars, history, lock). ``pytest-deploy project adopt|rename`` change a binding
on purpose, audited.

A config with no ``project_id`` on an unbound project keeps working as before, except in
one case: its name is the folder's (no ``project:`` key) and the store is shared
(PostgreSQL). Nothing then tells this checkout from any other folder of that name, so it
gets no stored env vars (a warning says how to give it an id); the rest of the run goes on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deploy_plugin.config import DeployConfig
    from deploy_plugin.store.base import Store
    from deploy_plugin.store.projects import ProjectIdentity


@dataclass(frozen=True)
class Verdict:
    """What a run or command may do with a stored project."""

    refusal: str | None = None  # one paragraph: use nothing of the project
    withhold_env: bool = False  # give no stored env vars (warning says why)
    warning: str | None = None
    note: str | None = None  # e.g. "bound to project_id …" on the first deploy with one


def _bound(row: ProjectIdentity) -> str:
    when = f" since {row.bound_at:%Y-%m-%d %H:%M} UTC" if row.bound_at else ""
    who = f" by {row.bound_by}" if row.bound_by else ""
    return f"project_id {row.identity}{when}{who}"


def check(store: Store, config: DeployConfig, *, shown: str, bind: bool, who: str) -> Verdict:
    """The verdict for ``config`` (shown as ``shown``) on ``store``; with ``bind`` (a real
    run) an unbound project is bound to the config's ``project_id``. Raises StoreError."""
    name = config.project
    row = store.project_identity(name)
    where = store.describe()
    if row is not None and row.identity is not None:
        if config.project_id == row.identity:
            return Verdict()
        if config.project_id is not None:
            return Verdict(
                refusal=f"project {name!r} in the store is bound to {_bound(row)}, but {shown}"
                f" has project_id {config.project_id}: two different projects share the"
                f" name {name!r} in store {where}, so nothing of the stored one is used (no env"
                " var, history or lock) and nothing was run or changed. Give this config a"
                " `project:` name of its own; or, if it really is that project (its"
                " project_id was made anew), move the binding on purpose with `pytest-deploy"
                f" project adopt {name} --config {shown} --reason TEXT` (audited)."
            )
        return Verdict(
            refusal=f"project {name!r} in the store is bound to {_bound(row)}, but {shown} has"
            " no project_id, so nothing says it is that project: nothing of the stored one is"
            " used (no env var, history or lock) and nothing was run or changed. If it is"
            f" that project, add `project_id: {row.identity}` to {shown}; if not, give it a"
            f" `project:` name of its own (store {where})."
        )
    if config.project_id is not None:
        if not bind:
            return Verdict()  # a dry run changes nothing; the real run binds
        now = store.bind_project(name, config.project_id, who=who)
        if now.identity != config.project_id:  # another run bound it first
            return check(store, config, shown=shown, bind=False, who=who)
        return Verdict(
            note=f"project {name!r} bound to project_id {config.project_id} in store {where}"
            " (its first deploy with a project_id); a checkout with another id is refused"
        )
    if not config.project_named and store.kind == "postgresql":
        return Verdict(
            withhold_env=True,
            warning=f"{shown} names no project, so it goes by its folder's name {name!r},"
            f" which any other checkout in a folder of that name shares on the shared store"
            f" {where}: this run gets no env var stored for project {name!r}. Give the"
            f" project an identity with `project_id: {uuid.uuid4()}` in {shown} (a fresh"
            " one; its first deploy binds the name to it) or an explicit `project:` name.",
        )
    return Verdict()
