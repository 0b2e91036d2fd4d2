"""A real HTTP server on 127.0.0.1 for tests: it records every request and answers as told.

Use it as a context manager or through the ``http_server`` fixture::

    def test_webhook(http_server):
        http_server.set_route("/health", 200, healthy_after=2)   # 503, 503, then 200
        ...
        [request] = http_server.wait_for_requests(1, path="/hook")
        assert request.json()["status"] == "success"

Paths without a route answer ``default_status`` (200) with an empty body. Routes match the
path without its query string. Nothing here contacts any address but 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "HTTPTestServer",
    "RecordedRequest",
    "Route",
    "closed_port",
]

HOST = "127.0.0.1"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it. Header names are lower-cased."""

    method: str
    path: str  # as sent, query string included
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode("utf-8")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class Route:
    """How the server answers one path.

    The first ``healthy_after`` requests get ``unhealthy_status``, every later one ``status``.
    With ``hang`` the server reads the request and never answers (until it stops).
    """

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    healthy_after: int = 0
    unhealthy_status: int = 503
    hang: bool = False
    answered: int = 0  # requests routed here so far


class HTTPTestServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 and a free port; start() / stop() or ``with``."""

    def __init__(self, default_status: int = 200) -> None:
        self.default_status = default_status
        self._routes: dict[str, Route] = {}
        self._requests: list[RecordedRequest] = []
        self._changed = threading.Condition()  # guards routes and requests; notified per request
        self._stopping = threading.Event()  # releases hanging handlers
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> HTTPTestServer:
        """Bind a free port on 127.0.0.1 and serve in a background thread."""
        self._server = _Server((HOST, 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"http-test-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, release hanging requests and close every open connection."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        with self._changed:
            connections = list(self._connections)
        for conn in connections:
            # Idle keep-alive handlers block in recv; shutting the socket down wakes them.
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> HTTPTestServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses ------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._server is None:
            raise RuntimeError("the server is not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:41234``."""
        return f"http://{HOST}:{self.port}"

    def url_for(self, path: str) -> str:
        """Full URL of ``path`` (a leading ``/`` is added when missing)."""
        return self.url + (path if path.startswith("/") else "/" + path)

    # -- behaviour ------------------------------------------------------------------------
    def set_route(
        self,
        path: str,
        status: int = 200,
        *,
        body: bytes | str = b"",
        headers: dict[str, str] | None = None,
        healthy_after: int = 0,
        unhealthy_status: int = 503,
        hang: bool = False,
    ) -> Route:
        """Say how ``path`` answers from now on (its request count starts again at 0)."""
        route = Route(
            status=status,
            body=body.encode("utf-8") if isinstance(body, str) else body,
            headers=dict(headers or {}),
            healthy_after=healthy_after,
            unhealthy_status=unhealthy_status,
            hang=hang,
        )
        with self._changed:
            self._routes[path] = route
        return route

    # -- what was received ----------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request received so far, in arrival order."""
        with self._changed:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """Requests whose path (query string ignored) is ``path``."""
        return [r for r in self.requests if _route_key(r.path) == path]

    def count(self, path: str | None = None) -> int:
        """How many requests arrived, to ``path`` or in all."""
        return len(self.requests if path is None else self.requests_to(path))

    def wait_for_requests(
        self, count: int, path: str | None = None, timeout: float = 5.0
    ) -> list[RecordedRequest]:
        """Block until ``count`` requests (to ``path``, if given) arrived; return them all.

        Raises AssertionError naming what did arrive when ``timeout`` passes first.
        """
        deadline = time.monotonic() + timeout

        def matching() -> list[RecordedRequest]:
            return [r for r in self._requests if path is None or _route_key(r.path) == path]

        with self._changed:
            while len(found := matching()) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [f"{r.method} {r.path}" for r in self._requests]
                    raise AssertionError(
                        f"expected {count} request(s) to {path or 'any path'} within "
                        f"{timeout:g} s, got {len(found)}; all requests: {seen}"
                    )
                self._changed.wait(left)
            return found

    def clear(self) -> None:
        """Forget the recorded requests (routes stay)."""
        with self._changed:
            self._requests.clear()

    # -- used by the handler --------------------------------------------------------------
    def _record_and_route(self, request: RecordedRequest) -> tuple[Route, int]:
        """Record ``request`` and decide its answer: the route and the status to send."""
        with self._changed:
            self._requests.append(request)
            route = self._routes.get(_route_key(request.path))
            if route is None:
                route = Route(status=self.default_status)
            route.answered += 1
            healthy = route.answered > route.healthy_after
            self._changed.notify_all()
        return route, route.status if healthy else route.unhealthy_status


def _route_key(path: str) -> str:
    return urlsplit(path).path


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: HTTPTestServer

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn, a DNS lookup: skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up (poll timeouts, stop()) are expected here, not test failures.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a requests.Session expects
    timeout = 30  # an idle keep-alive connection ends by itself
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.owner._changed:
            self.server.owner._connections.add(self.connection)

    def finish(self) -> None:
        with self.server.owner._changed:
            self.server.owner._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        pass  # keep test output clean

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self) -> None:
        owner = self.server.owner
        request = RecordedRequest(
            method=self.command,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self._read_body(),
        )
        route, status = owner._record_and_route(request)
        if route.hang:
            owner._stopping.wait()
            self.close_connection = True
            return
        body = route.body if status == route.status else b""
        self.send_response(status)
        for name, value in route.headers.items():
            self.send_header(name, value)
        if status >= 200 and status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _answer


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, read, closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]
