"""What a migration file applies, and its checksum (the one fingerprint of a tracked file).

A file in dbmate's format holds both directions: a ``-- migrate:up`` section and
optionally a ``-- migrate:down`` section. Such a migration applies its up section only,
and its checksum covers the up section only (an edit of the down section is no drift);
the rollback runs its down section (:mod:`deploy_plugin.migrate.downs` finds downs).
Any other file applies all of it. Each section keeps the file's own line numbers (the
lines before it are sent blank), so a failing statement is reported at the line the user
sees in the file.

Planning needs the checksum, so this lives below both: it imports nothing of ours but
:mod:`deploy_plugin.plan.files`.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from .files import read_small_file

_MARKER = re.compile(rb"^--[ \t]*migrate:(up|down)\b[^\n]*$", re.M)


def _spans(data: bytes) -> dict[str, tuple[int, int]] | None:
    """Byte spans of the ``up`` and ``down`` sections (marker line included), or None when
    the file has no ``-- migrate:up`` marker (it is not in dbmate's format)."""
    markers = [(m.group(1).decode(), m.start()) for m in _MARKER.finditer(data)]
    if not any(kind == "up" for kind, _ in markers):
        return None
    spans: dict[str, tuple[int, int]] = {}
    for index, (kind, start) in enumerate(markers):
        end = markers[index + 1][1] if index + 1 < len(markers) else len(data)
        spans.setdefault(kind, (start, end))  # a repeated marker stays in the first section
    return spans


def _section(data: bytes, span: tuple[int, int]) -> bytes:
    """One section, preceded by as many newlines as there are lines before it."""
    start, end = span
    return b"\n" * data.count(b"\n", 0, start) + data[start:end]


def up_bytes(data: bytes) -> bytes:
    """What a migration file applies: its up section in dbmate's format, else all of it."""
    spans = _spans(data) if b"migrate:" in data else None
    return data if spans is None else _section(data, spans["up"])


def down_bytes(data: bytes) -> bytes | None:
    """The ``-- migrate:down`` section of a migration file, or None when it has none."""
    spans = _spans(data) if b"migrate:" in data else None
    if spans is None or "down" not in spans:
        return None
    return _section(data, spans["down"])


def checksum_bytes(data: bytes) -> str:
    """SHA-256 of what a migration applies (CRLF normalised): the up section only for a
    file in dbmate's format, so editing its down section is never drift."""
    data = data.replace(b"\r\n", b"\n")
    spans = _spans(data) if b"migrate:" in data else None
    if spans is not None:
        start, end = spans["up"]
        data = data[start:end]
    return hashlib.sha256(data).hexdigest()


def file_checksum(path: Path) -> str:
    """SHA-256 of a file's bytes with CRLF normalised to LF (line endings alone are no
    drift); of its up section only when it is in dbmate's format."""
    return checksum_bytes(read_small_file(path))
