"""``pytest-deploy history`` (deployment runs) and ``pytest-deploy unlock``."""

from __future__ import annotations

from dataclasses import asdict

from deploy_plugin.processes import alive_here

from .args import TARGET_REQUIRED, Commands, positive_int
from .context import Context, Project
from .deploy import deployment_json
from .output import CliError, confirm, emit_json, print_table, say, when


def register(commands: Commands) -> None:
    history = commands.add(run_history, "project", target="only this target")
    history.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        help="rows (default 20); with --html: deployments per target shown in full (default "
        "200, older ones summarised)",
    )
    history.add_argument(
        "--html",
        metavar="FILE",
        help="write every target's history as one self-contained HTML page",
    )
    history.add_argument(
        "--steps", action="store_true", help="also list each run's steps (--json: always)"
    )
    commands.add(
        run_unlock, "project", target=TARGET_REQUIRED,
        yes="remove it even if its holder still runs here",
    )  # fmt: skip


def run_history(ctx: Context) -> int:
    """Deployment runs of a project, newest first.

    pytest-deploy history woofs --target production --limit 10
    """
    args = ctx.args
    project = ctx.project(args.project, store_only_ok=True)
    target = ctx.require_target(project, args.target, in_use=True) if args.target else None
    store = ctx.store()
    if args.html:
        return _write_html(ctx, project, target)
    limit = args.limit or 20
    records = store.deployments(project.name, target, limit=limit) if store else []
    if args.json:
        data = []
        assert store is not None or not records
        for record in records:
            item = deployment_json(record)
            steps = store.deployment_steps(record.id) if store is not None else []
            item["steps"] = [asdict(step) for step in steps]
            data.append(item)
        emit_json(data)
        return 0
    rows = []
    for record in records:
        item = deployment_json(record)
        rows.append([item["id"], item["target"], item["status"], item["dry_run"],
                     when(item["started_at"]), item["duration_ms"], item["who"]])  # fmt: skip
    print_table(
        ["run id", "target", "status", "dry run", "started", "ms", "who"],
        rows,
        f"No deployment runs of {project.name}" + (f" → {target}." if target else "."),
    )
    if args.steps and store is not None:
        for record in records:
            say()
            say(f"run {record.id} ({record.target}, {record.status}):")
            print_table(
                ["step", "outcome", "ms", "message"],
                [[s.node_id, s.outcome, s.duration_ms, s.message]
                 for s in store.deployment_steps(record.id)],
                "  no steps recorded",
            )  # fmt: skip
    return 0


def _write_html(ctx: Context, project: Project, target: str | None) -> int:
    """``history --html FILE``: the page of every target (or ``--target``)."""
    # deferred: +84 modules, 89 ms (report.html.model, migrate.statements, yaml.reader, …)
    from deploy_plugin.report.html import DEFAULT_LIMIT, write_history_page

    path = ctx.args.html
    store = ctx.store()
    if store is None:
        raise CliError(f"No store found, so there is no history of {project.name} to write.")
    try:
        data = write_history_page(
            store, project.name, path, config=project.config,
            targets=[target] if target else None, limit=ctx.args.limit or DEFAULT_LIMIT,
            rootdir=ctx.rootdir,
        )  # fmt: skip
    except OSError as err:
        raise CliError(
            f"Could not write the history page {path}: {err.strerror or err}. Choose a file "
            f"in a folder you can write to."
        ) from None
    runs = sum(len(t.shown) for t in data.targets)
    older = sum(t.older.count for t in data.targets if t.older is not None)
    if ctx.args.json:
        emit_json({"html": str(path), "targets": len(data.targets), "deployments": runs,
                   "summarised": older})  # fmt: skip
    else:
        more = f", {older} older one(s) summarised (--limit)" if older else ""
        say(f"Wrote {path}: {len(data.targets)} target(s), {runs} deployment(s) in full{more}.")
    return 0


def run_unlock(ctx: Context) -> int:
    """Remove the deployment lock a dead run left behind.

    pytest-deploy unlock woofs --target production
    """
    args = ctx.args
    project = ctx.project(args.project, store_only_ok=True)
    target = ctx.require_target(project, args.target, in_use=True)
    store = ctx.store()
    info = store.lock_info(project.name, target) if store else None
    if info is None:
        message = f"No deployment lock is held for {project.name} → {target}; nothing changed."
        emit_json({"removed": None}) if args.json else say(message)
        return 0
    assert store is not None
    holder = f"{info.holder} (host {info.host}, pid {info.pid}, since {when(info.started_at)})"
    if alive_here(info.host, info.pid) and not confirm(
        f"The lock of {project.name} → {target} is held by {holder}, which is still running "
        f"on this host; removing it lets a second deployment start beside it. Remove it?",
        yes=args.yes,
    ):
        raise CliError("Nothing removed.")
    removed = store.break_lock(project.name, target)
    if args.json:
        emit_json({"removed": None if removed is None else {
            "holder": removed.holder, "host": removed.host, "pid": removed.pid,
            "started_at": removed.started_at}})  # fmt: skip
    else:
        say(f"Removed the deployment lock of {project.name} → {target} held by {holder}.")
    return 0
