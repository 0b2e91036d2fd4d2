"""Reading the next migration while the server applies this one (issue 23 #7).

A deployment applies its tracked files one after the other, and while the server runs a
file the client only waits. :class:`Prefetcher` uses that wait: one worker thread reads
the group's next file, takes its checksum and its SQL as the executor sends it (decoded,
checked, split where it must be: :meth:`~.executor.SqlExecutor.prepare`), so when its
step comes, the text is ready. Nothing of the file reaches the server before its own step
runs: the worker reads, it never sends.

What was read is used only when it is the file the step applies, and its checksum is the
one its ledger row records (what preflight hashed); otherwise the step reads the file
itself as it would without a prefetch. So what runs is what was checked, never a stale
copy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from deploy_plugin.plan.sections import checksum_bytes

from .downs import up_bytes
from .errors import MigrationError

T = TypeVar("T")


class _Job(Generic[T]):
    """One file being read by the worker: its result (or error) once ``done`` is set."""

    def __init__(self, rel: str, path: Path) -> None:
        self.key = (rel, path)
        self.done = threading.Event()
        self.checksum: str | None = None  # None: the file could not be read
        self.result: T | MigrationError | None = None


class Prefetcher(Generic[T]):
    """Prepares the next file of one migration runner in a worker thread (started on the
    first :meth:`start`, a daemon: it never holds up the interpreter's exit).

    ``prepare(rel, data)`` turns a file's bytes (its up section) into what the executor
    sends, or raises :class:`MigrationError` (the step reports it, as without a prefetch);
    ``warm()``, run once after the first file, loads what later ones may need
    (PostgreSQL's lexer) while the worker would otherwise wait.
    """

    def __init__(
        self, prepare: Callable[[str, bytes], T], warm: Callable[[], None] | None = None
    ) -> None:
        self._prepare = prepare
        self._warm = warm  # run by the worker before its first file (an import, say)
        self._job: _Job[T] | None = None
        self._wake = threading.Condition()
        self._queued: _Job[T] | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def start(self, rel: str, path: Path) -> None:
        """Begin reading ``path`` (tracked file ``rel``) in the worker, unless it is the
        file already being read."""
        if self._closed or (self._job is not None and self._job.key == (rel, path)):
            return
        job: _Job[T] = _Job(rel, path)
        self._job = job
        with self._wake:
            self._queued = job
            self._wake.notify()
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._work, name="pytest-deploy-prefetch", daemon=True
            )
            self._thread.start()

    def take(self, rel: str, path: Path, checksum: str) -> T | None:
        """What the worker made of ``rel`` when it read that file with that checksum
        (waiting for it to finish); None otherwise: the caller reads the file itself.
        Raises the :class:`MigrationError` preparing it raised (the same bytes give the
        same error)."""
        job, self._job = self._job, None
        if job is None or job.key != (rel, path):
            return None
        job.done.wait()
        if job.checksum != checksum:
            return None
        if isinstance(job.result, MigrationError):
            raise job.result
        return job.result

    def close(self) -> None:
        """Stop the worker (a file it is reading is finished and dropped)."""
        self._closed = True
        self._job = None
        with self._wake:
            self._queued = None
            self._wake.notify()

    def _work(self) -> None:
        while True:
            with self._wake:
                while self._queued is None and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                job, self._queued = self._queued, None
            assert job is not None
            try:
                self._read(job)
            finally:
                job.done.set()
            warm, self._warm = self._warm, None
            if warm is not None:  # after the first file: its step need not wait for it
                try:
                    warm()
                except Exception:  # noqa: BLE001 - only a head start: a step does it again
                    pass

    def _read(self, job: _Job[T]) -> None:
        rel, path = job.key
        try:
            raw = path.read_bytes()
        except OSError:
            return  # the step reads it again and reports why it cannot
        job.checksum = checksum_bytes(raw)
        try:
            job.result = self._prepare(rel, up_bytes(raw))
        except MigrationError as err:
            job.result = err
        except Exception:  # noqa: BLE001 - anything else: the step reads the file itself
            job.checksum = None
