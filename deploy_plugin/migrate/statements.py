"""Reading a migration's SQL text: statements and their lines, the no-transaction marker,
and what must not reach the server: a file's own transaction control (refused, or a
whole-file wrapper dropped) and, on PostgreSQL, a COPY with the client's end (refused).

PostgreSQL text is read by PostgreSQL's own lexer and parser (libpg_query, through
pglast's public ``pglast.parser.split`` and ``scan``): strings (``'...\\'`` is a whole
string, standard_conforming_strings being on), ``E''`` strings, dollar quotes, nested
block comments and ``BEGIN ATOMIC`` bodies are what the server says they are. SQLite text
is split where ``sqlite3.complete_statement`` says a statement ends."""

from __future__ import annotations

import re
import sqlite3
from typing import NamedTuple

from .errors import MigrationError

_MARKER = re.compile(r"--\s*deploy:no-transaction(?=\s|$)", re.IGNORECASE)
# Whitespace and comments in front of a statement (used to find the line where it starts).
_LEADING = re.compile(r"(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.DOTALL)
# words that start a statement ending or opening a transaction (SQLite; PostgreSQL's also
# COPY and PREPARE TRANSACTION): a file without any of them, most, is not split at all
# (searched in the lower-cased text: faster than a case-insensitive search)
_CONTROL_HINT = re.compile(r"\b(?:commit|end|rollback|abort|begin|start)\b")
_PG_HINT = re.compile(r"\b(?:commit|end|rollback|abort|begin|start|prepare|copy)\b")
_COPY_HINT = re.compile(r"\bcopy\b")
_PG_WORD = re.compile(_PG_HINT.pattern, re.IGNORECASE)  # a statement's first word
# PostgreSQL's comment tokens (``--`` and block comments, which nest)
_COMMENTS = frozenset({"SQL_COMMENT", "C_COMMENT"})
#: ("ends" or "opens", the words to name it by) for a statement of transaction control
_Control = tuple[str, str]


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
    """Split PostgreSQL text as the server does, with PostgreSQL's own lexer and parser.

    libpg_query's parser (through pglast) gives the statements the server runs, one per
    result of a simple-protocol query (empty ones left out, as the server leaves them).
    Text it rejects (a syntax error, or syntax of a newer server) is split on its tokens
    at each top-level ``;`` outside a ``BEGIN ATOMIC`` body, the way psql splits a script.
    Text even the lexer rejects (an unterminated string, quoted name or comment) is one
    statement: the server refuses it whole, with the error's position.
    """
    # deferred: +19 modules, 30 ms (pglast.ast, pglast.enums.parsenodes, pglast.enums.nodes, …)
    from pglast.parser import ParseError, split

    try:
        spans = [(piece.start, piece.stop) for piece in split(text, only_slices=True)]
    except ParseError:
        spans = _scanned_spans(text)
    out: list[_Statement] = []
    line, last = 1, 0
    for start, end in spans:  # each span starts at its first token (comments skipped)
        line += text.count("\n", last, start)
        last = start
        out.append(_Statement(start, end, line))
    return out


def _scanned_spans(text: str) -> list[tuple[int, int]]:
    """(first token, end) of each statement of ``text`` by its tokens, as psql splits.

    A ``;`` ends a statement outside parentheses and, in ``CREATE [OR REPLACE]
    FUNCTION|PROCEDURE``, outside a ``BEGIN ... END`` body (psql's own rule, counting
    ``CASE ... END`` inside one).
    """
    # deferred: +19 modules, 28 ms (pglast.ast, pglast.enums.nodes, pglast.enums.parsenodes, …)
    from pglast.parser import ParseError, scan

    try:
        tokens = scan(text)
    except ParseError:
        code = len(text) - len(text.lstrip())
        return [(code, len(text))] if code < len(text) else []
    spans: list[tuple[int, int]] = []
    start: int | None = None
    words: list[str] = []  # the statement's first words, lower-cased
    depth = blocks = 0
    for token in tokens:
        if token.name in _COMMENTS or (start is None and token.name == "ASCII_59"):
            continue  # (an empty statement is none)
        if start is None:
            start, words, depth, blocks = token.start, [], 0, 0
        if token.name == "ASCII_59" and depth == 0 and blocks == 0:
            spans.append((start, token.start))
            start = None
        elif token.name == "ASCII_40":
            depth += 1
        elif token.name == "ASCII_41":
            depth = max(depth - 1, 0)
        elif token.kind != "NO_KEYWORD" or (token.name == "IDENT" and text[token.start] != '"'):
            word = text[token.start : token.end + 1].lower()
            if len(words) < 4:
                words.append(word)
            if depth == 0 and _routine(words):
                if word == "begin" or (word == "case" and blocks):
                    blocks += 1
                elif word == "end" and blocks:
                    blocks -= 1
    if start is not None:
        spans.append((start, len(text.rstrip())))
    return spans


def _routine(words: list[str]) -> bool:
    """Whether a statement's first words are CREATE [OR REPLACE] FUNCTION|PROCEDURE."""
    kind = words[3:4] if words[1:3] == ["or", "replace"] else words[1:2]
    return words[:1] == ["create"] and kind in (["function"], ["procedure"])


def _pg_tokens(text: str, stmt: _Statement) -> list[tuple[str, str]]:
    """(token name, lower-cased text) of a statement's tokens, comments left out."""
    # deferred: +19 modules, 44 ms (pglast.enums.parsenodes, pglast.ast, pglast.enums.nodes, …)
    from pglast.parser import ParseError, scan

    try:
        tokens = scan(text[stmt.start : stmt.end])
    except ParseError:  # cannot happen for a span of lexed text; the server will say
        return []
    body = text[stmt.start : stmt.end]
    return [(t.name, body[t.start : t.end + 1].lower()) for t in tokens if t.name not in _COMMENTS]


def _pg_control(tokens: list[tuple[str, str]]) -> _Control | None:
    """("ends" or "opens", its words) when a statement ends or opens a transaction.

    COMMIT, END, ROLLBACK, ABORT and PREPARE TRANSACTION end one (not ROLLBACK TO
    SAVEPOINT, which stays in it; COMMIT/ROLLBACK PREPARED are left to the server, which
    refuses them in a transaction block); BEGIN and START TRANSACTION open one.
    """
    names = [name for name, _ in tokens[:4]] + ["", ""]
    first = names[0]
    if first in ("COMMIT", "ROLLBACK", "END_P", "ABORT_P"):
        rest = names[1:]
        while rest[0] in ("WORK", "TRANSACTION"):
            rest = rest[1:]
        if rest[0] == "PREPARED" or (first == "ROLLBACK" and rest[0] == "TO"):
            return None
        return "ends", tokens[0][1].upper()
    if first == "PREPARE" and names[1] == "TRANSACTION":
        return "ends", "PREPARE TRANSACTION"
    if first == "BEGIN_P" or (first == "START" and names[1] == "TRANSACTION"):
        return "opens", tokens[0][1].upper()
    return None


def _pg_copy(tokens: list[tuple[str, str]]) -> str | None:
    """``FROM STDIN`` or ``TO STDOUT`` when a statement is a COPY with the client's end."""
    if not tokens or tokens[0][0] != "COPY":
        return None
    depth = 0
    for (name, _), (after, _) in zip(tokens, tokens[1:], strict=False):
        depth += (name == "ASCII_40") - (name == "ASCII_41")
        if depth == 0 and name in ("FROM", "TO") and after in ("STDIN", "STDOUT"):
            return "FROM STDIN" if name == "FROM" else "TO STDOUT"
    return None


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


def _sqlite_control(words: tuple[str, str]) -> _Control | None:
    first, second = words
    if first in ("commit", "end", "abort") or (first == "rollback" and second != "to"):
        return "ends", first.upper()  # ROLLBACK TO SAVEPOINT stays inside the transaction
    if first == "begin" or (first == "start" and second == "transaction"):
        return "opens", first.upper()
    return None


def _blank(text: str, stmt: _Statement) -> str:
    """``text`` with one statement replaced by spaces (newlines kept: lines stay put)."""
    gap = re.sub(r"[^\n]", " ", text[stmt.start : stmt.end])
    return text[: stmt.start] + gap + text[stmt.end :]


def _ends_refused(rel: str, stmt: _Statement, word: str) -> MigrationError:
    return MigrationError(
        rel,
        stmt.line,
        f"the file's own {word} would end the migration's transaction half"
        " way, committing (or discarding) part of the file apart from its history."
        " Remove it: each file already runs in one transaction. A file that must"
        " manage its own transactions starts with the line -- deploy:no-transaction."
        " Nothing was applied",
    )


def _copy_refused(rel: str, stmt: _Statement, what: str) -> MigrationError:
    rows, server_file, sql = (
        ("reads rows from the client (in a psql script, the lines after it up to \\.)",
         "COPY ... FROM '/path/on/the/server'", "INSERT ... VALUES or INSERT ... SELECT")
        if what == "FROM STDIN"
        else ("sends rows to the client", "COPY ... TO '/path/on/the/server'",
              "INSERT ... SELECT or a SELECT")
    )  # fmt: skip
    return MigrationError(
        rel,
        stmt.line,
        f"COPY ... {what} {rows}, and the built-in executor has no client end for them"
        f" (it sends the file to the server in one piece). Use a file on the database"
        f" server ({server_file}) or {sql} instead, or have psql apply this file: give its"
        ' group a deploy_command such as psql "$DATABASE_URL" -f {file} (psql streams'
        " COPY data). Nothing was applied",
    )


def _wrapped(controls: list[_Control | None]) -> bool:
    """Whether the file is wrapped whole in ``BEGIN; ... COMMIT;`` (nothing else in it
    opening or ending a transaction): what it asks for is what the executor does anyway."""
    return (
        len(controls) >= 2
        and controls[0] is not None
        and controls[0][0] == "opens"
        and controls[-1] in (("ends", "COMMIT"), ("ends", "END"))
        and not any(controls[1:-1])
    )


def _refused(
    rel: str, stmts: list[_Statement], controls: list[_Control | None], wrapped: bool
) -> MigrationError | None:
    """The file's first own COMMIT/ROLLBACK (outside a whole-file wrapper), refused.

    Such a statement would end the migration's transaction half way: what came before it
    would commit (or vanish) apart from the ledger and history rows.
    """
    if not wrapped:
        for stmt, control in zip(stmts, controls, strict=False):  # (up to a refused COPY)
            if control is not None and control[0] == "ends":
                return _ends_refused(rel, stmt, control[1])
    return None


def _unwrap(text: str, stmts: list[_Statement]) -> str:
    """``text`` without its whole-file wrapper (blanked: lines and offsets stay put)."""
    return _blank(_blank(text, stmts[-1]), stmts[0])


def pg_checked(text: str, rel: str, atomic: bool) -> str:
    """The PostgreSQL text to send, after refusing what must not reach the server.

    Refused before anything runs (:class:`MigrationError`, file and line of the first
    such statement): a COPY with the client's end (``FROM STDIN``/``TO STDOUT``: the
    executor has none, and on a ``TO STDOUT`` the server would go on and commit while the
    client gives up), and in an ``atomic`` file its own COMMIT/ROLLBACK; a whole-file
    ``BEGIN ... COMMIT`` wrapper is blanked out instead. Read with PostgreSQL's own lexer.
    """
    if not (_PG_HINT if atomic else _COPY_HINT).search(text.lower()):
        return text  # the common case costs one regex scan, no split
    stmts = _pg_statements(text)
    controls: list[_Control | None] = []
    copy: MigrationError | None = None  # the first COPY with the client's end, refused
    for stmt in stmts:
        tokens = _pg_tokens(text, stmt) if _PG_WORD.match(text, stmt.start) else []
        control = _pg_control(tokens) if atomic else None
        what = _pg_copy(tokens)
        if what is not None:
            copy = _copy_refused(rel, stmt, what)
            break  # an own COMMIT before it is named first; one after it does not matter
        controls.append(control)
    wrapped = copy is None and _wrapped(controls)
    refused = _refused(rel, stmts, controls, wrapped) if atomic else None
    if refused is not None:
        raise refused
    if copy is not None:
        raise copy
    return _unwrap(text, stmts) if atomic and wrapped else text


def sqlite_checked(text: str, rel: str) -> str:
    """The SQLite text of an atomic file: its own COMMIT/ROLLBACK refused, or a whole-file
    ``BEGIN ... COMMIT`` wrapper blanked out (split by ``sqlite3.complete_statement``)."""
    if not _CONTROL_HINT.search(text.lower()):
        return text
    stmts = _sqlite_statements(text)
    controls = [_sqlite_control(_first_words(text, stmt)) for stmt in stmts]
    wrapped = _wrapped(controls)
    refused = _refused(rel, stmts, controls, wrapped)
    if refused is not None:
        raise refused
    return _unwrap(text, stmts) if wrapped else text


def _line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, min(max(offset, 0), len(text.rstrip()))) + 1


def _one_paragraph(text: str) -> str:
    return " ".join(text.split())
