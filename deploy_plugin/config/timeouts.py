"""A tracked group's lock and statement timeouts (issue 23): the ``lock_timeout``,
``statement_timeout`` and ``lock_retries`` keys, their duration format, and the checks
the JSON schema cannot express.

A duration is written as PostgreSQL writes a time setting: a number and its unit, one of
``ms``, ``s``, ``min``, ``h``, ``d`` (``500ms``, ``1s``, ``1.5s``, ``2min``). It goes to
the server as written, so what the config says is what ``SHOW lock_timeout`` shows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .model import Group

#: Milliseconds per unit of a duration (PostgreSQL's time units; ``us`` left out: a
#: setting below one millisecond rounds to 0, which turns the timeout off).
UNITS_MS = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
DURATION_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|min|h|d)\Z")
#: The largest time setting PostgreSQL takes (INT_MAX milliseconds, about 24.8 days).
MAX_MS = 2**31 - 1
#: The keys this module owns, as the config writes them.
KEYS = ("lock_timeout", "statement_timeout", "lock_retries")


def duration_ms(text: str) -> float | None:
    """Milliseconds of a duration such as ``500ms`` or ``2min``, or None if it is not one."""
    match = DURATION_RE.match(text)
    if match is None:
        return None
    return float(match.group(1)) * UNITS_MS[match.group(2)]


def timeout_problems(group: Group, at: str) -> Iterator[tuple[str, str]]:
    """(field, problem) for a group's timeout keys (their shapes are the schema's job)."""
    for key in ("lock_timeout", "statement_timeout"):
        value = getattr(group, key)
        ms = duration_ms(value) if value is not None else None
        if ms is None:
            continue  # absent, or refused by the schema's pattern
        if ms < 1 or ms > MAX_MS:
            yield (
                f"{at}.{key}",
                f"{value!r} is {'less than 1 ms' if ms < 1 else 'more than PostgreSQL allows'};"
                f" give a duration from 1ms to {MAX_MS // UNITS_MS['d']}d, e.g. 1s, or remove"
                f" {key} to keep the server's own setting.",
            )
    present = [key for key in KEYS if getattr(group, key) not in (None, 0)]
    if present and not group.track_migrations:
        yield (
            f"{at}.{present[0]}",
            f"group '{group.name}' does not track migrations, and {', '.join(present)} apply"
            " to each migration's transaction on PostgreSQL. Remove them, or list the .sql"
            " migrations in file_patterns (or set track_migrations: true).",
        )
    elif group.lock_retries and group.lock_timeout is None:
        yield (
            f"{at}.lock_retries",
            f"group '{group.name}' retries a migration that timed out waiting for a lock, but"
            " sets no lock_timeout, so no attempt would ever time out. Add lock_timeout"
            " (e.g. lock_timeout: 1s), or remove lock_retries.",
        )
