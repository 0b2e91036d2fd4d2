"""Throw-away PostgreSQL databases for tests.

The test server is 127.0.0.1:5432, user ``postgres`` (trust auth), maintenance database
``test``. Each database made here has a random name and is dropped ``WITH (FORCE)``
afterwards, so a test that leaves sessions open (a killed subprocess, a held lock) still
cleans up.

When the server is unreachable, PostgreSQL tests are skipped, except with ``CI=true``
where they fail: CI must never pass by skipping them.

The ``pg_database`` fixture (tests/conftest.py) yields such a database's URL; outside
fixtures, use ``with temporary_database() as url: ...``.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
ADMIN_URL = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/test"


def database_url(name: str) -> str:
    """The URL of database ``name`` on the test server."""
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


@functools.lru_cache(maxsize=1)
def unavailable_reason() -> str | None:
    """Why the test server can't be used, or None if it can (checked once per process)."""
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]
    return None


def require_postgres() -> None:
    """Skip the calling test when PostgreSQL is unreachable; fail instead when CI=true."""
    reason = unavailable_reason()
    if reason is None:
        return
    message = f"PostgreSQL test server {ADMIN_URL} is unreachable: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: PostgreSQL tests must run, not skip)", pytrace=False)
    pytest.skip(message)


@contextmanager
def temporary_database(prefix: str = "deploy_test") -> Iterator[str]:
    """Create an empty database with a random name; yield its URL; drop it (FORCE)."""
    require_postgres()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(name)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
