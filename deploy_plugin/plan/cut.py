"""Applying up to a migration (``--deploy-to=FILE``): which tracked file FILE names, and
the cut it makes.

As Flyway's ``-target``: pending migrations are applied in run order up to and including
FILE, and every tracked file after it stays pending. Groups run by ``order``, so a
tracked group before FILE's group applies all its pending files, FILE's group applies
its files up to FILE, and a tracked group after it applies none. Only tracked files are
cut: hooks, builds and the groups that track no migrations run as usual.

FILE is a path relative to the config's root, a path from the current folder (or an
absolute one) inside the root, or the end of one tracked file's path (its base name, or
its path from the group's folder) when only one file has it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Files listed in a message (the rest are counted).
LISTED = 10


@dataclass(frozen=True)
class Cut:
    """``--deploy-to``'s cut of one deployment: FILE and the tracked files after it."""

    file: str  # root-relative
    after: tuple[str, ...]  # tracked files after FILE, in run order (applied ones too)

    def reason(self, rel: str | None) -> str | None:
        """Why tracked file ``rel`` is not applied by this run (it is after the cut), if so."""
        if rel is None or rel not in self.after:
            return None
        return f"{rel}: after --deploy-to {self.file}, left pending"

    def note(self, pending: Sequence[str]) -> str:
        """The summary's line: the cut, and the pending files it leaves (``pending``: those
        after it that are not applied)."""
        left = [rel for rel in self.after if rel in pending]
        return (
            f"--deploy-to {self.file}: pending migrations up to and including it;"
            + (f" {len(left)} later one(s) left pending: {_listing(left)}" if left else
               " no later one is pending")
        )  # fmt: skip


def _listing(files: Sequence[str]) -> str:
    shown = ", ".join(files[:LISTED])
    return shown + (f" and {len(files) - LISTED} more" if len(files) > LISTED else "")


def name_file(given: str, files: Sequence[str], root: Path, cwd: Path) -> list[str]:
    """The files of ``files`` (root-relative) that ``given`` names: one, none, or several
    when only the end of a path was given and more than one file ends so."""
    if given in files:
        return [given]
    path = Path(given)
    real_root = root.resolve()
    for base in [Path("/")] if path.is_absolute() else [root, cwd]:
        try:
            rel = (base / path).resolve().relative_to(real_root).as_posix()
        except (ValueError, OSError):
            continue
        if rel in files:
            return [rel]
    end = "/" + path.as_posix().removeprefix("./")
    return [rel for rel in files if ("/" + rel).endswith(end)]


def deploy_to_cut(
    given: str,
    tracked: Sequence[tuple[str, str]],
    *,
    left_out: Sequence[tuple[str, str]],
    applied: Mapping[str, str],
    project: str,
    target: str,
    root: Path,
    cwd: Path,
) -> Cut | str:
    """The cut ``--deploy-to=given`` makes, or why it cannot be made (one paragraph).

    ``tracked``: (file, group) of the run's tracked files in run order; ``left_out``: those
    of tracked groups that ``--group``/``--skip-group`` leave out; ``applied``: file → "when
    by whom" of each file applied to the target."""
    files = [rel for rel, _ in tracked]
    where = f"project {project!r} for target {target!r}"
    named = name_file(given, files, root, cwd)
    if not named:
        other = name_file(given, [rel for rel, _ in left_out], root, cwd)
        if len(other) == 1:
            group = dict(left_out)[other[0]]
            return (
                f"--deploy-to={given}: {other[0]} belongs to group {group!r}, which"
                " --group/--skip-group leaves out of this run; select that group too, or name"
                " a file of a selected group. Nothing was run."
            )
        return (
            f"--deploy-to={given}: no tracked migration of {where} is that file (looked for a"
            f" path under the root {root}, from the current folder, and for a tracked file"
            f" whose path ends so). Tracked files: {_listing(files) or 'none'}. Name one of"
            " them (a path relative to the root, or a base name only one file has). Nothing"
            " was run."
        )
    if len(named) > 1:
        return (
            f"--deploy-to={given} names {len(named)} tracked files: {_listing(named)}; give"
            f" the path relative to the root {root} (e.g. --deploy-to={named[0]}). Nothing"
            " was run."
        )
    [rel] = named
    if rel in applied:
        pending = [f for f in files if f not in applied]
        return (
            f"--deploy-to={given}: {rel} is already applied to target {target!r}"
            f" ({applied[rel]}), so there is nothing to apply up to it. Name a pending file"
            f" ({_listing(pending) or 'none is pending'}), or run without --deploy-to to"
            " apply every pending migration. Nothing was run."
        )
    return Cut(rel, tuple(files[files.index(rel) + 1 :]))
