"""A migration's history row as a value: what the migration runner makes and the store keeps.

Here, below both, so that neither imports the other (DESIGN §7): :mod:`deploy_plugin.migrate`
returns these records and hands them to the store through a small protocol
(:class:`deploy_plugin.migrate.runner.HistoryWriter`); :mod:`deploy_plugin.store` writes and
reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

MIGRATION_STATUSES = ("success", "failed", "rolled_back")


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
