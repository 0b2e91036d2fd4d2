"""``pytest-deploy env set|get|list|delete``: env vars (secrets) of one project and target.

Values are printed only by ``env get``; ``list`` shows names, where each comes from and when
it was last set.
"""

from __future__ import annotations

import getpass
import sys
from typing import Any

from deploy_plugin.facts import MAX_ARG_CHARS
from deploy_plugin.secrets import MIN_SECRET_LENGTH
from deploy_plugin.store import Store

from .args import Commands, check_var_name
from .context import Context, Project
from .output import UsageProblem, emit_json, print_table, say, warn, when

TARGET_HELP = "the target the variable belongs to (required)"


def register(commands: Commands) -> None:
    """Manage a project's env vars per target (values are secrets).

    printf %s "$URL" | pytest-deploy env set woofs DATABASE_URL - -t production
    """
    family = commands.family("env", register.__doc__)
    set_ = family.add(run_set, "project var", target=TARGET_HELP)
    set_.add_argument("value", metavar="VALUE", nargs="?", help="the value, or '-' for stdin")
    family.add(run_get, "project var", target=TARGET_HELP)
    family.add(run_list, "project", target=TARGET_HELP)
    family.add(run_delete, "project var", target=TARGET_HELP)


def _resolve(ctx: Context, *, in_use: bool = True) -> tuple[Project, str]:
    # get/list/delete also reach the vars a removed target kept (in_use); set does not
    project = ctx.project(ctx.args.project, store_only_ok=True)
    target = ctx.require_target(project, ctx.args.target, in_use=in_use)
    return project, target


def _stored_var(ctx: Context) -> tuple[Project, str, Store | None, dict[str, str]]:
    """get/delete: the NAME checked, its project and target, the store and the target's
    stored values."""
    check_var_name(ctx.args.name)
    project, target = _resolve(ctx)
    store = ctx.store()
    return project, target, store, store.env_values(project.name, target) if store else {}


def _read_value(args: Any) -> str:
    """The value: the argument, else stdin (``-`` or left out; no echo at a terminal)."""
    if args.value is not None and args.value != "-":
        return str(args.value)
    if sys.stdin is None:
        raise UsageProblem("No value given and no stdin to read it from.")
    if args.value is None and sys.stdin.isatty():
        return getpass.getpass(f"Value of {args.name} (not echoed): ")
    try:
        # strict UTF-8 from the bytes: a value a shell could not pass on is refused here
        raw = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as err:
        raise UsageProblem(
            f"The value of {args.name} on stdin is not valid UTF-8 ({err.reason} at byte "
            f'{err.start}). Pass text, e.g. `printf %s "$VALUE" | pytest-deploy env set ...`.'
        ) from None
    # One trailing line end is the shell's (echo, heredoc); anything else is the value.
    return text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text


def _weak_value_warning(ctx: Context, project: Project, value: str) -> str | None:
    """Why ``value`` would not be masked well in output, if it would not."""
    if len(value) < MIN_SECRET_LENGTH:
        return (
            f"the value is under {MIN_SECRET_LENGTH} characters, so it is not masked in "
            f"output (masking such short text would garble every line)."
        )
    names = {project.name, *ctx.known_targets(project, in_use=True), *project.group_names()}
    if value in names:
        return (
            f"the value equals the name of a project, target or group ({value!r}); those "
            f"names are never masked, so this value will show in output."
        )
    return None


def run_set(ctx: Context) -> int:
    """Set a variable (VALUE '-' or left out: read it from stdin, out of shell history).

    pytest-deploy env set woofs DATABASE_URL - --target production < url.txt
    pytest-deploy env set woofs NODE_ENV production --target production
    """
    args = ctx.args
    check_var_name(args.name)
    project, target = _resolve(ctx, in_use=False)
    value = _read_value(args)
    if "\0" in value:
        raise UsageProblem(
            f"The value of {args.name} contains a NUL byte, which no process environment can "
            f"hold, so no step could receive it. Pass the value without it."
        )
    size = len(args.name.encode()) + len(value.encode()) + 1
    if size >= MAX_ARG_CHARS:
        raise UsageProblem(
            f"The value of {args.name} is {len(value.encode()):,} bytes long; Linux passes at "
            f"most {MAX_ARG_CHARS:,} bytes per environment variable, so no step could start "
            f"with it. Keep large values in a file and store its path instead."
        )
    if value == "":
        raise UsageProblem(
            f"The value of {args.name} is empty: an empty value counts as missing at "
            f"preflight. Pass a value (or '-' and the value on stdin); to remove the "
            f"variable, use `pytest-deploy env delete {project.name} {args.name} "
            f"--target {target}`."
        )
    weak = _weak_value_warning(ctx, project, value)
    ctx.writable_store().set_env(project.name, target, args.name, value)
    if weak:
        warn(f"{args.name}: {weak}")
    if args.json:
        emit_json({"project": project.name, "target": target, "name": args.name, "set": True})
    else:
        say(f"Set {args.name} for {project.name} → {target} ({ctx.describe_store()}).")
    return 0


def _declared_env(project: Project, target: str) -> dict[str, str]:
    config = project.config
    declared = config.targets.get(target) if config else None
    return dict(declared.env) if declared else {}


def _unknown_var(project: Project, target: str, name: str, known: list[str]) -> UsageProblem:
    return UsageProblem(
        f"Unknown env var {name!r} for {project.name} → {target}. Known: "
        f"{', '.join(known) or 'none'}. Set it with `pytest-deploy env set {project.name} "
        f"{name} - --target {target}`."
    )


def run_get(ctx: Context) -> int:
    """Print one variable's value.

    pytest-deploy env get woofs DATABASE_URL --target production
    """
    args = ctx.args
    project, target, store, stored = _stored_var(ctx)
    declared = _declared_env(project, target)
    if args.name in stored:
        value, source = stored[args.name], "store"
    elif args.name in declared:
        value, source = declared[args.name], "config"
    else:
        raise _unknown_var(project, target, args.name, sorted(set(stored) | set(declared)))
    if args.json:
        emit_json({"name": args.name, "value": value, "source": source})
    else:
        sys.stdout.write(value + "\n")
    return 0


def env_listing(ctx: Context, project: Project, target: str) -> list[dict[str, Any]]:
    """Names, sources and last updates of a target's variables, plus required ones missing."""
    store = ctx.store()
    stored = {r.name: r for r in store.list_env(project.name, target)} if store else {}
    declared = _declared_env(project, target)
    required: dict[str, list[str]] = {}
    if project.config is not None:
        for group in project.config.groups:
            if group.applies_to(target):
                for var in group.required_env_vars:
                    required.setdefault(var, []).append(group.name)
    rows = []
    for name in sorted(set(stored) | set(declared) | set(required)):
        if name in stored:
            source = "store (overrides config)" if name in declared else "store"
            updated = stored[name].updated_at
        elif name in declared:
            source, updated = "config", None
        else:
            source, updated = "missing", None
        rows.append(
            {"name": name, "source": source, "updated_at": updated,
             "required_by": required.get(name, [])}
        )  # fmt: skip
    return rows


def run_list(ctx: Context) -> int:
    """List variable names, their source and last update (never values).

    pytest-deploy env list woofs --target production
    """
    project, target = _resolve(ctx)
    rows = env_listing(ctx, project, target)
    if ctx.args.json:
        emit_json(rows)
        return 0
    print_table(
        ["name", "source", "last update", "required by"],
        [[r["name"], r["source"], when(r["updated_at"]), ", ".join(r["required_by"])]
         for r in rows],
        f"No env vars for {project.name} → {target}.",
    )  # fmt: skip
    missing = [r["name"] for r in rows if r["source"] == "missing"]
    if missing:
        warn(
            f"required but not set for {target}: {', '.join(missing)} (process env may still "
            f"provide them). Set each with `pytest-deploy env set {project.name} NAME - "
            f"--target {target}`."
        )
    return 0


def run_delete(ctx: Context) -> int:
    """Delete a stored variable.

    pytest-deploy env delete woofs NODE_ENV --target production
    """
    args = ctx.args
    project, target, store, stored = _stored_var(ctx)
    if args.name not in stored:
        declared = _declared_env(project, target)
        if args.name in declared:
            raise UsageProblem(
                f"{args.name} of {project.name} → {target} is declared in the config, not "
                f"stored: remove it from the config's targets.{target}.env."
            )
        raise _unknown_var(project, target, args.name, sorted(stored))
    assert store is not None
    store.delete_env(project.name, target, args.name)
    if args.json:
        emit_json({"project": project.name, "target": target, "name": args.name, "deleted": True})
    else:
        say(f"Deleted {args.name} of {project.name} → {target}.")
    return 0
