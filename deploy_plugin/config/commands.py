"""Command placeholders (``{file}``, ``{target}``...): finding, checking and rendering them.

Each placeholder is substituted as one ``shlex.quote()``-d shell word, so one standing inside
quotes is an error, as is an unknown name. Quoting stops word splitting, not a leading ``-``:
a path placeholder (``{file}``, ``{name}``, ``{dir}``; ``{path}`` is absolute) whose value
starts with ``-`` gets ``./`` in front (the same file to every program, never an option);
any other placeholder with such a value is refused before anything runs
(:func:`option_like`, used by ``preflight::files``).
"""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Iterator, Mapping
from typing import Any

FILE_PLACEHOLDERS = frozenset(
    {"file", "path", "name", "stem", "dir", "function_name", "service_name"}
)
PLACEHOLDERS = FILE_PLACEHOLDERS | {"target", "project", "group"}
#: Placeholders whose value is a path: ``./`` in front of a leading ``-`` keeps its meaning.
PATH_PLACEHOLDERS = frozenset({"file", "path", "name", "dir"})


class PlaceholderError(ValueError):
    """A bad placeholder in a command: unknown name, inside quotes, or without a value.

    ``name`` is the placeholder, ``reason`` one of ``'unknown'``, ``'quoted'``, ``'missing'``.
    """

    def __init__(self, message: str, *, name: str, reason: str) -> None:
        super().__init__(message)
        self.name = name
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (_placeholder_error, (str(self), self.name, self.reason))


def _placeholder_error(message: str, name: str, reason: str) -> PlaceholderError:
    return PlaceholderError(message, name=name, reason=reason)


_PLACEHOLDER_RE = re.compile(r"\{([a-z_]+)\}")
_QUOTE_WORDS = {"'": "single quotes", '"': "double quotes", "$'": "$'...' quotes"}


def _tokens(command: str) -> Iterator[tuple[str, str, str | None]]:
    """Split a command into ``('text', s, None)`` and ``('ph', name, quote)`` tokens.

    ``quote`` is the shell quoting in force at the placeholder (None outside quotes).
    ``{{``/``}}`` come out as literal braces; a backslash-escaped brace is not a placeholder.
    """
    text: list[str] = []
    quote: str | None = None
    plain_dollar = -1  # index of the last unescaped '$' outside quotes, for $'...'
    i, n = 0, len(command)
    while i < n:
        c = command[i]
        if command.startswith(("{{", "}}"), i):
            text.append(c)
            i += 2
            continue
        if c == "{" and (i == 0 or command[i - 1] != "$"):
            match = _PLACEHOLDER_RE.match(command, i)
            if match:
                if text:
                    yield ("text", "".join(text), None)
                    text = []
                yield ("ph", match.group(1), quote)
                i = match.end()
                continue
        step = 1
        if quote is None:
            if c == "\\":
                step = 2
            elif c == "'":
                quote = "$'" if plain_dollar == i - 1 else "'"
            elif c == '"':
                quote = '"'
            elif c == "$":
                plain_dollar = i
        elif quote == "'":
            if c == "'":
                quote = None
        elif c == "\\":  # inside "..." or $'...'
            step = 2
        elif (quote == '"' and c == '"') or (quote == "$'" and c == "'"):
            quote = None
        text.append(command[i : i + step])
        i += step
    if text:
        yield ("text", "".join(text), None)


def _check_placeholder(name: str, quote: str | None) -> None:
    if name not in PLACEHOLDERS:
        close = difflib.get_close_matches(name, sorted(PLACEHOLDERS), n=1, cutoff=0.6)
        maybe = f" Did you mean {{{close[0]}}}?" if close else ""
        known = ", ".join(f"{{{p}}}" for p in sorted(PLACEHOLDERS))
        raise PlaceholderError(
            f"unknown placeholder {{{name}}}.{maybe} Known placeholders: {known}; "
            f"write {{{{{name}}}}} for literal braces.",
            name=name,
            reason="unknown",
        )
    if quote is not None:
        raise PlaceholderError(
            f"placeholder {{{name}}} stands inside {_QUOTE_WORDS[quote]}. Remove the quotes "
            f"around it: each placeholder is substituted as one shell word, already quoted "
            f"for you (write `cmd {{{name}}}`, not `cmd '{{{name}}}'`).",
            name=name,
            reason="quoted",
        )


def placeholders(command: str) -> list[str]:
    """The placeholder names ``command`` uses, each once, in order of first use.

    Raises :class:`PlaceholderError` (a ValueError) for an unknown name or a placeholder
    standing inside quotes.
    """
    names: list[str] = []
    for kind, value, quote in _tokens(command):
        if kind == "ph":
            _check_placeholder(value, quote)
            if value not in names:
                names.append(value)
    return names


def render_command(command: str, values: Mapping[str, str]) -> str:
    """Substitute placeholders, each ``shlex.quote()``-d as one shell word.

    ``{{``/``}}`` become literal braces; every other brace (``${X}``, ``awk '{print $1}'``)
    stays as written. Raises :class:`PlaceholderError` for an unknown, quoted or missing one.
    """
    out: list[str] = []
    for kind, value, quote in _tokens(command):
        if kind == "text":
            out.append(value)
            continue
        _check_placeholder(value, quote)
        if value not in values:
            raise PlaceholderError(
                f"no value for placeholder {{{value}}} in this command",
                name=value,
                reason="missing",
            )
        text = str(values[value])
        if value in PATH_PLACEHOLDERS and text.startswith("-") and _word_start(out):
            text = "./" + text  # the same file to every program, never an option
        out.append(shlex.quote(text))
    return "".join(out)


def _word_start(before: list[str]) -> bool:
    """Whether what follows the text ``before`` starts a shell word (where a leading ``-``
    is an option; after ``--name=`` it is not)."""
    last = before[-1][-1:] if before and before[-1] else ""
    return last == "" or last.isspace() or last in ";&|()<>"


def option_like(command: str, values: Mapping[str, str]) -> list[str]:
    """The placeholders starting a shell word of ``command`` whose value in ``values``
    starts with ``-`` and is not a path (so ``./`` cannot make it safe): a program would
    take it as an option."""
    found: list[str] = []
    before: list[str] = []
    for kind, value, quote in _tokens(command):
        if kind == "text":
            before.append(value)
            continue
        _check_placeholder(value, quote)
        text = str(values.get(value, ""))
        if value not in PATH_PLACEHOLDERS and text.startswith("-") and _word_start(before):
            found.append(value)
        before.append(text or "x")
    return list(dict.fromkeys(found))


def render_path(template: str, values: Mapping[str, str]) -> str:
    """Substitute placeholders in a path template (``down_file``) as plain text, unquoted:
    the result is a path, never given to a shell. Raises :class:`PlaceholderError` as
    :func:`render_command` does."""
    out: list[str] = []
    for kind, value, _quote in _tokens(template):
        if kind == "text":
            out.append(value)
            continue
        if value not in values:
            raise PlaceholderError(
                f"no value for placeholder {{{value}}} in this path", name=value, reason="missing"
            )
        out.append(str(values[value]))
    return "".join(out)
