"""Schema fingerprints of a store: each tracked group's database as its last successful
run left it, so that preflight can warn when the live schema changed outside pytest-deploy."""

from __future__ import annotations

import json
from typing import Any

from .core import _PROJECT_OF, StoreCore
from .records import utcnow

_UPSERT = """
    INSERT INTO {s}schema_fingerprints (project_id, target_name, group_name, digest, objects,
        deployment_id, recorded_at)
    VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (project_id, target_name, group_name) DO UPDATE SET
        digest = excluded.digest, objects = excluded.objects,
        deployment_id = excluded.deployment_id, recorded_at = excluded.recorded_at"""


class FingerprintRepository(StoreCore):
    """The recorded schema fingerprints (``kind`` → name → attributes, as JSON)."""

    def record_fingerprint(
        self, project: str, target: str, group: str, objects: dict[str, Any], *,
        digest: str, deployment_id: int | None,
    ) -> None:  # fmt: skip
        """Keep the fingerprint of ``group``'s database after a successful run."""
        project_id = self.project_id(project)
        text = json.dumps(objects, sort_keys=True, separators=(",", ":"))
        with self.driver.statement("record a schema fingerprint") as db:
            db.execute(
                _UPSERT,
                (project_id, target, group, digest, text, deployment_id,
                 self.driver.time_param(utcnow())),
            )  # fmt: skip

    def fingerprint_digest(self, project: str, target: str, group: str) -> str | None:
        """The digest recorded for ``group`` (None when none is): what a run compares first,
        so that the objects (large for a large schema) are read only when it differs."""
        with self.driver.reader("read a schema fingerprint") as db:
            row = db.execute(
                f"""SELECT digest FROM {{s}}schema_fingerprints
                WHERE {_PROJECT_OF} AND target_name = ? AND group_name = ?""",
                (project, target, group),
            ).fetchone()
        return None if row is None else str(row[0])

    def fingerprint_of(
        self, project: str, target: str, group: str
    ) -> tuple[str, dict[str, Any], int | None] | None:
        """(digest, objects, deployment id) recorded for ``group``, or None."""
        with self.driver.reader("read a schema fingerprint") as db:
            row = db.execute(
                f"""SELECT digest, objects, deployment_id FROM {{s}}schema_fingerprints
                WHERE {_PROJECT_OF} AND target_name = ? AND group_name = ?""",
                (project, target, group),
            ).fetchone()
        if row is None:
            return None
        objects: dict[str, Any] = json.loads(row[1])
        return row[0], objects, row[2]
