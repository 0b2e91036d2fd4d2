"""The one schema migrator of the store, over a small driver protocol (DESIGN §5).

Both stores keep a ``schema_version`` table and upgrade themselves on open: every step of
their list (:mod:`.schema`) above the recorded version, in order, inside one exclusive
transaction (concurrent openers queue on it and re-read the version inside), then the
store's random id. A store newer than this code is refused; without ``create`` (a dry run)
nothing is created or upgraded.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from .errors import StoreError


@dataclass(frozen=True)
class SchemaStep:
    """One upgrade of the store schema: applied once, in order, inside the upgrade transaction."""

    version: int
    description: str
    statements: tuple[str, ...]


class SchemaDriver(Protocol):
    """What the migrator needs of one database connection."""

    def read_version(self) -> int:
        """The highest recorded schema version (0 when there is no schema_version table)."""

    def exclusive(self) -> AbstractContextManager[None]:
        """A transaction that excludes other upgraders, committed when the block ends."""

    def bootstrap(self) -> None:
        """Create what holds the version (a schema, the schema_version table) if missing."""

    def apply(self, step: SchemaStep) -> None:
        """Run one step's statements and record its version (one round trip if it can)."""

    def set_store_id(self, store_id: str) -> None:
        """Record the store's id unless it has one."""


def state(driver: SchemaDriver, steps: Sequence[SchemaStep], shown: str) -> str:
    """``current``, or ``older`` (upgrade needed); StoreError when newer than this code.
    ``steps``: the store kind's steps in version order."""
    version, current = driver.read_version(), (steps[-1].version if steps else 0)
    if version > current:
        raise StoreError(
            f"The store {shown} has schema version {version}, newer than this pytest-deploy "
            f"understands (version {current}). Upgrade pytest-deploy on this machine "
            f"(pip install -U pytest-deploy) to use it."
        )
    return "current" if version == current else "older"


def ready(driver: SchemaDriver, steps: Sequence[SchemaStep], shown: str, *, create: bool) -> bool:
    """Whether the schema is usable: current, or brought up to date when ``create``
    (without it, a dry run's, an older schema reads as no store: False)."""
    if state(driver, steps, shown) == "older":
        if not create:
            return False
        upgrade(driver, steps)
    return True


def upgrade(driver: SchemaDriver, steps: Sequence[SchemaStep]) -> None:
    """Create or upgrade the schema to this code's version (idempotent, never destructive)."""
    with driver.exclusive():
        driver.bootstrap()
        version = driver.read_version()
        for step in steps:
            if step.version > version:
                driver.apply(step)
        driver.set_store_id(uuid.uuid4().hex)
