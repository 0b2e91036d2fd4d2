"""The store's driver protocol: one connection, its transactions and its errors.

Every repository (``targets.py``, ``env.py``, ``history.py``, ...) runs shared SQL through
a :class:`Driver`: ``?`` parameters and a ``{s}`` table prefix, translated for the driver
by :class:`SharedSQL` (``%s`` and ``deploy.`` for PostgreSQL). ``sqlite.py`` and
``postgres.py`` each give one; what they share lives here: one mutex serialising the calls
of several threads, the read, write and one-statement blocks, closing, and every driver
error leaving as a one-paragraph :class:`StoreError`. A driver is also what the schema
migrator works through (:class:`.migrator.SchemaDriver`).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from typing import Any, ClassVar

from .errors import StoreError
from .migrator import SchemaStep, ready
from .schema import steps_for


class SharedSQL:
    """A connection that runs shared SQL (``?`` parameters, ``{s}`` table prefix),
    translated for its driver and cached per text."""

    def __init__(self, connection: Any, *, prefix: str, pyformat: bool) -> None:
        self.connection = connection
        self._prefix = prefix
        self._pyformat = pyformat
        self._translated: dict[str, str] = {}

    def translate(self, sql: str) -> str:
        """``{s}`` → table prefix; ``?`` → ``%s`` for drivers using the pyformat style."""
        text = self._translated.get(sql)
        if text is None:
            text = sql.replace("{s}", self._prefix)
            if self._pyformat:
                text = text.replace("?", "%s")
            self._translated[sql] = text
        return text

    def execute(self, sql: str, params: Any = ()) -> Any:
        """Run shared SQL with ``params``; returns the driver's cursor."""
        return self.connection.execute(self.translate(sql), params)

    def executemany(self, sql: str, rows: list[Any]) -> None:
        """Run shared SQL once per row (psycopg pipelines them: one round trip, not N)."""
        if hasattr(self.connection, "executemany"):  # sqlite3
            self.connection.executemany(self.translate(sql), rows)
            return
        with self.connection.cursor() as cursor:
            cursor.executemany(self.translate(sql), rows)


class Driver(ABC):
    """One store connection: reads, writes and errors as every repository needs them."""

    kind: ClassVar[str]  # "sqlite" | "postgresql"
    #: The driver's own exception class, turned into StoreError by :meth:`error`.
    errors: ClassVar[type[Exception]]

    def __init__(self, url: str, connection: Any, *, prefix: str, pyformat: bool) -> None:
        self.url = url
        self.store_id = ""  # set from read_store_id() once the schema is ready
        self.connection = connection
        self.sql = SharedSQL(connection, prefix=prefix, pyformat=pyformat)
        self._mutex = threading.RLock()

    # -- what each driver provides --------------------------------------------------------

    @abstractmethod
    def describe(self) -> str:
        """The store for messages (file path, or URL with the password masked)."""

    @abstractmethod
    def error(self, what: str, exc: Exception) -> StoreError:
        """One paragraph for a driver error while doing ``what`` ("record a migration")."""

    @abstractmethod
    def begin(self) -> AbstractContextManager[None]:
        """A write transaction on the connection, committed when the block ends."""

    @abstractmethod
    def time_param(self, value: datetime) -> Any:
        """A datetime as the driver stores it."""

    @abstractmethod
    def time_value(self, value: Any) -> datetime:
        """A stored timestamp as an aware UTC datetime."""

    @abstractmethod
    def is_store_connection(self, connection: Any) -> bool:
        """Whether a connection opened by someone else reaches this store's database."""

    @abstractmethod
    def read_store_id(self) -> str:
        """The store's random id as recorded ("" when it has none)."""

    def reconnect_if_broken(self) -> None:  # noqa: B027 - a hook: only PostgreSQL's breaks
        """Open the connection again when it broke (PostgreSQL: a network blip)."""

    def undurable(self) -> AbstractContextManager[None]:
        """Writes inside need not survive a power cut (they matter only while this machine
        is up): SQLite then skips the fsync of each commit."""
        return nullcontext()

    # -- the schema migrator's protocol (see .migrator.SchemaDriver) -----------------------

    @abstractmethod
    def read_version(self) -> int:
        """The highest recorded schema version (0 when there is no schema_version table)."""

    @abstractmethod
    def exclusive(self) -> AbstractContextManager[None]:
        """A transaction that excludes other upgraders, committed when the block ends."""

    @abstractmethod
    def bootstrap(self) -> None:
        """Create what holds the version (a schema, the schema_version table) if missing."""

    @abstractmethod
    def apply(self, step: SchemaStep) -> None:
        """Run one step's statements and record its version."""

    @abstractmethod
    def set_store_id(self, store_id: str) -> None:
        """Record the store's id unless it has one."""

    # -- shared by both -------------------------------------------------------------------

    def open_schema(self, *, create: bool) -> bool:
        """Whether the schema is usable: current, or created or upgraded when ``create``
        (without it, a dry run's, a missing or older one is no store: False). The
        connection is closed unless it is usable; driver errors become StoreError."""
        try:
            if not ready(self, steps_for(self.kind), self.describe(), create=create):
                self.connection.close()
                return False
            self.store_id = self.read_store_id()
            return True
        except self.errors as exc:
            self.connection.close()
            raise self.error("create or upgrade the store schema", exc) from exc
        except BaseException:
            self.connection.close()
            raise

    @contextmanager
    def reader(self, what: str) -> Iterator[SharedSQL]:
        """The connection, for reads; driver errors become StoreError about ``what``."""
        with self._mutex:
            self.reconnect_if_broken()
            try:
                yield self.sql
            except self.errors as exc:
                raise self.error(what, exc) from exc

    @contextmanager
    def transaction(self, what: str) -> Iterator[SharedSQL]:
        """A write transaction, committed on success (rolled back on any exception);
        driver errors become StoreError saying the store could not ``what``."""
        with self.reader(what) as db, self.begin():
            yield db

    def statement(self, what: str) -> AbstractContextManager[SharedSQL]:
        """For ONE write statement: run in autocommit (atomic on its own), which saves the
        two round trips of BEGIN and COMMIT on a store across a network."""
        return self.reader(what)

    def schema_version(self) -> int:
        """The highest schema version applied in this store."""
        with self.reader("read the schema version"):
            return self.read_version()

    def close(self) -> None:
        """Close the connection (a held lock lives on its own connection or row)."""
        with self._mutex:
            self.connection.close()
