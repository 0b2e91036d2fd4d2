"""What a store keeps, as frozen records, and the UTC time helpers they are read with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

# The history row is shared with the migration runner: it lives below both.
from deploy_plugin.migration_record import MIGRATION_STATUSES, MigrationRecord

__all__ = [
    "MIGRATION_STATUSES", "TARGET_FIELDS", "AuditRecord", "DeploymentRecord",
    "EnvVarRecord", "IntentRecord", "LockInfo", "MigrationRecord", "StepFacts", "StepRecord",
    "TargetRecord",
    "format_time", "to_utc", "utcnow",
]  # fmt: skip

TARGET_FIELDS = ("type", "provider", "host", "region", "protected", "health_check_url")


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
class StepFacts:
    """What every step of a run is known by, as a report shows it and the store keeps it
    (the engine's ``StepResult`` and the stored :class:`StepRecord` add their times)."""

    node_id: str
    group: str | None
    kind: str
    file: str | None
    checksum: str | None
    command: str | None
    outcome: str  # passed | failed | skipped
    duration_ms: int
    message: str | None


@dataclass(frozen=True)
class StepRecord(StepFacts):
    """One recorded step (pytest item) of a deployment run."""

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
