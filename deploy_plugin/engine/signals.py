"""SIGTERM and SIGHUP handled like Ctrl-C while deployments run (DESIGN §4).

CI cancellation, ``docker stop`` and systemd send SIGTERM; a closed terminal sends SIGHUP.
Python's default for both is to die on the spot: the running step's process group lives on,
the lock row stays, the deployments row says ``running`` forever. Raising
KeyboardInterrupt instead takes the path Ctrl-C takes: the step's process group is
terminated, the step and the deployment are recorded as interrupted, the lock is released.
"""

from __future__ import annotations

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
