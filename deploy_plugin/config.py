"""The deployment config: model, loading (YAML or JSON, with line numbers) and validation.

A config is validated in two passes: the JSON Schema shipped next to this module
(``config_schema.json``, also usable by editors) checks shapes and types, then Python checks
what a schema cannot say (unique names, placeholders, the tracked-group rule, the root
folder...). Every problem becomes a :class:`ConfigError` whose text is one paragraph naming
the file, line and field, what was expected and how to fix it.

This module imports nothing else of ours.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import os
import re
import shlex
from bisect import bisect_right
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = [
    "CONFIG_SUFFIXES",
    "FILE_PLACEHOLDERS",
    "PLACEHOLDERS",
    "RESERVED_GROUP_NAMES",
    "ConfigError",
    "DeployConfig",
    "Group",
    "HealthCheck",
    "Notify",
    "PlaceholderError",
    "TargetDecl",
    "format_path",
    "is_config_file",
    "load_config",
    "placeholders",
    "render_command",
    "schema",
]

FILE_PLACEHOLDERS = frozenset(
    {"file", "path", "name", "stem", "dir", "function_name", "service_name"}
)
PLACEHOLDERS = FILE_PLACEHOLDERS | {"target", "project", "group"}
RESERVED_GROUP_NAMES = frozenset({"preflight", "health_check", "validate"})
CONFIG_SUFFIXES = (".yaml", ".yml", ".json")
SCHEMA_PATH = Path(__file__).with_name("config_schema.json")


# --------------------------------------------------------------------------- errors


class ConfigError(Exception):
    """A user error in a config, rendered as one paragraph.

    Attributes: ``path`` (the file as shown to the user), ``line`` (1-based or None),
    ``field`` (e.g. ``'groups[2].order'``; None for the whole file), ``problem`` (the text
    after the location) and ``others`` (further problems found in the same file, each a
    ConfigError, for tools that list them all).
    """

    def __init__(
        self,
        problem: str,
        *,
        path: str,
        line: int | None = None,
        field: str | None = None,
        others: tuple[ConfigError, ...] = (),
    ) -> None:
        self.problem = _one_paragraph(problem)
        self.path = path
        self.line = line
        self.field = field
        self.others = others
        super().__init__(self._render())

    def __reduce__(self) -> tuple:
        # keyword-only arguments: the default Exception pickling would lose them (xdist)
        return (_config_error, (self.problem, self.path, self.line, self.field, self.others))

    def _render(self) -> str:
        where = self.path if self.line is None else f"{self.path}, line {self.line}"
        text = (
            f"{where}: {self.field}: {self.problem}" if self.field else f"{where}: {self.problem}"
        )
        if self.others:
            more = len(self.others)
            text += f" ({more} more problem{'s' if more > 1 else ''} found after this one.)"
        return text

    def with_path(self, path: str) -> ConfigError:
        """The same error shown under another path (e.g. relative to pytest's rootdir)."""
        others = tuple(o.with_path(path) for o in self.others)
        return ConfigError(self.problem, path=path, line=self.line, field=self.field, others=others)


class PlaceholderError(ValueError):
    """A bad placeholder in a command: unknown name, inside quotes, or without a value.

    ``name`` is the placeholder, ``reason`` one of ``'unknown'``, ``'quoted'``, ``'missing'``.
    """

    def __init__(self, message: str, *, name: str, reason: str) -> None:
        super().__init__(message)
        self.name = name
        self.reason = reason

    def __reduce__(self) -> tuple:
        return (_placeholder_error, (str(self), self.name, self.reason))


def _config_error(
    problem: str, path: str, line: int | None, field: str | None, others: tuple
) -> ConfigError:
    return ConfigError(problem, path=path, line=line, field=field, others=others)


def _placeholder_error(message: str, name: str, reason: str) -> PlaceholderError:
    return PlaceholderError(message, name=name, reason=reason)


def _one_paragraph(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", text).strip()


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class HealthCheck:
    """``health_check``: polled after the last group until it answers as expected."""

    url: str
    expected_status: int = 200
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class Notify:
    """One ``notify[]`` entry: a webhook called when the deployment ends."""

    webhook: str
    on: tuple[str, ...] = ("success", "failure")
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class TargetDecl:
    """A target declared in the config's ``targets`` section."""

    name: str
    type: str | None = None
    provider: str | None = None
    host: str | None = None
    region: str | None = None
    protected: bool = False
    env: dict[str, str] = field(default_factory=dict)
    health_check_url: str | None = None


@dataclass(frozen=True)
class Group:
    """One part of the deployment; ``index`` is its position in the file."""

    name: str
    order: int
    index: int
    file_patterns: tuple[str, ...] = ()
    pre_deploy: tuple[str, ...] = ()
    build_command: str | None = None
    test_command: str | None = None
    deploy_command: str | None = None
    post_deploy: tuple[str, ...] = ()
    required_env_vars: tuple[str, ...] = ()
    track_migrations: bool = False
    database_url_env: str = "DATABASE_URL"
    max_parallel: int = 1
    timeout_seconds: float | None = None
    targets: tuple[str, ...] | None = None
    line: int | None = None

    @property
    def deploy_per_file(self) -> bool:
        """Whether ``deploy_command`` names a file placeholder (so it runs once per file)."""
        if self.deploy_command is None:
            return False
        return any(n in FILE_PLACEHOLDERS for n in placeholders(self.deploy_command))

    def applies_to(self, target: str) -> bool:
        """Whether the group runs for ``target`` (``targets`` unset means every target)."""
        return self.targets is None or target in self.targets


@dataclass(frozen=True, eq=False)
class DeployConfig:
    """A loaded, validated config. ``groups`` are sorted by ``(order, index)``.

    Compared and hashed by identity, so a config can key a dict.
    """

    path: Path
    root: Path
    project: str
    groups: tuple[Group, ...]
    health_check: HealthCheck | None
    notify: tuple[Notify, ...]
    targets: dict[str, TargetDecl]
    source_text: str
    sha256: str
    data: dict
    lines: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def line_of(self, field: str) -> int | None:
        """The line where ``field`` (e.g. ``'groups[1].deploy_command'``) is written."""
        return self.lines.get(field)

    def group(self, name: str) -> Group | None:
        """The group called ``name``, if any."""
        return next((g for g in self.groups if g.name == name), None)


# --------------------------------------------------------------------------- placeholders

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
        out.append(shlex.quote(str(values[value])))
    return "".join(out)


# --------------------------------------------------------------------------- paths & lines

_SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def format_path(parts: Any) -> str:
    """``['groups', 1, 'order']`` -> ``'groups[1].order'`` (odd keys as ``["a b"]``)."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _SIMPLE_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out


def _join(path: str, part: str | int) -> str:
    return format_path([part]) if not path else path + format_path(["x", part])[1:]


def _parent(path: str) -> str:
    """``'groups[1].order'`` -> ``'groups[1]'`` -> ``'groups'`` -> ``''``."""
    cut = max(path.rfind("."), path.rfind("["))
    return path[:cut] if cut > 0 else ""


def _line_near(lines: Mapping[str, int], path: str) -> int | None:
    """The line of ``path``, else of its nearest written parent."""
    while True:
        if path in lines:
            return lines[path]
        if not path:
            return None
        path = _parent(path)


# --------------------------------------------------------------------------- YAML

_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_MAX_NODES = 100_000  # alias bombs: refuse instead of expanding exponentially


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core scalars: only true/false are booleans, no dates."""


# Keep only null and merge from YAML 1.1's implicit types, then add the YAML 1.2 core ones.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag in ("tag:yaml.org,2002:null", _MERGE)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)


def _construct_int(loader: _Loader, node: ScalarNode) -> int:
    # YAML 1.2: 010 is ten, not eight; no sexagesimal, no underscores.
    text = loader.construct_scalar(node)
    body = text.lstrip("+-")
    sign = -1 if text.startswith("-") else 1
    try:
        if body[:2] in ("0x", "0X"):
            return sign * int(body[2:], 16)
        if body[:2] in ("0o", "0O"):
            return sign * int(body[2:], 8)
        return sign * int(body, 10)
    except ValueError:
        raise yaml.constructor.ConstructorError(
            None, None, f"{text!r} is not an integer", node.start_mark
        ) from None


_Loader.add_constructor(_INT, _construct_int)


def _yaml_lines(root: Node, shown: str) -> dict[str, int]:
    """Map each field path to its line; reject duplicate and non-string keys."""
    lines: dict[str, int] = {"": root.start_mark.line + 1}
    active: set[int] = set()
    count = 0

    def walk(node: Node, path: str, merged: bool = False) -> None:
        nonlocal count
        count += 1
        if count > _MAX_NODES:
            raise ConfigError(
                f"the document expands to more than {_MAX_NODES} values through YAML aliases. "
                "Write the values out instead of nesting anchors and aliases.",
                path=shown,
            )
        if id(node) in active:
            raise ConfigError(
                "this value contains itself through a YAML alias. Write the values out "
                "instead of referring to an enclosing anchor.",
                path=shown,
                line=lines.get(path, node.start_mark.line + 1),
                field=path or None,
            )
        active.add(id(node))
        if isinstance(node, MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE:
                    subs = (
                        value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                    )
                    for sub in subs:
                        walk(sub, path, merged=True)
                    continue
                line = key_node.start_mark.line + 1
                if not isinstance(key_node, ScalarNode) or key_node.tag != _STR:
                    shown_key = key_node.value if isinstance(key_node, ScalarNode) else "(complex)"
                    raise ConfigError(
                        f"key {shown_key} is not a string. Write keys as plain names "
                        f'(quote it, e.g. "{shown_key}", if it is meant as a name).',
                        path=shown,
                        line=line,
                        field=path or None,
                    )
                key = key_node.value
                if key in seen:
                    raise ConfigError(
                        f"duplicate key '{key}' (first on line {seen[key]}, again on line "
                        f"{line}). Remove one of them: only the last one would count, which "
                        "hides mistakes.",
                        path=shown,
                        line=line,
                        field=path or None,
                    )
                seen[key] = line
                child = _join(path, key)
                if merged:
                    lines.setdefault(child, line)
                else:
                    lines[child] = line
                walk(value_node, child, merged)
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                child = _join(path, index)
                lines.setdefault(child, item.start_mark.line + 1)
                walk(item, child, merged)
        active.discard(id(node))

    walk(root, "")
    return lines


def _parse_yaml(text: str, shown: str) -> tuple[Any, dict[str, int]]:
    loader = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is None:
            raise _empty(shown)
        lines = _yaml_lines(node, shown)
        return loader.construct_document(node), lines
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(exc, shown) from None
    except yaml.YAMLError as exc:  # ReaderError: a character YAML does not allow
        position = getattr(exc, "position", 0)
        raise ConfigError(
            f"invalid YAML: {getattr(exc, 'reason', exc)} (U+{exc.character:04X}). "
            "Remove the control character or save the file as plain UTF-8 text.",
            path=shown,
            line=text.count("\n", 0, position) + 1,
        ) from None
    finally:
        if loader is not None:
            loader.dispose()


# PyYAML's wording for the commonest mistakes, said plainly (its own text follows in brackets).
_YAML_PLAIN = {
    "<block end>": "this line's indentation does not fit the lines above",
    "mapping values are not allowed here": "a ':' where no key can start (quote a value "
    "that contains ': ')",
    "could not find expected ':'": "a line that is neither a `key: value` nor a list item",
}


def _yaml_error(exc: yaml.MarkedYAMLError, shown: str) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "cannot parse this"
    if "could not find expected ':'" in problem and exc.context_mark and exc.problem_mark:
        # The key that lacks its ':' is where the scan started, not where it gave up.
        mark, problem = exc.context_mark, f"{problem} up to line {exc.problem_mark.line + 1}"
    if problem.startswith("but found another document"):
        return ConfigError(
            "found a second YAML document (a `---` line after the first one). Keep one "
            "document per config file.",
            path=shown,
            line=None if mark is None else mark.line + 1,
        )
    said = problem
    if exc.context and exc.context_mark is not None and exc.context_mark is not mark:
        said += f", {exc.context} started on line {exc.context_mark.line + 1}"
    plain = next((text for jargon, text in _YAML_PLAIN.items() if jargon in problem), None)
    where = "" if mark is None else f" at column {mark.column + 1}"
    detail = f"{plain} (the parser says: {said})" if plain else said
    if "\\t" in problem or "\t" in problem:
        hint = "Indent with spaces: YAML does not allow tabs for indentation."
    elif "constructor for the tag" in problem:
        hint = "Remove the tag: a config holds plain YAML values only."
    else:
        hint = (
            "Fix the YAML syntax there; a wrong indentation, a missing ':' or an unclosed "
            "quote or bracket are common causes."
        )
    return ConfigError(
        f"invalid YAML{where}: {detail}. {hint}",
        path=shown,
        line=None if mark is None else mark.line + 1,
    )


# --------------------------------------------------------------------------- JSON


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
        return json.loads(self.text[start : self.i])

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


def _parse_json(text: str, shown: str) -> tuple[Any, dict[str, int]]:
    try:
        data = json.loads(text)
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


# --------------------------------------------------------------------------- reading


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)
    except (OSError, ValueError):
        return str(path)


def _empty(shown: str) -> ConfigError:
    return ConfigError(
        "the file is empty. A config is a mapping with at least a `groups` list, each group "
        "with a `name` and an `order`.",
        path=shown,
    )


def _read(path: Path, shown: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        problem = "the config file does not exist. Check the path and the file name."
    except IsADirectoryError:
        problem = "this is a folder, not a config file. Name a .yaml, .yml or .json file."
    except PermissionError:
        problem = "cannot read the config file: permission denied. Make it readable."
    except OSError as exc:
        problem = f"cannot read the config file: {exc.strerror or exc}. Check the path."
    raise ConfigError(problem, path=shown)


def _decode(raw: bytes, shown: str, is_json: bool) -> str:
    if is_json:
        encoding = json.detect_encoding(raw)
    elif raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"the file is not valid {encoding.upper().replace('-SIG', '')} text (byte "
            f"0x{raw[exc.start]:02x} at column {exc.start - line_start + 1} cannot be "
            "decoded). Save the file as UTF-8.",
            path=shown,
            line=raw.count(b"\n", 0, exc.start) + 1,
        ) from None


def _parse(raw: bytes, path: Path, shown: str) -> tuple[str, Any, dict[str, int]]:
    is_json = path.suffix.lower() == ".json"
    text = _decode(raw, shown, is_json)
    if not text.strip():
        raise _empty(shown)
    try:
        data, lines = (_parse_json if is_json else _parse_yaml)(text, shown)
    except RecursionError:
        raise ConfigError("the document is nested too deeply to be a config.", path=shown) from None
    return text, data, lines


# --------------------------------------------------------------------------- schema


@lru_cache(maxsize=1)
def schema() -> dict:
    """The config's JSON Schema (draft 2020-12), as shipped in ``config_schema.json``."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _validator() -> jsonschema.protocols.Validator:
    return jsonschema.Draft202012Validator(schema())


_TYPE_WORDS = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "array": "a list",
    "object": "a mapping",
    "boolean": "true or false",
    "null": "nothing",
}

_BOOL_HINT = "Write true or false (YAML 1.2 rules: yes, no, on and off are strings)."
_NAME_RULE = "letters, digits, '_' and '-'"
_ENV_RULE = "letters, digits and '_', not starting with a digit"

# Hints per generic field ('[]' for any index, '<name>' for a target, '<var>' for a variable).
_HINTS = {
    "": "A config is a mapping with a `groups` list at the top level.",
    "$schema": "Give the URL or path of the JSON Schema as a string, or remove it.",
    "project": "Set `project` to the project's name, or remove it to use the root folder's name.",
    "root": "Set `root` to a folder relative to the config file, or remove it to use the "
    "config file's folder.",
    "groups": "List the deployment's groups under `groups`, each with at least a `name` and "
    "an `order`.",
    "groups[]": "Each group is a mapping with at least a `name` and an `order`.",
    "groups[].name": f"Name the group with {_NAME_RULE} only; the name becomes part of each "
    "step's node id.",
    "groups[].order": "Set `order` to a whole number; groups run by ascending order.",
    "groups[].file_patterns": 'List glob patterns relative to root, e.g. ["migrations/*.sql"].',
    "groups[].pre_deploy": 'List shell commands, e.g. ["psql --version"]; each runs once, '
    "in list order.",
    "groups[].post_deploy": 'List shell commands, e.g. ["echo done"]; each runs once, in '
    "list order.",
    "groups[].build_command": "Give one shell command as a string; it runs once per group.",
    "groups[].test_command": "Give one shell command as a string; it runs once per group.",
    "groups[].deploy_command": "Give one shell command as a string; it runs once per matching "
    "file when it names {file} (or another file placeholder), else once per group.",
    "groups[].required_env_vars": 'List environment variable names, e.g. ["DATABASE_URL"].',
    "groups[].required_env_vars[]": f"Use a shell variable name: {_ENV_RULE}.",
    "groups[].track_migrations": _BOOL_HINT,
    "groups[].database_url_env": "Name the environment variable holding the database URL "
    f"({_ENV_RULE}), e.g. DATABASE_URL.",
    "groups[].max_parallel": "Set `max_parallel` to a whole number of at least 1.",
    "groups[].timeout_seconds": "Set `timeout_seconds` to a number of seconds greater than 0, "
    "or remove it for no timeout.",
    "groups[].targets": "List the target names this group runs for, or remove `targets` to run "
    "it for every target.",
    "health_check": "Give a mapping with a `url` and optionally `expected_status` and "
    "`timeout_seconds`.",
    "health_check.url": "Give the URL to poll, e.g. https://example.com/health.",
    "health_check.expected_status": "Use an HTTP status code from 100 to 599 (default 200).",
    "health_check.timeout_seconds": "Use a number of seconds greater than 0 (default 30).",
    "notify": "List notifications, each a mapping with a `webhook` and optionally `on` and "
    "`timeout_seconds`.",
    "notify[]": "Each notification is a mapping with a `webhook` URL.",
    "notify[].webhook": "Give the webhook URL as a string (${VAR} is expanded).",
    "notify[].on": "List when to notify: [success, failure] (the default), [success] or [failure].",
    "notify[].timeout_seconds": "Use a number of seconds greater than 0 (default 10).",
    "targets": "Map each target name to its settings, e.g. `production: {type: database}`.",
    "targets.<name>": f"Name targets with {_NAME_RULE} only and give each a mapping of "
    "`type`, `provider`, `host`, `region`, `protected`, `env` and `health_check_url`.",
    "targets.<name>.protected": _BOOL_HINT,
    "targets.<name>.env": "Map variable names to non-secret string values; keep secrets in the "
    "store (`pytest-deploy env set`).",
    "targets.<name>.env.<var>": 'Quote the value so it is a string, e.g. PORT: "8080".',
    "targets.<name>.health_check_url": "Give the URL to poll for this target as a string.",
}


def _generic(parts: list[str | int]) -> str:
    out = ""
    for depth, part in enumerate(parts):
        if isinstance(part, int):
            out += "[]"
        elif parts[0] == "targets" and depth == 1:
            out += ".<name>"
        elif parts[0] == "targets" and depth == 3 and parts[2] == "env":
            out += ".<var>"
        else:
            out += f".{part}" if out else part
    return out


def _hint(parts: list[str | int]) -> str:
    generic = _generic(parts)
    while generic not in _HINTS and generic.endswith("[]"):
        generic = generic[:-2]
    if generic in _HINTS:
        return _HINTS[generic]
    return _HINTS.get(_generic(parts[:-1]), "") if parts else ""


def _short(value: str, limit: int = 60) -> str:
    return repr(value if len(value) <= limit else value[: limit - 3] + "...")


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, int):
        return f"{value} (an integer)"
    if isinstance(value, float):
        return f"{value!r} (a number)"
    if isinstance(value, str):
        return f"{_short(value)} (a string)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _sentence(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def _schema_problem(
    error: jsonschema.ValidationError, lines: Mapping[str, int]
) -> tuple[int | None, str | None, str]:
    """One jsonschema error as (line, field, problem text)."""
    parts = list(error.absolute_path)
    path = format_path(parts)
    line = _line_near(lines, path)
    kind = error.validator
    value = error.instance
    hint = _hint(parts)
    in_names = "propertyNames" in error.absolute_schema_path

    if in_names:  # a bad key of a free-form mapping (target name, env variable name)
        line = _line_near(lines, _join(path, value))
        rule = _ENV_RULE if parts[-1:] == ["env"] else _NAME_RULE
        what = "variable name" if parts[-1:] == ["env"] else "target name"
        problem = f"{what} {_short(value)} may use only {rule}."
        return line, path or None, _sentence(problem, hint)
    if kind == "type":
        wanted = error.validator_value
        wanted = wanted if isinstance(wanted, list) else [wanted]
        words = " or ".join(_TYPE_WORDS.get(w, w) for w in wanted)
        problem = f"expected {words}, got {_describe(value)}."
        if (
            "array" in wanted
            and isinstance(value, str)
            and "enum" not in error.schema.get("items", {})
        ):
            hint = _sentence(f"Write it as a list, e.g. [{json.dumps(value)}].", hint)
        return line, path or None, _sentence(problem, hint)
    if kind == "required":
        missing = [k for k in error.validator_value if k not in value]
        key = missing[0] if missing else "?"
        return (
            line,
            path or None,
            _sentence(f"missing required key '{key}'.", _hint([*parts, key]) or hint),
        )
    if kind == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        unknown = [k for k in value if k not in known]
        unknown.sort(key=lambda k: lines.get(_join(path, k), 0))
        key = unknown[0] if unknown else "?"
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        if not close:
            lowered = {k.lower().replace("-", "_"): k for k in known}
            close = [lowered[k] for k in [key.lower().replace("-", "_")] if k in lowered]
        maybe = f" Did you mean '{close[0]}'?" if close else ""
        return (
            lines.get(_join(path, key), line),
            path or None,
            f"unknown key '{key}'.{maybe} Known keys: {', '.join(known)}.",
        )
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        words = {
            "minimum": "at least",
            "exclusiveMinimum": "greater than",
            "maximum": "at most",
            "exclusiveMaximum": "less than",
        }[kind]
        problem = f"must be {words} {error.validator_value}, got {_describe(value)}."
        return line, path or None, _sentence(problem, hint)
    if kind == "minItems":
        return line, path or None, _sentence("must not be an empty list.", hint)
    if kind == "minLength":
        return line, path or None, _sentence("must not be empty.", hint)
    if kind == "pattern":
        return line, path or None, _sentence(f"{_short(value)} is not allowed here.", hint)
    if kind == "enum":
        choices = ", ".join(repr(c) for c in error.validator_value)
        return (
            line,
            path or None,
            _sentence(f"expected one of {choices}, got {_describe(value)}.", hint),
        )
    return line, path or None, _sentence(_one_paragraph(error.message) + ".", hint)


def _schema_problems(
    data: Any, lines: Mapping[str, int]
) -> list[tuple[int | None, str | None, str]]:
    return [_schema_problem(e, lines) for e in _validator().iter_errors(data)]


# --------------------------------------------------------------------------- model building


def _build(path: Path, text: str, raw: bytes, data: dict, lines: dict[str, int]) -> DeployConfig:
    root = (path.parent / data["root"]).resolve() if "root" in data else path.parent.resolve()
    groups = []
    for index, g in enumerate(data["groups"]):
        patterns = tuple(g.get("file_patterns", ()))
        default_tracked = bool(patterns) and all(p.endswith(".sql") for p in patterns)
        timeout = g.get("timeout_seconds")
        groups.append(
            Group(
                name=g["name"],
                order=int(g["order"]),
                index=index,
                file_patterns=patterns,
                pre_deploy=tuple(g.get("pre_deploy", ())),
                build_command=g.get("build_command"),
                test_command=g.get("test_command"),
                deploy_command=g.get("deploy_command"),
                post_deploy=tuple(g.get("post_deploy", ())),
                required_env_vars=tuple(g.get("required_env_vars", ())),
                track_migrations=g.get("track_migrations", default_tracked),
                database_url_env=g.get("database_url_env", "DATABASE_URL"),
                max_parallel=int(g.get("max_parallel", 1)),
                timeout_seconds=None if timeout is None else float(timeout),
                targets=tuple(g["targets"]) if "targets" in g else None,
                line=lines.get(f"groups[{index}]"),
            )
        )
    health = data.get("health_check")
    notify = tuple(
        Notify(
            webhook=n["webhook"],
            on=tuple(n.get("on", ("success", "failure"))),
            timeout_seconds=float(n.get("timeout_seconds", 10.0)),
        )
        for n in data.get("notify", ())
    )
    targets = {
        name: TargetDecl(
            name=name,
            type=t.get("type"),
            provider=t.get("provider"),
            host=t.get("host"),
            region=t.get("region"),
            protected=t.get("protected", False),
            env=dict(t.get("env", {})),
            health_check_url=t.get("health_check_url"),
        )
        for name, t in ((n, t or {}) for n, t in data.get("targets", {}).items())
    }
    return DeployConfig(
        path=path,
        root=root,
        project=data.get("project") or root.name,
        groups=tuple(sorted(groups, key=lambda g: (g.order, g.index))),
        health_check=None
        if health is None
        else HealthCheck(
            url=health["url"],
            expected_status=int(health.get("expected_status", 200)),
            timeout_seconds=float(health.get("timeout_seconds", 30.0)),
        ),
        notify=notify,
        targets=targets,
        source_text=text,
        sha256=hashlib.sha256(raw).hexdigest(),
        data=data,
        lines=lines,
    )


# --------------------------------------------------------------------------- semantic checks


def _check_commands(group: Group, prefix: str) -> Iterator[tuple[str, str]]:
    """(field, problem) for each bad placeholder in the group's commands."""
    commands: list[tuple[str, str, str]] = []
    for key in ("pre_deploy", "post_deploy"):
        for i, cmd in enumerate(getattr(group, key)):
            commands.append((f"{prefix}.{key}[{i}]", key, cmd))
    for key in ("build_command", "test_command", "deploy_command"):
        cmd = getattr(group, key)
        if cmd is not None:
            commands.append((f"{prefix}.{key}", key, cmd))
    for field_path, key, cmd in commands:
        try:
            names = placeholders(cmd)
        except PlaceholderError as exc:
            yield field_path, str(exc)
            continue
        per_file = [n for n in names if n in FILE_PLACEHOLDERS]
        if per_file and key != "deploy_command":
            yield (
                field_path,
                (
                    f"{{{per_file[0]}}} names one file, but {key} runs once per group, not per "
                    "file. Only deploy_command runs once per matching file; here use {group}, "
                    "{project} or {target}."
                ),
            )


def _group_problems(cfg: DeployConfig, group: Group) -> Iterator[tuple[str, str]]:
    """(field, problem) for what the schema cannot check in one group."""
    at = f"groups[{group.index}]"
    for i, pattern in enumerate(group.file_patterns):
        if pattern.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[\\/]", pattern):
            yield (
                f"{at}.file_patterns[{i}]",
                (
                    f"{_short(pattern)} is an absolute path. Write patterns relative to root "
                    f"({cfg.root}), with '/' between folders."
                ),
            )
        elif ".." in re.split(r"[\\/]", pattern):
            yield (
                f"{at}.file_patterns[{i}]",
                (
                    f"{_short(pattern)} uses '..'; patterns match only files inside root "
                    f"({cfg.root}). Move `root` up instead (it is relative to the config file)."
                ),
            )
    yield from _check_commands(group, at)
    try:
        per_file = group.deploy_per_file
    except PlaceholderError:
        per_file = None  # the bad placeholder is reported by _check_commands
    if per_file and not group.file_patterns:
        yield (
            f"{at}.deploy_command",
            (
                f"names a file placeholder, so it runs once per matching file, but group "
                f"'{group.name}' has no file_patterns. Add file_patterns, or use only {{group}}, "
                "{project} and {target} to run it once per group."
            ),
        )
    if group.track_migrations and not group.file_patterns:
        yield (
            f"{at}.track_migrations",
            (
                f"group '{group.name}' tracks migrations but has no file_patterns. List the "
                'migration files, e.g. file_patterns: ["migrations/*.sql"], or set '
                "track_migrations: false."
            ),
        )
    elif group.track_migrations and group.deploy_command is not None and per_file is False:
        why = (
            "sets track_migrations: true"
            if "track_migrations" in cfg.data["groups"][group.index]
            else "tracks migrations (every file pattern ends in .sql)"
        )
        yield (
            f"{at}.deploy_command",
            (
                f"group '{group.name}' {why}, so its deploy_command must name a file placeholder "
                "such as {file} (it runs once per migration), or be removed to use the built-in "
                "SQL executor. Set track_migrations: false if these files are not migrations."
            ),
        )
    declared = sorted(cfg.targets)
    for i, name in enumerate(group.targets or ()):
        # Undeclared names are fine when the config declares no targets: the store may.
        if declared and name not in cfg.targets:
            close = difflib.get_close_matches(name, declared, n=1, cutoff=0.6)
            maybe = f" Did you mean '{close[0]}'?" if close else ""
            yield (
                f"{at}.targets[{i}]",
                (
                    f"'{name}' is not a target declared under `targets`.{maybe} "
                    f"Declared targets: {', '.join(declared)}."
                ),
            )
    if group.timeout_seconds is not None and not math.isfinite(group.timeout_seconds):
        yield f"{at}.timeout_seconds", "must be a finite number of seconds."


def _semantic_problems(cfg: DeployConfig) -> list[tuple[int | None, str | None, str]]:
    """Every problem the schema cannot see, as (line, field, problem)."""
    found: list[tuple[str, str]] = []
    if "root" in cfg.data and not cfg.root.is_dir():
        state = "is not a folder" if cfg.root.exists() else "does not exist"
        found.append(
            (
                "root",
                f"{_short(cfg.data['root'])} (resolved to {cfg.root}) {state}. Set `root` to "
                "an existing folder, relative to the config file's folder.",
            )
        )
    first_use: dict[str, int] = {}
    for group in sorted(cfg.groups, key=lambda g: g.index):
        at = f"groups[{group.index}]"
        if group.name in RESERVED_GROUP_NAMES:
            reserved = ", ".join(sorted(RESERVED_GROUP_NAMES))
            found.append(
                (
                    f"{at}.name",
                    f"'{group.name}' is reserved ({reserved} name the plugin's own items). "
                    "Choose another group name.",
                )
            )
        elif group.name in first_use:
            other = first_use[group.name]
            found.append(
                (
                    f"{at}.name",
                    f"duplicate group name '{group.name}' (already used by groups[{other}] on "
                    f"line {cfg.line_of(f'groups[{other}].name')}). Give every group its own "
                    "name; it becomes part of each step's node id.",
                )
            )
        first_use.setdefault(group.name, group.index)
        found.extend(_group_problems(cfg, group))
    timeouts = [("health_check", cfg.health_check)] if cfg.health_check else []
    timeouts += [(f"notify[{i}]", note) for i, note in enumerate(cfg.notify)]
    for at, entry in timeouts:
        if not math.isfinite(entry.timeout_seconds):
            found.append((f"{at}.timeout_seconds", "must be a finite number of seconds."))
    return [(_line_near(cfg.lines, f), f, problem) for f, problem in found]


# --------------------------------------------------------------------------- public API


def _raise_first(problems: list[tuple[int | None, str | None, str]], shown: str) -> None:
    ordered = sorted(problems, key=lambda p: (p[0] is None, p[0] or 0))
    errors = [ConfigError(text, path=shown, line=line, field=f) for line, f, text in ordered]
    first = errors[0]
    raise ConfigError(
        first.problem, path=shown, line=first.line, field=first.field, others=tuple(errors[1:])
    )


def load_config(path: str | os.PathLike[str]) -> DeployConfig:
    """Load and validate a config file (YAML by default, JSON for ``.json``).

    Raises :class:`ConfigError` for every kind of bad input, including a missing or
    unreadable file and a bad encoding; nothing else escapes for bad input.
    """
    abs_path = Path(os.path.abspath(os.fspath(path)))
    shown = _display(abs_path)
    raw = _read(abs_path, shown)
    text, data, lines = _parse(raw, abs_path, shown)
    problems = _schema_problems(data, lines)
    if problems:
        _raise_first(problems, shown)
    config = _build(abs_path, text, raw, data, lines)
    problems = _semantic_problems(config)
    if problems:
        _raise_first(problems, shown)
    return config


_TEXT_GROUPS = {
    "json": re.compile(r'"groups"\s*:'),
    "yaml": re.compile(r"""^(?:groups|"groups"|'groups')[ \t]*:""", re.MULTILINE),
}


def is_config_file(path: Path) -> bool:
    """Whether pytest should collect ``path`` as a config (DESIGN §1).

    ``*.deploy.yaml|yml|json`` always; ``deploy.yaml|yml|json`` only when it has a
    top-level ``groups`` key (when it cannot be parsed, a textual check decides, so a broken
    config still gets collected and reports its error).
    """
    path = Path(path)
    name = path.name
    if any(name.endswith(f".deploy{suffix}") for suffix in CONFIG_SUFFIXES):
        return True
    if name not in {f"deploy{suffix}" for suffix in CONFIG_SUFFIXES}:
        return False
    try:
        raw = path.read_bytes()
    except OSError:
        return False
    kind = "json" if name.endswith(".json") else "yaml"
    try:
        text = raw.decode(json.detect_encoding(raw) if kind == "json" else "utf-8-sig")
        if kind == "json":
            data = json.loads(text)
            return isinstance(data, dict) and "groups" in data
        node = _Loader(text).get_single_node()
        return isinstance(node, MappingNode) and any(
            isinstance(k, ScalarNode) and k.value == "groups" for k, _ in node.value
        )
    except (ValueError, yaml.YAMLError, RecursionError):
        text = raw.decode("utf-8", errors="replace")
        return bool(_TEXT_GROUPS[kind].search(text))
