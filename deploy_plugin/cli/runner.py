"""pytest underneath: ``deploy run`` and ``migration apply`` are one pytest run each.

The run uses the rootdir and store this CLI resolved (``--rootdir``, and the store URL in
``DEPLOY_STORE_URL`` rather than on the command line, where other users could read a
password in the process list). Its output is relayed as it comes (to stderr with
``--json``, whose stdout is the deployment report).
"""

from __future__ import annotations

import codecs
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from deploy_plugin.closed_stdout import pipe_identity, silence
from deploy_plugin.plugin.options import DeployOptions

from .context import Context
from .discovery import PYTEST
from .output import FAILED, OK, USAGE, CliError, json_text

#: pytest's ExitCode.USAGE_ERROR (this CLI never imports pytest: it runs it as a process)
USAGE_ERROR = 4


def pytest_command(
    ctx: Context, config_path: Path, options: DeployOptions, pytest_args: Sequence[str] = ()
) -> list[str]:
    """The pytest command line of one deployment (the store goes in the environment)."""
    return [*PYTEST, str(config_path), f"--rootdir={ctx.rootdir}", *options.args(), *pytest_args]


def exit_code(returncode: int) -> int:
    """pytest's exit code as this CLI's (README "Exit codes"): 0 ok; 2 usage: pytest's 4
    (the run refused what it was asked before anything ran: a bad option, a saved plan that
    does not match, a rollback it cannot carry out); else 1 (pytest's 2, an interrupted
    run, among them)."""
    if returncode == 0:
        return OK
    if returncode == USAGE_ERROR:
        return USAGE
    return FAILED


def _relay(process: subprocess.Popen[bytes], out: TextIO) -> None:
    """Copy the child's output to ``out`` as it arrives (chunks: prompts have no newline).

    A closed ``out`` (``deploy run … | head``) never changes the run: its output is then
    read on and dropped, so the run never meets the closed pipe and ends as it would have
    (deploy_plugin.closed_stdout)."""
    assert process.stdout is not None
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    fd = process.stdout.fileno()
    while True:
        chunk = os.read(fd, 65536)
        _write(out, decoder.decode(chunk, final=not chunk))
        if not chunk:
            break


def _write(out: TextIO, text: str) -> None:
    """``text`` on ``out`` at once; into /dev/null once ``out``'s reader is gone."""
    try:
        out.write(text)
        out.flush()
    except BrokenPipeError:
        identity = pipe_identity(out)  # the pipe is still there, without its reader
        if identity is not None:
            silence(identity)
        out.flush()  # what the buffer holds goes to /dev/null


def run_pytest(
    ctx: Context,
    config_path: Path,
    options: DeployOptions,
    *,
    as_json: bool,
    pytest_args: Sequence[str] = (),
) -> int:
    """Run one deployment under pytest; with ``as_json`` print its report on stdout.

    SIGTERM and SIGHUP sent to this command are passed on to the run, which records its
    deployment as interrupted (it stops its step like at Ctrl-C); this command then ends
    with the run's exit code.
    """
    command = pytest_command(ctx, config_path, options, pytest_args)
    # PYTHONUNBUFFERED: the run's output reaches the user as it happens, not per 8 KiB block.
    env = {**os.environ, "DEPLOY_STORE_URL": ctx.store_url_for_pytest(), "PYTHONUNBUFFERED": "1"}
    if sys.stdout.isatty() and not as_json:
        command.append("--color=yes")  # its output comes through a pipe
    with tempfile.TemporaryDirectory(prefix="pytest-deploy-") as tmp:
        report_path = Path(tmp, "report.json")
        if as_json:
            command.append(f"--deploy-report={report_path}")
        ctx.close()  # the run opens the store itself
        try:
            process = subprocess.Popen(
                command, cwd=ctx.cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
        except OSError as exc:
            raise CliError(f"Cannot start pytest ({command[0]}): {exc.strerror or exc}.") from exc
        try:
            with _forwarding_signals(process):
                _relay(process, sys.stderr if as_json else sys.stdout)
                returncode = process.wait()
        except KeyboardInterrupt:
            # The child got the same Ctrl-C (same process group): let it stop its steps.
            process.wait()
            return 130
        if as_json:
            _write(sys.stdout, json_text(_read_report(report_path)))
    return exit_code(returncode)


@contextmanager
def _forwarding_signals(process: subprocess.Popen[bytes]) -> Iterator[list[int]]:
    """While inside, SIGTERM and SIGHUP to this process are sent on to ``process``; yields
    the list of the signals passed on."""

    forwarded: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        if process.poll() is None:
            process.send_signal(signum)
            forwarded.append(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield forwarded
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _read_report(path: Path) -> dict[str, Any]:
    """The report the run wrote; none if it stopped before (e.g. a usage error)."""
    if not path.exists():
        return {"deployments": []}
    with open(path, encoding="utf-8") as handle:
        loaded: dict[str, Any] = json.load(handle)
    return loaded
