"""Store errors: every driver error leaves a store as a :class:`StoreError`."""

from __future__ import annotations

from datetime import datetime

from deploy_plugin.secrets import redact_url

from .records import LockInfo, format_time


class StoreError(Exception):
    """A store problem told in one paragraph: which store, what failed, how to fix it."""


class LockHeld(StoreError):
    """Another deployment of the same project and target holds the deployment lock."""

    def __init__(
        self, *, store: str, project: str, target: str, held_by: LockInfo, hint: str
    ) -> None:
        self.store = store
        self.project = project
        self.target = target
        self.holder = holder = held_by.holder
        self.host = host = held_by.host
        self.pid = pid = held_by.pid
        self.started_at: datetime = held_by.started_at
        pid_text = str(pid) if pid > 0 else "unknown"
        super().__init__(
            f"Project {project!r} is already being deployed to target {target!r}: "
            f"the deployment lock in store {store} is held by {holder} "
            f"(host {host}, pid {pid_text}, since {format_time(self.started_at)}). "
            f"Only one deployment per project and target runs at a time. {hint}"
        )


def describe_url(url: str | None) -> str:
    """A store URL for messages, with any password masked; None is the default store."""
    if not url:
        return "the default SQLite store (<rootdir>/.deploy/state.sqlite3)"
    return redact_url(url)
