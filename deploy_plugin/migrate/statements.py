"""Reading a migration's SQL text: statements and their lines, the no-transaction marker,
and a file's own transaction control (refused, or a whole-file wrapper dropped)."""

from __future__ import annotations

import re
import sqlite3
from typing import NamedTuple

from .errors import MigrationError

_MARKER = re.compile(r"--\s*deploy:no-transaction(?=\s|$)", re.IGNORECASE)
# Whitespace and comments in front of a statement (used to find the line where it starts).
_LEADING = re.compile(r"(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.DOTALL)
# statements that end (or open) a transaction: first word(s), lower-cased
_ENDS = {"commit", "end", "rollback", "abort"}
_OPENS = {"begin", "start"}
_CONTROL_HINT = re.compile(r"(?i)\b(?:commit|end|rollback|abort|begin|start)\b")


class _Statement(NamedTuple):
    start: int  # offset of the statement's first code character (after leading comments)
    end: int
    line: int  # line of ``start``


def no_transaction(text: str) -> bool:
    """True when ``-- deploy:no-transaction`` is one of the comment lines opening the file."""
    pos = 1 if text.startswith("\ufeff") else 0
    while pos < len(text):
        nl = text.find("\n", pos)
        line = text[pos : nl if nl >= 0 else len(text)].strip()
        if line.startswith("--"):
            if _MARKER.match(line):
                return True
        elif line:
            return False
        if nl < 0:
            break
        pos = nl + 1
    return False


def _code_start(text: str, start: int, end: int) -> int | None:
    """Offset of the first character in ``text[start:end]`` outside whitespace and comments."""
    match = _LEADING.match(text, start, end)
    pos = match.end() if match else start
    return pos if pos < end and text[pos] != ";" else None  # a lone ';' is no statement


def _lines(text: str, offsets: list[tuple[int, int]]) -> list[_Statement]:
    """Statements for ``(start, end)`` spans, skipping empty ones; lines counted incrementally."""
    out: list[_Statement] = []
    line, last = 1, 0
    for start, end in offsets:
        code = _code_start(text, start, end)
        if code is not None:
            line += text.count("\n", last, code)
            last = code
            out.append(_Statement(code, end, line))
    return out


def _pg_statements(text: str) -> list[_Statement]:
    """Split PostgreSQL text like the server does (dollar quotes, BEGIN ATOMIC) via sqlparse."""
    import sqlparse

    spans, cursor = [], 0
    for piece in sqlparse.split(text):  # each piece is a verbatim, stripped slice of text
        start = text.find(piece, cursor)
        if start < 0:
            break
        cursor = start + len(piece)
        spans.append((start, cursor))
    return _lines(text, spans)


def _sqlite_statements(text: str) -> list[_Statement]:
    """Split SQLite text at each ``;`` that ``sqlite3.complete_statement`` says ends one."""
    spans, start, pos = [], 0, 0
    while pos < len(text):
        semi = text.find(";", pos)
        pos = len(text) if semi < 0 else semi + 1
        if semi < 0 or sqlite3.complete_statement(text[start:pos]):
            spans.append((start, pos))
            start = pos
    return _lines(text, spans)


def _first_words(text: str, stmt: _Statement) -> tuple[str, str]:
    words = re.findall(r"[A-Za-z]+", text[stmt.start : min(stmt.end, stmt.start + 80)])[:2]
    words = [w.lower() for w in words] + ["", ""]
    return words[0], words[1]


def _ends_transaction(words: tuple[str, str]) -> bool:
    first, second = words
    if first == "rollback":
        return second != "to"  # ROLLBACK TO SAVEPOINT stays inside the transaction
    return first in _ENDS


def _opens_transaction(words: tuple[str, str]) -> bool:
    first, second = words
    return first == "begin" or (first == "start" and second == "transaction")


def _blank(text: str, stmt: _Statement) -> str:
    """``text`` with one statement replaced by spaces (newlines kept: lines stay put)."""
    gap = re.sub(r"[^\n]", " ", text[stmt.start : stmt.end])
    return text[: stmt.start] + gap + text[stmt.end :]


def _without_wrapper(text: str, rel: str, kind: str) -> str:
    """Refuse a file's own COMMIT/ROLLBACK; drop a ``BEGIN; ... COMMIT;`` around it all.

    Such a statement would end the migration's transaction half way: what came before it
    would commit (or vanish) apart from the ledger and history rows.
    """
    if not _CONTROL_HINT.search(text):
        return text  # the common case costs one regex scan, no parse
    split = _pg_statements if kind == "postgresql" else _sqlite_statements
    stmts = split(text)
    words = [_first_words(text, stmt) for stmt in stmts]
    if (
        len(stmts) >= 2
        and _opens_transaction(words[0])
        and words[-1][0] in ("commit", "end")
        and not any(_opens_transaction(w) or _ends_transaction(w) for w in words[1:-1])
    ):
        return _blank(_blank(text, stmts[-1]), stmts[0])
    for stmt, word in zip(stmts, words, strict=True):
        if _ends_transaction(word):
            raise MigrationError(
                rel,
                stmt.line,
                f"the file's own {word[0].upper()} would end the migration's transaction half"
                " way, committing (or discarding) part of the file apart from its history."
                " Remove it: each file already runs in one transaction. A file that must"
                " manage its own transactions starts with the line -- deploy:no-transaction."
                " Nothing was applied",
            )
    return text


def _line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, min(max(offset, 0), len(text.rstrip()))) + 1


def _one_paragraph(text: str) -> str:
    return " ".join(text.split())
