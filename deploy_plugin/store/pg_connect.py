"""Connecting to a PostgreSQL store, and its errors as one paragraph each."""

from __future__ import annotations

import os
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from deploy_plugin.db import connection_params, pg_connect

from .errors import StoreError, describe_url
from .schema_postgres import PG_SCHEMA


class MissingDatabase(StoreError):
    """The database named in the URL does not exist (a dry run reads it as no store)."""


def connect(url: str) -> psycopg.Connection:
    """An autocommit connection (:func:`deploy_plugin.db.pg_connect`); StoreError if not."""
    try:
        params = connection_params(url)
    except psycopg.Error as exc:
        raise StoreError(
            f"The store URL {describe_url(url)} is not a valid PostgreSQL URL ({exc}). "
            f"Write it as postgresql://USER:PASSWORD@HOST:PORT/DATABASE."
        ) from exc
    try:
        return pg_connect(url)
    except psycopg.Error as exc:
        raise _connect_error(url, params, exc) from exc


def _connect_error(url: str, params: dict[str, Any], exc: Exception) -> StoreError:
    text = str(exc)
    server_says = text.split("FATAL:", 1)[1].strip() if "FATAL:" in text else ""
    detail = server_says or text.rsplit("failed:", 1)[-1].strip().splitlines()[0]
    host = params.get("host") or os.environ.get("PGHOST") or "localhost"
    port = params.get("port") or os.environ.get("PGPORT") or "5432"
    lowered = text.lower()
    if "connection refused" in lowered:
        reason = "connection refused"
        fix = (
            f"Check that PostgreSQL is running and listening on {host}:{port}, or point "
            f"--deploy-store / DEPLOY_STORE_URL at the right server."
        )
    elif "password authentication failed" in lowered or "no password supplied" in lowered:
        reason = detail
        fix = "Check the password in the store URL, in PGPASSWORD or in ~/.pgpass."
    elif "does not exist" in lowered and "database" in lowered:
        reason = detail
        fix = "Create the database (createdb) or fix its name in the store URL."
    elif "does not exist" in lowered and "role" in lowered:
        reason = detail
        fix = "Fix the user name in the store URL or create that role."
    elif "timeout" in lowered:
        reason = "no answer before the connect timeout"
        fix = f"Check the host, the port and any firewall between here and {host}:{port}."
    elif "translate host name" in lowered or "name or service not known" in lowered:
        reason = "unknown host name"
        fix = "Check the host in the store URL."
    elif "pg_hba.conf" in lowered:
        reason = detail
        fix = "Ask the administrator to allow this host, user and database in pg_hba.conf."
    else:
        reason = detail
        fix = "Check the store URL and that the server is reachable."
    error_class = (
        MissingDatabase if "database" in lowered and "does not exist" in lowered else (StoreError)
    )
    return error_class(
        f"Cannot connect to the PostgreSQL store {describe_url(url)} (server {host}:{port}): "
        f"{reason}. {fix}"
    )


def pg_error(url: str, what: str, exc: psycopg.Error) -> StoreError:
    """One paragraph for a psycopg error while doing ``what`` (e.g. "record a migration")."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        try:
            params = conninfo_to_dict(url)
        except psycopg.Error:
            params = {}
        role = params.get("user") or "<your role>"
        database = params.get("dbname") or "<the database>"
        return StoreError(
            f"Cannot {what} in the PostgreSQL store {describe_url(url)}: {text}. The store "
            f"needs a role that may create and write the schema {PG_SCHEMA!r}: have an "
            f"administrator run CREATE SCHEMA {PG_SCHEMA} AUTHORIZATION {role} in database "
            f"{database}, or use a role that owns the database."
        )
    if isinstance(exc, psycopg.OperationalError):
        return StoreError(
            f"Cannot {what} in the PostgreSQL store {describe_url(url)}: the connection failed "
            f"({text}). Check that the server is up and reachable, then run again."
        )
    return StoreError(f"Cannot {what} in the PostgreSQL store {describe_url(url)}: {text}.")
