"""``pytest-deploy migration new PROJECT NAME [--group G]``: the next file of a tracked
group's folder, numbered like its neighbours, with an empty down beside it when they have
downs (the rules: :mod:`deploy_plugin.migrate.new_file`, imported when the command runs).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

from deploy_plugin.config import ConfigError

from .args import Commands
from .context import Context
from .output import CliError, UsageProblem, emit_json, note, say

if TYPE_CHECKING:
    from deploy_plugin.config import DeployConfig, Group


def register(family: Commands) -> None:
    """Add ``new`` to the ``migration`` family."""
    parser = family.add(run_new, "project")
    parser.add_argument(
        "name", metavar="NAME", help="what the migration does (made lower-case, words joined by _)"
    )
    parser.add_argument(
        "--group", "-g", metavar="G",
        help="the tracked group to add it to (required when the project has several)",
    )  # fmt: skip


def run_new(ctx: Context) -> int:
    """Write the next migration file of a tracked group, numbered like its neighbours.

    The file goes in the group's folder, numbered as the folder already does (zero-padded,
    Flyway's V7__ or a UTC timestamp), with an empty down beside it when they have downs.
    It never replaces a file.

    pytest-deploy migration new woofs "add users email"
    """
    # deferred: +4 modules, 9 ms (migrate.new_file, migrate.downs, unicodedata, …)
    from deploy_plugin.migrate.new_file import (
        NewFileProblem,
        layout_of,
        not_a_folder,
        plan_new,
        slugify,
        taken,
        write_new,
    )

    args = ctx.args
    slug = slugify(args.name)
    if not slug:
        raise UsageProblem(
            f"Migration name {args.name!r} has no letters or digits, so it gives no file name."
            ' Name what the migration does, e.g. "add users email"; nothing was written.'
        )
    project = ctx.project(args.project)
    config = project.require_config()
    group = _group(project.name, config, args.group)
    layout = layout_of(group)
    if layout is None:
        raise UsageProblem(_not_plain(ctx, config, group))
    try:
        now = datetime.now(timezone.utc)
        new = plan_new(
            config.root, group, layout, slug, now, lambda rel: ctx.shown(config.root / rel)
        )
    except NewFileProblem as exc:
        raise UsageProblem(f"Group {group.name!r} of project {project.name!r}: {exc}") from None
    folder = not_a_folder(config.root, new)
    if folder is not None:
        raise CliError(
            f"{ctx.shown(config.root / folder)} is a file, not a folder, and group"
            f" {group.name!r} needs that folder for {ctx.shown(config.root / new.files[0][0])}:"
            " `migration new` replaces nothing, so nothing was written. Move that file away,"
            " or point the group's file_patterns at another folder."
        )
    clash = taken(config.root, new)
    try:
        made = write_new(config.root, new) if clash is None else []
    except FileExistsError as exc:
        clash = str(exc.filename)
    if clash is not None:
        raise CliError(
            f"{ctx.shown(config.root / clash)} already exists: `migration new` never replaces a"
            " file, so nothing was written. Move that file away, or give another NAME."
        )
    shown = [ctx.shown(path) for path in made]
    if args.json:
        emit_json({"project": project.name, "group": group.name, "created": shown,
                   "down": new.down})  # fmt: skip
    else:
        for path in shown:
            say(f"created {path}")
    if new.fresh:
        where = layout.folder + "/" if layout.folder else "the root"
        what = "versioned migration" if new.only_repeatable else "migration"
        also = " (R__ files are repeatable, not numbered)" if new.only_repeatable else ""
        note(
            f"no {what} in {where} yet{also}:"
            f" numbered from {layout.unit(new.files[0][0]).split('_')[0]}"
        )
    return 0


def _group(project: str, config: DeployConfig, given: str | None) -> Group:
    """The project's only tracked group, or the ``--group`` one; UsageProblem listing the
    tracked groups otherwise."""
    tracked = [g for g in config.groups if g.track_migrations]
    names = ", ".join(g.name for g in tracked)
    if not tracked:
        raise UsageProblem(
            f"Project {project!r} has no tracked migration group (a group tracks migrations"
            " when every pattern ends in .sql, or with track_migrations: true), so there is no"
            " folder to add a migration to; nothing was written."
        )
    if given is None:
        if len(tracked) > 1:
            raise UsageProblem(
                f"Project {project!r} has several tracked migration groups: {names}. Pass the"
                " one to add the migration to with --group NAME; nothing was written."
            )
        return tracked[0]
    found = next((g for g in tracked if g.name == given), None)
    if found is None:
        raise UsageProblem(
            f"--group {given}: project {project!r} has no tracked migration group named"
            f" {given!r}. Tracked groups: {names}; nothing was written."
        )
    return found


def _not_plain(ctx: Context, config: DeployConfig, group: Group) -> str:
    """Why a group's patterns give no folder to write in (one paragraph)."""

    field = f"groups[{group.index}].file_patterns"
    patterns = ", ".join(repr(p) for p in group.file_patterns)
    return str(
        ConfigError(
            f"`migration new` needs one pattern made of one plain folder and one '*' glob"
            f" ('migrations/*.sql', 'migrations/*.up.sql', 'migrations/*/up.sql') to know"
            f" where a new migration goes; group {group.name!r} has {patterns}. Create the"
            " file by hand in the folder you mean, numbered after the last one; nothing was"
            " written.",
            path=ctx.shown(config.path),
            line=config.line_of(field) or group.line,
            field=field,
        )
    )
