"""Facts of this host: the runner's identity, UTC times, durations (for records and
reports), and how large one argument or environment string may be."""

from __future__ import annotations

import functools
import getpass
import os
import socket
import time
from datetime import datetime, timezone
from typing import Any

#: Linux's limit on one argument or environment string (MAX_ARG_STRLEN): enforced by
#: :mod:`deploy_plugin.engine.shell` at each step and by :mod:`deploy_plugin.envfile` first.
MAX_ARG_CHARS = 128 * 1024


@functools.lru_cache(maxsize=1)
def who() -> str:
    """``user@host`` of this runner, once per process (no DNS look-up: the host is local)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso_utc(value: Any) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        utc: datetime = value.astimezone(timezone.utc)
        return utc.isoformat().replace("+00:00", "Z")
    return str(value)


def monotonic_ms(start: float) -> int:
    return int((time.monotonic() - start) * 1000)
