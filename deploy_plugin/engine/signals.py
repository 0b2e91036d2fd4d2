"""SIGTERM and SIGHUP handled like Ctrl-C while deployments run (DESIGN §4), and held
while a step's process is started.

CI cancellation, ``docker stop`` and systemd send SIGTERM; a closed terminal sends SIGHUP.
Python's default for both is to die on the spot: the running step's process group lives on,
the lock row stays, the deployments row says ``running`` forever. Raising
KeyboardInterrupt instead takes the path Ctrl-C takes: the step's process group is
terminated, the step and the deployment are recorded as interrupted, the lock is released.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

HANDLED = (signal.SIGTERM, signal.SIGHUP)


def _raise(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"interrupted by {signal.Signals(signum).name}")


@contextmanager
def interrupt_on_termination() -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP raise KeyboardInterrupt in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[signal.Signals, Any] = {}
    for sig in HANDLED:
        previous[sig] = signal.signal(sig, _raise)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


_INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP while a command's process is started and recorded.

    A KeyboardInterrupt raised inside ``Popen`` after the fork (or before the process is
    recorded) would leave a running process group nobody terminates. A signal that arrives
    meanwhile is acted on right after, where the caller's cleanup covers the process.
    Main thread only (only it receives signals).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def remember(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)

    previous = {sig: signal.signal(sig, remember) for sig in _INTERRUPTS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if pending:
            handler = previous[signal.Signals(pending[0])]
            if callable(handler):
                handler(pending[0], None)  # e.g. raises KeyboardInterrupt
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), pending[0])


@contextmanager
def interrupts_noted() -> Iterator[list[int]]:
    """While inside, Ctrl-C, SIGTERM and SIGHUP are only noted (the yielded list), never
    acted on, not even after: for the end of a session, whose own work (recording the
    deployments, writing the reports) is what a late signal would otherwise cut short.
    Main thread only."""
    noted: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield noted
        return

    def note(signum: int, frame: FrameType | None) -> None:
        noted.append(signum)

    previous = {sig: signal.signal(sig, note) for sig in _INTERRUPTS}
    try:
        yield noted
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
