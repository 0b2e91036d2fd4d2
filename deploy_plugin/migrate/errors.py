"""Errors of applying migrations, each one paragraph for the user."""

from __future__ import annotations


class MigrationError(Exception):
    """A migration failed and was rolled back: ``'<file>, line N: <error> (SQLSTATE xxxxx)'``.

    ``file`` is the path as given to :meth:`SqlExecutor.apply`, ``line`` the 1-based line of
    the failure in that file (``None`` when unknown, e.g. at COMMIT), ``message`` the
    database's error text and ``sqlstate`` PostgreSQL's error code (``None`` for SQLite).
    ``note`` (in the text only) says what stayed applied when not everything was undone.
    ``undone``: False when something of the file may have stayed applied (a
    ``-- deploy:no-transaction`` file), so trying it again is not safe.
    """

    def __init__(
        self,
        file: str,
        line: int | None,
        message: str,
        sqlstate: str | None = None,
        note: str = "",
        *,
        undone: bool = True,
    ) -> None:
        self.file, self.line, self.message, self.sqlstate = file, line, message, sqlstate
        self.note, self.undone = note, undone
        where = f"{file}, line {line}" if line else file
        code = f" (SQLSTATE {sqlstate})" if sqlstate else ""
        super().__init__(f"{where}: {message}{code}" + (f". {note}" if note else ""))


class AlreadyApplied(MigrationError):
    """The guard refused the file: the target's ledger already records it as applied."""


class ConnectError(Exception):
    """The target database can't be reached or opened; the message hides any password."""
