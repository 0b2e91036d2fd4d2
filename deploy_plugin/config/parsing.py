"""Reading a config file: bytes, encoding, then YAML or JSON with a line per field."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import ConfigError, _empty
from .json_parser import _parse_json


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)
    except (OSError, ValueError):
        return str(path)


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
    if is_json:
        parse = _parse_json
    else:
        # deferred: +26 modules, 18 ms (yaml.reader, yaml.resolver, config.yaml_parser, …)
        from .yaml_parser import _parse_yaml as parse  # PyYAML: only for a YAML file

    try:
        data, lines = parse(text, shown)
    except RecursionError:
        raise ConfigError("the document is nested too deeply to be a config.", path=shown) from None
    return text, data, lines
