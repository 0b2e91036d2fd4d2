"""The audit trail of history changes made by hand (``accept-checksum``, ``baseline``), as
``migration show`` and ``migration history`` print it."""

from __future__ import annotations

from typing import Any

from deploy_plugin.store.base import AuditRecord, Store

from .output import print_table, say, when


def audit_rows(
    store: Store | None, project: str, target: str, file: str | None = None
) -> list[AuditRecord]:
    """The audit trail (newest first); empty without a store."""
    return store.migration_audit(project, target, file) if store else []


def audit_json(record: AuditRecord) -> dict[str, Any]:
    return {"file": record.file, "action": record.action, "old_checksum": record.old_checksum,
            "new_checksum": record.new_checksum, "reason": record.reason, "who": record.who,
            "at": record.at}  # fmt: skip


def print_audit(records: list[AuditRecord]) -> None:
    """The audit trail as a table, after a blank line (nothing when empty)."""
    if not records:
        return
    say()
    say("Changed by hand (newest first):")
    print_table(
        ["at", "file", "action", "old", "new", "by", "reason"],
        [[when(r.at), r.file, r.action, (r.old_checksum or "")[:12], r.new_checksum[:12], r.who,
          r.reason] for r in records],
        "",
    )  # fmt: skip
