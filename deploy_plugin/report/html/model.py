"""The history page's data: what a store keeps about one project, read into plain records.

:func:`build_page` reads the store (deployment runs, their steps and config snapshots,
the migration history) and, when the project's config is at hand, classifies its tracked
files with :func:`deploy_plugin.plan.migration_state` (pending and drifted need the
files; without them they are "unknown") and shows each target's promotion gate
(:mod:`deploy_plugin.engine.gate`) on what its next deployment would deploy. Nothing
here renders HTML or reads env values: the store's step rows and config snapshots are
masked when recorded.
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deploy_plugin.engine.gate import GateVerdict, gate_verdicts
from deploy_plugin.engine.logs import log_tail, run_log_dir, step_log_file
from deploy_plugin.engine.squawk import findings_in
from deploy_plugin.plan import file_checksum, is_repeatable, match_files, migration_state
from deploy_plugin.store.records import (
    DeploymentRecord,
    MigrationRecord,
    StepRecord,
    format_time,
    utcnow,
)

from .gantt import group_parallelism, layout_steps

if TYPE_CHECKING:
    from deploy_plugin.config import DeployConfig, Group
    from deploy_plugin.store.base import Store

DEFAULT_LIMIT = 200  # deployments shown per target; older ones are summarised
# the newest runs of each target whose step logs' tails are shown, and how much of each:
# at most 5 x 50 steps x 800 characters (200 kB) per target
LOG_TAIL_RUNS = 5
LOG_TAIL_LINES, LOG_TAIL_CHARS = 10, 800
STATUS_MARKS = {
    "success": "✓",
    "failure": "✗",
    "interrupted": "!",
    "running": "…",
    "refused": "⊘",
}
# runs that are not deployments, as the page names them and the mark they carry beside
# their status (``DeploymentRecord.kind``; "deploy" has neither)
KIND_LABELS = {"rollback": "rollback", "check_rollback": "reversibility check"}
KIND_MARKS = {"rollback": "↶", "check_rollback": "⇄"}


def counts_as_state(record: DeploymentRecord) -> bool:
    """Whether a run says what a target has: not a dry run, nor a run refused before
    anything ran (a protected target not confirmed, the lock held by another run)."""
    return not record.dry_run and record.status != "refused"


@dataclass
class MigrationCounts:
    """A target's migrations by state; None: unknown (the config's files are not at hand)."""

    applied: int
    failed: int
    rolled_back: int
    pending: int | None
    drifted: int | None


@dataclass
class Older:
    """The deployments of a target beyond the page's limit, summarised."""

    count: int
    statuses: list[tuple[str, int]]
    first: str
    last: str


@dataclass
class Trend:
    """One target's duration and failure-rate series (oldest first)."""

    durations: list[int]  # ms, finished runs only
    failure_rates: list[float]  # 0..1, over a sliding window of runs
    window: int


@dataclass
class TargetSummary:
    name: str
    last: DeploymentRecord | None
    migrations: MigrationCounts
    shown: list[DeploymentRecord]
    total: int
    older: Older | None
    trend: Trend
    gates: list[GateVerdict] = field(default_factory=list)  # its requires, config at hand


@dataclass
class PageData:
    """Everything the page shows, for one project."""

    project: str
    generated_at: str
    limit: int
    targets: list[TargetSummary]
    migrations: list[tuple[str, MigrationRecord]]  # (target, row), newest first
    payload: dict[str, Any]  # deployments with steps, for the page's script
    highlight: list[int] = field(default_factory=list)  # this run's deployments
    config_known: bool = False


def duration_ms(record: DeploymentRecord) -> int | None:
    if record.ended_at is None:
        return None
    return max(0, int((record.ended_at - record.started_at).total_seconds() * 1000))


def build_page(
    store: Store,
    project: str,
    *,
    config: DeployConfig | None = None,
    targets: list[str] | None = None,
    limit: int = DEFAULT_LIMIT,
    highlight: list[int] | None = None,
    rootdir: Path | None = None,
    now: datetime | None = None,
) -> PageData:
    """Read ``project``'s history from ``store`` (StoreError on a read problem); the step
    logs' tails of the newest runs come from ``rootdir``'s ``.deploy/logs`` when given."""
    names = targets if targets is not None else _all_targets(store, project, config)
    all_runs = store.deployments(project, None, limit=None)
    by_target: dict[str, list[DeploymentRecord]] = {name: [] for name in names}
    for record in all_runs:
        if record.target in by_target:
            by_target[record.target].append(record)
    payload = _Payload(store, project, rootdir)
    summaries: list[TargetSummary] = []
    history: list[tuple[str, MigrationRecord]] = []
    for name in names:
        runs = by_target[name]  # newest first
        shown, rest = runs[:limit], runs[limit:]
        applied = store.applied_migrations(project, name)
        history += [(name, row) for row in store.migration_history(project, name)]
        for index in range(len(shown) - 1, -1, -1):  # oldest first: diffs need the one before
            previous = shown[index + 1] if index + 1 < len(shown) else (rest[0] if rest else None)
            payload.add(shown[index], previous, logs=index < LOG_TAIL_RUNS)
        summaries.append(
            TargetSummary(
                name=name,
                # a dry run or a refused run changed nothing: the last real one counts
                last=next((r for r in runs if counts_as_state(r)), None),
                migrations=_counts(applied, config, name),
                shown=shown,
                total=len(runs),
                older=_older(rest),
                trend=_trend(shown),
                gates=_gates(store, project, config, name, applied),
            )
        )
    history.sort(key=lambda item: item[1].applied_at, reverse=True)
    return PageData(
        project=project,
        generated_at=format_time(now or utcnow()),
        limit=limit,
        targets=summaries,
        migrations=history,
        payload=payload.data(names),
        highlight=list(highlight or []),
        config_known=config is not None,
    )


def _all_targets(store: Store, project: str, config: DeployConfig | None) -> list[str]:
    """Targets with history, stored ones and (config at hand) declared ones, by name."""
    names = set(store.targets_in_use(project))
    names.update(target.name for target in store.list_targets(project))
    if config is not None:
        names.update(config.targets)
    return sorted(names)


def _counts(
    applied: dict[str, MigrationRecord], config: DeployConfig | None, target: str
) -> MigrationCounts:
    statuses = Counter(row.status for row in applied.values())
    if config is None:
        return MigrationCounts(statuses["success"], statuses["failed"],
                               statuses["rolled_back"], None, None)  # fmt: skip
    states = Counter(
        migration_state(checksum, applied.get(rel), repeatable=is_repeatable(rel))
        for rel, checksum in tracked_files(config, target).items()
    )
    return MigrationCounts(
        applied=statuses["success"] - states["drifted"] - states["changed"],
        failed=statuses["failed"],
        rolled_back=statuses["rolled_back"],
        pending=states["pending"] + states["failed"] + states["rolled_back"] + states["changed"],
        drifted=states["drifted"],
    )


def _gates(
    store: Store,
    project: str,
    config: DeployConfig | None,
    target: str,
    applied: dict[str, MigrationRecord],
) -> list[GateVerdict]:
    """The promotion gate of ``target`` (its ``requires``) on what its next deployment
    would deploy: the config at hand and the tracked files its history lacks."""
    decl = config.targets.get(target) if config is not None else None
    if config is None or decl is None or not decl.requires:
        return []
    pending = {
        rel: checksum
        for rel, checksum in tracked_files(config, target).items()
        if migration_state(checksum, applied.get(rel), repeatable=is_repeatable(rel))
        not in ("applied", "drifted")
    }
    groups: dict[str, Group] = {}  # each file's group (the first that matches it)
    for group in config.groups:
        if group.track_migrations and group.applies_to(target):
            for rel in match_files(config.root, group.file_patterns)[0]:
                groups.setdefault(rel, group)

    def runs_on(rel: str, required: str) -> bool:  # a file counts where its group runs
        return groups[rel].applies_to(required)

    return gate_verdicts(store, project, decl.requires, config.sha256, pending, runs_on)


def tracked_files(config: DeployConfig, target: str) -> dict[str, str]:
    """Root-relative tracked files of the groups that run for ``target``: their checksums."""
    files: dict[str, str] = {}
    for group in config.groups:
        if group.track_migrations and group.applies_to(target):
            for rel in match_files(config.root, group.file_patterns)[0]:
                files.setdefault(rel, file_checksum(config.root / rel))
    return files


def _older(rest: list[DeploymentRecord]) -> Older | None:
    if not rest:
        return None
    counts = Counter(record.status for record in rest)
    return Older(
        count=len(rest),
        statuses=sorted(counts.items()),
        first=format_time(rest[-1].started_at),
        last=format_time(rest[0].started_at),
    )


def _trend(shown: list[DeploymentRecord], window: int = 10) -> Trend:
    oldest_first = list(reversed(shown))
    finished = [r for r in oldest_first if r.status != "running" and counts_as_state(r)]
    durations = [d for d in (duration_ms(r) for r in finished) if d is not None]
    rates: list[float] = []
    for index in range(len(finished)):
        recent = finished[max(0, index - window + 1) : index + 1]
        rates.append(sum(r.status != "success" for r in recent) / len(recent))
    return Trend(durations, rates, window)


class _Payload:
    """Deployments with their steps, compact: repeated strings are kept once (``strings``)
    and referred to by index; config snapshots and diffs once per distinct one."""

    def __init__(self, store: Store, project: str, rootdir: Path | None) -> None:
        self.store = store
        self.project = project
        self.rootdir = rootdir
        self.strings: list[str] = []
        self._index: dict[str, int] = {}
        self.configs: list[str] = []
        self._config_of: dict[str, int] = {}  # sha → index in configs
        self._parallel: dict[str, dict[str, int]] = {}  # sha → group → max_parallel
        self.diffs: list[str] = []
        self._diff_of: dict[tuple[str, str], int] = {}
        self.runs: list[list[Any]] = []

    def s(self, text: str | None) -> int:
        """The index of ``text`` in the string table (-1 for None)."""
        if text is None:
            return -1
        index = self._index.get(text)
        if index is None:
            index = self._index[text] = len(self.strings)
            self.strings.append(text)
        return index

    def config(self, record: DeploymentRecord) -> int:
        sha = record.config_sha256
        if sha not in self._config_of:
            text = self.store.deployment_config(record.id) or ""
            self._config_of[sha] = len(self.configs)
            self.configs.append(text)
            self._parallel[sha] = group_parallelism(text)
        return self._config_of[sha]

    def diff(self, previous: DeploymentRecord | None, record: DeploymentRecord) -> int:
        """-1: no previous deployment; -2: the same config; else the index of the diff."""
        if previous is None:
            return -1
        if previous.config_sha256 == record.config_sha256:
            return -2
        key = (previous.config_sha256, record.config_sha256)
        if key not in self._diff_of:
            old = self.configs[self.config(previous)].splitlines(keepends=True)
            new = self.configs[self.config(record)].splitlines(keepends=True)
            lines = difflib.unified_diff(
                old, new, f"config of run {previous.id}", f"config of run {record.id}"
            )
            self._diff_of[key] = len(self.diffs)
            self.diffs.append("".join(lines))
        return self._diff_of[key]

    def add(
        self, record: DeploymentRecord, previous: DeploymentRecord | None, *, logs: bool
    ) -> None:
        config = self.config(record)
        steps = self.store.deployment_steps(record.id)
        placed = layout_steps(steps, self._parallel[record.config_sha256], record.started_at)
        log_dir = None
        if logs and self.rootdir is not None:
            log_dir = run_log_dir(self.rootdir, str(record.id), self.project, record.target)
            log_dir = log_dir if log_dir.is_dir() else None
        rows = [
            [self.s(step.node_id), self.s(step.kind), self.s(step.outcome), step.duration_ms,
             start, lane, self.s(step.message), self.s(step.command), self.s(step.group),
             self.s(self._tail(log_dir, step))]
            for step, (start, lane) in zip(steps, placed, strict=True)
        ]  # fmt: skip
        # what squawk found in the migrations the run would apply (its preflight's message)
        lint = [self.s(t) for s in steps if s.kind == "preflight" for t in findings_in(s.message)]
        self.runs.append(
            [record.id, self.s(record.target), self.s(record.status),
             format_time(record.started_at), duration_ms(record), self.s(record.who),
             record.config_sha256[:12], int(record.dry_run), config, self.diff(previous, record),
             previous.id if previous else None, rows, self.s(record.kind), lint]
        )  # fmt: skip

    @staticmethod
    def _tail(log_dir: Path | None, step: StepRecord) -> str | None:
        if log_dir is None:
            return None
        name = step.node_id.rsplit("::", 1)[-1]
        path = step_log_file(log_dir, name, step.group or step.kind)
        return log_tail(path, LOG_TAIL_LINES, LOG_TAIL_CHARS)

    def data(self, targets: list[str]) -> dict[str, Any]:
        return {
            "targets": targets,
            "strings": self.strings,
            "configs": self.configs,
            "diffs": self.diffs,
            "runs": self.runs,
            "logRuns": LOG_TAIL_RUNS,
            "marks": STATUS_MARKS,
            "kinds": {kind: [label, KIND_MARKS[kind]] for kind, label in KIND_LABELS.items()},
        }
