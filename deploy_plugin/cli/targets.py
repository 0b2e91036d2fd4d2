"""``pytest-deploy target add|list|update|remove|test``: targets in the store, beside the
targets a config declares."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from deploy_plugin.config import target_type_problem, url_scheme_problem
from deploy_plugin.secrets import Masker
from deploy_plugin.targets import HINT_WORDS, TargetInfo, expand_vars

from .args import Commands, check_target_name
from .context import Context, Project
from .output import CliError, UsageProblem, confirm, emit_json, note, print_table, say
from .probe import ProbeResult, probe_database, probe_host, probe_http

FIELD_OPTIONS = (
    ("type", "--type", "kind of target: database, edge_function, static_site, service, other"),
    ("provider", "--provider", "hosting provider, e.g. supabase, vercel, aws, local"),
    ("host", "--host", "host name, host:port, or a URL (what `target test` contacts)"),
    ("region", "--region", "region, e.g. eu-west-1"),
    ("health_check_url", "--health-url", "health URL polled after a deployment to it"),
)


def register(commands: Commands) -> None:
    """Manage a project's deployment targets (production, staging...).

    pytest-deploy target add woofs production --type database --host db.example.com
    """
    family = commands.family("target", register.__doc__)
    add = family.add(run_add, "project target")
    update = family.add(
        run_update, "project target", yes="unprotect without asking (--no-protected)",
    )  # fmt: skip
    for parser in (add, update):
        for dest, flag, text in FIELD_OPTIONS:
            parser.add_argument(flag, dest=dest, metavar="VALUE", help=text)
    add.add_argument("--protected", action="store_true", help="ask before deploying here")
    update.add_argument(
        "--protected",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="ask before deploying here (--no-protected: don't; it asks first)",
    )
    family.add(run_list, "project")
    family.add(run_remove, "project target", yes="do not ask for confirmation")
    family.add(run_test, "project target")


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    """The field options given (an empty string clears a field); UsageProblem for a
    type that is not known or a health URL that is not http(s)."""

    fields = {}
    for dest, _flag, _text in FIELD_OPTIONS:
        value = getattr(args, dest)
        if value is not None:
            fields[dest] = value.strip() or None
    kind = fields.get("type")
    if kind and (problem := target_type_problem(str(kind))):
        raise UsageProblem(f"--type: {problem[:1].upper()}{problem[1:]}")
    url = fields.get("health_check_url")
    if url and (problem := url_scheme_problem(url)):
        raise UsageProblem(f"--health-url: the URL {problem}.")
    if args.protected is not None:
        fields["protected"] = bool(args.protected)
    return fields


def _record_json(info: TargetInfo) -> dict[str, Any]:
    return {
        "name": info.name, "origin": info.origin, "type": info.type,
        "provider": info.provider, "host": info.host, "region": info.region,
        "protected": info.protected, "health_check_url": info.health_check_url,
    }  # fmt: skip


def run_add(ctx: Context) -> int:
    r"""Add a target to the store.

    pytest-deploy target add woofs production --type database --provider supabase \
        --host db.example.com --protected
    """
    args = ctx.args
    project = ctx.project(args.project, store_only_ok=True)
    check_target_name(args.name)
    store = ctx.store()
    if store is not None and store.get_target(project.name, args.name) is not None:
        raise UsageProblem(
            f"Target {args.name!r} is already stored for project {project.name!r}. Change it "
            f"with `pytest-deploy target update {project.name} {args.name} --host ...`, or "
            f"remove it first."
        )
    fields = _fields(args)
    record = ctx.writable_store().add_target(project.name, args.name, **fields)
    declared = project.config.targets.get(args.name) if project.config else None
    info = TargetInfo.merge(args.name, declared, record)
    if args.json:
        emit_json(_record_json(info))
        return 0
    say(f"Added target {args.name!r} to project {project.name!r} ({ctx.describe_store()}).")
    if declared is not None:
        note(f"note: {args.name!r} is also declared in the config; stored values win.")
    return 0


def run_update(ctx: Context) -> int:
    """Change fields of a stored target.

    pytest-deploy target update woofs production --host db2.example.com
    """
    args = ctx.args
    project = ctx.project(args.project, store_only_ok=True)
    check_target_name(args.name)
    fields = _fields(args)
    if not fields:
        raise UsageProblem(
            "Nothing to update: pass at least one of --type, --provider, --host, --region, "
            "--health-url, --protected/--no-protected (an empty value clears a field)."
        )
    store = ctx.store()
    current = store.get_target(project.name, args.name) if store is not None else None
    if current is None:
        _not_stored(ctx, project, args.name, "update")
    declared = project.config.targets.get(args.name) if project.config else None
    if fields.get("protected") is False and _unprotects(current, declared):
        question = (
            f"Target {args.name!r} of project {project.name!r} is protected: every deployment"
            " to it asks first (or needs --yes). Unprotect it, so that deployments run"
            " there unasked?"
        )
        if not confirm(question, yes=args.yes):
            raise CliError("Nothing changed.")
    record = ctx.writable_store().update_target(project.name, args.name, **fields)
    info = TargetInfo.merge(args.name, declared, record)
    if args.json:
        emit_json(_record_json(info))
    else:
        changed = ", ".join(f"{k}={'-' if v is None else v}" for k, v in fields.items())
        say(f"Updated target {args.name!r} of project {project.name!r}: {changed}.")
    return 0


def _unprotects(stored: Any, declared: Any) -> bool:
    """Whether dropping the stored record's protection leaves the target unprotected (a
    target the config declares protected stays protected whatever the store says)."""
    return bool(getattr(stored, "protected", False)) and not getattr(declared, "protected", False)


def _not_stored(ctx: Context, project: Project, name: str, verb: str) -> None:
    known = ctx.known_targets(project)
    if known.get(name) == "config":
        raise UsageProblem(
            f"Target {name!r} of project {project.name!r} is declared in the config "
            f"({ctx.shown(project.entry.path) if project.entry else 'config'}), not stored: "
            f"edit the config to {verb} it (`pytest-deploy config edit {project.name}`), or "
            f"store values that override it with `pytest-deploy target add`."
        )
    stored = sorted(n for n, origin in known.items() if "store" in origin)
    raise UsageProblem(
        f"No stored target {name!r} for project {project.name!r}. Stored targets: "
        f"{', '.join(stored) or 'none'}. Add it with `pytest-deploy target add "
        f"{project.name} {name}`."
    )


def target_rows(ctx: Context, project: Project) -> list[TargetInfo]:
    """Every known target of a project, merged (stored values win), sorted by name."""
    config = project.config
    declared = dict(config.targets) if config else {}
    store = ctx.store()
    stored = {t.name: t for t in store.list_targets(project.name)} if store else {}
    in_use = store.targets_in_use(project.name) if store else []
    infos = []
    for name in sorted(set(declared) | set(stored) | set(in_use)):
        if name in declared or name in stored:
            info = TargetInfo.merge(name, declared.get(name), stored.get(name))
        else:
            info = TargetInfo(name=name, origin="history only")
        infos.append(info)
    return infos


def run_list(ctx: Context) -> int:
    """List declared (config) and stored targets with their origin.

    pytest-deploy target list woofs
    """
    project = ctx.project(ctx.args.project, store_only_ok=True)
    infos = target_rows(ctx, project)
    if ctx.args.json:
        emit_json([_record_json(info) for info in infos])
        return 0
    rows = [
        [i.name, i.origin, i.type, i.provider, i.host, i.region, i.protected, i.health_check_url]
        for i in infos
    ]
    print_table(
        ["target", "origin", "type", "provider", "host", "region", "protected", "health url"],
        rows,
        f"No targets for project {project.name!r}: declare them under `targets:` in the "
        f"config or add one with `pytest-deploy target add {project.name} NAME`.",
    )
    if any(i.origin == "history only" for i in infos):
        note(
            "note: 'history only' targets are not declared or stored but keep env vars, "
            "migration history or deployment runs in the store."
        )
    return 0


def run_remove(ctx: Context) -> int:
    """Remove a stored target (its migration history and env vars are kept).

    pytest-deploy target remove woofs staging --yes
    """
    args = ctx.args
    project = ctx.project(args.project, store_only_ok=True)
    check_target_name(args.name)
    store = ctx.store()
    if store is None or store.get_target(project.name, args.name) is None:
        _not_stored(ctx, project, args.name, "remove")
    assert store is not None
    usage = store.target_usage(project.name, args.name)
    kept = (
        f"{usage['migrations']} migration history row(s), {usage['deployments']} deployment "
        f"run(s) and {usage['env_vars']} env var(s)"
    )
    declared = project.config.targets.get(args.name) if project.config else None
    protected = _unprotects(store.get_target(project.name, args.name), declared)
    if usage["migrations"] or usage["deployments"] or protected:
        question = (
            f"Target {args.name!r} of project {project.name!r} has {kept} in the store. They "
            f"are kept (keyed by the target's name) and found again if the target is added "
            f"back. Remove the target?"
        )
        if protected:
            question = (
                f"Target {args.name!r} of project {project.name!r} is protected; removing it"
                " removes that protection too. " + question
            )
        if not confirm(question, yes=args.yes):
            raise CliError("Nothing removed.")
    store.remove_target(project.name, args.name)
    if args.json:
        emit_json({"removed": args.name, "project": project.name, "kept": usage})
    else:
        say(f"Removed target {args.name!r} of project {project.name!r}; kept {kept}.")
    return 0


def _database_url_var(project: Project, target: str) -> str:
    config = project.config
    if config is not None:
        for group in config.groups:
            if group.track_migrations and group.applies_to(target):
                return group.database_url_env
    return "DATABASE_URL"


def probe_target(ctx: Context, project: Project, name: str) -> ProbeResult:
    """Contact target ``name`` of ``project`` the way its type asks for."""
    config = project.config
    declared = config.targets.get(name) if config else None
    store = ctx.store()
    stored = store.get_target(project.name, name) if store else None
    info = TargetInfo.merge(name, declared, stored)
    env = dict(info.env)
    if store is not None:
        env.update(store.env_values(project.name, name))
    base = config.root if config else ctx.cwd
    if info.type == "database":
        var = _database_url_var(project, name)
        url = env.get(var)
        if not url:
            return ProbeResult(
                "SELECT 1",
                False,
                detail=f"{var} is not set for target {name!r}, so there is no database to "
                f"connect to. Set it with `pytest-deploy env set {project.name} {var} - "
                f"--target {name}` (value on stdin) or declare it in the config.",
            )
        return probe_database(url, base)
    if info.host:
        return probe_host(info.host)
    if info.health_check_url:
        return probe_http(expand_vars(info.health_check_url, env))
    return ProbeResult(
        "nothing",
        False,
        detail=f"target {name!r} has no host and no health URL to contact. Set one with "
        f"`pytest-deploy target update {project.name} {name} --host HOST` (a URL, host:port "
        f"or host name), or --type database with a DATABASE_URL.",
    )


def _masked(ctx: Context, project: Project, name: str, result: ProbeResult) -> ProbeResult:
    """The result with every stored env value of the target masked (they are secrets)."""

    store = ctx.store()
    stored = store.env_values(project.name, name) if store else {}
    masker = Masker()
    masker.keep(project.name, name, *stored, *HINT_WORDS)
    masker.add(*stored.values())
    return replace(
        result,
        check=masker.mask(result.check),
        detail=masker.mask(result.detail) if result.detail else result.detail,
    )


def run_test(ctx: Context) -> int:
    """Check that a target answers: SELECT 1 for a database, else HTTP GET / TCP connect.

    pytest-deploy target test woofs production
    """
    args = ctx.args
    project = ctx.project(args.project, store_only_ok=True)
    check_target_name(args.name)
    name = ctx.require_target(project, args.name)
    result = probe_target(ctx, project, name)
    result = _masked(ctx, project, name, result)
    if args.json:
        emit_json({"project": project.name, "target": name, **result.as_dict()})
    elif result.ok:
        status = f" ({result.detail})" if result.detail else ""
        say(f"{project.name} → {name}: ok — {result.check}{status} in {result.latency_ms} ms")
    else:
        note(f"{project.name} → {name}: FAILED — {result.check}: {result.detail}")
    return 0 if result.ok else 1
