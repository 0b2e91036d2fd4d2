"""The JSON Schema pass: ``schema.json`` (draft 2020-12, shipped for editors too) and each
error jsonschema finds, worded as one problem ``(line, field, text)`` for the user.

jsonschema is imported on the first validation only: a plain pytest run that reads no
config never pays for it.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when a config is validated: keeps plain pytest runs fast
    import jsonschema

from .errors import _one_paragraph
from .hints import _ENV_RULE, _NAME_RULE, _TYPE_WORDS, _describe, _hint, _sentence, _short
from .paths import _join, _line_near, format_path

SCHEMA_PATH = Path(__file__).with_name("schema.json")


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The config's JSON Schema (draft 2020-12), as shipped in ``schema.json``."""
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


@lru_cache(maxsize=1)
def _validator() -> jsonschema.protocols.Validator:
    # deferred: +110 modules, 67 ms (referencing._core, jsonschema_specifications, …)
    import jsonschema

    return jsonschema.Draft202012Validator(schema())


def _schema_problem(
    error: jsonschema.ValidationError, lines: Mapping[str, int]
) -> tuple[int | None, str | None, str]:
    """One jsonschema error as (line, field, problem text)."""
    parts = list(error.absolute_path)
    path = format_path(parts)
    line = _line_near(lines, path)
    # jsonschema types these as "value or Unset"; an error raised by validation has them all
    kind: Any = error.validator
    value: Any = error.instance
    validator_value: Any = error.validator_value
    error_schema: Any = error.schema
    hint = _hint(parts)
    in_names = "propertyNames" in error.absolute_schema_path

    if in_names:  # a bad key of a free-form mapping (target name, env variable name)
        line = _line_near(lines, _join(path, value))
        rule = _ENV_RULE if parts[-1:] == ["env"] else _NAME_RULE
        what = "variable name" if parts[-1:] == ["env"] else "target name"
        problem = f"{what} {_short(value)} may use only {rule}."
        return line, path or None, _sentence(problem, hint)
    if kind == "type":
        wanted = validator_value
        wanted = wanted if isinstance(wanted, list) else [wanted]
        words = " or ".join(_TYPE_WORDS.get(w) or str(w) for w in wanted)
        problem = f"expected {words}, got {_describe(value)}."
        if (
            "array" in wanted
            and isinstance(value, str)
            and "enum" not in error_schema.get("items", {})
        ):
            hint = _sentence(f"Write it as a list, e.g. [{json.dumps(value)}].", hint)
        return line, path or None, _sentence(problem, hint)
    if kind == "required":
        missing = [k for k in validator_value if k not in value]
        key = missing[0] if missing else "?"
        return (
            line,
            path or None,
            _sentence(f"missing required key '{key}'.", _hint([*parts, key]) or hint),
        )
    if kind == "additionalProperties":
        known = sorted(error_schema.get("properties", {}))
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
        problem = f"must be {words} {validator_value}, got {_describe(value)}."
        return line, path or None, _sentence(problem, hint)
    if kind == "minItems":
        return line, path or None, _sentence("must not be an empty list.", hint)
    if kind in ("minLength", "maxLength"):
        if kind == "minLength" and validator_value == 1:
            problem = "must not be empty."
        else:
            words = "at least" if kind == "minLength" else "at most"
            problem = f"must be {words} {validator_value} characters, got {_short(value)}."
        return line, path or None, _sentence(problem, hint)
    if kind == "pattern":
        return line, path or None, _sentence(f"{_short(value)} is not allowed here.", hint)
    if kind == "enum":
        choices = ", ".join(repr(c) for c in validator_value)
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
