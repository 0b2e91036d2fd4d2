"""poll_health against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from deploy_plugin.engine.health import HealthResult, poll_health
from tests.httpserver import HTTPTestServer, closed_port

# Every bound below is loose: it only proves the poll stops at its deadline, not how fast.
SLACK_S = 2.0


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy from the environment must never see our 127.0.0.1 requests.
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


def timed_poll(url: str, **kwargs: float) -> tuple[HealthResult, float]:
    start = time.monotonic()
    result = poll_health(url, **kwargs)
    return result, time.monotonic() - start


def test_healthy_at_once(http_server: HTTPTestServer) -> None:
    http_server.set_route("/health", 200)
    url = http_server.url_for("/health")

    result = poll_health(url, timeout_seconds=2)

    assert result.ok
    assert (result.status, result.error, result.attempts) == (200, None, 1)
    assert result.describe().startswith(f"{url} answered 200 after 1 attempt in ")
    [request] = http_server.requests
    assert (request.method, request.path) == ("GET", "/health")


def test_turns_healthy_after_some_requests(http_server: HTTPTestServer) -> None:
    http_server.set_route("/health", 200, healthy_after=3, unhealthy_status=503)

    result = poll_health(http_server.url_for("/health"), timeout_seconds=2, first_delay=0.01)

    assert result.ok, result.describe()
    assert result.attempts == 4
    assert http_server.count("/health") == 4
    assert "answered 200 after 4 attempts" in result.describe()


def test_turns_healthy_when_the_server_is_fixed_while_polling(
    http_server: HTTPTestServer,
) -> None:
    http_server.set_route("/health", 503)
    with ThreadPoolExecutor(1) as pool:
        polling = pool.submit(
            poll_health, http_server.url_for("/health"), timeout_seconds=5, first_delay=0.01
        )
        http_server.wait_for_requests(2, path="/health")
        http_server.set_route("/health", 200)
        result = polling.result()

    assert result.ok, result.describe()
    assert result.attempts >= 3


@pytest.mark.parametrize("status", [503, 500])
def test_never_healthy_names_the_last_status(http_server: HTTPTestServer, status: int) -> None:
    http_server.set_route("/health", status)
    url = http_server.url_for("/health")

    result, elapsed = timed_poll(url, timeout_seconds=1, first_delay=0.05, max_delay=0.2)

    assert not result.ok
    assert (result.status, result.error) == (status, None)
    assert result.attempts > 1
    assert http_server.count("/health") == result.attempts
    assert 1 <= result.elapsed_s <= elapsed < 1 + SLACK_S
    assert result.describe() == (
        f"{url} did not answer 200 within 1 s: last status {status} "
        f"after {result.attempts} attempts"
    )


def test_backoff_never_sleeps_past_the_deadline(http_server: HTTPTestServer) -> None:
    http_server.set_route("/health", 503)

    # The first sleep alone would be 10 s: it must be cut to the time left.
    result, elapsed = timed_poll(
        http_server.url_for("/health"), timeout_seconds=0.5, first_delay=10
    )

    assert not result.ok
    assert result.attempts == 1
    assert 0.5 <= elapsed < 0.5 + SLACK_S


def test_closed_port_is_connection_refused() -> None:
    url = f"http://127.0.0.1:{closed_port()}/health"

    result, elapsed = timed_poll(url, timeout_seconds=0.5, first_delay=0.05)

    assert not result.ok
    assert (result.status, result.error) == (None, "connection refused")
    assert result.attempts > 1
    assert 0.5 <= elapsed < 0.5 + SLACK_S
    assert result.describe() == (
        f"{url} did not answer 200 within 0.5 s: last error: connection refused "
        f"after {result.attempts} attempts"
    )


@pytest.mark.parametrize("status", [204, 201])
def test_expected_status_other_than_200(http_server: HTTPTestServer, status: int) -> None:
    http_server.set_route("/ready", status)

    result = poll_health(http_server.url_for("/ready"), expected_status=status, timeout_seconds=1)

    assert result.ok, result.describe()
    assert result.status == status


def test_redirect_is_not_followed(http_server: HTTPTestServer) -> None:
    http_server.set_route("/", 302, headers={"Location": "/login"})

    result = poll_health(http_server.url_for("/"), expected_status=302, timeout_seconds=1)

    assert result.ok, result.describe()
    assert result.status == 302
    assert [r.path for r in http_server.requests] == ["/"]


def test_redirect_to_a_healthy_page_is_not_healthy(http_server: HTTPTestServer) -> None:
    http_server.set_route("/health", 301, headers={"Location": "/elsewhere"})
    http_server.set_route("/elsewhere", 200)

    result = poll_health(http_server.url_for("/health"), timeout_seconds=0.5, first_delay=0.05)

    assert not result.ok
    assert result.status == 301
    assert http_server.count("/elsewhere") == 0


@pytest.mark.parametrize("request_timeout", [5.0, 0.2])
def test_hanging_server_times_out_within_the_deadline(
    http_server: HTTPTestServer, request_timeout: float
) -> None:
    http_server.set_route("/health", hang=True)

    result, elapsed = timed_poll(
        http_server.url_for("/health"), timeout_seconds=1, request_timeout=request_timeout
    )

    assert not result.ok
    assert (result.status, result.error) == (None, "timed out")
    # A request never outlives the deadline, however long request_timeout is.
    assert 1 <= elapsed < 1 + SLACK_S
    if request_timeout < 1:
        assert result.attempts > 1
    assert "last error: timed out" in result.describe()


def test_keep_alive_session_polls_over_one_server(http_server: HTTPTestServer) -> None:
    http_server.set_route("/health", 200, healthy_after=2)

    result = poll_health(
        http_server.url_for("/health?probe=1"), timeout_seconds=2, first_delay=0.01
    )

    assert result.ok
    assert [r.path for r in http_server.requests] == ["/health?probe=1"] * 3


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("127.0.0.1:8000/health", "invalid URL: no scheme, it must start with http:// or https://"),
        ("ftp://127.0.0.1/health", "invalid URL: scheme 'ftp' is not supported"),
        ("http://", "invalid URL: no host supplied"),
        ("http://127.0.0.1:99999/health", "invalid URL: cannot be parsed"),
    ],
)
def test_invalid_url_is_reported_at_once(url: str, error: str) -> None:
    result, elapsed = timed_poll(url, timeout_seconds=10)

    assert not result.ok
    assert result.status is None
    assert result.error is not None and result.error.startswith(error)
    assert result.attempts == 1
    assert elapsed < SLACK_S  # retrying cannot fix a URL: no waiting for the 10 s
    assert result.describe() == f"{url} cannot be polled: {result.error}"


def test_non_positive_timeout_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timeout_seconds"):
        poll_health("http://127.0.0.1:1/", timeout_seconds=0)
