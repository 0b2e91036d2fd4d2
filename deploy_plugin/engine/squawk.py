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
#: A run's findings (or its failure) start with this in a step's message; each finding
#: then starts its own line, or follows "; " in a failure's paragraph (see
#: :func:`findings_in`).
FINDINGS_HEAD = "Findings:"
_FINDING_START = re.compile(r"(?:\n|; )(?=[^\s;][^\n;]*?:\d+ [a-z][a-z0-9-]*: )")


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


def run_squawk(
    binary: str, root: Path, files: Sequence[str], *, in_transaction: bool
) -> list[dict[str, Any]]:
    """squawk's JSON findings for ``files`` (relative to ``root``, where it runs, so the
    project's ``.squawk.toml`` applies), in one process. ``in_transaction``: the files run
    inside a transaction each (squawk's ``--assume-in-transaction``). SquawkError when it
    cannot run or answers otherwise."""
    argv = [binary, "--reporter", "json"]
    argv.append("--assume-in-transaction" if in_transaction else "--no-assume-in-transaction")
    argv += ["--", *(glob_escaped(rel) for rel in files)]
    # annotations for GitHub Actions would go to stdout, into the JSON
    env = {**os.environ, "SQUAWK_DISABLE_GITHUB_ANNOTATIONS": "1"}
    data = _answer(binary, argv, root, env)
    if not isinstance(data, list):
        raise SquawkError(f"{binary} answered with no list of findings: {str(data)[:300]}")
    return [item for item in data if isinstance(item, dict)]


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


def _answer(binary: str, argv: list[str], root: Path, env: dict[str, str]) -> Any:
    try:
        done = subprocess.run(
            argv, cwd=root, stdin=subprocess.DEVNULL, capture_output=True, env=env,
            timeout=TIMEOUT_SECONDS,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise SquawkError(f"{binary} did not finish within {TIMEOUT_SECONDS:.0f} s") from None
    except OSError as err:
        raise SquawkError(f"{binary} could not be run: {err}") from None
    try:
        data = json.loads(done.stdout)
    except ValueError:
        data = None
    if done.returncode not in (0, 1) or data is None:  # 1: it found something
        said = " ".join((done.stderr or done.stdout).decode(errors="replace").split())
        raise SquawkError(
            f"{binary} exited with status {done.returncode}: {said[:500] or 'no output'}"
        )
    return data


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


def findings_in(message: str | None) -> list[str]:
    """The findings a step's message lists after :data:`FINDINGS_HEAD` (a passed lint's
    remark, one per line, or a failure's paragraph, joined by "; "), as their texts."""
    if not message or FINDINGS_HEAD not in message:
        return []
    body = message.split(FINDINGS_HEAD, 1)[1].strip()
    return [part.strip() for part in _FINDING_START.split(body) if part.strip()]
