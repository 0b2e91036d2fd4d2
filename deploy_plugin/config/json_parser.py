"""JSON parsing with a line per field and no duplicate keys."""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from typing import Any

from .errors import ConfigError
from .paths import _join


class _JsonPositions:
    """Line of every field of an already-valid JSON text, and its duplicate keys."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.newlines = [m.start() for m in re.finditer("\n", text)]
        self.lines: dict[str, int] = {}
        self.duplicates: list[tuple[str, str, int, int]] = []  # path, key, first, again

    def line(self, index: int) -> int:
        return bisect_right(self.newlines, index - 1) + 1

    def skip_ws(self) -> None:
        while self.i < len(self.text) and self.text[self.i] in " \t\n\r":
            self.i += 1

    def string(self) -> str:
        start = self.i
        self.i += 1
        while self.text[self.i] != '"':
            self.i += 2 if self.text[self.i] == "\\" else 1
        self.i += 1
        return str(json.loads(self.text[start : self.i]))

    def value(self, path: str) -> None:
        self.skip_ws()
        self.lines.setdefault(path, self.line(self.i))
        c = self.text[self.i]
        if c == "{":
            self.members(path)
        elif c == "[":
            self.items(path)
        elif c == '"':
            self.string()
        else:
            while self.i < len(self.text) and self.text[self.i] not in ",]} \t\n\r":
                self.i += 1

    def members(self, path: str) -> None:
        self.i += 1
        seen: dict[str, int] = {}
        while True:
            self.skip_ws()
            if self.text[self.i] == "}":
                self.i += 1
                return
            line = self.line(self.i)
            key = self.string()
            if key in seen:
                self.duplicates.append((path, key, seen[key], line))
            seen[key] = line
            child = _join(path, key)
            self.lines[child] = line
            self.skip_ws()
            self.i += 1  # ':'
            self.value(child)
            self.skip_ws()
            if self.text[self.i] == ",":
                self.i += 1

    def items(self, path: str) -> None:
        self.i += 1
        index = 0
        while True:
            self.skip_ws()
            if self.text[self.i] == "]":
                self.i += 1
                return
            self.value(_join(path, index))
            index += 1
            self.skip_ws()
            if self.text[self.i] == ",":
                self.i += 1


#: Python reads integers of at most this many digits (``sys.get_int_max_str_digits``).
MAX_INT_DIGITS = 4300


class _HugeInteger(ValueError):
    def __init__(self, digits: str) -> None:
        super().__init__(digits)
        self.digits = digits


def _parse_int(digits: str) -> int:
    """``int()`` of a JSON integer; a number longer than Python reads is one paragraph
    (a ConfigError with its line), not ``ValueError: Exceeds the limit``."""
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise _HugeInteger(digits)
    return int(digits)


def _parse_json(text: str, shown: str) -> tuple[Any, dict[str, int]]:
    try:
        data = json.loads(text, parse_int=_parse_int)
    except _HugeInteger as exc:
        size = len(exc.digits.lstrip("-"))
        raise ConfigError(
            f"a number of {size:,} digits; numbers of more than {MAX_INT_DIGITS:,} digits are"
            " not read, and no field takes one. Write the number the field expects.",
            path=shown,
            line=text.count("\n", 0, max(text.find(exc.digits), 0)) + 1,
        ) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"invalid JSON: {exc.msg} (column {exc.colno}). Fix the JSON syntax there; a "
            "trailing comma, a missing comma or quote, or an unclosed bracket are common causes.",
            path=shown,
            line=exc.lineno,
        ) from None
    positions = _JsonPositions(text)
    positions.value("")
    if positions.duplicates:
        path, key, first, again = positions.duplicates[0]
        raise ConfigError(
            f"duplicate key '{key}' (first on line {first}, again on line {again}). Remove one "
            "of them: only the last one would count, which hides mistakes.",
            path=shown,
            line=again,
            field=path or None,
        )
    return data, positions.lines
