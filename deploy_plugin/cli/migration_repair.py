"""``pytest-deploy migration accept-checksum|baseline|mark-applied``: history changes made by
hand.

``accept-checksum`` is Flyway's ``repair`` for one file: an applied migration was edited on
purpose (a comment, a fix the database already has), so its new checksum becomes the
recorded one, in the store's history *and* in the target database's ledger (which a
history row recovered from it would copy), with an audit row naming who, when and why.
``baseline`` adopts a database that already has the schema of every tracked file up to one
of them: those files are recorded as applied without running; ``mark-applied`` does so for
one file. For a group the built-in executor applies, the database decides what is applied,
so ``baseline`` and ``mark-applied`` write the target database's ledger rows first, then the
history with an audit row. All take the deployment lock and a protected target's
confirmation; bad input changes nothing.
"""

from __future__ import annotations

import shlex

from deploy_plugin.config import DeployConfig, Group
from deploy_plugin.facts import who
from deploy_plugin.store.base import MigrationRecord, Store, utcnow
from deploy_plugin.targets import resolve, step_env

from .args import TARGET_REQUIRED, YES_PROTECTED, Commands
from .context import Context, Project
from .output import CliError, UsageProblem, emit_json, say, warn, when
from .tracked import (
    TrackedFile,
    file_state,
    history_change,
    on_target,
    recorded,
    tracked_file,
    tracked_files,
)


def register(family: Commands) -> None:
    """Add ``mark-applied``, ``accept-checksum`` and ``baseline`` to the ``migration`` family."""
    family.add(
        run_mark_applied, "project file", target=TARGET_REQUIRED, yes=YES_PROTECTED,
        reason="kept in the audit row",
    )  # fmt: skip
    family.add(
        run_accept_checksum, "project file", target=TARGET_REQUIRED, yes=YES_PROTECTED,
        reason="why the edit is accepted (kept in the audit row; required)",
    )  # fmt: skip
    baseline = family.add(
        run_baseline, "project", target=TARGET_REQUIRED, yes=YES_PROTECTED,
        reason="kept in each file's audit row",
    )  # fmt: skip
    baseline.add_argument(
        "--to", metavar="FILE", help="the last file the database already has (required)"
    )


# -- mark-applied -------------------------------------------------------------------------


def run_mark_applied(ctx: Context) -> int:
    r"""Record a migration as applied without running it (history, ledger, audit row).

    pytest-deploy migration mark-applied woofs migrations/001_create_schema.sql -t production \
        --reason 'restored from a dump that has it'
    """
    args = ctx.args
    project, config, target = on_target(ctx)
    item = tracked_file(ctx, project, args.file, target)
    record = recorded(ctx, project.name, target).get(item.file)
    state = file_state(item, record)
    if state == "drifted":
        assert record is not None
        raise UsageProblem(
            f"{item.file} was applied to {target} with checksum {record.checksum}, and the "
            f"file has changed since (now {item.checksum}). mark-applied records files that "
            f"were never recorded; restore the applied content and add a new migration for "
            f"the change."
        )
    group = config.group(item.group)
    url, unset = _ledger_url_or_why(ctx, project, config, target, group)
    if unset and state == "applied":  # the history has it: only the ledger could change
        raise UsageProblem(
            f"{item.file} is already recorded as applied to {target} in the history; what"
            f" can lack it is the target database's ledger, which this command cannot write:"
            f" {unset.split(': ', 1)[1]} Nothing changed."
        )
    reason = " ".join((args.reason or "").split()) or None
    new = MigrationRecord(
        file=item.file, checksum=item.checksum, applied_at=utcnow(), applied_by=who(),
        execution_time_ms=None, status="success", error_message=None,
    )  # fmt: skip
    with history_change(ctx, project, target, f"mark {item.file} as applied"):
        # the database first: if the store write then fails, the next deployment records
        # the history row from the ledger (the database decides)
        in_ledger = _mark_in_ledger(url, config, project.name, target, [item])
        if state == "applied" and not in_ledger:
            assert record is not None
            say(
                f"{item.file} is already applied to {target} (at {when(record.applied_at)} by "
                f"{record.applied_by or '?'}); nothing changed."
            )
            return 0
        ctx.writable_store().mark_applied(
            project.name, target, new, recorded=state == "applied", reason=reason
        )
    if args.json:
        emit_json({"project": project.name, "target": target, "file": item.file,
                   "group": item.group, "state": "applied", "checksum": item.checksum,
                   "ledger": "recorded" if in_ledger else "not used" if url is None else "had it",
                   "reason": reason})  # fmt: skip
    else:
        where = " and in the target database's ledger" if in_ledger else ""
        say(f"Marked {item.file} as applied to {project.name} → {target}{where} (not run).")
    if unset:
        warn(unset)
    return 0


def _ledger_url_or_why(
    ctx: Context, project: Project, config: DeployConfig, target: str, group: Group | None
) -> tuple[str | None, str | None]:
    """The URL of the ledger to write for ``group`` (None for a deploy_command's group), or
    why it cannot be written: the history alone is then recorded, and the next deployment
    stops at preflight (the database lacks the file) until the ledger has it too."""
    if group is None:
        return None, None
    try:
        return _ledger_url(ctx, project, config, target, group), None
    except UsageProblem:
        return None, (
            f"The target database's ledger was not written: ${group.database_url_env} is not"
            f" set for target {target!r}, and the database decides what is applied, so the"
            " next deployment stops at preflight until its ledger has the file too. Set it"
            f" (`pytest-deploy env set {project.name} {group.database_url_env} - --target"
            f" {target}`) and run this command again."
        )


def _mark_in_ledger(
    url: str | None, config: DeployConfig, project: str, target: str, items: list[TrackedFile]
) -> list[str]:
    """Write the ledger rows of ``items`` (a built-in group's) that the target database
    lacks; the files written (none when ``url`` is None: a deploy_command's group)."""
    if url is None or not items:
        return []
    # deferred: +9 modules, 20 ms (migrate.statements, migrate.pg_executor, migrate.ledger, …)
    from deploy_plugin.migrate.executor import ConnectError, SqlExecutor
    from deploy_plugin.migrate.ledger import Ledger

    try:
        with SqlExecutor(url, base=config.root) as executor:
            ledger = Ledger(executor, project, target)
            return ledger.mark([(t.file, t.checksum) for t in items], who())
    except ConnectError as err:
        raise CliError(f"{err}. Nothing changed.") from None
    except Exception as err:  # a driver error: one paragraph, the store untouched
        raise CliError(
            "cannot write the ledger of the target database:"
            f" {' '.join(str(err).split())}. Nothing changed in the store."
        ) from None


# -- accept-checksum ----------------------------------------------------------------------


def run_accept_checksum(ctx: Context) -> int:
    r"""Accept an intended edit of an applied migration (its new checksum, with an audit row).

    pytest-deploy migration accept-checksum woofs migrations/001_init.sql -t production \
        --reason 'comment added; the schema is unchanged'
    """
    args = ctx.args
    project, config, target = on_target(ctx)
    reason = " ".join((args.reason or "").split())
    item = tracked_file(ctx, project, args.file, target)
    command = (
        f"pytest-deploy migration accept-checksum {shlex.quote(project.name)}"
        f" {shlex.quote(item.file)} --target {target}"
    )
    if not reason:
        raise UsageProblem(
            f"{command} needs --reason TEXT: why the edit of {item.file} is accepted (kept in"
            " the audit row with who and when, shown by `migration show` and `migration"
            " history`). Nothing changed."
        )
    record = recorded(ctx, project.name, target).get(item.file)
    state = file_state(item, record)
    if state != "drifted" or record is None:
        raise UsageProblem(_not_drifted(project, target, item, state, record))
    group = config.group(item.group)
    ledger_url = _ledger_url(ctx, project, config, target, group) if group else None
    store = ctx.writable_store()
    with history_change(ctx, project, target, f"accept the edit of {item.file}"):
        # the ledger first: if the store write then fails, the file still reads as drifted
        # and the same command completes it (the ledger's UPDATE is idempotent)
        ledger = _accept_in_ledger(ledger_url, config, project.name, target, item)
        accepted = store.accept_checksum(
            project.name, target, item.file,
            old=record.checksum, new=item.checksum, reason=reason, who=who(),
        )  # fmt: skip
    if not accepted:
        raise CliError(
            f"The history row of {item.file} on {project.name} → {target} changed while this"
            " command ran (another command or deployment); nothing was accepted. Check"
            f" `pytest-deploy migration show {project.name} {item.file} --target {target}` and"
            " run it again."
        )
    if args.json:
        emit_json({"project": project.name, "target": target, "file": item.file,
                   "old_checksum": record.checksum, "new_checksum": item.checksum,
                   "reason": reason, "ledger": ledger})  # fmt: skip
        return 0
    say(
        f"Accepted the edit of {item.file} on {project.name} → {target}: checksum"
        f" {record.checksum[:12]} → {item.checksum[:12]}. {_ledger_note(ledger)}"
    )
    say(f"Audit: by {who()}, reason: {reason}")
    return 0


def _not_drifted(
    project: Project, target: str, item: TrackedFile, state: str, record: MigrationRecord | None
) -> str:
    where = f"{project.name} → {target}"
    if state == "applied" and record is not None:
        return (
            f"{item.file} is applied to {where} with the checksum it has now"
            f" ({item.checksum[:12]}, at {when(record.applied_at)} by {record.applied_by or '?'}):"
            " there is no edit to accept; nothing changed."
        )
    return (
        f"{item.file} is {state} on {where}, not applied: accept-checksum only accepts an edit"
        " of an applied migration (a drifted one). Deploy it (`pytest-deploy migration apply"
        f" {project.name} --target {target}`), or record a database that already has it with"
        f" `pytest-deploy migration mark-applied {project.name} {item.file} --target {target}`."
        " Nothing changed."
    )


def _ledger_url(
    ctx: Context, project: Project, config: DeployConfig, target: str, group: Group
) -> str | None:
    """The target database URL of a group applied by the built-in executor (whose ledger
    holds the checksum too); None for a group whose deploy_command applies its files."""
    if group.deploy_command is not None:
        return None
    store = ctx.store()
    info, _ = resolve(config, target, store)
    stored = store.env_values(project.name, target) if store else {}
    env = step_env(info, stored, {}, watched=[group.database_url_env]) if info else None
    url = env.values.get(group.database_url_env) if env else None
    if not url:
        raise UsageProblem(
            f"Group {group.name!r} applies its migrations with the built-in executor, which"
            " also records each file's checksum in the target database's ledger; to keep it"
            f" agreeing with the history this command updates it there, but"
            f" ${group.database_url_env} is not set for target {target!r}. Set it with"
            f" `pytest-deploy env set {project.name} {group.database_url_env} - --target"
            f" {target}` or in the environment. Nothing changed."
        )
    return url


def _accept_in_ledger(
    url: str | None, config: DeployConfig, project: str, target: str, item: TrackedFile
) -> str:
    """Update the ledger row: ``updated`` / ``no row`` / ``no ledger`` / ``not used``."""
    if url is None:
        return "not used"
    # deferred: +9 modules, 15 ms (migrate.statements, migrate.ledger, migrate.pg_executor, …)
    from deploy_plugin.migrate.executor import ConnectError, SqlExecutor
    from deploy_plugin.migrate.ledger import Ledger

    if _missing_sqlite_file(url, config):
        return "no database"  # and none is created by looking
    try:
        with SqlExecutor(url, base=config.root) as executor:
            ledger = Ledger(executor, project, target)
            if not ledger.exists():
                return "no ledger"
            return "updated" if ledger.accept_checksum(item.file, item.checksum) else "no row"
    except ConnectError as err:
        raise CliError(f"{err}. Nothing changed.") from None
    except Exception as err:  # a driver error: one paragraph, the store untouched
        raise CliError(
            f"cannot update the ledger of the target database: {' '.join(str(err).split())}."
            " Nothing changed in the store."
        ) from None


def _missing_sqlite_file(url: str, config: DeployConfig) -> bool:
    """A ``sqlite:///PATH`` URL (relative to the root, as the executor reads it) naming no file:
    connecting would create an empty database."""
    if not url.lower().startswith("sqlite://"):
        return False
    name = url.split("://", 1)[1].split("?", 1)[0][1:]
    return name != ":memory:" and bool(name) and not (config.root / name).exists()


def _ledger_note(ledger: str) -> str:
    return {
        "no database": "The target database does not exist (so it has no ledger).",
        "updated": "The target database's ledger row was updated too.",
        "no row": "The target database's ledger has no row for it (applied by another way).",
        "no ledger": "The target database has no ledger table.",
        "not used": "Its group applies files with its deploy_command (no ledger).",
    }[ledger]


# -- baseline -----------------------------------------------------------------------------


def run_baseline(ctx: Context) -> int:
    """Record every tracked file up to FILE as applied without running it (an existing
    database).

    pytest-deploy migration baseline woofs -t production --to migrations/003_users.sql
    """
    args = ctx.args
    project, config, target = on_target(ctx)
    if not args.to:
        raise UsageProblem(
            f"`pytest-deploy migration baseline {project.name} --target {target}` needs --to"
            " FILE: the last tracked migration the database already has; it and every file"
            " before it (in run order) are recorded as applied. Nothing changed."
        )
    last = tracked_file(ctx, project, args.to, target)
    tracked = tracked_files(config, target)
    files = tracked[: [t.file for t in tracked].index(last.file) + 1]
    _refuse_recorded(ctx, ctx.store(), project.name, target, files)
    reason = " ".join((args.reason or "").split()) or None
    store = ctx.writable_store()
    now, by = utcnow(), who()
    records = [MigrationRecord(t.file, t.checksum, now, by, None, "success", None) for t in files]
    unset: list[str] = []
    with history_change(ctx, project, target, f"baseline {len(files)} file(s)"):
        _refuse_recorded(ctx, store, project.name, target, files)  # again, under the lock
        for group in config.groups:  # the database first: it decides what is applied
            mine = [t for t in files if t.group == group.name]
            if mine and group.track_migrations and group.deploy_command is None:
                url, why = _ledger_url_or_why(ctx, project, config, target, group)
                _mark_in_ledger(url, config, project.name, target, mine)
                if why:
                    unset.append(why)
        store.baseline(project.name, target, records, reason=reason)
    if args.json:
        emit_json({"project": project.name, "target": target, "files": [t.file for t in files],
                   "reason": reason})  # fmt: skip
        return 0
    say(
        f"Baselined {project.name} → {target}: {len(files)} file(s) up to {last.file} recorded"
        " as applied (not run):"
    )
    for t in files:
        say(f"  {t.file}")
    for why in unset:
        warn(why)
    return 0


def _refuse_recorded(
    ctx: Context, store: Store | None, project: str, target: str, files: list[TrackedFile]
) -> None:
    """UsageProblem naming each file that already has a history row or an intent."""
    if store is None:
        return
    history = store.applied_migrations(project, target)
    intents = {i.file for i in store.intents(project, target)}
    found = [
        f"{t.file} ({history[t.file].status} at {when(history[t.file].applied_at)})"
        if t.file in history
        else f"{t.file} (in doubt: a shell step's attempt)"
        for t in files
        if t.file in history or t.file in intents
    ]
    if found:
        raise UsageProblem(
            f"Cannot baseline {project} → {target}: {len(found)} of the {len(files)} file(s)"
            f" already have a history row: {', '.join(found)}. A baseline is for a database"
            " whose history is empty up to --to; record single files with `pytest-deploy"
            " migration mark-applied`. Nothing changed."
        )
