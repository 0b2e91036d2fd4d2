"""Fixtures shared by the test modules: throw-away PostgreSQL databases, a private
scram-sha-256 cluster, and an HTTP server on 127.0.0.1 (helpers live in pg.py,
scram_cluster.py and httpserver.py).

PostgreSQL: ``pg_database`` is a fresh database per test; ``pg_url`` a fresh schema per test
in a database its module shares (making a database takes about a second, a schema
milliseconds), with ``pg`` (the built-in executor on it) and ``db`` (a second connection).
Both databases come from :func:`tests.pg.temporary_database`, the one place tests make one:
without a server a PostgreSQL test is skipped, and with ``CI=true`` it fails instead."""

from __future__ import annotations

import os
import shutil
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from deploy_plugin.migrate.executor import SqlExecutor
from tests.httpserver import HTTPTestServer
from tests.pg import temporary_database
from tests.scram_cluster import ScramCluster, running_scram_cluster

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def pg_database() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database, dropped after the test."""
    with temporary_database() as url:
        yield url


@pytest.fixture(scope="module")
def pg_module_database() -> Iterator[str]:
    """URL of a throw-away database that the tests of one module share (``pg_url``)."""
    with temporary_database() as url:
        yield url


@pytest.fixture(scope="module")
def scram_cluster() -> Iterator[ScramCluster]:
    """A private scram-sha-256 cluster on 127.0.0.1, for the tests of one module."""
    with running_scram_cluster() as cluster:
        yield cluster


@pytest.fixture
def http_server() -> Iterator[HTTPTestServer]:
    """A started HTTPTestServer, stopped after the test."""
    with HTTPTestServer() as server:
        yield server


@pytest.fixture
def pg_url(pg_module_database: str) -> str:
    """URL of a fresh schema of the module's throw-away database, selected through the URL's
    own ``options`` (kept by the built-in executor)."""
    schema = f"s_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_module_database, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{pg_module_database}?options=-c%20search_path%3D{schema}"


@pytest.fixture
def pg(pg_url: str) -> Iterator[SqlExecutor]:
    with SqlExecutor(pg_url) as executor:
        yield executor


@pytest.fixture
def db(pg_url: str) -> Iterator[psycopg.Connection]:
    """A separate connection that sees only what was committed."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Path]:
    """A copy of deployments/demo (the README's main job) with a pytest.ini beside it; the
    services its runs started are stopped afterwards."""
    project = tmp_path / "demo"
    shutil.copytree(REPO / "deployments" / "demo", project, ignore=shutil.ignore_patterns(".out"))
    (tmp_path / "pytest.ini").write_text("[pytest]\njunit_logging = system-out\n")
    yield project
    for pidfile in project.glob(".out/*/run/*.pid"):
        try:
            os.kill(int(pidfile.read_text()), signal.SIGTERM)
        except ProcessLookupError:
            pass
