"""The config model: frozen dataclasses built from a validated config."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .commands import FILE_PLACEHOLDERS, placeholders

RESERVED_GROUP_NAMES = frozenset({"preflight", "health_check", "validate"})
#: Target (and group) names: a level of every node id.
NAME_RE = re.compile(r"[A-Za-z0-9_-]+\Z")
#: Env var names: shell identifiers, so that commands can read them as $NAME.
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


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
    down_file: str | None = None  # path template of each migration's down file
    rollback_command: str | None = None  # undoes the group in an atomic deployment

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

    def line_of(self, field: str) -> int | None:
        """The line where ``field`` (e.g. ``'groups[1].deploy_command'``) is written."""
        return self.lines.get(field)

    def group(self, name: str) -> Group | None:
        """The group called ``name``, if any."""
        return next((g for g in self.groups if g.name == name), None)
