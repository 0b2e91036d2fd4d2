"""The one migration seam: a tracked file, its ledger row and its history row, exactly once.

:class:`MigrationRunner` decides once whether the store is the target's own database. If it
is, the file, its ledger row and its history row go to the server as one query (one round
trip, one transaction). If not, file and ledger row commit together and the history row is
written right after; a run killed in between leaves a ledger row that the next deployment
records in the history (:meth:`MigrationRunner.reconcile`), so nothing runs twice.

A repeatable migration (``R__name.sql``) first deletes its ledger row of another checksum,
in the same transaction: a changed one runs again, the same checksum is still refused. Each
apply of one also gets a ``repeatable_applies`` row in the store, with its history row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from deploy_plugin.db import BUSY_TIMEOUT_S
from deploy_plugin.migration_record import MigrationRecord
from deploy_plugin.plan import is_repeatable
from deploy_plugin.plan.sections import checksum_bytes

from .books import ELAPSED_MS, Bookkeeping, Sql
from .downs import Down, read_down, up_bytes
from .errors import AlreadyApplied, MigrationError
from .executor import Prepared, SqlExecutor
from .ledger import Ledger, LedgerRow, missing_from_history
from .prefetch import Prefetcher
from .retries import LOCK_NOT_AVAILABLE, QUERY_CANCELED, Attempts, LockPolicy, with_lock_retries


class HistoryWriter(Protocol):
    """What the runner needs of the store (:class:`deploy_plugin.store.Store` is one): to
    know whether it is the target's database, and its history row as a statement to send in
    the migration's own transaction."""

    def is_store_connection(self, connection: Any) -> bool:
        """Whether ``connection`` reaches the store's own database."""

    def history_statement(
        self, project: str, target: str, record: MigrationRecord, *, elapsed: Any
    ) -> Sql:
        """The upsert of ``record``'s history row (``{}`` placeholders); an
        ``execution_time_ms`` of None is sent as ``elapsed``."""

    def repeat_statement(
        self, project: str, target: str, record: MigrationRecord, *, elapsed: Any
    ) -> Sql:
        """The row of one apply of a repeatable migration (``{}`` placeholders), sent with
        its history row."""


@dataclass(frozen=True)
class Applied:
    """What applying one migration did: its history record, whether it is stored yet, what
    the step's report says of its timeouts (None when nothing), and whether it took more
    than one attempt."""

    record: MigrationRecord
    recorded: bool
    remark: str | None = None
    retried: bool = False

    @property
    def ledger_row(self) -> LedgerRow:
        """The ledger row that committed with the file."""
        r = self.record
        return LedgerRow(r.file, r.checksum, r.applied_at, r.applied_by)


class MigrationRunner:
    """Applies one project's tracked files to one target database with the built-in executor."""

    def __init__(
        self, executor: SqlExecutor, store: HistoryWriter | None, project: str, target: str
    ) -> None:
        self.executor = executor
        self.store = store
        self.project = project
        self.target = target
        self.ledger = Ledger(executor, project, target)
        # "is the store this database?", asked once, by the store itself
        self.same_database = store is not None and store.is_store_connection(executor.connection)
        # the next file, read and checked while the server applies this one
        self.prefetch: Prefetcher[Prepared] = Prefetcher(executor.prepare, executor.warm)
        self._prepared: tuple[str, Prepared] | None = None  # what apply() took of it

    def close(self) -> None:
        self.prefetch.close()
        self.executor.close()

    def reconcile(self, history: Mapping[str, Any]) -> list[LedgerRow]:
        """Ledger rows the history lacks (a run died between commit and history row)."""
        return missing_from_history(self.ledger.rows(), history)

    def apply(
        self, rel: str, path: Path, *, checksum: str, who: str, policy: LockPolicy | None = None,
        upcoming: tuple[str, Path] | None = None,
    ) -> Applied:  # fmt: skip
        """Apply ``path``; ledger row in its transaction, history row with it or right after.

        ``policy``: the group's timeouts, set in the file's transaction; after a lock
        timeout the file is tried again (:mod:`.retries`). SQLite ignores them.
        ``upcoming``: (rel, path) of the file applied next, read and checked while the
        server applies this one (:mod:`.prefetch`); it is not sent before its own apply."""
        prepared = self.prefetch.take(rel, path, checksum)  # None: read it now
        if upcoming is not None:
            self.prefetch.start(*upcoming)
        if prepared is not None:
            self._prepared = (rel, prepared)
        if policy is None:
            return self._apply_once(rel, path, checksum, who, None, None)
        if self.executor.kind != "postgresql":
            applied = self._apply_once(rel, path, checksum, who, None, None)
            sqlite = "the database is SQLite, which has no such settings (it waits up to its"
            busy = f"{BUSY_TIMEOUT_S:g} s busy timeout)"
            return replace(applied, remark=f"{policy.describe()} not set: {sqlite} {busy}")

        def attempt(attempts: Attempts) -> Applied | MigrationError:
            try:
                return self._apply_once(rel, path, checksum, who, policy, attempts.history())
            except AlreadyApplied:
                raise
            except MigrationError as err:
                return err

        def timed_out(outcome: Applied | MigrationError) -> bool:
            # only an attempt that left nothing behind is tried again
            failed = outcome if isinstance(outcome, MigrationError) else None
            return failed is not None and failed.undone and failed.sqlstate == LOCK_NOT_AVAILABLE

        outcome, attempts = with_lock_retries(policy, attempt, timed_out)
        if isinstance(outcome, MigrationError):
            raise _explained(outcome, attempts) from None
        return replace(outcome, remark=attempts.applied(), retried=attempts.count > 1)

    def _apply_once(
        self, rel: str, path: Path, checksum: str, who: str, policy: LockPolicy | None,
        note: str | None,
    ) -> Applied:  # fmt: skip
        self.ledger.ensure()
        applied_at = datetime.now(timezone.utc)
        record = MigrationRecord(rel, checksum, applied_at, who, None, "success", note)
        records = []
        repeatable = is_repeatable(rel)
        if self.same_database and self.store is not None:
            store, project, target = self.store, self.project, self.target
            records.append(store.history_statement(project, target, record, elapsed=ELAPSED_MS))
            if repeatable:
                records.append(store.repeat_statement(project, target, record, elapsed=ELAPSED_MS))
        books = Bookkeeping(
            guard=self.ledger.guard(rel, checksum, who),
            records=records,
            clear=self.ledger.clear(rel, checksum) if repeatable else None,
        )
        prepared, self._prepared = self._prepared, None  # (a retry reads the file again)
        data: bytes | None = None
        if prepared is None or prepared[0] != rel:
            prepared = None
            try:
                raw = path.read_bytes()
            except OSError:
                pass  # the executor reports the unreadable file
            else:
                if checksum_bytes(raw) != checksum:
                    raise MigrationError(rel, None, _CHANGED)
                data = up_bytes(raw)  # a dbmate file: its up section
        settings = policy.settings() if policy is not None else None
        elapsed = self.executor.apply(
            path, rel, books=books, data=data, settings=settings,
            prepared=prepared[1] if prepared is not None else None,
        )  # fmt: skip
        record = MigrationRecord(rel, checksum, applied_at, who, elapsed, "success", note)
        return Applied(record, recorded=bool(records))

    def rollback(self, rel: str, down: Down, root: Path, *, checksum: str, who: str) -> Applied:
        """Run the down of ``rel`` in one transaction with the removal of its ledger row and,
        when the store is this database, its history row set to ``rolled_back`` (who, when,
        ms). A failing down raises MigrationError (naming the down file and line): nothing
        of it commits and the history row stays ``success``."""
        self.ledger.ensure()
        rolled_at = datetime.now(timezone.utc)
        record = MigrationRecord(rel, checksum, rolled_at, who, None, "rolled_back", None)
        records = [self.ledger.forget(rel)]
        if self.same_database and self.store is not None:
            records.append(
                self.store.history_statement(self.project, self.target, record, elapsed=ELAPSED_MS)
            )
        try:
            data: bytes | None = read_down(root, down)
        except OSError:
            data = None  # the executor reports the unreadable file
        elapsed = self.executor.apply(
            root / down.file, down.file, books=Bookkeeping(records=records), data=data
        )
        record = MigrationRecord(rel, checksum, rolled_at, who, elapsed, "rolled_back", None)
        return Applied(record, recorded=len(records) > 1)


_CHANGED = (
    "the file changed after this run read it (its checksum is not the one the run"
    " checked and would record in the ledger), so it was not applied: what runs is what"
    " was checked. Nothing of it was applied; run the deployment again to apply the file"
    " as it is now"
)
_PARTIAL = (
    "something of this -- deploy:no-transaction file may have stayed applied (with"
    " CONCURRENTLY, an INVALID index); check the database before deploying again"
)


def _explained(err: MigrationError, attempts: Attempts) -> MigrationError:
    """The last attempt's error, with what the group's timeouts did."""
    if err.sqlstate == LOCK_NOT_AVAILABLE:
        extra = attempts.gave_up(None if err.undone else _PARTIAL)
    elif err.sqlstate == QUERY_CANCELED and attempts.policy.statement_timeout:
        extra = attempts.statement_note()
    else:
        return err
    note = f"{err.note}. {extra}" if err.note else extra
    return MigrationError(err.file, err.line, err.message, err.sqlstate, note, undone=err.undone)


__all__ = ["ELAPSED_MS", "Applied", "HistoryWriter", "MigrationRunner"]
