"""``notify[].email``: one plain-text email over SMTP (stdlib ``smtplib``) when a deployment ends.

``smtp://USER@HOST:PORT`` (port 25 by default) upgrades with STARTTLS when the server offers
it (``starttls`` absent), always (``starttls: true``: a server without it is a failure) or
never (``starttls: false``). ``smtps://USER@HOST:PORT`` (port 465 by default) is TLS from
the start. Certificates are verified against the system's CAs (``SSL_CERT_FILE`` names
another bundle). AUTH is used when ``password_env`` names the variable holding the password;
the password is never sent over an unencrypted connection unless ``starttls: false`` says
so. No DNS lookup of our own host name is made (EHLO and Message-ID use the plain host name).
"""

from __future__ import annotations

import shlex
import smtplib
import socket
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import unquote, urlsplit

from deploy_plugin.config import EmailNotify
from deploy_plugin.targets import expand_vars


class SendError(Exception):
    """The email was not sent (the message says why, secrets left out)."""


def build_message(email: EmailNotify, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = email.sender
    message["To"] = ", ".join(email.to)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=socket.gethostname())
    message.set_content(body)
    return message


def send(
    email: EmailNotify,
    message: EmailMessage,
    env: Mapping[str, str],
    *,
    timeout: float,
    project: str = "PROJECT",
    target: str = "T",
) -> str:
    """Send ``message``; returns the server as shown in messages (``smtp://host:port``).

    Raises :class:`SendError` for anything that kept it from being accepted.
    """
    url = expand_vars(email.url, env)
    parts = urlsplit(url)
    secure = parts.scheme.lower() == "smtps"
    try:
        port = parts.port or (465 if secure else 25)
    except ValueError:
        raise SendError("the URL's port is not a number") from None
    host = parts.hostname or ""
    shown = f"{parts.scheme.lower()}://{host}:{port}"
    password = None
    if email.password_env:
        password = env.get(email.password_env)
        if not password:
            raise SendError(
                f"${email.password_env} (the SMTP password) is not set for this target; set it"
                f" with `pytest-deploy env set {shlex.quote(project)} {email.password_env} -"
                f" --target {shlex.quote(target)}`"
            )
    user = unquote(parts.username) if parts.username else None
    context = ssl.create_default_context()
    local = socket.gethostname()
    try:
        client: smtplib.SMTP = (
            smtplib.SMTP_SSL(host, port, local_hostname=local, timeout=timeout, context=context)
            if secure
            else smtplib.SMTP(host, port, local_hostname=local, timeout=timeout)
        )
        with client:
            client.ehlo()
            if not secure:
                _starttls(client, email.starttls, context, password is not None)
            if password is not None and user is not None:
                client.login(user, password)
            client.send_message(message)
    except SendError:
        raise
    except (OSError, smtplib.SMTPException) as err:
        text = " ".join(str(err).split()) or type(err).__name__
        if password and len(password) >= 4:
            text = text.replace(password, "***")
        raise SendError(f"{type(err).__name__}: {text}") from None
    return shown


def _starttls(
    client: smtplib.SMTP, wanted: bool | None, context: ssl.SSLContext, authenticating: bool
) -> None:
    offered = client.has_extn("starttls")
    if wanted is False:
        return
    if offered:
        client.starttls(context=context)
        client.ehlo()
        return
    if wanted:
        raise SendError("the server does not offer STARTTLS, which starttls: true requires")
    if authenticating:
        raise SendError(
            "the server does not offer STARTTLS, and the password is never sent unencrypted;"
            " use smtps://, or set starttls: false to allow it (on a trusted network only)"
        )
