"""What each target database has applied: the database decides (DESIGN §5, "the truth").

For a group applied by the built-in executor the target database's ledger, written in
each migration's own transaction, is what is applied; the store's ``migration_history`` is
the record of it (who, when, how long, errors). :class:`DatabaseView` keeps, per such
group, the ledger as read — at preflight over a read-only session (real and dry runs alike,
so a dry run and a saved plan show the pending set the real run applies, whichever store
they use), or by the group's migration runner over its own connection — and answers:

* is this file applied? (the ledger's row, never the history's);
* which files does the history record as applied that the database lacks? (a restored or
  recreated database, another database than last time: preflight stops, naming them);
* what happened to a ledger row the history lacks? (a run that died between its commit and
  its history row, or a run that recorded it in another store).

Groups whose ``deploy_command`` applies their files keep the history as their record: no
connection of ours sees their database.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from deploy_plugin.config import Group
from deploy_plugin.facts import iso_utc
from deploy_plugin.migrate.ledger import LedgerRow
from deploy_plugin.migrate.ledger_read import LedgerRead, read_ledger

#: The flag that applies again what a database lacks (a CI that recreates it every run).
REAPPLY_FLAG = "--deploy-reapply-missing"


def uses_ledger(group: Group) -> bool:
    """Whether the group's files are applied by the built-in executor (which keeps the
    ledger, so the database can be asked)."""
    return group.track_migrations and group.deploy_command is None


def psql_ledger(group: Group) -> bool:
    """Whether the group's files are applied by psql in one transaction with their ledger
    row (:mod:`deploy_plugin.engine.psql`): psql found on PATH, the file given as ``-f {file}``,
    connecting with the group's ``database_url_env`` (``$DATABASE_URL`` by default): then
    that database's ledger tells whether a file went through (unless the file is marked
    ``-- deploy:no-transaction``: see :func:`guarded`), and a file it holds is never applied
    again. Its pending set still comes from
    the history: files applied before pytest-deploy wrote their ledger rows have none."""
    # deferred: +8 modules, 4 ms (engine.psql, shutil, bz2, …)
    from deploy_plugin.engine.psql import runs_psql_from_path

    command = group.deploy_command
    if not group.track_migrations or command is None or not runs_psql_from_path(command):
        return False
    if not _PSQL_FILE_ARG.search(command):
        return False  # psql does not name the file (stdin, a script): no ledger row
    var = group.database_url_env
    return re.search(r"\$(?:" + var + r"(?!\w)|\{" + var + r"\})", command) is not None


def guarded(group: Group, root: Path, rel: str) -> bool:
    """Whether psql applied ``rel`` with its ledger row in the same transaction, so the
    ledger alone settles a run killed under it: a :func:`psql_ledger` group, and the file
    not marked ``-- deploy:no-transaction`` (no ``-1``, no row)."""
    # deferred: +1 modules, 4 ms (migrate.statements)
    from deploy_plugin.migrate.statements import no_transaction

    if not psql_ledger(group):
        return False
    try:
        text = (root / rel).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return not no_transaction(text)


#: psql names the step's file as its -f argument (what the -1 wrapper matches): the only way
#: the wrapper's ledger row goes into the file's transaction.
_PSQL_FILE_ARG = re.compile(r"(?:\s-f\s*|\s--file[=\s])\{file\}")


@dataclass(frozen=True)
class Lacking:
    """Files the history records as applied that one group's database lacks."""

    group: Group
    where: str  # the database, password hidden
    files: tuple[tuple[str, Any], ...]  # (file, its history record)


class DatabaseView:
    """The ledgers of one deployment's built-in groups, read once each."""

    def __init__(self) -> None:
        self.reads: dict[str, LedgerRead] = {}  # group name -> its database's ledger

    def read(self, group: Group, url: str, *, base: Path, project: str, target: str) -> LedgerRead:
        """Read ``group``'s ledger over a read-only session (ConnectError if unreachable)."""
        found = read_ledger(
            url, base=base, project=project, target=target, source=group.database_url_env
        )
        self.reads[group.name] = found
        return found

    def known(self, group: Group) -> bool:
        return group.name in self.reads

    def remember(self, group: Group, rows: Mapping[str, LedgerRow], where: str, table: str) -> None:
        """The ledger as the group's migration runner read it on its own connection."""
        self.reads[group.name] = LedgerRead(dict(rows), where, table)

    def row(self, group: Group, rel: str) -> LedgerRow | None:
        read = self.reads.get(group.name)
        return None if read is None else read.rows.get(rel)

    def note_applied(self, group: Group, row: LedgerRow) -> None:
        """This run applied ``row.file`` (its ledger row committed with it)."""
        read = self.reads.get(group.name)
        if read is not None:
            rows = {**read.rows, row.file: row}
            self.reads[group.name] = LedgerRead(rows, read.where, read.table)

    def note_undone(self, group: Group, rel: str) -> None:
        read = self.reads.get(group.name)
        if read is not None:
            rows = {f: r for f, r in read.rows.items() if f != rel}
            self.reads[group.name] = LedgerRead(rows, read.where, read.table)

    def lacking(self, group: Group, files: Iterable[str], history: Mapping[str, Any]) -> Lacking:
        """Of ``files``, those the history records as applied and the ledger lacks."""
        read = self.reads[group.name]
        missing = tuple(
            (rel, history[rel])
            for rel in files
            if rel in history and history[rel].status == "success" and rel not in read.rows
        )
        return Lacking(group, read.where, missing)


def lacking_paragraph(lacking: list[Lacking], project: str, target: str, store: str) -> str:
    """Preflight's refusal: which files, which database, and every way on."""
    parts = []
    for each in lacking:
        listed = ", ".join(
            f"{rel} (recorded as applied {iso_utc(rec.applied_at)} by {rec.applied_by})"
            for rel, rec in each.files
        )
        parts.append(
            f"the target database {each.where} (${each.group.database_url_env} of group"
            f" {each.group.name}) lacks {len(each.files)} migration(s) that the store {store}"
            f" records as applied: {listed}"
        )
    first = lacking[0]
    example = first.files[0][0]
    return (
        "; ".join(p[:1].upper() + p[1:] for p in parts)
        + ". The database decides what is applied, so nothing was run. If the database was"
        " recreated or restored from before them, apply them again: run again with"
        f" {REAPPLY_FLAG} (a CI job that recreates its database on every run passes it every"
        " time). If the database already has their changes but lost its ledger rows (its"
        " pytest_deploy schema was dropped or not restored), record them in its ledger without"
        f" running them: `pytest-deploy migration mark-applied {shlex.quote(project)}"
        f" {shlex.quote(example)} --target {shlex.quote(target)} --reason TEXT` for each. If"
        f" ${first.group.database_url_env} points at another database than the one they were"
        " applied to, set it right."
    )


def recovered_warning(row: LedgerRow, table: str, died: Any | None) -> str:
    """What happened to a ledger row the history lacked, recorded in the history now.

    ``died``: the store's deployment that was running when the row committed and never
    finished (then it ended between its commit and its history row); None when the store
    has no such run (the file was applied by a run that recorded it in another store)."""
    when = iso_utc(row.applied_at)
    if died is not None:
        what = (
            f"deployment {died.id} ({died.who}, started {iso_utc(died.started_at)}) ended between"
            " its commit and its history row"
        )
    else:
        what = (
            "not recorded in this store: it was applied by a run that recorded it in another store"
        )
    return (
        f"{row.file}: the target database's ledger ({table}) records it applied at {when} by"
        f" {row.applied_by}, {what}; recorded in the history now, and not run again"
    )


def run_that_died(runs: Iterable[Any], at: datetime) -> Any | None:
    """Of the store's deployments (newest first), the unfinished one running at ``at``."""
    for run in runs:
        if run.dry_run or run.status not in ("running", "interrupted"):
            continue
        ended = run.ended_at
        if run.started_at <= at and (ended is None or at <= ended):
            return run
    return None
