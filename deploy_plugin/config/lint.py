"""``groups[].lint``: whether preflight lints a tracked group's pending migrations with
squawk, and what a finding does.

``lint: warn | error | off`` or ``lint: {mode: warn, ignore: [RULE, ...]}``. The shape is
checked by the JSON Schema (``schema.json``); here: the model (:class:`Lint`), built from
the validated value, and what the schema cannot see (a group that tracks no migrations).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

#: ``warn``: each finding is a warning; ``error``: a finding fails preflight; ``off``.
LINT_MODES = ("warn", "error", "off")


@dataclass(frozen=True)
class Lint:
    """A group's ``lint`` key as written: its mode and the squawk rules it ignores."""

    mode: str = "warn"
    ignore: tuple[str, ...] = ()


def lint_of(raw: Any) -> Lint | None:
    """The group's :class:`Lint` from its validated ``lint`` value; None when not written
    (the default: ``warn``, except on a SQLite database, see
    :func:`deploy_plugin.engine.lint.check_lint`)."""
    if raw is None:
        return None
    if isinstance(raw, str):
        return Lint(mode=raw)
    assert isinstance(raw, Mapping), "the schema allows a string or a mapping"
    return Lint(mode=raw.get("mode", "warn"), ignore=tuple(raw.get("ignore", ())))


def lint_problems(
    name: str, tracked: bool, lint: Lint | None, at: str
) -> Iterator[tuple[str, str]]:
    """(field, problem) for a ``lint`` key the schema accepts but the group cannot use."""
    if lint is not None and not tracked:
        yield (
            f"{at}.lint",
            f"group '{name}' does not track migrations, so it has no pending migrations to"
            " lint. Remove lint, or list .sql migrations in file_patterns (or set"
            " track_migrations: true).",
        )
