"""``pytest-deploy migration list|show|status|apply|rollback|check-rollback|mark-applied|
forget-intent|history`` (and ``accept-checksum|baseline``, in ``migration_repair.py``).

Tracked files come from the config (groups with ``track_migrations``), their state from the
store's history: applied (same checksum), drifted (applied, file changed since), pending
(never applied, or its last attempt failed or was rolled back) and missing (applied, file
gone). ``apply`` is a pytest run of the tracked groups.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy_plugin.config import DeployConfig
from deploy_plugin.facts import iso_utc, who
from deploy_plugin.plan import (
    AppliedMigration,
    check_migrations,
    file_checksum,
    match_files,
    migration_state,
)
from deploy_plugin.plugin.options import DeployOptions
from deploy_plugin.store.base import MigrationRecord
from deploy_plugin.targets import resolve

from . import rollback
from .args import add_command, add_family, add_target_option, common_options, positive_int
from .audit_view import audit_json, audit_rows, print_audit
from .context import Context, Project, confirm
from .output import UsageProblem, emit_json, note, print_table, say, warn, when
from .runner import run_pytest


@dataclass(frozen=True)
class TrackedFile:
    """A migration file of a tracked group: root-relative path, group, checksum."""

    file: str
    group: str
    checksum: str


def register(subparsers: Any) -> None:
    family = add_family(
        subparsers,
        "migration",
        help="tracked migrations: list, show, status, apply, rollback, check-rollback,"
        " mark-applied, accept-checksum, baseline, history",
        example="pytest-deploy migration status woofs --target production",
    )

    def command(name: str, help: str, example: str, handler: Any) -> Any:
        parser = add_command(
            family, name, help=help, example=example, handler=handler,
            parents=[common_options()],
        )  # fmt: skip
        parser.add_argument("project", metavar="PROJECT")
        return parser

    listing = command(
        "list",
        "list the tracked migration files (with --target: their state)",
        "pytest-deploy migration list woofs",
        run_list,
    )
    add_target_option(listing, help="also show each file's state on this target")
    show = command(
        "show",
        "show one migration file: group, checksum, history row, content",
        "pytest-deploy migration show woofs migrations/001_create_schema.sql -t production",
        run_show,
    )
    show.add_argument("file", metavar="FILE", help="path relative to the config's root")
    add_target_option(show, help="also show the file's history row on this target")
    status = command(
        "status",
        "applied vs pending vs drifted files on a target (exit 1 when any drifted)",
        "pytest-deploy migration status woofs --target production",
        run_status,
    )
    add_target_option(status, help="the target (required)")
    apply = command(
        "apply",
        "apply pending migrations (a pytest run of the tracked groups)",
        "pytest-deploy migration apply woofs --target production --dry-run",
        run_apply,
    )
    add_target_option(apply, help="the target (required)")
    apply.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    apply.add_argument("--yes", "-y", action="store_true", help="confirm a protected target")
    apply.add_argument(
        "--health-check", action="store_true", help="also run the config's health check"
    )
    apply.add_argument(
        "--skip-validation",
        action="store_true",
        help="do not check required env vars (drift and the lock are still checked)",
    )
    apply.add_argument(
        "--deploy-env", action="append", default=[], metavar="KEY=VALUE",
        help="an env var for this run (a secret: masked)",
    )  # fmt: skip
    rollback.register(command)
    rollback.register_check(command)
    forget = command(
        "forget-intent",
        "forget a shell-applied migration a dead run left in doubt (it did NOT apply)",
        "pytest-deploy migration forget-intent woofs migrations/001_create_schema.sql -t prod",
        run_forget_intent,
    )
    forget.add_argument("file", metavar="FILE", help="path relative to the config's root")
    add_target_option(forget, help="the target (required)")
    forget.add_argument("--yes", "-y", action="store_true", help="confirm a protected target")
    from . import migration_repair

    migration_repair.register(command)
    history = command(
        "history",
        "the migration history of a target, newest first",
        "pytest-deploy migration history woofs --target production --limit 20",
        run_history,
    )
    add_target_option(history, help="the target (required)")
    history.add_argument("--limit", type=positive_int, default=20, help="rows (default 20)")


def tracked_files(config: DeployConfig, target: str | None) -> list[TrackedFile]:
    """Files of the tracked groups (that run for ``target``), in run order."""
    seen: dict[str, TrackedFile] = {}
    for group in config.groups:
        if not group.track_migrations or (target and not group.applies_to(target)):
            continue
        files, _unmatched = match_files(config.root, group.file_patterns)
        for rel in files:
            if rel not in seen:
                seen[rel] = TrackedFile(rel, group.name, file_checksum(config.root / rel))
    return list(seen.values())


def tracked_groups(config: DeployConfig, target: str) -> list[str]:
    return [g.name for g in config.groups if g.track_migrations and g.applies_to(target)]


def file_state(tracked: TrackedFile, record: MigrationRecord | None) -> str:
    """applied | drifted | pending | failed | rolled_back (plan's one classifier)."""
    return migration_state(tracked.checksum, record)


def _applied(ctx: Context, project: str, target: str) -> dict[str, MigrationRecord]:
    store = ctx.store()
    return store.applied_migrations(project, target) if store else {}


def status_rows(
    tracked: list[TrackedFile], applied: dict[str, MigrationRecord]
) -> list[dict[str, Any]]:
    """One row per tracked file, then one per applied file that no longer exists."""
    rows = []
    for item in tracked:
        record = applied.get(item.file)
        rows.append(_row(item.file, item.group, file_state(item, record), item.checksum, record))
    present = {t.file for t in tracked}
    for rel, record in sorted(applied.items()):
        if rel not in present and record.status == "success":
            rows.append(_row(rel, None, "missing", None, record))
    return rows


def _row(
    file: str, group: str | None, state: str, checksum: str | None, record: MigrationRecord | None
) -> dict[str, Any]:
    return {
        "file": file, "group": group, "state": state, "checksum": checksum,
        "applied_checksum": record.checksum if record else None,
        "applied_at": record.applied_at if record else None,
        "applied_by": record.applied_by if record else None,
        "error_message": record.error_message if record else None,
    }  # fmt: skip


def counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Totals per state shown (applied, failed, rolled_back, pending, drifted, missing), and
    ``to_apply``: what the next deployment applies (pending, failed and rolled back)."""
    total = dict.fromkeys(("applied", "failed", "rolled_back", "pending", "drifted", "missing"), 0)
    for row in rows:
        total[row["state"]] += 1
    total["to_apply"] = total["pending"] + total["failed"] + total["rolled_back"]
    return total


def counts_line(total: dict[str, int]) -> str:
    """``2 applied, 1 failed, 1 pending, 0 drifted (2 to apply on the next run)``: every
    state a row shows is counted under its own name."""
    parts = [f"{total['applied']} applied"]
    parts += [f"{total[s]} {s.replace('_', ' ')}" for s in ("failed", "rolled_back") if total[s]]
    parts += [f"{total['pending']} pending", f"{total['drifted']} drifted"]
    parts += [f"{total['missing']} missing"] if total["missing"] else []
    line = ", ".join(parts)
    if total["to_apply"] != total["pending"]:
        line += f" ({total['to_apply']} to apply on the next run)"
    return line


def run_list(ctx: Context) -> int:
    project = ctx.project(ctx.args.project)
    config = project.require_config()
    tracked = tracked_files(config, None)
    states: dict[str, str] = {}
    if ctx.args.target:
        target = ctx.require_target(project, ctx.args.target, in_use=True)
        applied = _applied(ctx, project.name, target)
        states = {t.file: file_state(t, applied.get(t.file)) for t in tracked}
    if ctx.args.json:
        emit_json(
            [{"file": t.file, "group": t.group, "checksum": t.checksum,
              **({"state": states[t.file]} if states else {})} for t in tracked]
        )  # fmt: skip
        return 0
    headers = ["file", "group", "checksum"] + (["state"] if states else [])
    rows = [
        [t.file, t.group, t.checksum[:12]] + ([states[t.file]] if states else []) for t in tracked
    ]
    print_table(headers, rows, f"Project {project.name!r} has no tracked migration files.")
    return 0


def resolve_file(ctx: Context, config: DeployConfig, given: str) -> str | None:
    """A FILE argument as a root-relative path (tried under the root, then the current
    folder), or None when no such file exists under the root."""
    path = Path(given)
    root = config.root.resolve()
    candidates = [path] if path.is_absolute() else [config.root / path, ctx.cwd / path]
    for candidate in candidates:
        if candidate.is_file():
            try:
                return candidate.resolve().relative_to(root).as_posix()
            except ValueError:
                continue
    return None


def _tracked_file(ctx: Context, project: Project, given: str, target: str | None) -> TrackedFile:
    config = project.require_config()
    tracked = tracked_files(config, target)
    rel = resolve_file(ctx, config, given)
    listing = ", ".join(t.file for t in tracked[:10]) + (" ..." if len(tracked) > 10 else "")
    if rel is None:
        raise UsageProblem(
            f"No such migration file {given!r} under the root of project {project.name!r} "
            f"({ctx.shown(config.root)}); looked there and in the current folder. Tracked "
            f"files: {listing or 'none'}."
        )
    found = next((t for t in tracked if t.file == rel), None)
    if found is None:
        where = f" for target {target!r}" if target else ""
        raise UsageProblem(
            f"{rel} is not a tracked migration of project {project.name!r}{where}: no group "
            f"with track_migrations matches it. Tracked files: {listing or 'none'}."
        )
    return found


def run_show(ctx: Context) -> int:
    project = ctx.project(ctx.args.project)
    config = project.require_config()
    target = ctx.require_target(project, ctx.args.target, in_use=True) if ctx.args.target else None
    item = _tracked_file(ctx, project, ctx.args.file, None)
    record = _applied(ctx, project.name, target).get(item.file) if target else None
    audits = audit_rows(ctx.store(), project.name, target, item.file) if target else []
    content = (config.root / item.file).read_text(encoding="utf-8", errors="replace")
    if ctx.args.json:
        data: dict[str, Any] = {"file": item.file, "group": item.group, "checksum": item.checksum,
                "path": str(config.root / item.file), "content": content}  # fmt: skip
        if target:
            data["target"] = target
            data["history"] = _row(item.file, item.group, file_state(item, record),
                                   item.checksum, record)  # fmt: skip
            data["audit"] = [audit_json(a) for a in audits]
        emit_json(data)
        return 0
    say(f"file:     {item.file}")
    say(f"group:    {item.group}")
    say(f"checksum: {item.checksum}")
    if target:
        state = file_state(item, record)
        by = f" at {when(record.applied_at)} by {record.applied_by or '?'}" if record else ""
        say(f"{target}: {state}{by}")
        for a in audits:
            change = f"{a.old_checksum[:12]} → " if a.old_checksum else ""
            why = f": {a.reason}" if a.reason else ""
            say(f"  {a.action} at {when(a.at)} by {a.who} ({change}{a.new_checksum[:12]}){why}")
    say()
    sys.stdout.write(content if content.endswith("\n") or not content else content + "\n")
    return 0


def run_status(ctx: Context) -> int:
    project = ctx.project(ctx.args.project)
    config = project.require_config()
    target = ctx.require_target(project, ctx.args.target, in_use=True)
    tracked = tracked_files(config, target)
    applied = _applied(ctx, project.name, target)
    rows = status_rows(tracked, applied)
    total = counts(rows)
    check = check_migrations(
        [t.file for t in tracked],
        {t.file: t.checksum for t in tracked},
        {f: AppliedMigration(r.checksum, r.status, iso_utc(r.applied_at), r.applied_by)
         for f, r in applied.items()},
    )  # fmt: skip
    if ctx.args.json:
        emit_json({"project": project.name, "target": target, **total, "files": rows,
                   "warnings": list(check.warnings)})  # fmt: skip
    else:
        say(f"{project.name} → {target} ({ctx.describe_store()})")
        print_table(
            ["file", "group", "state", "applied at", "by"],
            [[r["file"], r["group"], r["state"], when(r["applied_at"]), r["applied_by"]]
             for r in rows],
            "no tracked migration files",
        )  # fmt: skip
        say(counts_line(total))
        for warning in check.warnings:
            warn(warning)
        for line in check.drift:
            note(f"drifted: {line}")
        if check.drift:
            note(
                "restore the applied content (and add a new migration for the change), or accept"
                f" an intended edit: `pytest-deploy migration accept-checksum {project.name} FILE"
                f" --target {target} --reason TEXT`"
            )
    return 1 if total["drifted"] else 0


def run_apply(ctx: Context) -> int:
    args = ctx.args
    project = ctx.project(args.project)
    config = project.require_config()
    target = ctx.require_target(project, args.target)
    groups = tracked_groups(config, target)
    if not groups:
        raise UsageProblem(
            f"Project {project.name!r} has no tracked migration group for target {target!r} "
            f"(a group tracks migrations when every pattern ends in .sql, or with "
            f"track_migrations: true). Deploy it with `pytest-deploy deploy run`."
        )
    options = DeployOptions(
        targets=(target,), dry_run=args.dry_run, groups=tuple(groups), yes=args.yes,
        no_health_check=not args.health_check, skip_validation=args.skip_validation,
        env=tuple(args.deploy_env),
    )  # fmt: skip
    return run_pytest(ctx, config.path, options, as_json=args.json)


@contextmanager
def _history_change(ctx: Context, project: Project, target: str, what: str) -> Iterator[None]:
    """Change a target's history as a deployment would: a protected target confirmed,
    under the deployment lock (so never beside a running deployment)."""
    store = ctx.writable_store()
    info, _ = resolve(project.require_config(), target, store)
    if (
        info is not None
        and info.protected
        and not confirm(
            f"Target {target!r} of project {project.name!r} is protected: {what}?", yes=ctx.args.yes
        )
    ):
        raise UsageProblem(f"Not confirmed: nothing changed on protected target {target!r}.")
    lock = store.acquire_lock(project.name, target, holder=who())
    try:
        yield
    finally:
        lock.release()


def run_forget_intent(ctx: Context) -> int:
    args = ctx.args
    project = ctx.project(args.project)
    project.require_config()
    target = ctx.require_target(project, args.target)
    item = _tracked_file(ctx, project, args.file, target)
    store = ctx.writable_store()
    with _history_change(ctx, project, target, f"forget the attempt to apply {item.file}"):
        forgotten = store.forget_intent(project.name, target, item.file)
    if not forgotten:
        raise UsageProblem(
            f"{item.file} has no migration left in doubt on {project.name} → {target}; "
            f"nothing changed. `pytest-deploy migration status {project.name} --target "
            f"{target}` shows every file's state."
        )
    if args.json:
        emit_json({"project": project.name, "target": target, "file": item.file,
                   "forgotten": True})  # fmt: skip
    else:
        say(
            f"Forgot the unfinished attempt to apply {item.file} to {project.name} → {target};"
            " the next deployment applies it."
        )
    return 0


def run_history(ctx: Context) -> int:
    project = ctx.project(ctx.args.project, store_only_ok=True)
    target = ctx.require_target(project, ctx.args.target, in_use=True)
    store = ctx.store()
    records = store.migration_history(project.name, target, ctx.args.limit) if store else []
    audits = audit_rows(store, project.name, target)
    if ctx.args.json:
        emit_json([{"file": r.file, "checksum": r.checksum, "applied_at": r.applied_at,
                    "applied_by": r.applied_by, "execution_time_ms": r.execution_time_ms,
                    "status": r.status, "error_message": r.error_message,
                    "audit": [audit_json(a) for a in audits if a.file == r.file]}
                   for r in records])  # fmt: skip
        return 0
    print_table(
        ["applied at", "file", "status", "by", "time ms", "checksum", "error"],
        [[when(r.applied_at), r.file, r.status, r.applied_by, r.execution_time_ms,
          r.checksum[:12], r.error_message] for r in records],
        f"No migration history for {project.name} → {target}.",
    )  # fmt: skip
    shown = {r.file for r in records}
    print_audit([a for a in audits if a.file in shown])
    return 0
