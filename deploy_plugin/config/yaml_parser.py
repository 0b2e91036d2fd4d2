"""YAML parsing with YAML 1.2 core scalars, a line per field, and no duplicate keys."""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import ConfigError, _empty
from .paths import _join

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
            f"invalid YAML: {getattr(exc, 'reason', exc)} (U+{getattr(exc, 'character', 0):04X}). "
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
