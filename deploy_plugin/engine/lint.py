"""Preflight's lint of the migrations a run would apply (``groups[].lint``), with squawk.

``preflight::migrations-drift`` starts squawk (:func:`start_lint`) on the files of the
selected tracked groups whose lint is not ``off`` that the history does not record as
applied, so it runs while the databases' ledgers are read; once the ledgers and the history
decided what is pending, :func:`check_lint` reads its findings for the pending files only
(a pending file it was not started on gets a run of its own). One squawk process lints all
of them (two when some files run inside a transaction and some do not), from the config's
root, so the project's ``.squawk.toml`` and squawk's ``-- squawk-ignore`` comments apply. A
group's ``ignore`` rules are dropped here. ``warn``: each finding is a warning; ``error``:
any finding fails preflight, so nothing runs. The findings stay on the deployment for its
reports (JSON, JUnit facts, the step's message that the history page lists).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from deploy_plugin.config import Group
from deploy_plugin.config.lint import Lint
from deploy_plugin.engine.checks import Findings
from deploy_plugin.engine.ledgers import psql_ledger, uses_ledger
from deploy_plugin.engine.runtime import Deployment
from deploy_plugin.engine.squawk import (
    RULE_DOCS,
    SQUAWK_ENV,
    LintFinding,
    SquawkError,
    SquawkRun,
    find_squawk,
    finding_of,
    listed,
    unknown_rule,
)
from deploy_plugin.migrate.statements import no_transaction
from deploy_plugin.plan import is_repeatable

#: Findings shown one by one as warnings; the others are in the step's report section.
SHOWN_WARNINGS = 20


@dataclass
class _Job:
    """One group's files to lint and its lint settings."""

    group: Group
    lint: Lint
    files: list[str]


@dataclass
class LintRun:
    """squawk started on ``files`` (:func:`start_lint`); ``binary`` None: none was found."""

    files: set[str]
    jobs: list[_Job]
    binary: str | None = None
    runs: list[SquawkRun] = field(default_factory=list)
    sqlite: list[str] = field(default_factory=list)  # groups not linted by default

    def stop(self) -> None:
        for run in self.runs:
            run.stop()


def start_lint(deployment: Deployment, files: set[str] | None = None) -> LintRun | None:
    """Start squawk on ``files`` (root-relative) of the groups to lint; by default on their
    files that the history does not record as applied (the ledgers, read meanwhile, may
    still apply some: :func:`check_lint` reads only the pending ones). None: not a
    deployment (a rollback applies nothing; a reversibility check runs on a copy)."""
    if deployment.kind != "deploy":
        return None
    if files is None:
        applied = deployment.applied()
        files = {
            rel
            for plan in deployment.plans
            if plan.group.track_migrations
            for rel in plan.files
            if rel not in applied
            or applied[rel].status != "success"
            or (is_repeatable(rel) and applied[rel].checksum != deployment.checksum(rel))
        }
    started = LintRun(files, [])
    selected = {g.name for g in deployment.selected_groups()}
    for plan in deployment.plans:
        group = plan.group
        if not group.track_migrations or group.name not in selected:
            continue
        lint = group.lint
        if lint is None and deployment.env.get(group.database_url_env, "").startswith("sqlite:"):
            started.sqlite.append(group.name)  # squawk knows PostgreSQL
            continue
        if (lint or Lint()).mode != "off":
            mine = [rel for rel in plan.files if rel in files]
            if mine:
                started.jobs.append(_Job(group, lint or Lint(), mine))
    if started.jobs:
        started.binary = find_squawk()
    if started.binary is not None:
        started.runs = _start(started.binary, deployment.config.root, _owners(started.jobs))
    return started


def check_lint(
    deployment: Deployment, found: Findings, pending: Sequence[str], started: LintRun | None
) -> str | None:
    """Read the findings of the ``pending`` files (``started`` on them, else started now):
    warnings (``warn``) or, for a ``lint: error`` group, the returned paragraph, which fails
    preflight (None: nothing fails)."""
    wanted = set(pending)
    if started is not None and not wanted <= started.files:
        started.stop()  # a file the history called applied is not: lint anew
        started = start_lint(deployment, wanted)
    if started is None:
        return None
    try:
        return _check(deployment, found, wanted, started)
    finally:
        started.stop()


def _check(
    deployment: Deployment, found: Findings, wanted: set[str], started: LintRun
) -> str | None:
    """:func:`check_lint` once squawk was started on (at least) the ``wanted`` files."""
    for plan in deployment.plans:
        if plan.group.name in started.sqlite and wanted.intersection(plan.files):
            found.note(
                f"lint: group {plan.group.name} not linted: its database is SQLite and squawk"
                " knows PostgreSQL (set lint: warn to lint it anyway)"
            )
    jobs = [replace(job, files=[f for f in job.files if f in wanted]) for job in started.jobs]
    jobs = [job for job in jobs if job.files]  # lint speaks only where files are pending
    if not jobs:
        return None
    if started.binary is None:
        return _unlinted(jobs, found, _not_found())
    try:
        raw = [entry for run in started.runs for entry in run.findings()]
    except SquawkError as err:
        return _unlinted(jobs, found, f"squawk failed ({err})")
    problems = _unknown_ignores(started.binary, deployment.config.root, jobs, found)
    owner = _owners(jobs)
    order = {rel: place for place, rel in enumerate(owner)}
    masked: dict[str, str] = {}

    def mask(text: str) -> str:  # findings repeat a few texts: each is masked once
        if text not in masked:
            masked[text] = deployment.masker.mask(text)
        return masked[text]

    findings: list[tuple[LintFinding, _Job]] = []
    ignored = met = 0
    for entry in raw:
        job = owner.get(str(entry.get("file", "")))
        if job is None:
            continue  # not pending after all (the ledger has it)
        finding = finding_of(job.group.name, entry, mask)
        if finding.rule in job.lint.ignore:
            ignored += 1
        elif finding.rule in _met_by_timeouts(job.group):
            met += 1
        else:
            findings.append((finding, job))
    findings.sort(key=lambda pair: (order[pair[0].file], pair[0].line, pair[0].column))
    deployment.lint_findings.extend(finding for finding, _ in findings)
    texts = [finding.text() for finding, _ in findings]
    _report(found, jobs, texts, ignored, met)
    modes = [job.lint.mode for _, job in findings]
    warned = [t for t, mode in zip(texts, modes, strict=True) if mode == "warn"]
    for text in warned[:SHOWN_WARNINGS]:
        found.warn(f"lint: {text}")
    if len(warned) > SHOWN_WARNINGS:  # each is a fact of the check (_report)
        found.warn(
            f"lint: {len(warned) - SHOWN_WARNINGS} more finding(s) of squawk in the pending"
            " migrations: each is in this check's report section and in the JSON report"
        )
    failing = [t for t, mode in zip(texts, modes, strict=True) if mode == "error"]
    if failing:
        names = sorted({f.group for f, job in findings if job.lint.mode == "error"})
        problems.append(
            f"lint: squawk found {len(failing)} problem(s) in the migration(s) this run would"
            f" apply, and group(s) {', '.join(names)} have lint: error, so nothing was run."
            " Fix each file as its finding says; where a statement is intended, put"
            " `-- squawk-ignore RULE` on the line before it, or add the rule to the group's"
            f" lint.ignore. {listed(failing)}"
        )
    return " ".join(problems) or None


def _owners(jobs: list[_Job]) -> dict[str, _Job]:
    """Each file's job, in run order (a file two groups match: the first's)."""
    owner: dict[str, _Job] = {}
    for job in jobs:
        for rel in job.files:
            owner.setdefault(rel, job)
    return owner


def _start(binary: str, root: Path, owner: dict[str, _Job]) -> list[SquawkRun]:
    """squawk over every file: one process for those run inside a transaction, one for the
    others (``-- deploy:no-transaction``, a deploy_command without psql's ``-1``)."""
    batches: dict[bool, list[str]] = {True: [], False: []}
    groups = {job.group.name: job.group for job in owner.values()}
    wraps = {name: uses_ledger(group) or psql_ledger(group) for name, group in groups.items()}
    for rel, job in owner.items():
        try:
            with open(os.path.join(root, rel), "rb") as file:
                text = file.read().decode("utf-8", errors="replace")
        except OSError:
            text = ""  # squawk says what it cannot read
        batches[wraps[job.group.name] and not no_transaction(text)].append(rel)
    return [
        SquawkRun(binary, root, files, in_transaction=in_transaction)
        for in_transaction, files in batches.items()
        if files
    ]


def _unknown_ignores(binary: str, root: Path, jobs: list[_Job], found: Findings) -> list[str]:
    """A rule named in a group's ``lint.ignore`` that squawk does not know: a warning, or
    for a ``lint: error`` group the returned problem."""
    rules = sorted({rule for job in jobs for rule in job.lint.ignore})
    unknown = unknown_rule(binary, root, rules) if rules else None
    if unknown is None:
        return []
    problems = []
    for job in jobs:
        if unknown in job.lint.ignore:
            text = (
                f"lint: group {job.group.name}'s lint.ignore names {unknown!r}, which squawk"
                f" does not know: correct the rule's name (its rules: {RULE_DOCS}rules)"
            )
            if job.lint.mode == "error":
                problems.append(text + ".")
            else:
                found.warn(text)
    return problems


def _not_found() -> str:
    named = os.environ.get(SQUAWK_ENV)
    if named:
        return f"squawk was not found: {SQUAWK_ENV}={named} names no executable"
    return f"squawk was not found (neither beside {sys.executable} nor on PATH)"


def _unlinted(jobs: list[_Job], found: Findings, why: str) -> str | None:
    """Nothing was linted (``why``): a warning for ``warn`` groups, the returned problem
    for ``error`` groups."""
    problem = None
    for mode in ("warn", "error"):
        some = [job for job in jobs if job.lint.mode == mode]
        if not some:
            continue
        count = sum(len(job.files) for job in some)
        text = (
            f"lint: {why}, so the {count} pending migration(s) of group(s)"
            f" {', '.join(job.group.name for job in some)} were not linted: install it with"
            " `pip install squawk-cli` (pytest-deploy depends on it), point"
            f" {SQUAWK_ENV} at a squawk binary, or set lint: off for these groups"
        )
        if mode == "warn":
            found.warn(text)
        else:
            problem = text + ". Nothing was run."
    return problem


def _met_by_timeouts(group: Group) -> set[str]:
    """squawk's rules that a group's ``lock_timeout``/``statement_timeout`` meet: both are
    set in each migration's own transaction (built-in executor and psql alike)."""
    met = set()
    if group.lock_timeout:
        met.add("require-lock-timeout")
    if group.statement_timeout:
        met.add("require-statement-timeout")
    return met


def _report(found: Findings, jobs: list[_Job], texts: list[str], ignored: int, met: int) -> None:
    """The check's JUnit facts (also lines of its report section) and, with findings, its
    step's message; ``texts``: the findings'."""
    files = sum(len(job.files) for job in jobs)
    names = ", ".join(job.group.name for job in jobs)
    summary = f"{len(texts)} finding(s) in {files} pending file(s) of group(s) {names}"
    left_out = [f"{ignored} more of rules the groups ignore"] if ignored else []
    if met:
        left_out.append(f"{met} met by the groups' lock_timeout/statement_timeout")
    if left_out:
        summary += f" ({'; '.join(left_out)})"
    found.facts["lint"] = summary
    for index, text in enumerate(texts):
        found.facts[f"lint[{index}]"] = text
    if texts:
        found.remark = f"lint (squawk): {summary}. {listed(texts, separator=chr(10))}"
