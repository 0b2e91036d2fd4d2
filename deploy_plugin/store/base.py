"""The store interface (:class:`Store`): one repository per area, and the deploy lock.

:class:`Store` is the union of the repositories (``history.py``, ``audit.py``,
``targets.py``, ``env.py``, ``runs.py``, ``plans.py``, ``projects.py``, all over
``core.py``) plus the lock, which each store implements its own way. Records
(``records.py``), errors (``errors.py``) and the lock handle (``lock.py``) live in their
own modules and are re-exported here.
"""

from __future__ import annotations

from abc import abstractmethod

from .audit import AuditRepository

# Re-exported: other code imports them from ``deploy_plugin.store.base``.
from .core import UPSERT_MIGRATION, SharedSQL
from .env import EnvRepository
from .errors import LockHeld, StoreError, describe_url
from .fingerprints import FingerprintRepository
from .history import HistoryRepository
from .lock import DeployLock
from .plans import PlanRepository, PlanUse
from .projects import ProjectAudit, ProjectIdentity, ProjectRepository
from .records import (
    AUDIT_ACTIONS,
    MIGRATION_STATUSES,
    TARGET_FIELDS,
    AuditRecord,
    DeploymentRecord,
    EnvVarRecord,
    LockInfo,
    MigrationRecord,
    StepRecord,
    TargetRecord,
    format_time,
    to_utc,
    utcnow,
)
from .runs import RunRepository
from .targets import TargetRepository

__all__ = [
    "AUDIT_ACTIONS",
    "AuditRecord",
    "MIGRATION_STATUSES",
    "TARGET_FIELDS",
    "UPSERT_MIGRATION",
    "DeployLock",
    "DeploymentRecord",
    "EnvVarRecord",
    "LockHeld",
    "LockInfo",
    "MigrationRecord",
    "PlanUse",
    "ProjectAudit",
    "ProjectIdentity",
    "SharedSQL",
    "StepRecord",
    "Store",
    "StoreError",
    "TargetRecord",
    "describe_url",
    "format_time",
    "to_utc",
    "utcnow",
]


class Store(
    HistoryRepository,
    AuditRepository,
    TargetRepository,
    EnvRepository,
    RunRepository,
    PlanRepository,
    ProjectRepository,
    FingerprintRepository,
):
    """Projects, targets, env vars, migration history, deployment runs and the deploy lock.

    Open one with :func:`deploy_plugin.store.open_store`. Methods may be called from
    several threads of one process (calls are serialised); each process opens its own.
    Timestamps come back as aware UTC datetimes; naive ones passed in are local time.
    Reads never create a project; writes create it on first use.
    """

    @abstractmethod
    def acquire_lock(self, project: str, target: str, *, holder: str) -> DeployLock:
        """Take the deployment lock of ``project`` + ``target``; LockHeld at once if held.

        ``holder`` names the runner for others (e.g. ``alice``); the lock also records
        this host, this process id and the start time.
        """

    @abstractmethod
    def lock_info(self, project: str, target: str) -> LockInfo | None:
        """Who holds the deployment lock of ``project`` + ``target``, or None."""

    @abstractmethod
    def break_lock(self, project: str, target: str) -> LockInfo | None:
        """Remove a lock left by a dead run (for ``pytest-deploy unlock``); returns it.

        PostgreSQL refuses (StoreError) while a live session holds the advisory lock: it
        frees itself when that session ends.
        """
