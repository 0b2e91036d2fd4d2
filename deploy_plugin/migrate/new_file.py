"""The next migration of a tracked group (``pytest-deploy migration new``): where it goes,
its name numbered like its neighbours', and its down when they have downs.

* where: the group's one pattern, one plain folder and one ``*`` glob
  (``migrations/*.sql``, ``migrations/*.up.sql``) or Diesel's ``migrations/*/up.sql``;
  anything else (``**``, a wildcard in a folder, several patterns) is :class:`NewFileProblem`.
* the name: the neighbours' number (the last one's scheme: zero-padded integer with its
  width and separator, Flyway's ``V7__``, or a UTC timestamp, always after the last one),
  then the slug of the name given; an empty folder starts at ``0001_``. Repeatable files
  (``R__*.sql``) are no neighbours. A next number that would sort before a neighbour
  (``V9__`` → ``V10__``, ``999_`` → ``1000_``: files run in name order) is NewFileProblem.
* the down: by :mod:`deploy_plugin.migrate.downs`' conventions, when a neighbour has one
  (or, in an empty folder, when the layout pairs ups with downs): an empty file, or for
  dbmate's format both section markers in the one file.

Nothing here writes but :func:`write_new`, which never replaces a file (``O_EXCL``).
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath

from deploy_plugin.config import Group, is_repeatable
from deploy_plugin.plan import down_bytes, match_files, run_order

from .downs import down_path, find_down

#: dbmate's format, both markers: what a new file of a group with down sections holds
SECTIONS = b"-- migrate:up\n\n\n-- migrate:down\n\n"

_WILD = set("*?[")
_NUMBER = re.compile(r"(?P<lead>V?)(?P<digits>[0-9]+)(?P<sep>__|_|-)")
_STAMPS = {14: ("%Y%m%d%H%M%S", timedelta(seconds=1)), 12: ("%Y%m%d%H%M", timedelta(minutes=1))}


class NewFileProblem(Exception):
    """Why no file can be written (one paragraph, for the user)."""


def slugify(name: str) -> str:
    """``"Add users' e-mail!"`` → ``add_users_e_mail``: lower-case ASCII letters, digits and
    ``_`` (spaces, ``-``, ``.`` and ``/`` separate words; other characters go)."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    words = re.split(r"[\s\-_./]+", text)
    return "_".join(w for w in ("".join(re.findall(r"[a-z0-9]", w)) for w in words) if w)


@dataclass(frozen=True)
class Layout:
    """Where a group's migrations live: ``folder/PREFIX*SUFFIX``, or ``folder/*/up.sql``."""

    folder: str  # root-relative, "" for the root
    prefix: str  # what every name starts with (the glob's text before '*')
    suffix: str  # what it ends with: ".sql", ".up.sql"; "/up.sql" for a directory pair

    def path(self, unit: str) -> str:
        """The root-relative path of the migration named ``unit``."""
        return str(PurePosixPath(self.folder, unit + self.suffix))

    def unit(self, rel: str) -> str:
        """The name of the migration at ``rel`` (a matched file): without its suffix."""
        return PurePosixPath(rel).relative_to(self.folder or ".").as_posix()[: -len(self.suffix)]


def layout_of(group: Group) -> Layout | None:
    """The group's layout, or None unless it has one pattern of one plain folder and one
    ``*`` glob naming an extension (or Diesel's ``<folder>/*/up.sql``)."""
    if len(group.file_patterns) != 1:
        return None
    parts = group.file_patterns[0].split("/")
    if any(p in ("", ".", "..") for p in parts):
        return None
    directory = len(parts) >= 2 and parts[-2:] == ["*", "up.sql"]
    folder, last = (parts[:-2], "*/up.sql") if directory else (parts[:-1], parts[-1])
    if any(_WILD & set(p) for p in folder) or last.count("*") != 1 or _WILD & set(last) - {"*"}:
        return None
    prefix, suffix = last.split("*")
    if "." not in suffix:
        return None
    return Layout("/".join(folder), prefix, suffix)


@dataclass(frozen=True)
class NewMigration:
    """What to write: (root-relative path, bytes) pairs, the migration first."""

    files: tuple[tuple[str, bytes], ...]
    down: str | None  # the down's convention (downs.Down.convention), None without one
    fresh: bool  # the folder had no versioned migration: numbered from 0001
    only_repeatable: bool = False  # fresh, but the folder holds R__ files


def next_unit(units: list[str], prefix: str, slug: str, now: datetime) -> str:
    """The next migration's name after ``units`` (the neighbours', sorted): their number
    scheme, then ``slug``; NewFileProblem when no neighbour is numbered."""
    if not units:
        return prefix + ("1__" if prefix == "V" else "0001_") + slug
    numbered = [(u, m) for u in units if (m := _NUMBER.match(u, len(prefix)))]
    if not numbered:
        shown = ", ".join(units[-3:])
        raise NewFileProblem(
            f"none of the group's migrations starts with a number ({shown}), so there is no"
            " numbering to continue. Create the file by hand, named so that it sorts after the"
            " last one (file names sort by code point); nothing was written."
        )
    last = numbered[-1][1]
    lead, digits, sep = last["lead"], last["digits"], last["sep"]
    stamp = _stamp_format(digits)
    same = [
        m["digits"] for _, m in numbered
        if m["lead"] == lead and (_stamp_format(m["digits"]) is not None) == (stamp is not None)
    ]  # fmt: skip
    highest = max(same, key=int)
    if stamp is None:
        number = str(int(highest) + 1).zfill(len(digits))
    else:
        fmt, step = stamp
        number = now.strftime(fmt)
        if int(number) <= int(highest):
            number = (datetime.strptime(highest, fmt) + step).strftime(fmt)
    return f"{prefix}{lead}{number}{sep}{slug}"


def _stamp_format(digits: str) -> tuple[str, timedelta] | None:
    """(strftime format, its unit) when ``digits`` is a UTC timestamp, else None."""
    found = _STAMPS.get(len(digits))
    if found is None:
        return None
    try:
        year = datetime.strptime(digits, found[0]).year
    except ValueError:
        return None
    return found if 1970 <= year <= 2999 else None


def plan_new(
    root: Path, group: Group, layout: Layout, slug: str, now: datetime,
    show: Callable[[str], str] = str,
) -> NewMigration:  # fmt: skip
    """The files of the group's next migration named ``slug``, stamped ``now`` (UTC) when
    the neighbours are stamped; NewFileProblem (root-relative paths shown by ``show``) when
    their numbering cannot be continued."""
    matched = match_files(root, group.file_patterns)[0]
    neighbours = [n for n in matched if not is_repeatable(n)]  # R__ files: no number, no down
    rel = layout.path(next_unit([layout.unit(n) for n in neighbours], layout.prefix, slug, now))
    _check_sorts_last(neighbours, rel, layout, show)
    fresh = not neighbours
    repeatable_only = fresh and bool(matched)
    newest_first = neighbours[::-1]
    found = down_path(root, group, rel)
    if found is not None:
        if fresh or any(find_down(root, group, n) for n in newest_first):
            return NewMigration(((rel, b""), (found[0], b"")), found[1], fresh, repeatable_only)
        return NewMigration(((rel, b""),), None, fresh)
    if any(_has_down_section(root / n) for n in newest_first):
        return NewMigration(((rel, SECTIONS),), "section", False)
    return NewMigration(((rel, b""),), None, fresh, repeatable_only)


def _check_sorts_last(
    neighbours: list[str], rel: str, layout: Layout, show: Callable[[str], str]
) -> None:
    """NewFileProblem unless ``rel`` comes after every one of ``neighbours`` (the group's
    versioned files) in run order: an unpadded ``V9__`` → ``V10__``, or a zero-padded
    width used up (``999_`` → ``1000_``), sorts first, and so would run first."""
    order = run_order([*neighbours, rel])
    after = order[order.index(rel) + 1 :]
    if not after:
        return
    number = _NUMBER.match(layout.unit(rel), len(layout.prefix))
    lead, digits, sep = number.group("lead", "digits", "sep") if number else ("", "", "_")
    example = layout.prefix + lead + "1".zfill(max(4, len(digits))) + sep
    raise NewFileProblem(
        f"the next number gives {show(rel)}, which would sort before {show(after[0])}: files"
        " of a group run in name order (by code point), so it would run first. Rename"
        f" the group's files with a wider zero-padded number (e.g. {example}…) so that the"
        " numbers sort in order, or create the file by hand, named so that it sorts after"
        f" {show(neighbours[-1])}; nothing was written."
    )


def _has_down_section(path: Path) -> bool:
    try:
        return down_bytes(path.read_bytes()) is not None
    except OSError:
        return False


def not_a_folder(root: Path, new: NewMigration) -> str | None:
    """The first root-relative folder of ``new``'s files that exists but is no folder (a
    file, a dangling link), outermost first."""
    for rel, _ in new.files:
        for folder in reversed(PurePosixPath(rel).parents[:-1]):
            if os.path.lexists(root / folder) and not (root / folder).is_dir():
                return str(folder)
    return None


def taken(root: Path, new: NewMigration) -> str | None:
    """The first root-relative path of ``new`` that exists (a dangling link included)."""
    return next((rel for rel, _ in new.files if os.path.lexists(root / rel)), None)


def write_new(root: Path, new: NewMigration) -> list[Path]:
    """Create the files of ``new`` (and their folders), never replacing one: on
    FileExistsError what this call made is removed again and the error raised."""
    made: list[Path] = []
    folders: list[Path] = []
    try:
        for rel, data in new.files:
            path = root / rel
            missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
            path.parent.mkdir(parents=True, exist_ok=True)
            folders[:0] = missing
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            made.append(path)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
    except OSError:
        for path in made:
            path.unlink(missing_ok=True)
        for folder in folders:
            try:
                folder.rmdir()
            except OSError:
                pass
        raise
    return made
