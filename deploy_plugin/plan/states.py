"""Migration states: the one classifier of a tracked file against its history row, and
preflight's check of every tracked file (drift, out-of-order, vanished files). A repeatable
migration (``R__name.sql``, :func:`.files.is_repeatable`) applied with another checksum is
``changed``: pending again, never drift.

Takes applied checksums as plain data (no store): the caller reads the history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from deploy_plugin.config import is_repeatable


@dataclass(frozen=True)
class AppliedMigration:
    """What the plan needs to know of one history row."""

    checksum: str
    status: str
    applied_at: str
    applied_by: str | None


class HistoryRow(Protocol):
    """What classifying a file needs of its history row (a store record or AppliedMigration)."""

    @property
    def checksum(self) -> str: ...

    @property
    def status(self) -> str: ...


def migration_state(checksum: str, record: HistoryRow | None, *, repeatable: bool = False) -> str:
    """The one classifier of a tracked file: ``pending`` (no row), ``applied``, ``drifted``
    (applied with another checksum; ``changed`` for a ``repeatable`` file, which runs
    again), or the row's own status (``failed``, ``rolled_back``, which count as pending:
    they run again)."""
    if record is None:
        return "pending"
    if record.status == "success":
        if record.checksum == checksum:
            return "applied"
        return "changed" if repeatable else "drifted"
    return record.status


@dataclass(frozen=True)
class MigrationCheck:
    """Preflight's view of the tracked files: drift (fatal) and warnings."""

    drift: tuple[str, ...]
    warnings: tuple[str, ...]
    pending: tuple[str, ...]
    changed: tuple[str, ...] = ()  # repeatables pending because their checksum changed


def check_migrations(
    files: Iterable[str],
    checksums: Mapping[str, str],
    applied: Mapping[str, AppliedMigration],
) -> MigrationCheck:
    """Compare tracked files with their history (only ``success`` rows count as applied);
    a repeatable file is pending when never applied or changed, and never out of order."""
    files = list(files)
    drift: list[str] = []
    warnings: list[str] = []
    pending: list[str] = []
    changed: list[str] = []
    done = {f: a for f, a in applied.items() if a.status == "success"}
    for rel in files:
        record = applied.get(rel)
        state = migration_state(checksums[rel], record, repeatable=is_repeatable(rel))
        if state == "changed":
            changed.append(rel)
        if state not in ("applied", "drifted"):
            pending.append(rel)
        elif state == "drifted" and record is not None:
            drift.append(
                f"{rel} changed after it was applied on {record.applied_at}"
                f" by {record.applied_by or 'unknown'}: applied checksum {record.checksum},"
                f" file now {checksums[rel]}"
            )
    present = set(files)
    for rel in sorted(done):
        if rel not in present:
            warnings.append(f"{rel} was applied on {done[rel].applied_at} but no longer exists")
    newest = max((rel for rel in done if rel in present and not is_repeatable(rel)), default=None)
    if newest is not None:
        for rel in pending:
            if rel < newest and not is_repeatable(rel):
                warnings.append(
                    f"pending {rel} sorts before {newest}, which is already applied:"
                    " it will run out of order"
                )
    return MigrationCheck(tuple(drift), tuple(warnings), tuple(pending), tuple(changed))
