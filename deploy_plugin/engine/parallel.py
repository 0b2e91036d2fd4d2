"""Per-file deploy steps of a ``max_parallel`` group, run side by side.

pytest runs items one after another, so the group's first per-file item starts every
sibling's command on a bounded thread pool; each item then waits for its own result and
reports it as usual (its own pass/fail, output and JUnit case). Once a command fails, no
new command starts: the siblings still waiting are reported "not run". Only the command
runs in a worker thread; history rows and reports are written by the main thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Protocol

from deploy_plugin.engine.process import terminate_running
from deploy_plugin.engine.shell import CommandResult


class ParallelStep(Protocol):
    """A per-file step whose command may run in a worker thread."""

    @property
    def nodeid(self) -> str: ...

    def skip_reason(self) -> str | None:
        """Why it has nothing to do (no command then starts), if so."""

    def run_step_command(self) -> CommandResult:
        """Run its command (thread-safe; DeployFailure when it cannot start)."""


class ParallelRunner:
    """Runs the commands of ``items`` (in order) with at most ``max_parallel`` at once."""

    def __init__(self, items: Sequence[ParallelStep], max_parallel: int) -> None:
        self.failed: str | None = None  # node id of the first failed command
        self._lock = threading.Lock()
        self._futures: dict[object, Future[CommandResult | None]] = {}
        self._started: set[object] = set()
        pool = ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="deploy-step")
        for item in items:
            if item.skip_reason() is None:
                self._futures[item] = pool.submit(self._run, item)
        pool.shutdown(wait=False)

    def _run(self, item: ParallelStep) -> CommandResult | None:
        with self._lock:
            if self.failed:
                return None  # a sibling failed: start nothing new
            self._started.add(item)
        try:
            result: CommandResult = item.run_step_command()
        except BaseException:
            with self._lock:
                self.failed = self.failed or item.nodeid
            raise
        if not result.ok:
            with self._lock:
                self.failed = self.failed or item.nodeid
        return result

    def started(self, item: object) -> bool:
        """Whether the item's command was started (it then reports its own outcome)."""
        with self._lock:
            return item in self._started

    def result_for(self, item: object) -> CommandResult | None:
        """The item's command result, waiting for it; None when it was never started."""
        try:
            return self._futures[item].result()
        except KeyboardInterrupt:
            self.failed = self.failed or "interrupt"
            terminate_running()  # worker threads never see Ctrl-C: stop their commands
            raise

    def close(self) -> int:
        """End of the deployment: start nothing more, stop the commands still running (a
        session that ended early never asks for their results) and wait for their threads.
        Returns how many process groups were signalled."""
        with self._lock:
            self.failed = self.failed or "the end of the deployment"
        running = [f for f in self._futures.values() if not f.done()]
        stopped = 0
        deadline = time.monotonic() + 60
        while running and time.monotonic() < deadline:
            # again each round: a thread past its "failed?" check may start its command late
            stopped += terminate_running()
            wait(running, timeout=0.2)
            running = [f for f in running if not f.done()]
        return stopped
