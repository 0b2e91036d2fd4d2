"""``target test``: does the target answer? A database gets ``SELECT 1``, anything else an
HTTP GET (URL host) or a TCP connect (``host:port``). Latency or the precise failure."""

from __future__ import annotations

import re
import socket
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy_plugin.db import sqlite_connect
from deploy_plugin.secrets import redact_url

TIMEOUT_S = 5.0


@dataclass
class ProbeResult:
    """What ``target test`` found: ``check`` describes what was tried."""

    check: str
    ok: bool
    latency_ms: float | None = None
    detail: str | None = None  # an HTTP status, or the failure

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _elapsed_ms(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 1)


def probe_database(url: str, base: Path) -> ProbeResult:
    """Connect to ``url`` and run ``SELECT 1`` (psycopg, or sqlite3 for ``sqlite:///``)."""
    shown = redact_url(url)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        return _probe_sqlite(url, base, shown)
    if scheme.split("+")[0] not in ("postgresql", "postgres"):
        return ProbeResult(
            f"SELECT 1 on {shown}",
            False,
            detail=f"unsupported database URL scheme {scheme or shown!r}: expected "
            "postgresql://USER:PASSWORD@HOST:PORT/DB or sqlite:///PATH",
        )
    # deferred: +9 modules, 17 ms (migrate.statements, migrate.ledger, migrate.pg_executor, …)
    from deploy_plugin.migrate.executor import ConnectError, SqlExecutor

    check = f"SELECT 1 on {shown}"
    start = time.monotonic()
    try:
        executor = SqlExecutor(url, base=base)
    except ConnectError as err:
        return ProbeResult(check, False, detail=str(err))
    try:
        executor.connection.execute("SELECT 1").fetchone()
    except Exception as err:  # noqa: BLE001 - any driver error is the answer
        return ProbeResult(check, False, detail=redact_url(str(err).strip()))
    finally:
        executor.close()
    return ProbeResult(check, True, _elapsed_ms(start))


def _probe_sqlite(url: str, base: Path, shown: str) -> ProbeResult:
    rest = url.split("://", 1)[1].split("?", 1)[0]
    if not rest.startswith("/") or rest == "/":
        return ProbeResult(
            f"SELECT 1 on {shown}",
            False,
            detail="a SQLite URL is sqlite:///RELATIVE/PATH or sqlite:////ABSOLUTE/PATH",
        )
    path = base / rest[1:]
    check = f"SELECT 1 on SQLite file {path}"
    if not path.is_file():
        # A test never creates the database: sqlite3 would make an empty file.
        return ProbeResult(check, False, detail=f"no such file: {path}")
    start = time.monotonic()
    try:
        conn = sqlite_connect(path, mode="rw", timeout=TIMEOUT_S)  # never creates it
        try:
            conn.execute("SELECT 1").fetchone()
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # a real database?
        finally:
            conn.close()
    except sqlite3.Error as err:
        return ProbeResult(check, False, detail=f"{err} ({path})")
    return ProbeResult(check, True, _elapsed_ms(start))


def probe_http(url: str) -> ProbeResult:
    """GET ``url``: ok when it answers below 500 (the status is reported)."""
    # deferred: +120 modules, 89 ms (charset_normalizer.cd, urllib3.util.url, http.cookiejar, …)
    import requests

    check = f"HTTP GET {redact_url(url)}"
    start = time.monotonic()
    try:
        with requests.Session() as session:
            session.trust_env = False  # test the target itself, never a proxy in between
            response = session.get(url, timeout=TIMEOUT_S, allow_redirects=False)
    except requests.Timeout:
        return ProbeResult(check, False, detail=f"no answer within {TIMEOUT_S:g} s")
    except requests.RequestException as err:
        return ProbeResult(check, False, detail=_request_failure(err))
    latency = _elapsed_ms(start)
    status = f"HTTP {response.status_code} {response.reason or ''}".strip()
    return ProbeResult(check, response.status_code < 500, latency, status)


def _request_failure(err: Exception) -> str:
    """The root cause of a requests error, without urllib3's object reprs."""
    text = str(err)
    errno = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if errno:
        return errno.group(1).strip()
    if "Name or service not known" in text or "getaddrinfo" in text:
        return "unknown host name"
    return redact_url(text.splitlines()[0] if text else type(err).__name__)


def probe_tcp(host: str, port: int) -> ProbeResult:
    """Open (and close) a TCP connection to ``host:port``."""
    check = f"TCP connect to {host}:{port}"
    start = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT_S):
            pass
    except TimeoutError:
        return ProbeResult(check, False, detail=f"no answer within {TIMEOUT_S:g} s")
    except OSError as err:
        return ProbeResult(check, False, detail=err.strerror or str(err))
    return ProbeResult(check, True, _elapsed_ms(start))


def probe_host(host: str) -> ProbeResult:
    """A URL host gets a GET, ``host:port`` a TCP connect, a bare host ``https://host/``."""
    if re.match(r"https?://", host, re.I):
        return probe_http(host)
    match = re.fullmatch(r"\[?([^\[\]]+?)\]?:(\d{1,5})", host)
    if match:
        return probe_tcp(match.group(1), int(match.group(2)))
    return probe_http(f"https://{host}/")
