"""What commits with a migration: the caller's bookkeeping statements (ledger and history
rows), and the stand-in for the migration's own execution time among their values."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


class _Elapsed:
    """Stands for the migration's own execution time (ms) in a bookkeeping statement."""

    def __repr__(self) -> str:
        return "ELAPSED_MS"


#: A parameter of a bookkeeping statement: the file's execution time in ms, computed by
#: the server on PostgreSQL (no extra round trip), measured by the client on SQLite.
ELAPSED_MS: Any = _Elapsed()

#: One bookkeeping statement: SQL text with ``{}`` placeholders, and their values.
Sql = tuple[str, tuple[Any, ...]]


@dataclass(frozen=True)
class Bookkeeping:
    """Statements that commit in the migration's transaction (DESIGN §5, "the truth").

    ``guard`` runs first (e.g. inserting the ledger row, whose unique key refuses a second
    apply of the same file); when it fails the file is not run and :class:`AlreadyApplied`
    or :class:`MigrationError` is raised. ``clear`` runs before it (a repeatable migration's
    ledger row of another checksum is deleted, so only the same checksum refuses). ``records``
    run after the file, before COMMIT.
    """

    guard: Sql | None = None
    records: Sequence[Sql] = field(default_factory=tuple)
    clear: Sql | None = None

    def guards(self) -> list[Sql]:
        """What runs before the file: ``clear`` then ``guard`` (those given)."""
        return [each for each in (self.clear, self.guard) if each is not None]


NO_TRANSACTION_NOTE = (
    "The file is marked -- deploy:no-transaction, so the statements before this one stay applied"
)


def ms_since(started: float) -> int:
    """Milliseconds since ``started`` (a ``time.perf_counter()`` value)."""
    return round((time.perf_counter() - started) * 1000)
