"""A private PostgreSQL cluster with ``scram-sha-256`` password auth, for wrong-password tests.

The shared test server trusts everyone, so a wrong password can't fail there. This module
starts a throw-away cluster of our own instead (never touching the shared server's
configuration): ``initdb --auth=scram-sha-256`` as the ``postgres`` OS user in a fresh
folder under ``/tmp`` (owned by ``postgres``), ``pg_ctl start`` on a free port of 127.0.0.1
with the socket in that folder, and ``pg_ctl -m immediate stop`` plus removal afterwards.

Use the ``scram_cluster`` fixture (tests/conftest.py)::

    def test_x(scram_cluster: ScramCluster) -> None:
        scram_cluster.url()                    # right password
        scram_cluster.url(password="wrong")    # authentication fails

Needs root (for ``runuser -u postgres``) and PostgreSQL 15's binaries; without them the
tests are skipped, except with ``CI=true`` where they fail.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_BIN = Path("/usr/lib/postgresql/15/bin")
#: The superuser's password in every cluster made here (a test value, not a secret).
PASSWORD = "scram-right-pw-5150"


@dataclass(frozen=True)
class ScramCluster:
    """A running cluster: 127.0.0.1:``port``, superuser ``postgres`` / :data:`PASSWORD`."""

    port: int
    directory: Path
    password: str = PASSWORD

    def url(self, password: str | None = None, dbname: str = "postgres") -> str:
        """A URL to ``dbname`` as ``postgres`` with ``password`` (default: the right one)."""
        secret = self.password if password is None else password
        return f"postgresql://postgres:{secret}@127.0.0.1:{self.port}/{dbname}"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"cannot start a scram-sha-256 cluster: {reason} (CI=true)", pytrace=False)
    pytest.skip(f"cannot start a scram-sha-256 cluster: {reason}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", "postgres", "--", *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@contextmanager
def running_scram_cluster() -> Iterator[ScramCluster]:
    """Start a scram-sha-256 cluster; yield it; stop it (immediate) and remove its folder."""
    if os.geteuid() != 0:
        _unavailable("needs root to run initdb as the postgres user")
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        _unavailable(f"{PG_BIN}/initdb or runuser is missing")
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        _unavailable("there is no postgres OS user")
    # Under /tmp, not pytest's tmp_path: postgres must reach it, and the socket path is short.
    base = Path(tempfile.mkdtemp(prefix="scram-", dir="/tmp"))
    data, pwfile = base / "data", base / "pw"
    pwfile.write_text(PASSWORD + "\n")
    os.chown(base, owner.pw_uid, owner.pw_gid)
    os.chown(pwfile, owner.pw_uid, owner.pw_gid)
    started = False
    try:
        init = _as_postgres(
            str(PG_BIN / "initdb"), "--auth=scram-sha-256", f"--pwfile={pwfile}",
            "-U", "postgres", "-D", str(data),
        )  # fmt: skip
        if init.returncode != 0:
            _unavailable(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
        for _ in range(5):  # a free port may be taken by someone else before we bind it
            port = _free_port()
            start = _as_postgres(
                str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(data / "log"),
                "-o", f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "-w", "start",
            )  # fmt: skip
            if start.returncode == 0:
                started = True
                break
        if not started:
            log = (data / "log").read_text() if (data / "log").exists() else ""
            _unavailable(f"pg_ctl start failed: {start.stderr.strip()} {log[-500:]}")
        yield ScramCluster(port=port, directory=data)
    finally:
        if started:
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)
