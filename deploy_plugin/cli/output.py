"""What the CLI says: errors with their exit codes, tables for people, JSON for machines."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from deploy_plugin.store.base import format_time

#: Exit codes (DESIGN §6): ok, failed, usage.
OK, FAILED, USAGE = 0, 1, 2


class CliError(Exception):
    """A problem told to the user as one paragraph on stderr; ``code`` is the exit code."""

    code = FAILED

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(" ".join(message.split()))
        if code is not None:
            self.code = code


class UsageProblem(CliError):
    """Bad input (unknown name, invalid value...): exit code 2, nothing changed."""

    code = USAGE


def say(text: str = "") -> None:
    """A line for people on stdout."""
    print(text, file=sys.stdout)


def warn(text: str) -> None:
    """A warning paragraph on stderr."""
    print(f"warning: {' '.join(text.split())}", file=sys.stderr)


def note(text: str) -> None:
    """A remark on stderr (kept out of stdout so that stdout stays parseable)."""
    print(text, file=sys.stderr)


def emit_json(data: Any) -> None:
    """``data`` as indented JSON on stdout (datetimes as ISO 8601 UTC)."""
    print(json_text(data), end="", file=sys.stdout)


def json_text(data: Any) -> str:
    """``data`` as indented JSON and a newline (datetimes as ISO 8601 UTC)."""
    return json.dumps(data, indent=2, default=_json_default, ensure_ascii=False) + "\n"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def when(value: datetime | None) -> str:
    """A timestamp for tables: ISO 8601 UTC to the second, ``-`` for none."""
    return "-" if value is None else format_time(value)


def cell(value: Any) -> str:
    """A table cell: ``-`` for None, yes/no for booleans, one line."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return format_time(value)
    return re.sub(r"\s+", " ", str(value)).strip()


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Rows under upper-case headers, columns padded to their widest cell."""
    body = [[cell(value) for value in row] for row in rows]
    head = [h.upper() for h in headers]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = []
    for row in [head, *body]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], empty: str) -> None:
    """Print a table, or ``empty`` when there are no rows."""
    say(table(headers, rows) if rows else empty)


def confirm(question: str, *, yes: bool) -> bool:
    """``--yes``, else ask at a terminal; without one, UsageProblem asking for ``--yes``."""
    if yes:
        return True
    if not sys.stdin or not sys.stdin.isatty():
        raise UsageProblem(f"{question} No terminal to ask at: pass --yes to confirm.")
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        answer = ""
    return answer.strip().lower() in ("y", "yes")
