"""``pytest-deploy project show|adopt|rename``: a stored project's identity, changed on purpose.

A store binds each project name to the ``project_id`` of the config that first deployed it
(:mod:`deploy_plugin.identity`); a config with another id, or none, is then refused. These
commands are the explicit ways on, each leaving a ``project_audit`` row (who, when, why):

* ``adopt`` binds the stored project to the ``project_id`` of the config found here (the
  same project whose id was made anew, or a config that had none);
* ``rename`` gives the stored project (targets, env vars, history, runs, plan key and
  binding) another name, e.g. before giving a folder-named config a ``project:`` key.
"""

from __future__ import annotations

import shlex
from typing import Any

from deploy_plugin.facts import who
from deploy_plugin.store.base import StoreError

from .args import Commands
from .context import Context
from .output import UsageProblem, emit_json, print_table, say, when

_REASON_HELP = "why (kept in the audit row; required)"


def register(commands: Commands) -> None:
    """A stored project's identity: show it, adopt a config's project_id, rename it.

    pytest-deploy project show woofs
    """
    family = commands.family("project", register.__doc__)
    family.add(run_show, "project")
    family.add(run_adopt, "project", reason=_REASON_HELP)
    rename = family.add(run_rename, "project", reason=_REASON_HELP, config=False)
    rename.add_argument("new_name", metavar="NEW_NAME")


def _reason(ctx: Context, command: str) -> str:
    reason = " ".join((ctx.args.reason or "").split())
    if not reason:
        raise UsageProblem(
            f"{command} needs --reason TEXT: why (kept in the project's audit row with who and"
            " when, shown by `pytest-deploy project show`). Nothing changed."
        )
    return reason


def _stored(ctx: Context, name: str) -> Any:
    store = ctx.store()
    row = store.project_identity(name) if store is not None else None
    if store is None or row is None:
        known = ", ".join(store.projects()) if store is not None else ""
        raise UsageProblem(
            f"The store {ctx.describe_store()} has no project {name!r} (known:"
            f" {known or 'none'}); nothing changed."
        )
    return store, row


def run_show(ctx: Context) -> int:
    """The project_id a stored project is bound to, and its audit rows.

    pytest-deploy project show woofs
    """
    name = ctx.args.project
    store, row = _stored(ctx, name)
    audit = store.project_audit(name)
    if ctx.args.json:
        emit_json({
            "project": row.name, "project_id": row.identity, "bound_at": row.bound_at,
            "bound_by": row.bound_by,
            "audit": [{"action": a.action, "old": a.old, "new": a.new, "reason": a.reason,
                       "who": a.who, "at": a.at} for a in audit],
        })  # fmt: skip
        return 0
    say(f"project     {row.name}")
    unbound = "- (not bound: its next deploy with a project_id binds it)"
    say(f"project_id  {row.identity or unbound}")
    if row.identity:
        say(f"bound       {when(row.bound_at)} by {row.bound_by or '?'}")
    say()
    print_table(
        ("at", "action", "old", "new", "who", "reason"),
        [(a.at, a.action, a.old, a.new, a.who, a.reason) for a in audit],
        "no binds, adoptions or renames recorded",
    )
    return 0


def run_adopt(ctx: Context) -> int:
    """Bind a stored project to the project_id of the config found here (audited).

    pytest-deploy project adopt woofs --reason 'project_id made anew by init'
    """
    name = ctx.args.project
    project = ctx.project(name, check_identity=False)
    config = project.require_config()
    shown = ctx.shown(config.path)
    command = f"pytest-deploy project adopt {shlex.quote(name)}"
    reason = _reason(ctx, command)
    if config.project_id is None:
        raise UsageProblem(
            f"{shown} has no project_id to adopt {name!r} with: add `project_id: ID` to it"
            " (the stored project's own, shown by `pytest-deploy project show`, if it is that"
            " project), then deploy; adopt is for a config whose id differs. Nothing changed."
        )
    store, row = _stored(ctx, name)
    if row.identity == config.project_id:
        say(f"Project {name!r} is already bound to project_id {config.project_id}; no change.")
        return 0
    before = store.adopt_project(name, config.project_id, who=who(), reason=reason)
    old = before.identity if before is not None else None
    if ctx.args.json:
        emit_json({"project": name, "old": old, "new": config.project_id, "reason": reason})
        return 0
    say(
        f"Project {name!r} is now bound to project_id {config.project_id} of {shown} (was"
        f" {old or 'not bound'}): a config with {old or 'no id'} is refused from now on."
    )
    say(f"Audit: by {who()}, reason: {reason}")
    return 0


def run_rename(ctx: Context) -> int:
    """Give a stored project (env vars, history, runs, binding) another name (audited).

    pytest-deploy project rename deploy shop --reason 'named after its folder'
    """
    old, new = ctx.args.project, " ".join(ctx.args.new_name.split())
    command = f"pytest-deploy project rename {shlex.quote(old)} {shlex.quote(new)}"
    reason = _reason(ctx, command)
    if not new or not new.isprintable():
        raise UsageProblem(f"{command}: give NEW_NAME as printable text. Nothing changed.")
    store, _ = _stored(ctx, old)
    try:
        store.rename_project(old, new, who=who(), reason=reason)
    except StoreError as err:
        if store.project_identity(new) is not None:
            raise UsageProblem(str(err)) from None
        raise
    if ctx.args.json:
        emit_json({"old": old, "new": new, "reason": reason})
        return 0
    say(
        f"Project {old!r} is now {new!r} in the store, with its targets, env vars, history and"
        f" binding. Set `project: {new}` in its config, so that its runs find it."
    )
    say(f"Audit: by {who()}, reason: {reason}")
    return 0
