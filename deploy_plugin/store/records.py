"""What a store keeps, as frozen records, and the UTC time helpers they are read with."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timezone

from deploy_plugin.engine import procgroups

MIGRATION_STATUSES = ("success", "failed", "rolled_back")
TARGET_FIELDS = ("type", "provider", "host", "region", "protected", "health_check_url")


@dataclass(frozen=True)
class MigrationRecord:
    """One row of the migration history (the seed's ``migration_history`` columns)."""

    file: str
    checksum: str
    applied_at: datetime
    applied_by: str | None = None
    execution_time_ms: int | None = None
    status: str = "success"
    error_message: str | None = None


@dataclass(frozen=True)
class TargetRecord:
    """A deployment target stored for one project."""

    name: str
    type: str | None
    provider: str | None
    host: str | None
    region: str | None
    protected: bool
    health_check_url: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class EnvVarRecord:
    """A stored env var of one project and target (the value is a secret)."""

    name: str
    value: str
    updated_at: datetime

    def __repr__(self) -> str:  # never print a secret by accident
        return f"EnvVarRecord(name={self.name!r}, value='***', updated_at={self.updated_at!r})"


@dataclass(frozen=True)
class DeploymentRecord:
    """One deployment run (one pytest invocation against one target)."""

    id: int
    project: str
    target: str
    who: str
    started_at: datetime
    ended_at: datetime | None
    status: str
    dry_run: bool
    config_sha256: str
    kind: str = "deploy"  # deploy | rollback


@dataclass(frozen=True)
class StepRecord:
    """One recorded step (pytest item) of a deployment run."""

    node_id: str
    group: str | None
    kind: str
    file: str | None
    checksum: str | None
    command: str | None
    outcome: str
    duration_ms: int
    message: str | None
    recorded_at: datetime
    started_at: datetime | None = None  # None for rows recorded before schema version 6


@dataclass(frozen=True)
class LockInfo:
    """Who holds a deployment lock."""

    holder: str
    host: str
    pid: int
    started_at: datetime
    step_groups: tuple[tuple[int, int], ...] = ()
    """The process groups of the holder's running step commands: (pgid, leader start)."""


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(timezone.utc)


def to_utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken as local time (what ``now()`` returns)."""
    return value.astimezone(timezone.utc)


def format_time(value: datetime) -> str:
    """ISO 8601 in UTC, to the second, for messages: ``2026-02-23T10:00:00Z``."""
    return to_utc(value).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class IntentRecord:
    """A shell-applied migration that was starting: left behind only by a run that died."""

    file: str
    checksum: str
    deployment_id: int | None
    who: str
    host: str
    pid: int
    started_at: datetime


def alive_here(host: str, pid: int) -> bool:
    """Whether ``pid`` is a running process on this host (another host: unknown → False).

    The one liveness check of the store, the runner and the CLI. A pid we may not signal
    (another user's) counts as alive; a zombie (ended, not reaped yet: state Z in
    /proc/<pid>/stat) counts as dead.
    """
    if host != socket.gethostname() or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass
    return procgroups.is_running(pid) is not False


AUDIT_ACTIONS = ("accept-checksum", "baseline")


@dataclass(frozen=True)
class AuditRecord:
    """A history change made by hand: an accepted edit (old → new checksum) or a baselined
    file (no old checksum), with who, when and why."""

    file: str
    action: str
    old_checksum: str | None
    new_checksum: str
    reason: str | None
    who: str
    at: datetime
