"""Planning: which files a group matches, which steps it has, what is pending.

Pure functions over the config model and plain data (applied checksums come in as
dicts), so planning is cheap to test and never touches a store or a process.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from deploy_plugin.config import (
    ConfigError,
    DeployConfig,
    Group,
    render_command,
)


@dataclass(frozen=True)
class Step:
    """One unit of work of a group; becomes one pytest item named ``name``."""

    name: str
    group: Group
    kind: str
    command: str | None  # placeholders substituted; None for the built-in SQL executor
    file: str | None = None  # root-relative, '/'-separated
    tracked: bool = False  # a migration whose history is kept


@dataclass(frozen=True)
class GroupPlan:
    """The steps of one group, in run order, and the files its patterns matched."""

    group: Group
    steps: tuple[Step, ...]
    files: tuple[str, ...]
    unmatched_patterns: tuple[str, ...] = field(default=())
    outside_links: tuple[str, ...] = field(default=())  # "REL -> REAL": not followed
    undecodable: tuple[str, ...] = field(default=())  # names not UTF-8, \xNN-escaped: refused


# --------------------------------------------------------------------------- files


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


def _inside(path: str, real_root: str) -> bool:
    return os.path.realpath(path).startswith(real_root + os.sep)


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


def file_checksum(path: Path) -> str:
    """SHA-256 of a file's bytes with CRLF normalised to LF (line endings alone are no drift);
    of its up section only when it is in dbmate's format (see
    :mod:`deploy_plugin.migrate.downs`)."""
    data = read_small_file(path)
    if b"migrate:" in data:
        from deploy_plugin.migrate.downs import checksum_bytes

        return checksum_bytes(data)
    return hashlib.sha256(data.replace(b"\r\n", b"\n")).hexdigest()


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


# --------------------------------------------------------------------------- steps


def _common_values(config: DeployConfig, group: Group, target: str) -> dict[str, str]:
    return {"target": target, "project": config.project, "group": group.name}


@dataclass(frozen=True)
class Matched:
    """What one group's file patterns matched under its config's root (``match_files``)."""

    files: tuple[str, ...]
    unmatched: tuple[str, ...]
    outside: tuple[str, ...]  # "REL -> REAL": links not followed
    undecodable: tuple[str, ...] = ()  # names that are not UTF-8, shown \xNN-escaped


def match_group(config: DeployConfig, group: Group) -> Matched:
    """The files of ``group`` (none when it has no patterns); the same for every target,
    so a collector matches them once per config."""
    if not group.file_patterns:
        return Matched((), (), ())
    outside: list[str] = []
    undecodable: list[str] = []
    files, unmatched = match_files(
        config.root, group.file_patterns, outside=outside, undecodable=undecodable
    )
    return Matched(tuple(files), tuple(unmatched), tuple(outside), tuple(undecodable))


def plan_group(
    config: DeployConfig, group: Group, target: str, matched: Matched | None = None
) -> GroupPlan:
    """The ordered steps of one group for one target (``matched``: its files when the
    caller has matched them already)."""
    values = _common_values(config, group, target)
    if matched is None:
        matched = match_group(config, group)
    files = matched.files
    steps: list[Step] = []

    def add(name: str, kind: str, template: str | None, file: str | None = None) -> None:
        command = None
        if template is not None:
            extra = file_values(config.root, file) if file is not None else {}
            command = render_command(template, {**values, **extra})
        tracked = group.track_migrations and kind == "deploy" and file is not None
        steps.append(Step(name, group, kind, command, file, tracked))

    for i, hook in enumerate(group.pre_deploy):
        add(f"pre_deploy[{i}]", "pre_deploy", hook)
    if group.build_command:
        add("build", "build", group.build_command)
    if group.test_command:
        add("test", "test", group.test_command)
    if group.track_migrations or group.deploy_per_file:
        for rel in files:
            add(f"deploy[{rel}]", "deploy", group.deploy_command, rel)
        if not files:
            # an empty match is reported as a skipped step, never a silent pass
            steps.append(Step("deploy", group, "deploy", None, None, False))
    elif group.deploy_command:
        add("deploy", "deploy", group.deploy_command)
    for i, hook in enumerate(group.post_deploy):
        add(f"post_deploy[{i}]", "post_deploy", hook)
    return GroupPlan(
        group, tuple(steps), files, matched.unmatched, matched.outside, matched.undecodable
    )


def links_note(links: Iterable[str]) -> str:
    """Why files behind links were not deployed (one sentence)."""
    return (
        f"not followed: {', '.join(links)} (a link leading outside the root; a deployment"
        " reads only files under its root, so move the files under it or set `root` to a"
        " folder that holds both)"
    )


# --------------------------------------------------------------------------- migrations


@dataclass(frozen=True)
class AppliedMigration:
    """What the plan needs to know of one history row."""

    checksum: str
    status: str
    applied_at: str
    applied_by: str | None


class HistoryRow(Protocol):
    """What classifying a file needs of its history row (a store record or AppliedMigration)."""

    @property
    def checksum(self) -> str: ...

    @property
    def status(self) -> str: ...


def migration_state(checksum: str, record: HistoryRow | None) -> str:
    """The one classifier of a tracked file: ``pending`` (no row), ``applied``, ``drifted``
    (applied with another checksum), or the row's own status (``failed``, ``rolled_back``,
    which count as pending: they run again)."""
    if record is None:
        return "pending"
    if record.status == "success":
        return "applied" if record.checksum == checksum else "drifted"
    return record.status


@dataclass(frozen=True)
class MigrationCheck:
    """Preflight's view of the tracked files: drift (fatal) and warnings."""

    drift: tuple[str, ...]
    warnings: tuple[str, ...]
    pending: tuple[str, ...]


def check_migrations(
    files: Iterable[str],
    checksums: Mapping[str, str],
    applied: Mapping[str, AppliedMigration],
) -> MigrationCheck:
    """Compare tracked files with their history (only ``success`` rows count as applied)."""
    files = list(files)
    drift: list[str] = []
    warnings: list[str] = []
    pending: list[str] = []
    done = {f: a for f, a in applied.items() if a.status == "success"}
    for rel in files:
        record = applied.get(rel)
        state = migration_state(checksums[rel], record)
        if state not in ("applied", "drifted"):
            pending.append(rel)
        elif state == "drifted" and record is not None:
            drift.append(
                f"{rel} changed after it was applied on {record.applied_at}"
                f" by {record.applied_by or 'unknown'}: applied checksum {record.checksum},"
                f" file now {checksums[rel]}"
            )
    present = set(files)
    for rel in sorted(done):
        if rel not in present:
            warnings.append(f"{rel} was applied on {done[rel].applied_at} but no longer exists")
    newest = max((rel for rel in done if rel in present), default=None)
    if newest is not None:
        for rel in pending:
            if rel < newest:
                warnings.append(
                    f"pending {rel} sorts before {newest}, which is already applied:"
                    " it will run out of order"
                )
    return MigrationCheck(tuple(drift), tuple(warnings), tuple(pending))
