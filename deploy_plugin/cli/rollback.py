"""``pytest-deploy migration rollback|check-rollback``: undo the last N applied migrations of
a target; check that each pending one can be undone.

Like ``migration apply``, a pytest run of the tracked groups (``--deploy-rollback=N``,
``--deploy-check-rollback``), so its preflight, lock, dry run, masking, JUnit and history
are those of every deployment.
"""

from __future__ import annotations

from .args import DEPLOY_ENV_HELP, TARGET_REQUIRED, YES_PROTECTED, Commands, positive_int
from .context import Context
from .tracked import run_tracked


def register(family: Commands) -> None:
    """Add ``rollback`` and ``check-rollback`` to the ``migration`` family."""
    rollback = family.add(
        run_rollback, "project", target=TARGET_REQUIRED, dry_run=True, yes=YES_PROTECTED,
        deploy_env=DEPLOY_ENV_HELP,
    )  # fmt: skip
    rollback.add_argument(
        "--steps", type=positive_int, default=1, metavar="N",
        help="how many applied migrations to undo (default 1)",
    )  # fmt: skip
    family.add(
        run_check, "project", name="check-rollback", dry_run=True, deploy_env=DEPLOY_ENV_HELP,
        target="the target: a throw-away or CI database (required)",
        yes="allow a protected target (it is changed)",
    )  # fmt: skip


def run_rollback(ctx: Context) -> int:
    """Roll back the last N applied migrations, newest first (runs their down files).

    pytest-deploy migration rollback woofs --target staging --steps 3 --dry-run
    """
    return run_tracked(
        ctx, ", so it has no migrations to roll back (a group tracks migrations when every"
        " pattern ends in .sql, or with track_migrations: true).",
        rollback=ctx.args.steps, no_health_check=True,
    )  # fmt: skip


def run_check(ctx: Context) -> int:
    """Per pending migration: apply it, run its down, compare the schema, apply it again.

    pytest-deploy migration check-rollback woofs --target ci
    """
    return run_tracked(
        ctx, ", so there is nothing to check.", check_rollback=True, no_health_check=True
    )
