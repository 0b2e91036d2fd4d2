"""Down migrations: which file undoes a tracked migration, found by convention.

Built on :mod:`deploy_plugin.plan` (which never imports it): it reads files and nothing
else. For a migration ``rel`` of a tracked group, the first of these that applies is its down:

1. the group's ``down_file`` path template (``"rollbacks/{stem}.sql"``), when it is set;
2. a directory pair: ``<dir>/up.sql`` is undone by ``<dir>/down.sql`` (Diesel's layout);
3. a suffix pair: ``NAME.up.sql`` is undone by ``NAME.down.sql`` (golang-migrate's);
4. one file with ``-- migrate:up`` and ``-- migrate:down`` sections (dbmate's format): the
   migration applies its up section only, its checksum covers the up section only (an
   edit of the down section is no drift), and the rollback runs its down section (the
   sections themselves are :mod:`deploy_plugin.plan.sections`, which planning needs for
   the checksum).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from deploy_plugin.config import (
    ConfigError,
    DeployConfig,
    Group,
    PlaceholderError,
    render_path,
)
from deploy_plugin.plan import (
    down_bytes,
    file_values,
    match_files,
    tracked_overlap_problem,
    up_bytes,
)


@dataclass(frozen=True)
class Down:
    """The down of one migration: where its SQL is, and by which convention it was found."""

    migration: str  # the migration (up) file, root-relative
    file: str  # the file holding the down SQL, root-relative
    convention: str  # down_file | directory | suffix | section

    @property
    def section(self) -> bool:
        """Whether the down is a ``-- migrate:down`` section of the migration file itself."""
        return self.convention == "section"


_COMMENTS = re.compile(rb"--[^\n]*|/\*.*?\*/", re.DOTALL)


def undoes_nothing(sql: bytes) -> bool:
    """Whether a down holds no statement: no bytes, or only white space and comments.

    One rule for every layout and driver (issue 21): such a down is a down that undoes
    nothing (golang-migrate and pop ship empty downs on purpose); a rollback runs through
    it and says so."""
    return not _COMMENTS.sub(b"", sql).strip(b" \t\r\n;")


# --------------------------------------------------------------------------- finding


def down_path(root: Path, group: Group, rel: str) -> tuple[str, str] | None:
    """(root-relative down file, convention) by file name or template alone, reading
    nothing; None when only a ``-- migrate:down`` section could hold the down."""
    if group.down_file is None and not rel.endswith("up.sql"):
        return None  # asked of every tracked file at collection: no path object for most
    posix = PurePosixPath(rel)
    if group.down_file is not None:
        try:
            path = render_path(group.down_file, file_values(root, rel))
        except PlaceholderError:  # reported by config validation
            return None
        return str(PurePosixPath(*[p for p in path.split("/") if p not in ("", ".")])), "down_file"
    if posix.name == "up.sql":
        return str(posix.with_name("down.sql")), "directory"
    if posix.name.endswith(".up.sql"):
        return str(posix.with_name(posix.name[: -len(".up.sql")] + ".down.sql")), "suffix"
    return None


def find_down(root: Path, group: Group, rel: str) -> Down | None:
    """The down of migration ``rel``, or None when it has none (no file, no section)."""
    found = down_path(root, group, rel)
    if found is not None:
        path, convention = found
        return Down(rel, path, convention) if (Path(root) / path).is_file() else None
    try:
        data = (Path(root) / rel).read_bytes()
    except OSError:
        return None
    return Down(rel, rel, "section") if down_bytes(data) is not None else None


def read_down(root: Path, down: Down) -> bytes:
    """The SQL of a down (a section keeps the file's line numbers); OSError if unreadable."""
    data = (Path(root) / down.file).read_bytes()
    if down.section:
        return down_bytes(data) or b""
    return data


# --------------------------------------------------------------------------- config check


def matched_downs(root: Path, group: Group, files: Iterable[str]) -> list[tuple[str, str]]:
    """(down file, its migration) for each matched file that is the down of another one."""
    files = list(files)
    present = set(files)
    out = []
    for rel in files:
        found = down_path(root, group, rel)
        if found is not None and found[0] in present and found[0] != rel:
            out.append((found[0], rel))
    return sorted(out)


def down_file_problem(
    config: DeployConfig, shown: str, files_of: Callable[[Group], Iterable[str]] | None = None
) -> ConfigError | None:
    """A config error when a tracked group's patterns match down files as migrations (they
    would be applied, undoing what their up did); None when none does. ``files_of`` gives
    a group's matched files when the caller has them (default: match them here)."""
    for group in config.groups:
        if not group.track_migrations or not group.file_patterns:
            continue
        if files_of is not None:
            files: Iterable[str] = files_of(group)
        else:
            files = match_files(config.root, group.file_patterns)[0]
        pairs = matched_downs(config.root, group, files)
        if not pairs:
            continue
        named = ", ".join(f"{down} (the down of {up})" for down, up in pairs[:5])
        more = f" and {len(pairs) - 5} more" if len(pairs) > 5 else ""
        patterns = ", ".join(repr(p) for p in group.file_patterns)
        field = f"groups[{group.index}].file_patterns"
        return ConfigError(
            f"{patterns} of tracked group '{group.name}' match down files as migrations:"
            f" {named}{more}. They would be applied as migrations, undoing what their up did."
            ' Match the up files only, e.g. "migrations/*/up.sql" or "migrations/*.up.sql"'
            " (the down files are found next to them).",
            path=shown,
            line=config.line_of(field) or group.line,
            field=field,
        )
    return None


def tracked_files_problem(
    config: DeployConfig, shown: str, files_of: Callable[[Group], Iterable[str]]
) -> ConfigError | None:
    """What the files on disk make wrong in a config (not in ``load_config``, which reads
    only the config): tracked patterns matching down files, or one file in two tracked
    groups of a same target. pytest and the CLI report it the same way."""
    return down_file_problem(config, shown, files_of) or tracked_overlap_problem(
        config, shown, files_of
    )


__all__ = [
    "Down",
    "RollbackRange",
    "down_bytes",
    "down_file_problem",
    "tracked_files_problem",
    "down_path",
    "find_down",
    "matched_downs",
    "read_down",
    "rollback_range",
    "up_bytes",  # plan.sections' own, named here too for the migration runner
]


# --------------------------------------------------------------------------- the range


@dataclass(frozen=True)
class RollbackRange:
    """The applied migrations a rollback undoes, newest first, with their groups (None for
    a file no tracked group matches any more), or why the request cannot be met."""

    files: tuple[tuple[str, str | None], ...]
    problem: str | None = None


def rollback_range(
    applied_newest_first: Iterable[str],
    group_of: dict[str, str],
    *,
    steps: int | None = None,
    to: str | None = None,
    skipped_groups: Iterable[str] = (),
) -> RollbackRange:
    """The migrations ``--deploy-rollback=steps`` / ``--deploy-rollback-to=to`` undo.

    ``applied_newest_first``: files whose history row is ``success``, newest first;
    ``group_of``: file → its tracked group; ``skipped_groups``: groups left out by
    ``--group``/``--skip-group`` (their migrations are not in the range).
    """
    left_out = set(skipped_groups)
    applied = [f for f in applied_newest_first if group_of.get(f) not in left_out]
    if to is not None:
        if to not in applied:
            shown = ", ".join(applied[:5]) + (" ..." if len(applied) > 5 else "")
            return RollbackRange(
                (),
                f"--deploy-rollback-to={to}: that file is not applied to this target, so there"
                " is nothing to roll back to. Give a root-relative path of an applied migration"
                + (f" (newest first: {shown})." if applied else " (none is applied).")
                + " Nothing was run.",
            )
        applied = applied[: applied.index(to)]
    elif steps is not None:
        applied = applied[:steps]
    return RollbackRange(tuple((f, group_of.get(f)) for f in applied))
