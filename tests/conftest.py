"""Fixtures shared by the test modules: a throw-away PostgreSQL database, a private
scram-sha-256 cluster, and an HTTP server on 127.0.0.1 (helpers live in pg.py,
scram_cluster.py and httpserver.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.httpserver import HTTPTestServer
from tests.pg import temporary_database
from tests.scram_cluster import ScramCluster, running_scram_cluster


@pytest.fixture
def pg_database() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database, dropped after the test."""
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
