"""``pytest-deploy migration list|show|status|apply|rollback|check-rollback|mark-applied|
forget-intent|history`` (and ``accept-checksum|baseline``, in ``migration_repair.py``;
``new``, in ``new_migration.py``).

Tracked files come from the config (groups with ``track_migrations``), their state from the
store's history: applied (same checksum), drifted (applied, file changed since), changed (a
repeatable migration, ``R__name.sql``, changed since: applied again by the next run),
pending (never applied, or its last attempt failed or was rolled back) and missing (applied,
file gone). ``apply`` is a pytest run of the tracked groups.
"""

from __future__ import annotations

import sys
from typing import Any

from deploy_plugin.facts import iso_utc
from deploy_plugin.plan import AppliedMigration, check_migrations, is_repeatable
from deploy_plugin.store.base import MigrationRecord

from .args import DEPLOY_ENV_HELP, TARGET_REQUIRED, YES_PROTECTED, Commands, positive_int
from .audit_view import audit_json, audit_rows, print_audit
from .context import Context
from .migration_repair import register as register_repair
from .new_migration import register as register_new
from .output import UsageProblem, emit_json, note, print_table, say, warn, when
from .rollback import register as register_rollback
from .tracked import (
    TrackedFile,
    file_state,
    history_change,
    on_target,
    recorded,
    run_tracked,
    tracked_file,
    tracked_files,
)


def register(commands: Commands) -> None:
    """Tracked migrations: list, show, status, apply, rollback, check-rollback, mark-applied,
    accept-checksum, baseline, history, new.

    pytest-deploy migration status woofs --target production
    """
    family = commands.family("migration", register.__doc__)
    family.add(run_list, "project", target="also show each file's state on this target")
    family.add(run_show, "project file", target="also show the file's history row on this target")
    family.add(run_status, "project", target=TARGET_REQUIRED)
    apply = family.add(
        run_apply, "project", target=TARGET_REQUIRED, dry_run=True, yes=YES_PROTECTED,
        deploy_env=DEPLOY_ENV_HELP,
    )  # fmt: skip
    apply.add_argument(
        "--health-check", action="store_true", help="also run the config's health check"
    )
    apply.add_argument(
        "--to",
        metavar="FILE",
        help="apply pending migrations up to and including FILE (root-relative, or a base"
        " name only one tracked file has); later ones stay pending (pytest's --deploy-to)",
    )
    apply.add_argument(
        "--skip-validation",
        action="store_true",
        help="do not check required env vars (drift and the lock are still checked)",
    )
    register_rollback(family)
    family.add(run_forget_intent, "project file", target=TARGET_REQUIRED, yes=YES_PROTECTED)
    register_repair(family)
    history = family.add(run_history, "project", target=TARGET_REQUIRED)
    history.add_argument("--limit", type=positive_int, default=20, help="rows (default 20)")
    register_new(family)


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
    """Totals per state shown (applied, failed, rolled_back, pending, drifted, changed,
    missing), and ``to_apply``: what the next deployment applies (pending, failed, rolled
    back and changed repeatables)."""
    states = ("applied", "failed", "rolled_back", "pending", "drifted", "changed", "missing")
    total = dict.fromkeys(states, 0)
    for row in rows:
        total[row["state"]] += 1
    total["to_apply"] = total["pending"] + total["failed"] + total["rolled_back"]
    total["to_apply"] += total["changed"]
    return total


def counts_line(total: dict[str, int]) -> str:
    """``2 applied, 1 failed, 1 pending, 0 drifted (2 to apply on the next run)``: every
    state a row shows is counted under its own name."""
    parts = [f"{total['applied']} applied"]
    parts += [f"{total[s]} {s.replace('_', ' ')}" for s in ("failed", "rolled_back") if total[s]]
    parts += [f"{total['pending']} pending", f"{total['drifted']} drifted"]
    parts += [f"{total['changed']} changed (repeatable)"] if total["changed"] else []
    parts += [f"{total['missing']} missing"] if total["missing"] else []
    line = ", ".join(parts)
    if total["to_apply"] != total["pending"]:
        line += f" ({total['to_apply']} to apply on the next run)"
    return line


def run_list(ctx: Context) -> int:
    """List the tracked migration files (with --target: their state).

    pytest-deploy migration list woofs
    """
    project = ctx.project(ctx.args.project)
    config = project.require_config()
    tracked = tracked_files(config, None)
    states: dict[str, str] = {}
    if ctx.args.target:
        target = ctx.require_target(project, ctx.args.target, in_use=True)
        applied = recorded(ctx, project.name, target)
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


def run_show(ctx: Context) -> int:
    """Show one migration file: group, checksum, history row, content.

    pytest-deploy migration show woofs migrations/001_create_schema.sql -t production
    """
    project = ctx.project(ctx.args.project)
    config = project.require_config()
    target = ctx.require_target(project, ctx.args.target, in_use=True) if ctx.args.target else None
    item = tracked_file(ctx, project, ctx.args.file, None)
    record = recorded(ctx, project.name, target).get(item.file) if target else None
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
    """Applied vs pending vs drifted files on a target (exit 1 when any drifted).

    pytest-deploy migration status woofs --target production
    """
    project = ctx.project(ctx.args.project)
    config = project.require_config()
    target = ctx.require_target(project, ctx.args.target, in_use=True)
    tracked = tracked_files(config, target)
    applied = recorded(ctx, project.name, target)
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
    """Apply pending migrations (a pytest run of the tracked groups); with --to FILE, those
    up to and including FILE.

    pytest-deploy migration apply woofs --target production --to 003_orders.sql --dry-run
    """
    return run_tracked(
        ctx, " (a group tracks migrations when every pattern ends in .sql, or with"
        " track_migrations: true). Deploy it with `pytest-deploy deploy run`.",
        no_health_check=not ctx.args.health_check, skip_validation=ctx.args.skip_validation,
        deploy_to=ctx.args.to,
    )  # fmt: skip


def run_forget_intent(ctx: Context) -> int:
    """Forget a shell-applied migration a dead run left in doubt (it did NOT apply).

    pytest-deploy migration forget-intent woofs migrations/001_create_schema.sql -t prod
    """
    args = ctx.args
    project, _config, target = on_target(ctx)
    item = tracked_file(ctx, project, args.file, target)
    store = ctx.writable_store()
    with history_change(ctx, project, target, f"forget the attempt to apply {item.file}"):
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
    """The migration history of a target, newest first.

    pytest-deploy migration history woofs --target production --limit 20
    """
    project = ctx.project(ctx.args.project, store_only_ok=True)
    target = ctx.require_target(project, ctx.args.target, in_use=True)
    store = ctx.store()
    records = store.migration_history(project.name, target, ctx.args.limit) if store else []
    audits = audit_rows(store, project.name, target)
    shown = {r.file for r in records}
    repeats = [
        r
        for r in (store.repeatable_applies(project.name, target) if store else [])
        if r.file in shown
    ]
    if ctx.args.json:
        emit_json([{"file": r.file, "checksum": r.checksum, "applied_at": r.applied_at,
                    "applied_by": r.applied_by, "execution_time_ms": r.execution_time_ms,
                    "status": r.status, "error_message": r.error_message,
                    "audit": [audit_json(a) for a in audits if a.file == r.file],
                    **({"applies": [_apply_json(a) for a in repeats if a.file == r.file]}
                       if is_repeatable(r.file) else {})}
                   for r in records])  # fmt: skip
        return 0
    print_table(
        ["applied at", "file", "status", "by", "time ms", "checksum", "error"],
        [[when(r.applied_at), r.file, r.status, r.applied_by, r.execution_time_ms,
          r.checksum[:12], r.error_message] for r in records],
        f"No migration history for {project.name} → {target}.",
    )  # fmt: skip
    if repeats:
        say()
        say("Repeatable migrations, every apply (newest first):")
        print_table(
            ["applied at", "file", "by", "time ms", "checksum"],
            [[when(r.applied_at), r.file, r.applied_by, r.execution_time_ms, r.checksum[:12]]
             for r in repeats],
            "",
        )  # fmt: skip
    print_audit([a for a in audits if a.file in shown])
    return 0


def _apply_json(record: MigrationRecord) -> dict[str, Any]:
    """One apply of a repeatable migration, for ``migration history --json``."""
    return {"checksum": record.checksum, "applied_at": record.applied_at,
            "applied_by": record.applied_by,
            "execution_time_ms": record.execution_time_ms}  # fmt: skip
