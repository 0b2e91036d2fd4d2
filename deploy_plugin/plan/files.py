"""Which files a group's patterns match, and what a file gives a command.

* :func:`match_files`: root-relative globs (``**`` any depth, hidden names only when a
  pattern names them), never a file reached through a link leaving the root nor a name
  that is not UTF-8 (both reported, so a pattern matching nothing says why);
* :func:`tracked_overlap_problem`: one migration file in two tracked groups of a target;
* :func:`run_order`: a tracked group's repeatable migrations (Flyway's ``R__name.sql``,
  :func:`deploy_plugin.config.is_repeatable`) run after its versioned files;
* :func:`read_small_file`, :func:`file_values` (the file placeholders),
  :func:`padding_warning` and :func:`links_note`.

Pure over the config model and the file system; imports only :mod:`deploy_plugin.config`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

from deploy_plugin.config import ConfigError, DeployConfig, Group, is_repeatable


def _segment_regex(segment: str) -> str:
    """Regex for one path segment of a glob; wildcards never match a leading dot."""
    out = []
    i = 0
    while i < len(segment):
        ch = segment[i]
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = segment.find("]", i + 2 if segment[i + 1 : i + 2] in ("!", "]") else i + 1)
            if end == -1:
                out.append(re.escape(ch))
            else:
                body = segment[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    regex = "".join(out)
    if not segment.startswith("."):
        regex = r"(?!\.)" + regex  # hidden names only when the pattern names them
    return regex


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a root-relative glob: ``**`` spans any depth (zero included), ``*`` never ``/``."""
    parts = [p for p in pattern.split("/") if p not in ("", ".")]
    regex = ""
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "**":
            regex += r"(?:(?!\.)[^/]+/)*" if not last else r"(?:(?!\.)[^/]+(?:/|$))*"
        else:
            regex += _segment_regex(part) + ("" if last else "/")
    return re.compile(regex + r"\Z")


def _walk_base(pattern: str) -> tuple[str, int | None]:
    """The literal folder a pattern starts in and how deep below it to walk (None: any)."""
    parts = [p for p in pattern.split("/") if p not in ("", ".")]
    base: list[str] = []
    for part in parts[:-1]:
        if any(c in part for c in "*?["):
            break
        base.append(part)
    rest = parts[len(base) :]
    depth = None if "**" in rest else len(rest)
    return "/".join(base), depth


def match_files(
    root: Path,
    patterns: Iterable[str],
    *,
    outside: list[str] | None = None,
    undecodable: list[str] | None = None,
) -> tuple[list[str], list[str]]:
    """Files under ``root`` matching any pattern: (sorted root-relative paths, unmatched patterns).

    Paths sort by code point; duplicates across patterns are merged; files reached
    through a link that leaves ``root`` are not matched: each such link (a file, a
    folder, or the pattern's own base folder) is appended to ``outside`` when given,
    as ``"REL -> REAL"``, so that callers can say why a pattern matched nothing. A name
    that is not UTF-8 is never matched (no command, log, store row or report could carry
    it); each is appended to ``undecodable`` when given, its bytes shown as ``\\xNN``.
    """
    root = Path(root)
    left: dict[str, str] = {}
    real_root = os.path.realpath(root)
    found: set[str] = set()
    not_utf8: set[str] = set()
    unmatched: list[str] = []
    for pattern in patterns:
        regex = glob_regex(pattern)
        base, depth = _walk_base(pattern)
        start = os.path.join(root, base) if base else str(root)
        hits = 0
        walk_hidden = any(part.startswith(".") for part in pattern.split("/") if part != ".")
        if os.path.isdir(start):
            # os.walk does not follow linked folders: every folder it reaches is the real
            # start plus its relative path, so only the start and linked files are resolved
            real_start = os.path.realpath(start)
            start_in = real_start == real_root or real_start.startswith(real_root + os.sep)
            if base and not _inside(start, real_root):
                left[base] = real_start
            start_depth = start.rstrip(os.sep).count(os.sep)
            for dirpath, dirnames, filenames in os.walk(start):
                rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
                rel_dir = "" if rel_dir == "." else rel_dir + "/"
                level = dirpath.rstrip(os.sep).count(os.sep) - start_depth
                if depth is not None and level + 1 >= depth:
                    dirnames[:] = []
                elif not walk_hidden:
                    dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                for name in dirnames:  # os.walk does not follow linked folders
                    full = os.path.join(dirpath, name)
                    if os.path.islink(full) and not _inside(full, real_root):
                        left[rel_dir + name] = os.path.realpath(full)
                for name in filenames:
                    rel = rel_dir + name
                    if regex.match(rel):
                        full = os.path.join(dirpath, name)
                        linked = os.path.islink(full)
                        if not (start_in and not linked) and not _inside(full, real_root):
                            if linked:
                                left[rel] = os.path.realpath(full)
                            continue
                        hits += 1
                        if _utf8(rel):
                            found.add(rel)
                        else:
                            not_utf8.add(rel)
        if not hits:
            unmatched.append(pattern)
    if outside is not None:
        outside.extend(f"{rel} -> {real}" for rel, real in sorted(left.items()))
    if undecodable is not None:
        shown = (os.fsencode(rel).decode("utf-8", "backslashreplace") for rel in not_utf8)
        undecodable.extend(sorted(shown))
    return sorted(found), unmatched


def _utf8(name: str) -> bool:
    """Whether a name read from the file system is UTF-8 (undecodable bytes come back as
    lone surrogates, which no UTF-8 text can hold)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _inside(path: str, real_root: str) -> bool:
    return os.path.realpath(path).startswith(real_root + os.sep)


def run_order(files: Iterable[str]) -> list[str]:
    """A tracked group's files in run order: the versioned ones, then the repeatable ones
    (each in code-point order)."""
    return sorted(files, key=lambda rel: (is_repeatable(rel), rel))


def _share_a_target(a: Group, b: Group) -> bool:
    if a.targets is None or b.targets is None:
        return True
    return bool(set(a.targets) & set(b.targets))


def tracked_overlap_problem(
    config: DeployConfig, shown: str, files_of: Callable[[Group], Iterable[str]]
) -> ConfigError | None:
    """A config error when two tracked groups that run for a same target match a same file:
    history knows a migration by its file, so the second group would take it as applied
    and its database would never get it."""
    owners: dict[str, list[Group]] = {}
    clashes: list[tuple[str, Group, Group]] = []
    for group in config.groups:
        if not group.track_migrations:
            continue
        for rel in files_of(group):
            earlier = owners.setdefault(rel, [])
            first = next((g for g in earlier if _share_a_target(g, group)), None)
            if first is not None:
                clashes.append((rel, first, group))
            earlier.append(group)
    if not clashes:
        return None
    rel, first, second = clashes[0]
    others = len({c[0] for c in clashes}) - 1
    more = f" (and {others} more file(s))" if others else ""
    field_name = f"groups[{second.index}].file_patterns"
    return ConfigError(
        f"{rel}{more} is matched by tracked groups '{first.name}' and '{second.name}', which"
        " run for a same target. Migration history knows a migration by its file, so the"
        f" second group would take it as applied and never run it. Match each migration in"
        " one group (narrow a pattern), or give the groups disjoint `targets`.",
        path=shown,
        line=config.line_of(field_name) or second.line,
        field=field_name,
    )


_READ_SIZE = 1 << 20


def read_small_file(path: Path | str) -> bytes:
    """A file's bytes with plain ``os`` calls: a dry run hashes every tracked file, and
    ``Path.read_bytes`` (buffered I/O objects) takes twice as long for 10,000 small files."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, _READ_SIZE):
            chunks.append(chunk)
            if len(chunk) < _READ_SIZE:
                break  # a short read of a regular file is its end: no read to learn it
    finally:
        os.close(fd)
    return b"".join(chunks)


def file_values(root: Path, rel: str) -> dict[str, str]:
    """Values of the file placeholders for one root-relative path."""
    posix = PurePosixPath(rel)
    parent = str(posix.parent)
    return {
        "file": rel,
        "path": str(Path(root, *posix.parts)),
        "name": posix.name,
        "stem": posix.stem,
        "dir": parent,
        "function_name": posix.parent.name if parent != "." else Path(root).name,
        "service_name": posix.stem,
    }


def padding_warning(files: Iterable[str]) -> str | None:
    """Warn when numbered files mix widths, as ``9_x.sql`` then sorts after ``10_x.sql``."""
    widths: dict[str, set[int]] = {}
    for rel in files:
        posix = PurePosixPath(rel)
        match = re.match(r"\d+", posix.name)
        if match:
            widths.setdefault(str(posix.parent), set()).add(len(match.group()))
    mixed = sorted(folder for folder, seen in widths.items() if len(seen) > 1)
    if not mixed:
        return None
    return (
        f"numbered files in {', '.join(mixed)} mix number widths; files run in code-point "
        "order (10_x before 9_x), so pad numbers with zeros to one width"
    )


def links_note(links: Iterable[str]) -> str:
    """Why files behind links were not deployed (one sentence)."""
    return (
        f"not followed: {', '.join(links)} (a link leading outside the root; a deployment"
        " reads only files under its root, so move the files under it or set `root` to a"
        " folder that holds both)"
    )
