"""Field paths (``groups[1].order``) and the line each field is written on."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

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
