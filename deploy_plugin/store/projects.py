"""What makes a stored project more than a name (schema v8): its identity and plan key.

A project row is found by name, but a name is only what a config says (or, without a
``project:`` key, the name of its folder), so two unrelated checkouts can share one. The
row therefore records the ``project_id`` of the config that first deployed it (its
*identity*, bound once) and the per-project secret that keys the MACs of its saved plans
(``plan_key``, drawn with :func:`secrets.token_bytes` on first use, never written to a plan
file). ``bind`` (automatic, on a deploy), ``adopt`` and ``rename`` (by hand, through
``pytest-deploy project``) each leave a ``project_audit`` row in the same transaction.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .core import StoreCore, _changed
from .errors import StoreError
from .records import utcnow

PLAN_KEY_BYTES = 32

_SELECT = """SELECT id, name, identity, identity_bound_at, identity_bound_by
    FROM {s}projects WHERE name = ?"""
_AUDIT = """INSERT INTO {s}project_audit (project_id, action, old_value, new_value, reason,
    who, at) VALUES (?, ?, ?, ?, ?, ?, ?)"""


@dataclass(frozen=True)
class ProjectIdentity:
    """A stored project and the identity it is bound to (None: not bound yet)."""

    name: str
    identity: str | None
    bound_at: datetime | None
    bound_by: str | None


@dataclass(frozen=True)
class ProjectAudit:
    """One change of a project's binding or name made by a deploy or by hand."""

    action: str  # bind | adopt | rename
    old: str | None  # identity (bind, adopt) or name (rename) before
    new: str
    reason: str | None
    who: str
    at: datetime


class ProjectRepository(StoreCore):
    """Identities, plan keys, adoptions and renames of projects (schema v8)."""

    def project_identity(self, name: str) -> ProjectIdentity | None:
        """The stored project ``name`` and its binding; None when the store has no such row."""
        with self.driver.reader("look up a project") as db:
            row = db.execute(_SELECT, (name,)).fetchone()
        return None if row is None else self._identity(row)

    def bind_project(self, name: str, identity: str, *, who: str) -> ProjectIdentity:
        """Bind ``name`` to ``identity`` if it is bound to nothing yet (the row is created
        when missing), with a ``bind`` audit row; returns the binding as it now stands
        (another identity when someone else bound it first)."""
        row_id = self.project_id(name)
        now = utcnow()
        with self.driver.transaction("bind a project to its project_id") as db:
            updated = db.execute(
                "UPDATE {s}projects SET identity = ?, identity_bound_at = ?,"
                " identity_bound_by = ? WHERE id = ? AND identity IS NULL",
                (identity, self.driver.time_param(now), who, row_id),
            )
            if _changed(updated):
                db.execute(_AUDIT, (row_id, "bind", None, identity, None, who,
                                    self.driver.time_param(now)))  # fmt: skip
            row = db.execute(_SELECT, (name,)).fetchone()
        return self._identity(row)

    def adopt_project(
        self, name: str, identity: str, *, who: str, reason: str
    ) -> ProjectIdentity | None:
        """Bind ``name`` to ``identity`` whatever it was bound to, with an ``adopt`` audit
        row; the binding before (None: the store has no such project, nothing changed)."""
        before = self.project_identity(name)
        if before is None:
            return None
        now = self.driver.time_param(utcnow())
        with self.driver.transaction("adopt a project") as db:
            row_id = db.execute("SELECT id FROM {s}projects WHERE name = ?", (name,)).fetchone()[0]
            db.execute(
                "UPDATE {s}projects SET identity = ?, identity_bound_at = ?,"
                " identity_bound_by = ? WHERE id = ?",
                (identity, now, who, row_id),
            )
            db.execute(_AUDIT, (row_id, "adopt", before.identity, identity, reason, who, now))
        return before

    def rename_project(self, old: str, new: str, *, who: str, reason: str) -> bool:
        """Give project ``old`` (its targets, env vars, history, runs, key and binding) the
        name ``new``, with a ``rename`` audit row; False when ``old`` is not stored.
        StoreError when ``new`` is already a project of the store."""
        now = self.driver.time_param(utcnow())
        with self.driver.transaction("rename a project") as db:
            if db.execute("SELECT 1 FROM {s}projects WHERE name = ?", (new,)).fetchone():
                raise StoreError(
                    f"project {new!r} already exists in the store: a rename never merges two"
                    " projects. Choose another name, or rename that one first."
                )
            row = db.execute("SELECT id FROM {s}projects WHERE name = ?", (old,)).fetchone()
            if row is None:
                return False
            db.execute("UPDATE {s}projects SET name = ? WHERE id = ?", (new, row[0]))
            db.execute(_AUDIT, (row[0], "rename", old, new, reason, who, now))
        self._project_ids.pop(old, None)
        return True

    def project_audit(self, name: str) -> list[ProjectAudit]:
        """The binds, adoptions and renames of project ``name``, newest first."""
        with self.driver.reader("read the project audit") as db:
            rows = db.execute(
                """SELECT a.action, a.old_value, a.new_value, a.reason, a.who, a.at
                FROM {s}project_audit a JOIN {s}projects p ON p.id = a.project_id
                WHERE p.name = ? ORDER BY a.at DESC, a.id DESC""",
                (name,),
            ).fetchall()
        return [
            ProjectAudit(r[0], r[1], r[2], r[3], r[4], self.driver.time_value(r[5])) for r in rows
        ]

    def plan_key(self, name: str, *, create: bool) -> bytes | None:
        """The secret keying the saved plans of project ``name``; drawn (and the project row
        created) on first use when ``create``, else None while it has none."""
        with self.driver.reader("read a project's plan key") as db:
            row = db.execute("SELECT plan_key FROM {s}projects WHERE name = ?", (name,)).fetchone()
        if row is not None and row[0]:
            return bytes.fromhex(row[0])
        if not create:
            return None
        row_id = self.project_id(name)
        with self.driver.transaction("draw a project's plan key") as db:
            db.execute(  # of two runs drawing at once, the first one's key stays
                "UPDATE {s}projects SET plan_key = ? WHERE id = ? AND plan_key IS NULL",
                (secrets.token_bytes(PLAN_KEY_BYTES).hex(), row_id),
            )
            stored = db.execute("SELECT plan_key FROM {s}projects WHERE id = ?", (row_id,))
            return bytes.fromhex(stored.fetchone()[0])

    def _identity(self, row: Any) -> ProjectIdentity:
        bound_at = None if row[3] is None else self.driver.time_value(row[3])
        return ProjectIdentity(row[1], row[2], bound_at, row[4])
