"""A project's tracked migration files and their state on a target, for the ``migration``
commands: the files of the groups with ``track_migrations``, a FILE argument resolved to
one of them, a history change made as a deployment would make it, and the pytest run of
the tracked groups (``apply``, ``rollback``, ``check-rollback``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy_plugin.config import DeployConfig
from deploy_plugin.facts import who
from deploy_plugin.plan import file_checksum, is_repeatable, match_files, migration_state, run_order
from deploy_plugin.plugin.options import DeployOptions
from deploy_plugin.store.base import MigrationRecord
from deploy_plugin.targets import resolve

from .context import Context, Project
from .output import UsageProblem, confirm
from .runner import run_pytest


@dataclass(frozen=True)
class TrackedFile:
    """A migration file of a tracked group: root-relative path, group, checksum."""

    file: str
    group: str
    checksum: str


def tracked_files(config: DeployConfig, target: str | None) -> list[TrackedFile]:
    """Files of the tracked groups (that run for ``target``), in run order."""
    seen: dict[str, TrackedFile] = {}
    for group in config.groups:
        if not group.track_migrations or (target and not group.applies_to(target)):
            continue
        files, _unmatched = match_files(config.root, group.file_patterns)
        for rel in run_order(files):
            if rel not in seen:
                seen[rel] = TrackedFile(rel, group.name, file_checksum(config.root / rel))
    return list(seen.values())


def tracked_groups(config: DeployConfig, target: str) -> list[str]:
    return [g.name for g in config.groups if g.track_migrations and g.applies_to(target)]


def file_state(tracked: TrackedFile, record: MigrationRecord | None) -> str:
    """applied | drifted | changed (a repeatable migration) | pending | failed | rolled_back
    (plan's one classifier)."""
    return migration_state(tracked.checksum, record, repeatable=is_repeatable(tracked.file))


def recorded(ctx: Context, project: str, target: str) -> dict[str, MigrationRecord]:
    """The target's history rows by file (none without a store)."""
    store = ctx.store()
    return store.applied_migrations(project, target) if store else {}


def resolve_file(ctx: Context, config: DeployConfig, given: str) -> str | None:
    """A FILE argument as a root-relative path (tried under the root, then the current
    folder), or None when no such file exists under the root."""
    path = Path(given)
    root = config.root.resolve()
    candidates = [path] if path.is_absolute() else [config.root / path, ctx.cwd / path]
    for candidate in candidates:
        if candidate.is_file():
            try:
                return candidate.resolve().relative_to(root).as_posix()
            except ValueError:
                continue
    return None


def tracked_file(ctx: Context, project: Project, given: str, target: str | None) -> TrackedFile:
    """The tracked file a FILE argument names; UsageProblem listing them if none."""
    config = project.require_config()
    tracked = tracked_files(config, target)
    rel = resolve_file(ctx, config, given)
    listing = ", ".join(t.file for t in tracked[:10]) + (" ..." if len(tracked) > 10 else "")
    if rel is None:
        raise UsageProblem(
            f"No such migration file {given!r} under the root of project {project.name!r} "
            f"({ctx.shown(config.root)}); looked there and in the current folder. Tracked "
            f"files: {listing or 'none'}."
        )
    found = next((t for t in tracked if t.file == rel), None)
    if found is None:
        where = f" for target {target!r}" if target else ""
        raise UsageProblem(
            f"{rel} is not a tracked migration of project {project.name!r}{where}: no group "
            f"with track_migrations matches it. Tracked files: {listing or 'none'}."
        )
    return found


@contextmanager
def history_change(ctx: Context, project: Project, target: str, what: str) -> Iterator[None]:
    """Change a target's history as a deployment would: a protected target confirmed,
    under the deployment lock (so never beside a running deployment)."""
    store = ctx.writable_store()
    info, _ = resolve(project.require_config(), target, store)
    if (
        info is not None
        and info.protected
        and not confirm(
            f"Target {target!r} of project {project.name!r} is protected: {what}?", yes=ctx.args.yes
        )
    ):
        raise UsageProblem(f"Not confirmed: nothing changed on protected target {target!r}.")
    lock = store.acquire_lock(project.name, target, holder=who())
    try:
        yield
    finally:
        lock.release()


def on_target(ctx: Context) -> tuple[Project, DeployConfig, str]:
    """The PROJECT argument's project, its config (loaded) and its ``--target`` (required)."""
    project = ctx.project(ctx.args.project)
    config = project.require_config()
    return project, config, ctx.require_target(project, ctx.args.target)


def run_tracked(ctx: Context, nothing: str, **mode: Any) -> int:
    """A pytest run of the project's tracked groups on ``--target`` in ``mode`` (apply,
    rollback or check: DeployOptions fields); UsageProblem ending with ``nothing`` when no
    group is tracked."""
    args = ctx.args
    project, config, target = on_target(ctx)
    groups = tracked_groups(config, target)
    if not groups:
        raise UsageProblem(
            f"Project {project.name!r} has no tracked migration group for target {target!r}"
            f"{nothing}"
        )
    options = DeployOptions(
        targets=(target,), dry_run=args.dry_run, groups=tuple(groups), yes=args.yes,
        env=tuple(args.deploy_env), **mode,
    )  # fmt: skip
    return run_pytest(ctx, config.path, options, as_json=args.json)
