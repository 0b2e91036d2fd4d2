"""The config model: frozen dataclasses built from a validated config."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from .commands import FILE_PLACEHOLDERS, placeholders
from .lint import Lint

RESERVED_GROUP_NAMES = frozenset({"preflight", "health_check", "validate"})
#: Target (and group) names: a level of every node id.
NAME_RE = re.compile(r"[A-Za-z0-9_-]+\Z")
#: Env var names: shell identifiers, so that commands can read them as $NAME.
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def is_repeatable(rel: str) -> bool:
    """Whether file ``rel`` of a tracked group is a repeatable migration (Flyway's
    ``R__name.sql``): it runs after the group's versioned files, again whenever its
    checksum changes (no drift), and no rollback undoes it. A naming rule of tracked
    groups, here so that every layer (the store too) knows it."""
    name = rel.rpartition("/")[2]
    return name.startswith("R__") and name.endswith(".sql")


@dataclass(frozen=True)
class HealthCheck:
    """``health_check``: polled after the last group until it answers as expected."""

    url: str
    expected_status: int = 200
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class EmailNotify:
    """``notify[].email``: an SMTP server (``smtp://`` or ``smtps://`` URL), sender, recipients."""

    url: str
    sender: str
    to: tuple[str, ...]
    password_env: str | None = None
    starttls: bool | None = None  # None: when the server offers it


@dataclass(frozen=True)
class Notify:
    """One ``notify[]`` entry: a webhook (``format`` json or slack) or an email, sent when
    the deployment ends. Exactly one of ``webhook`` and ``email`` is set."""

    webhook: str | None
    on: tuple[str, ...] = ("success", "failure")
    timeout_seconds: float = 10.0
    format: str = "json"
    email: EmailNotify | None = None


#: A target's kinds (DESIGN §1); ``other`` for anything else.
TARGET_TYPES = ("database", "edge_function", "static_site", "service", "other")


def target_type_problem(value: str) -> str | None:
    """Why ``value`` is not a target type (with the closest one), or None."""
    if value in TARGET_TYPES:
        return None

    close = difflib.get_close_matches(value, TARGET_TYPES, n=1, cutoff=0.6)
    guess = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown target type {value!r}: {guess}Known types: {', '.join(TARGET_TYPES)}."


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
    # promotion gate: targets where the same deployment must have succeeded first
    requires: tuple[str, ...] = ()


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
    down_file: str | None = None  # path template of each migration's down file
    rollback_command: str | None = None  # undoes the group in an atomic deployment
    # a tracked group's per-migration settings on PostgreSQL (see config/timeouts.py)
    lock_timeout: str | None = None  # e.g. "1s": SET LOCAL lock_timeout in each migration
    statement_timeout: str | None = None
    lock_retries: int = 0  # attempts after a lock timeout (55P03), with backoff
    lint: Lint | None = None  # squawk on its pending migrations (None: not written)

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
    data: dict[str, Any]
    lines: dict[str, int] = field(default_factory=dict, repr=False, compare=False)
    atomic: bool = False  # a failing deployment undoes itself in reverse
    project_id: str | None = None  # the project's identity (a store binds its name to it)
    project_named: bool = True  # False: no `project` key, the name is the root folder's

    def line_of(self, field: str) -> int | None:
        """The line where ``field`` (e.g. ``'groups[1].deploy_command'``) is written."""
        return self.lines.get(field)

    def order_ties(self) -> list[tuple[int | None, str]]:
        """(line, warning) for each pair of groups sharing an ``order``: they then run in
        file order, which reordering the file silently changes."""
        first: dict[int, Group] = {}
        found = []
        for group in sorted(self.groups, key=lambda g: g.index):
            other = first.setdefault(group.order, group)
            if other is not group:
                found.append((
                    self.line_of(f"groups[{group.index}].order"),
                    f"groups {other.name} and {group.name} have the same order ({group.order}),"
                    " so they run in the order they are written in the file; give each group"
                    " its own order to make it explicit",
                ))  # fmt: skip
        return found

    def group(self, name: str) -> Group | None:
        """The group called ``name``, if any."""
        return self._groups_by_name.get(name)

    @cached_property
    def _groups_by_name(self) -> dict[str, Group]:
        # asked by every item's report (its line, its group): one lookup, not a scan
        return {g.name: g for g in self.groups}
