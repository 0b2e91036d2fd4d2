"""A pytest plugin for ``corpus.py --phases``: where one run's wall time goes.

Loaded with ``-p corpus_phases`` (``benchmarks/`` on ``PYTHONPATH``), so it is imported
before the entry-point plugins. It writes ``$CORPUS_PHASES_OUT`` (JSON) at exit with
``time.time()`` stamps (the harness stamps the spawn in ``$CORPUS_PHASES_SPAWN``) and
these sums, without a profiler's overhead:

* ``call``: ``runtest`` of every item (the deploy step itself);
* ``wait``: psycopg's ``Connection.wait`` once collection has finished, ``wait in loop``
  the part of it while items run (the executor's queries: the server applying each file
  with its ledger and history rows; the store's own writes);
* ``items``: pytest's run protocol for every item (setup, call, teardown, reports).
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time
from collections.abc import Generator
from typing import Any

import pytest

STAMPS: dict[str, float] = {"plugin imported": time.time()}
SUMS: dict[str, float] = {"call": 0.0, "wait": 0.0, "wait in loop": 0.0, "items": 0.0}
COUNTS: dict[str, int] = dict.fromkeys(SUMS, 0)


def _add(key: str, seconds: float) -> None:
    SUMS[key] += seconds
    COUNTS[key] += 1


def _write() -> None:
    STAMPS["atexit"] = time.time()
    out = os.environ.get("CORPUS_PHASES_OUT")
    if out:
        data = {"stamps": STAMPS, "sums": SUMS, "counts": COUNTS,
                "modules": len(sys.modules), "own": OWN}  # fmt: skip
        with open(out, "w") as fh:
            json.dump(data, fh)


atexit.register(_write)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> Generator[None, Any, Any]:
    STAMPS["sessionstart"] = time.time()
    try:
        return (yield)
    finally:
        STAMPS["sessionstart done"] = time.time()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection(session: pytest.Session) -> Generator[None, Any, Any]:
    STAMPS["collection"] = time.time()
    try:
        return (yield)
    finally:
        STAMPS["collection done"] = time.time()


def pytest_collection_finish(session: pytest.Session) -> None:
    for item in session.items:
        _timed_runtest(item)
    psycopg = sys.modules.get("psycopg")
    if psycopg is None:
        return
    original = psycopg.Connection.wait

    def wait(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            seconds = time.perf_counter() - start
            _add("wait", seconds)
            if "runtestloop" in STAMPS and "runtestloop done" not in STAMPS:
                _add("wait in loop", seconds)

    psycopg.Connection.wait = wait


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, Any, Any]:
    STAMPS["runtestloop"] = time.time()
    try:
        return (yield)
    finally:
        STAMPS["runtestloop done"] = time.time()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, Any, Any]:
    start = time.perf_counter()
    try:
        return (yield)
    finally:
        _add("items", time.perf_counter() - start)


#: per pytest_runtest_call: seconds beside psycopg waits (the plugin's own work per step)
OWN: list[tuple[str, float]] = []


def _timed_runtest(item: pytest.Item) -> None:
    """Time the item's ``runtest`` by wrapping it (a ``pytest_runtest_call`` hook would
    also time pytest's own call-phase hooks)."""
    runtest = item.runtest

    def timed() -> None:
        start, waited = time.perf_counter(), SUMS["wait"]
        try:
            runtest()
        finally:
            seconds = time.perf_counter() - start
            _add("call", seconds)
            OWN.append((item.name, seconds - (SUMS["wait"] - waited)))

    item.runtest = timed  # type: ignore[method-assign]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> Generator[None, Any, Any]:
    STAMPS["sessionfinish"] = time.time()
    try:
        return (yield)
    finally:
        STAMPS["sessionfinish done"] = time.time()
