"""squawk, the PostgreSQL migration linter (the ``squawk-cli`` package, whose wheel carries
the binary): where the binary is, one run of it over many files, and what it found as
:class:`LintFinding` records (the shape the reports carry).

Nothing here knows a deployment: :mod:`deploy_plugin.engine.lint` decides what is linted
and what a finding does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

#: Where each rule is explained (squawk's own output links there too).
RULE_DOCS = "https://squawkhq.com/docs/"
#: The env var naming the squawk to run (a path, or a name looked up on PATH).
SQUAWK_ENV = "DEPLOY_SQUAWK"
#: Longest a run may take (0.3 s for 233 files here): a hung binary never hangs preflight.
TIMEOUT_SECONDS = 120.0
#: A run's findings (or its failure) list them after this in a step's message, numbered
#: (:func:`listed`, :func:`findings_in`).
FINDINGS_HEAD = "Findings:"
#: "(N) " before a finding's text (``FILE:LINE rule: ``); N is filled in
_NUMBERED = r"(?:^|\s)\({}\) (?=[^\s:][^\n:]*:\d+ [a-z][a-z0-9-]*: )"


class SquawkError(Exception):
    """squawk could not be run, or did not answer in its JSON shape (one paragraph)."""


@dataclass(frozen=True)
class LintFinding:
    """One problem squawk found in a pending migration.

    :ivar group: the tracked group whose file it is.
    :ivar file: the file, relative to the config's root.
    :ivar line: 1-based line of the statement's start.
    :ivar column: 1-based column.
    :ivar rule: squawk's rule name (``require-concurrent-index-creation``).
    :ivar level: ``warning`` or ``error`` (squawk's word: ``error`` for a syntax error).
    :ivar message: what is wrong.
    :ivar fix: squawk's help, or where the rule is explained.
    """

    group: str
    file: str
    line: int
    column: int
    rule: str
    level: str
    message: str
    fix: str

    def text(self) -> str:
        """``FILE:LINE rule: message. Fix: help.``, one line."""
        where = f"{self.file}:{self.line} {self.rule}"
        return f"{where}: {_sentence(self.message)} Fix: {_sentence(self.fix)}"

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LintFinding:
        return cls(**{f.name: data[f.name] for f in fields(cls)})


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if text.endswith((".", "?", "!")) else text + "."


def find_squawk() -> str | None:
    """The squawk to run: ``$DEPLOY_SQUAWK`` when set (a path, or a name on PATH), else the
    one the ``squawk-cli`` wheel installed beside the Python running this (its version is
    the one pytest-deploy was installed with), else the first on PATH; None when none is."""
    named = os.environ.get(SQUAWK_ENV)
    if named:
        return shutil.which(named)
    for scripts in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))):
        candidate = scripts / "squawk"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("squawk")


def glob_escaped(rel: str) -> str:
    """``rel`` as squawk reads it: its arguments are glob patterns, so ``*``, ``?`` and
    ``[`` stand for themselves only inside brackets."""
    return re.sub(r"([*?\[])", r"[\1]", rel)


class SquawkRun:
    """squawk started on ``files`` (relative to ``root``, where it runs, so the project's
    ``.squawk.toml`` applies), one process; :meth:`findings` waits for its JSON.
    ``in_transaction``: the files run inside a transaction each (squawk's
    ``--assume-in-transaction``)."""

    def __init__(
        self, binary: str, root: Path, files: Sequence[str], *, in_transaction: bool
    ) -> None:
        self.binary = binary
        self.files = list(files)
        argv = [binary, "--reporter", "json"]
        argv.append("--assume-in-transaction" if in_transaction else "--no-assume-in-transaction")
        argv += ["--", *(glob_escaped(rel) for rel in files)]
        # annotations for GitHub Actions would go to stdout, into the JSON
        env = {**os.environ, "SQUAWK_DISABLE_GITHUB_ANNOTATIONS": "1"}
        self.problem: str | None = None
        self.process: subprocess.Popen[bytes] | None = None
        try:
            self.process = subprocess.Popen(
                argv, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )  # fmt: skip
        except OSError as err:
            self.problem = f"{binary} could not be run: {err}"

    def findings(self) -> list[dict[str, Any]]:
        """squawk's JSON findings; SquawkError when it could not run or answered otherwise."""
        if self.process is None:
            raise SquawkError(self.problem or f"{self.binary} did not run")
        try:
            out, err = self.process.communicate(timeout=TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.stop()
            raise SquawkError(
                f"{self.binary} did not finish within {TIMEOUT_SECONDS:.0f} s"
            ) from None
        try:
            data = json.loads(out)
        except ValueError:
            data = None
        if self.process.returncode not in (0, 1) or not isinstance(data, list):
            said = " ".join((err or out).decode(errors="replace").split())
            raise SquawkError(
                f"{self.binary} exited with status {self.process.returncode}:"
                f" {said[:500] or 'no output'}"
            )  # 1: it found something
        return [item for item in data if isinstance(item, dict)]

    def stop(self) -> None:
        """End it if it still runs (a preflight that failed before its findings were read)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def unknown_rule(binary: str, root: Path, rules: Sequence[str]) -> str | None:
    """squawk's word on the first of ``rules`` it does not know, or None (``syntax-error``,
    a finding squawk makes but cannot exclude, is known)."""
    named = [rule for rule in rules if rule != "syntax-error"]
    if not named:
        return None
    argv = [binary, "--reporter", "json", "--stdin-filepath", "check.sql"]
    argv += ["--exclude", ",".join(named)]
    try:
        done = subprocess.run(
            argv, cwd=root, input=b"", capture_output=True, timeout=TIMEOUT_SECONDS
        )
    except (OSError, subprocess.TimeoutExpired):
        return None  # the run itself reports it
    error = done.stderr.decode(errors="replace")
    match = re.search(r"invalid rule name (\S+)", error)
    return match.group(1) if done.returncode == 2 and match else None


def finding_of(group: str, raw: Mapping[str, Any], mask: Callable[[str], str]) -> LintFinding:
    """A :class:`LintFinding` from one entry of squawk's JSON (0-based lines and columns);
    ``mask`` hides secrets in its message and help (they may quote the SQL)."""
    rule = str(raw.get("rule_name") or "unknown")
    helped = raw.get("help")
    if helped:
        fix = str(helped)
    elif rule == "syntax-error":
        fix = (
            "correct the SQL; if PostgreSQL accepts it, squawk's parser does not know it yet:"
            " add syntax-error to the group's lint.ignore"
        )
    else:
        fix = f"see {RULE_DOCS}{rule}"
    return LintFinding(
        group=group,
        file=str(raw.get("file", "")),
        line=int(raw.get("line") or 0) + 1,
        column=int(raw.get("column") or 0) + 1,
        rule=rule,
        level=str(raw.get("level", "warning")).lower(),
        message=mask(str(raw.get("message", ""))),
        fix=mask(fix),
    )


def listed(texts: Sequence[str], separator: str = " ") -> str:
    """``FINDINGS_HEAD (1) TEXT (2) TEXT``: the findings' texts as a step's message lists
    them (a passed lint's remark puts each on its own line, a failure's paragraph one after
    the other)."""
    return FINDINGS_HEAD + "".join(
        f"{separator}({number}) {text}" for number, text in enumerate(texts, 1)
    )


def findings_in(message: str | None) -> list[str]:
    """The findings' texts a step's message lists (see :func:`listed`)."""
    if not message or FINDINGS_HEAD not in message:
        return []
    body = message.split(FINDINGS_HEAD, 1)[1]
    texts: list[str] = []
    found = re.compile(_NUMBERED.format(1)).search(body)
    while found is not None:  # (1), then (2) after it...: a "(7) " inside a message stays
        after = re.compile(_NUMBERED.format(len(texts) + 2)).search(body, found.end())
        texts.append(body[found.end() : after.start() if after else len(body)].strip())
        found = after
    return texts
