"""Versioned schema of the store, one list of steps per database kind.

Each store creates and upgrades its own schema when it is opened (:mod:`.migrator`): it
reads the highest ``schema_version.version`` and applies, in one exclusive transaction,
every step above it. Steps are never destructive (no DROP, no column removal) so an older
pytest-deploy can keep reading a store that a newer one upgraded, and history is never
lost.

To change the schema, append a step to *both* lists (``schema_sqlite.py``,
``schema_postgres.py``) with the next version number; never edit a released step.

The ``{s}`` token in shared SQL (see :mod:`.driver`) is the table prefix: empty for
SQLite, ``deploy.`` for PostgreSQL, whose tables live in the schema ``deploy``.
"""

from __future__ import annotations

from .migrator import SchemaStep
from .schema_postgres import PG_SCHEMA, POSTGRES_BOOTSTRAP, POSTGRES_STEPS
from .schema_sqlite import SQLITE_BOOTSTRAP, SQLITE_STEPS

__all__ = [
    "PG_SCHEMA",
    "POSTGRES_BOOTSTRAP",
    "POSTGRES_STEPS",
    "SQLITE_BOOTSTRAP",
    "SQLITE_STEPS",
    "SchemaStep",
    "current_version",
    "steps_for",
]


def steps_for(kind: str) -> list[SchemaStep]:
    """The schema steps of one store kind (``sqlite`` or ``postgresql``), in version order.

    Looked up at call time (not bound at import) so tests can append a step.
    """
    steps = SQLITE_STEPS if kind == "sqlite" else POSTGRES_STEPS
    return sorted(steps, key=lambda step: step.version)


def current_version(kind: str) -> int:
    """The schema version this pytest-deploy writes for one store kind."""
    steps = steps_for(kind)
    return steps[-1].version if steps else 0
