"""Health check: poll a URL with backoff until it answers the expected status or time runs out."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

__all__ = ["HealthResult", "poll_health"]


# Wrong before any connection is tried: no retry can fix them.
_INVALID_URL_ERRORS = (
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidURL,
)


@dataclass
class HealthResult:
    """The outcome of one health check.

    ``status`` and ``error`` describe the last attempt: ``status`` is the HTTP status it
    answered (``None`` if it did not answer) and ``error`` a short human reason why it did not
    answer (``None`` if it did). ``elapsed_s`` is the whole polling time.
    """

    url: str
    ok: bool
    status: int | None
    error: str | None
    attempts: int
    elapsed_s: float
    expected_status: int = 200
    timeout_seconds: float = 30.0

    def describe(self) -> str:
        """One line for people, e.g. ``http://…/health answered 200 after 3 attempts in 1.2 s``.

        The URL is written as given: the caller masks secrets in it.
        """
        tries = f"{self.attempts} attempt{'' if self.attempts == 1 else 's'}"
        if self.ok:
            return f"{self.url} answered {self.status} after {tries} in {self.elapsed_s:.1f} s"
        if self.error is not None and self.error.startswith("invalid URL"):
            return f"{self.url} cannot be polled: {self.error}"
        head = f"{self.url} did not answer {self.expected_status} within {self.timeout_seconds:g} s"
        if self.error is not None:
            return f"{head}: last error: {self.error} after {tries}"
        return f"{head}: last status {self.status} after {tries}"


def poll_health(
    url: str,
    expected_status: int = 200,
    timeout_seconds: float = 30.0,
    *,
    request_timeout: float = 5.0,
    first_delay: float = 0.1,
    max_delay: float = 2.0,
) -> HealthResult:
    """Poll ``url`` with GET until it answers ``expected_status`` or ``timeout_seconds`` pass.

    Waits ``first_delay`` after the first failed attempt, doubling up to ``max_delay``, and
    never sleeps or waits on a request past the deadline: each request's timeout is
    ``min(request_timeout, time left)``. At least one attempt is always made. Redirects are
    not followed, so a 301/302 can be the expected status. Network failures (refused, DNS,
    timeouts, TLS, resets) become ``HealthResult.error`` text; an invalid URL is reported at
    once, as retrying cannot fix it. Any other exception propagates.
    """
    if timeout_seconds <= 0:
        raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds!r}")
    if request_timeout <= 0:
        raise ValueError(f"request_timeout must be positive, got {request_timeout!r}")

    start = time.monotonic()
    deadline = start + timeout_seconds
    delay = first_delay
    attempts = 0
    status: int | None = None
    error: str | None = None

    with requests.Session() as session:
        while True:
            remaining = deadline - time.monotonic()
            if attempts and remaining <= 0:
                break
            attempts += 1
            try:
                # stream=True: only the status line and headers are read, so an endless or
                # broken body can neither hang nor fail the check.
                with session.get(
                    url,
                    # urllib3 refuses a zero timeout; only a tiny first attempt can get here.
                    timeout=max(min(request_timeout, remaining), 0.001),
                    allow_redirects=False,
                    stream=True,
                ) as response:
                    status, error = response.status_code, None
            except _INVALID_URL_ERRORS as exc:
                status, error = None, _invalid_url_text(url, exc)
                break
            except requests.exceptions.RequestException as exc:
                status, error = None, _network_error_text(exc)

            if status == expected_status:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, max_delay)

    return HealthResult(
        url=url,
        ok=status == expected_status,
        status=status,
        error=error,
        attempts=attempts,
        elapsed_s=time.monotonic() - start,
        expected_status=expected_status,
        timeout_seconds=timeout_seconds,
    )


def _invalid_url_text(url: str, exc: requests.exceptions.RequestException) -> str:
    """Say what is wrong with a URL that requests refused before connecting."""
    if isinstance(exc, requests.exceptions.MissingSchema) or "://" not in url:
        return "invalid URL: no scheme, it must start with http:// or https://"
    if isinstance(exc, requests.exceptions.InvalidSchema):
        scheme = urlsplit(url).scheme or url.split(":", 1)[0]
        return f"invalid URL: scheme {scheme!r} is not supported, use http:// or https://"
    reason = str(exc)
    # requests words these as "Invalid URL '<url>': <reason>" or "Failed to parse: <detail>".
    if reason.startswith("Invalid URL ") and "': " in reason:
        reason = reason.split("': ", 1)[1]
    elif reason.startswith("Failed to parse: "):
        detail = reason.removeprefix("Failed to parse: ")
        reason = "cannot be parsed" if detail == url else detail
    return f"invalid URL: {reason[:1].lower()}{reason[1:]}"


def _network_error_text(exc: requests.exceptions.RequestException) -> str:
    """Turn a requests failure into a short reason such as ``connection refused``."""
    causes = list(_causes(exc))
    for cause in causes:
        # RemoteDisconnected is a ConnectionResetError, so it is asked first.
        if isinstance(cause, http.client.RemoteDisconnected):
            return "connection closed without a response"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, (socket.gaierror, urllib3.exceptions.NameResolutionError)):
            url = str(exc.request.url) if exc.request is not None else ""
            host = urlsplit(url).hostname if url else None
            return f"cannot resolve host {host}" if host else "cannot resolve host"
        if isinstance(cause, ConnectionResetError):
            return "connection reset by the server"
        if isinstance(cause, (ssl.SSLError, urllib3.exceptions.SSLError)):
            return f"TLS error: {_short(cause)}"
    # Asked after the specific causes: urllib3's NewConnectionError (refused, unreachable)
    # subclasses its ConnectTimeoutError.
    if isinstance(exc, requests.exceptions.Timeout) or any(
        isinstance(c, TimeoutError) for c in causes
    ):
        return "timed out"
    # Anything else: the innermost cause's own words, without the wrapping reprs.
    return f"connection failed: {_short(causes[-1])}"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """Yield ``exc`` and every exception it wraps (cause, context, urllib3 ``reason``)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        wrapped.extend(arg for arg in current.args if isinstance(arg, BaseException))
        pending.extend(w for w in wrapped if isinstance(w, BaseException))


def _short(exc: BaseException) -> str:
    """An exception's message without urllib3's ``<object at 0x…>:`` prefix."""
    text = str(exc) or type(exc).__name__
    if ">: " in text:
        text = text.split(">: ", 1)[1]
    return text
