"""``pytest-deploy migration rollback``: undo the last N applied migrations of a target.

Like ``migration apply``, a pytest run of the tracked groups (``--deploy-rollback=N``), so
its preflight, lock, dry run, masking, JUnit and history are those of every deployment.
"""

from __future__ import annotations

from typing import Any

from deploy_plugin.plugin.options import DeployOptions

from .args import add_target_option, positive_int
from .context import Context
from .output import UsageProblem
from .runner import run_pytest


def register(command: Any) -> None:
    """Add ``rollback`` to the ``migration`` family (``command`` makes one subcommand)."""
    rollback = command(
        "rollback",
        "roll back the last N applied migrations, newest first (runs their down files)",
        "pytest-deploy migration rollback woofs --target staging --steps 3 --dry-run",
        run_rollback,
    )
    add_target_option(rollback, help="the target (required)")
    rollback.add_argument(
        "--steps", type=positive_int, default=1, metavar="N",
        help="how many applied migrations to undo (default 1)",
    )  # fmt: skip
    rollback.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    rollback.add_argument("--yes", "-y", action="store_true", help="confirm a protected target")
    rollback.add_argument(
        "--deploy-env", action="append", default=[], metavar="KEY=VALUE",
        help="an env var for this run (a secret: masked)",
    )  # fmt: skip


def run_rollback(ctx: Context) -> int:
    return _run_tracked(
        ctx, "so it has no migrations to roll back (a group tracks migrations when every"
        " pattern ends in .sql, or with track_migrations: true).",
        rollback=ctx.args.steps,
    )  # fmt: skip


def _run_tracked(ctx: Context, nothing: str, **mode: Any) -> int:
    """A pytest run of the project's tracked groups on ``--target`` in ``mode`` (rollback
    or check); UsageProblem ending with ``nothing`` when no group is tracked."""
    from .migrations import tracked_groups

    args = ctx.args
    project = ctx.project(args.project)
    config = project.require_config()
    target = ctx.require_target(project, args.target)
    groups = tracked_groups(config, target)
    if not groups:
        raise UsageProblem(
            f"Project {project.name!r} has no tracked migration group for target {target!r},"
            f" {nothing}"
        )
    options = DeployOptions(
        targets=(target,), dry_run=args.dry_run, groups=tuple(groups), yes=args.yes,
        no_health_check=True, env=tuple(args.deploy_env), **mode,
    )  # fmt: skip
    return run_pytest(ctx, config.path, options, as_json=args.json)


def register_check(command: Any) -> None:
    """Add ``check-rollback`` to the ``migration`` family."""
    check = command(
        "check-rollback",
        "per pending migration: apply it, run its down, compare the schema, apply it again",
        "pytest-deploy migration check-rollback woofs --target ci",
        run_check,
    )
    add_target_option(check, help="the target: a throw-away or CI database (required)")
    check.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    check.add_argument(
        "--yes", "-y", action="store_true", help="allow a protected target (it is changed)"
    )
    check.add_argument(
        "--deploy-env", action="append", default=[], metavar="KEY=VALUE",
        help="an env var for this run (a secret: masked)",
    )  # fmt: skip


def run_check(ctx: Context) -> int:
    return _run_tracked(ctx, "so there is nothing to check.", check_rollback=True)
