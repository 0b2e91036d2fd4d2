"""A real SMTP server on 127.0.0.1 for tests (aiosmtpd), with STARTTLS, implicit TLS and AUTH.

Certificates come from ``trustme``: a throw-away CA whose PEM the client is pointed at with
``SSL_CERT_FILE``. Every message is recorded with whether it came over TLS and as whom.
Nothing here contacts any address but 127.0.0.1.
"""

from __future__ import annotations

import email
import email.policy
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.httpserver import closed_port

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Received:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    tls: bool
    login: str | None

    @property
    def body(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None
        return str(part.get_content())  # type: ignore[attr-defined]


class _Handler:
    def __init__(self, server: SMTPTestServer) -> None:
        self.server = server

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        login = session.auth_data if session.authenticated else None
        self.server.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), message,  # type: ignore[arg-type]
                     session.ssl is not None or self.server.implicit_tls, login)
        )  # fmt: skip
        return "250 OK"


class SMTPTestServer:
    """``SMTPTestServer(tmp_path, starttls=True, users={"deploy": "pw"})`` as a context manager.

    ``starttls``: offer STARTTLS; ``implicit_tls``: TLS from the first byte (smtps://);
    ``users``: AUTH accounts (AUTH is offered only over TLS, or always with implicit TLS).
    ``ca_file`` is the PEM to trust.
    """

    def __init__(
        self,
        folder: Path,
        *,
        starttls: bool = False,
        implicit_tls: bool = False,
        users: dict[str, str] | None = None,
    ) -> None:
        self.received: list[Received] = []
        self.implicit_tls = implicit_tls
        self.users = users or {}
        self.port = closed_port()
        ca = trustme.CA()
        self.ca_file = folder / "smtp-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(HOST).configure_cert(context)
        kwargs: dict[str, Any] = {}
        if starttls:
            kwargs["tls_context"] = context
        if self.users:
            kwargs["authenticator"] = self._authenticate
            kwargs["auth_require_tls"] = not implicit_tls  # implicit TLS is TLS already
        self.controller = Controller(
            _Handler(self), hostname=HOST, port=self.port,
            ssl_context=context if implicit_tls else None, **kwargs,
        )  # fmt: skip

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and self.users.get(data.login.decode()) == (
            data.password.decode()
        )
        return AuthResult(success=ok, handled=False, auth_data=data.login.decode() if ok else None)

    def url(self, user: str | None = None) -> str:
        scheme = "smtps" if self.implicit_tls else "smtp"
        return f"{scheme}://{user + '@' if user else ''}{HOST}:{self.port}"

    def __enter__(self) -> SMTPTestServer:
        self.controller.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.controller.stop()


@contextmanager
def smtp_server(folder: Path, **options: Any) -> Iterator[SMTPTestServer]:
    with SMTPTestServer(folder, **options) as server:
        yield server
