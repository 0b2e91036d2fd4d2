"""A step command's output as it comes: masked, written to the step's log, kept in a tail.

:class:`Output` takes the pieces a command prints (stdout and stderr share one pipe:
:mod:`deploy_plugin.engine.shell` reads it) and masks them by whole lines, so a secret is
never split between two pieces; each masked piece is appended to the step's log
(:class:`StepLog`, made by the first piece: a silent step leaves none) and to a tail of
the last :data:`TAIL_BYTES`, so a step printing gigabytes never grows the runner's memory.
A log that cannot be written (a full disk) stops; the step goes on and its tail says so.
"""

from __future__ import annotations

import codecs
import errno
import os
from collections import deque
from pathlib import Path
from typing import TextIO

from deploy_plugin.secrets import Masker

#: How much of the combined output a command's result keeps, in bytes of UTF-8.
TAIL_BYTES = 8192
#: A line longer than this (in characters) is masked and written in pieces.
MAX_PENDING_CHARS = 65536

_BACKGROUND_NOTE = (
    "\n[pytest-deploy] the command exited but a background process still holds its output "
    "open; stopped reading. Redirect the output of background services to a file.\n"
)


def prepare_log_folder(folder: Path) -> None:
    """Make a log folder and its missing parents (0700, like the store: a masked log still
    shows what a deployment did, to its owner only); OSError when it cannot be written."""
    if not folder.is_dir():
        missing = [p for p in (folder, *folder.parents) if not p.exists()]
        for parent in reversed(missing):  # no umask change: it is process-wide
            parent.mkdir(mode=0o700, exist_ok=True)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, "Permission denied")


def _create_log(log_path: Path) -> TextIO:
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    return open(fd, "a", encoding="utf-8", newline="")  # noqa: SIM115 - closed by the caller


def open_log(log_path: Path) -> TextIO:
    """Open a log for appending: folders 0700 and file 0600 (see :func:`prepare_log_folder`)."""
    prepare_log_folder(log_path.parent)
    return _create_log(log_path)


class StepLog:
    """A step's log, made by its first write: a step that prints nothing leaves no file
    (issue 14: on some disks creating a file costs more than running ``true``). Its folder
    is checked before the step runs (:func:`prepare_log_folder`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.made = False
        self._file: TextIO | None = None

    def write(self, text: str) -> None:
        if self._file is None:
            self._file = _create_log(self.path)
            self.made = True
        self._file.write(text)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class Output:
    """One command's output: masked by whole lines, logged, its tail kept."""

    def __init__(self, masker: Masker, log: StepLog | None) -> None:
        self.masker = masker
        self.log = log
        self.step_log = log  # kept when self.log is dropped (the disk filled up)
        self.log_error: str | None = None
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pending = ""  # decoded output not yet masked: at most the current line
        self.tail: deque[str] = deque()
        self.tail_chars = 0

    @property
    def logged(self) -> bool:
        """Whether the step's log was made (the command printed something)."""
        return self.step_log is not None and self.step_log.made

    def feed_bytes(self, chunk: bytes) -> None:
        self.feed(self.decoder.decode(chunk))

    def feed(self, text: str) -> None:
        # Masking works on whole lines, so a secret is never split between two pieces; a line
        # too long to hold is cut where Masker.safe_cut says no secret or URL is split.
        self.pending += text
        newline = self.pending.rfind("\n")
        if newline >= 0:
            self._emit(self.pending[: newline + 1])
            self.pending = self.pending[newline + 1 :]
        while len(self.pending) > MAX_PENDING_CHARS:
            # safe_cut gives 0 only for one URL or secret longer than the limit: flush anyway.
            cut = self.masker.safe_cut(self.pending) or len(self.pending)
            self._emit(self.pending[:cut])
            self.pending = self.pending[cut:]

    def note_background(self) -> None:
        """Say that a background process kept the output open after the command ended."""
        at_line_start = not self.pending and (not self.tail or self.tail[-1][-1:] == "\n")
        self.feed(_BACKGROUND_NOTE if not at_line_start else _BACKGROUND_NOTE[1:])

    def finish(self) -> None:
        """The output ended: mask and write what is pending, flush the log."""
        self.feed(self.decoder.decode(b"", final=True))
        if self.pending:
            self._emit(self.pending)
            self.pending = ""
        if self.log is not None:
            try:
                self.log.flush()
            except OSError as err:
                self.log_error = f"the log stopped: {err.strerror or err}"
                self._close_log()
        if self.log_error:
            self._emit(f"\n[pytest-deploy] {self.log_error}; the step's output is kept here\n")

    def tail_text(self) -> str:
        """The last :data:`TAIL_BYTES` of the output, masked."""
        data = "".join(self.tail).encode("utf-8")[-TAIL_BYTES:]
        # The cut may fall inside a multi-byte character: drop its partial bytes.
        return data.decode("utf-8", errors="ignore")

    def _close_log(self) -> None:
        log, self.log = self.log, None
        if log is not None:
            try:
                log.close()
            except OSError:
                pass  # its buffer could not be written: that is what log_error says

    def _emit(self, text: str) -> None:
        masked = self.masker.mask(text)
        if self.log is not None:
            try:
                self.log.write(masked)
            except OSError as err:  # e.g. disk full: the step goes on, its tail is kept
                self.log_error = f"the log stopped: {err.strerror or err}"
                self._close_log()
        if len(masked) > TAIL_BYTES:
            masked = masked[-TAIL_BYTES:]
        self.tail.append(masked)
        self.tail_chars += len(masked)
        while self.tail_chars - len(self.tail[0]) >= TAIL_BYTES:
            self.tail_chars -= len(self.tail.popleft())
