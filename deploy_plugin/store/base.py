"""The store interface (:class:`Store`): one repository per area over one driver, and the
deploy lock.

:class:`Store` is the union of the repositories (``history.py``, ``audit.py``,
``targets.py``, ``env.py``, ``runs.py``, ``plans.py``, ``projects.py``,
``fingerprints.py``), each a thin mixin running shared SQL through the store's
:class:`~.driver.Driver` (``core.py``), plus the lock, which each kind of store takes its
own way (:class:`Locks`: ``sqlite_lock.py``, ``postgres_lock.py``). Records
(``records.py``), errors (``errors.py``) and the lock handle (``lock.py``) live in their
own modules and are re-exported here.
"""

from __future__ import annotations

from typing import Protocol

from .audit import AuditRepository
from .driver import Driver
from .env import EnvRepository
from .errors import LockHeld, StoreError, describe_url
from .fingerprints import FingerprintRepository
from .history import HistoryRepository
from .lock import DeployLock
from .plans import PlanRepository, PlanUse
from .projects import ProjectAudit, ProjectIdentity, ProjectRepository
from .records import (
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

# what other code imports from ``deploy_plugin.store.base`` (records, errors, the lock)
__all__ = [
    "AuditRecord",
    "MIGRATION_STATUSES",
    "TARGET_FIELDS",
    "DeployLock",
    "DeploymentRecord",
    "EnvVarRecord",
    "LockHeld",
    "LockInfo",
    "MigrationRecord",
    "PlanUse",
    "ProjectAudit",
    "ProjectIdentity",
    "StepRecord",
    "Store",
    "StoreError",
    "TargetRecord",
    "describe_url",
    "format_time",
    "to_utc",
    "utcnow",
]


class Locks(Protocol):
    """How one kind of store takes, shows and breaks deployment locks."""

    def acquire(self, project_id: int, project: str, target: str, *, holder: str) -> DeployLock:
        """Take the lock; LockHeld at once if another run holds it."""

    def info(self, project_id: int | None, project: str, target: str) -> LockInfo | None:
        """Who holds the lock, or None."""

    def break_lock(self, project_id: int | None, project: str, target: str) -> LockInfo | None:
        """Remove a lock left by a dead run; returns it."""


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

    def __init__(self, driver: Driver, locks: Locks) -> None:
        super().__init__(driver)
        self._locks = locks

    def acquire_lock(self, project: str, target: str, *, holder: str) -> DeployLock:
        """Take the deployment lock of ``project`` + ``target``; LockHeld at once if held.

        ``holder`` names the runner for others (e.g. ``alice``); the lock also records
        this host, this process id and the start time.
        """
        return self._locks.acquire(self.project_id(project), project, target, holder=holder)

    def lock_info(self, project: str, target: str) -> LockInfo | None:
        """Who holds the deployment lock of ``project`` + ``target``, or None."""
        return self._locks.info(self.project_id(project, create=False), project, target)

    def break_lock(self, project: str, target: str) -> LockInfo | None:
        """Remove a lock left by a dead run (for ``pytest-deploy unlock``); returns it.

        PostgreSQL refuses (StoreError) while a live session holds the advisory lock: it
        frees itself when that session ends.
        """
        return self._locks.break_lock(self.project_id(project, create=False), project, target)
