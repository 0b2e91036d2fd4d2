"""The per-target env vars of a store (values are secrets, stored in plain text)."""

from __future__ import annotations

from .core import _PROJECT_OF, StoreCore
from .errors import StoreError
from .records import (
    EnvVarRecord,
    utcnow,
)


class EnvRepository(StoreCore):
    """The per-target env vars of a store (values are secrets, stored in plain text)."""

    # -- env vars -------------------------------------------------------------------------

    def set_env(self, project: str, target: str, name: str, value: str) -> None:
        """Set env var ``name`` of ``project`` + ``target`` (stored in plain text)."""
        project_id = self.project_id(project)
        with self.driver.transaction("set an env var") as db:
            db.execute(
                """INSERT INTO {s}env_vars (project_id, target_name, name, value, updated_at)
                VALUES (?, ?, ?, ?, ?) ON CONFLICT (project_id, target_name, name)
                DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at""",
                (project_id, target, name, value, self.driver.time_param(utcnow())),
            )

    def get_env(self, project: str, target: str, name: str) -> str | None:
        """The value of env var ``name``, or None."""
        with self.driver.reader("read an env var") as db:
            row = db.execute(
                f"SELECT value FROM {{s}}env_vars WHERE {_PROJECT_OF}"
                " AND target_name = ? AND name = ?",
                (project, target, name),
            ).fetchone()
        return None if row is None else self._text(project, target, name, row[0])

    def delete_env(self, project: str, target: str, name: str) -> bool:
        """Delete env var ``name``; whether it existed."""
        return self._delete("delete an env var", "env_vars", "name", project, target, name)

    def list_env(self, project: str, target: str) -> list[EnvVarRecord]:
        """Env vars of ``project`` + ``target``, sorted by name."""
        with self.driver.reader("list env vars") as db:
            rows = db.execute(
                f"SELECT name, value, updated_at FROM {{s}}env_vars WHERE {_PROJECT_OF}"
                " AND target_name = ? ORDER BY name",
                (project, target),
            ).fetchall()
        return [
            EnvVarRecord(name, self._text(project, target, name, value), self.driver.time_value(at))
            for name, value, at in rows
        ]

    def _text(self, project: str, target: str, name: str, value: object) -> str:
        """A stored value as text; StoreError for one written by hand as something else
        (a SQLite BLOB or number), which no command's environment could take as it is."""
        if isinstance(value, str):
            return value
        kind = "a BLOB (bytes)" if isinstance(value, bytes) else f"a {type(value).__name__}"
        raise StoreError(
            f"Env var {name} of project {project!r}, target {target!r}, in store"
            f" {self.describe()} is {kind}, not text: it was written by something other than"
            f" pytest-deploy (the value is not shown: it may be a secret). Set it again with"
            f" `pytest-deploy env set {project} {name} - --target {target}` (the value on"
            " stdin); nothing was run."
        )

    def env_values(self, project: str, target: str) -> dict[str, str]:
        """Env vars of ``project`` + ``target`` as a name → value dict."""
        return {record.name: record.value for record in self.list_env(project, target)}
