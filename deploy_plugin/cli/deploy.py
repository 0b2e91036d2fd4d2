"""``pytest-deploy deploy run|status``: a deployment is a pytest run; its status comes from
the store's deployment rows."""

from __future__ import annotations

import os
from typing import Any

from deploy_plugin.plugin.options import DeployOptions

from .args import TARGET_REQUIRED, YES_PROTECTED, Commands
from .context import Context, Project
from .output import UsageProblem, emit_json, note, print_table, say, when
from .runner import run_pytest


def register(commands: Commands) -> None:
    """Run a deployment (pytest underneath) or show the latest ones.

    pytest-deploy deploy run woofs --target production --dry-run
    """
    family = commands.family("deploy", register.__doc__)
    run = family.add(
        run_deploy, "project", name="run", target=TARGET_REQUIRED, dry_run=True, yes=YES_PROTECTED,
        deploy_env="an env var for this run (a secret: masked, but visible to other users of"
        " the machine in the process list: prefer --deploy-env-file)",
    )  # fmt: skip
    run.add_argument("--group", action="append", default=[], metavar="NAME", help="only this group")
    run.add_argument(
        "--skip-group", action="append", default=[], metavar="NAME", help="leave this group out"
    )
    run.add_argument("--continue-on-failure", action="store_true", help="after a failed group, "
                     "carry on with the next one")  # fmt: skip
    run.add_argument("--no-health-check", action="store_true", help="skip the health check")
    run.add_argument("--health-url", metavar="URL", help="poll this URL instead of the config's")
    run.add_argument("--skip-validation", action="store_true",
                     help="do not check required env vars")  # fmt: skip
    run.add_argument(
        "--deploy-env-file", action="append", default=[], metavar="FILE",
        help="env vars for this run from a dotenv file (secrets: masked, never in argv)",
    )  # fmt: skip
    run.add_argument(
        "--deploy-timeout", type=float, metavar="SECONDS",
        help="time limit of each command whose group sets none, and of a deploy.sh fallback",
    )  # fmt: skip
    run.add_argument(
        "--plan-out", metavar="FILE.json",
        help="with --dry-run: save the plan, to apply once with --plan",
    )  # fmt: skip
    run.add_argument(
        "--plan", metavar="FILE.json",
        help="apply a saved plan: exactly its steps, once; refused if anything changed",
    )  # fmt: skip
    run.set_defaults(pytest_args=[], takes_pytest_args=True)  # after --, see cli.main
    family.add(run_status, "project", target="only this target")


def _check_groups(project: Project, names: list[str], flag: str) -> None:
    known = project.group_names()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageProblem(
            f"Unknown group(s) {', '.join(map(repr, unknown))} in {flag} for project "
            f"{project.name!r}. Its groups: {', '.join(known)}."
        )


def _check_files(args: Any) -> None:
    """Refuse a bad --deploy-env-file or --plan here (exit 2) rather than in the run."""
    # deferred: +6 modules, 7 ms (saved_plans, envfile, dotenv.main, …)
    from deploy_plugin.envfile import EnvFileError, read_env_files
    from deploy_plugin.saved_plans import PlanFileError, load

    try:
        read_env_files(args.deploy_env_file)
        if args.plan:
            load(args.plan)
    except (EnvFileError, PlanFileError) as err:
        raise UsageProblem(str(err)) from None


def run_deploy(ctx: Context) -> int:
    r"""Deploy a project to a target: `pytest <config> --deploy-target=T ...` (pytest options
    may follow --).

    pytest-deploy deploy run woofs --target production --dry-run
    pytest-deploy deploy run woofs --target production --group database_migrations \
        --no-health-check --json
    pytest-deploy deploy run woofs --target staging -- -x --junitxml=deploy.xml
    """
    args = ctx.args
    project = ctx.project(args.project)
    config = project.require_config()
    target = ctx.require_target(project, args.target)
    _check_groups(project, args.group, "--group")
    _check_groups(project, args.skip_group, "--skip-group")
    _check_files(args)
    options = DeployOptions(
        targets=(target,), dry_run=args.dry_run, groups=tuple(args.group),
        skip_groups=tuple(args.skip_group), continue_on_failure=args.continue_on_failure,
        no_health_check=args.no_health_check, health_url=args.health_url,
        skip_validation=args.skip_validation, yes=args.yes, env=tuple(args.deploy_env),
        env_files=tuple(os.path.abspath(p) for p in args.deploy_env_file),
        timeout=args.deploy_timeout,
        plan_out=os.path.abspath(args.plan_out) if args.plan_out else None,
        plan=os.path.abspath(args.plan) if args.plan else None,
    )  # fmt: skip
    return run_pytest(
        ctx, config.path, options, as_json=args.json, pytest_args=list(args.pytest_args)
    )


def deployment_json(record: Any) -> dict[str, Any]:
    duration = (
        int((record.ended_at - record.started_at).total_seconds() * 1000)
        if record.ended_at
        else None
    )
    return {
        "id": record.id, "project": record.project, "target": record.target,
        "status": record.status, "dry_run": record.dry_run, "kind": record.kind,
        "who": record.who,
        "started_at": record.started_at, "ended_at": record.ended_at, "duration_ms": duration,
        "config_sha256": record.config_sha256,
    }  # fmt: skip


def run_status(ctx: Context) -> int:
    """The latest deployment of each target (or of one) and who holds its lock.

    pytest-deploy deploy status woofs
    pytest-deploy deploy status woofs -t production
    """
    project = ctx.project(ctx.args.project, store_only_ok=True)
    if ctx.args.target:
        targets = [ctx.require_target(project, ctx.args.target, in_use=True)]
    else:
        targets = sorted(ctx.known_targets(project, in_use=True))
    store = ctx.store()
    rows = []
    for target in targets:
        if store is not None:
            # a run whose process died on this host is not "running": say so in the store
            for id_, host, pid in store.interrupt_dead_runs(
                project.name, target, current=None, lock_held=False
            ):
                note(f"deployment {id_} (host {host}, pid {pid}) had ended without recording"
                     " it: now recorded as interrupted")  # fmt: skip
        # a run refused before anything ran (protected, lock held) is not the target's state
        recent = store.deployments(project.name, target, limit=50) if store else []
        latest = [r for r in recent if r.status != "refused"][:1]
        lock = store.lock_info(project.name, target) if store else None
        row: dict[str, Any] = {"target": target, "latest": None, "lock": None}
        if latest:
            row["latest"] = deployment_json(latest[0])
        if lock is not None:
            row["lock"] = {"holder": lock.holder, "host": lock.host, "pid": lock.pid,
                           "started_at": lock.started_at}  # fmt: skip
        rows.append(row)
    if ctx.args.json:
        emit_json({"project": project.name, "targets": rows})
        return 0
    table = []
    for row in rows:
        latest, lock = row["latest"], row["lock"]
        locked = f"{lock['holder']} ({lock['host']}, pid {lock['pid']})" if lock else None
        if latest is None:
            table.append([row["target"], "never deployed", None, None, None, None, None, locked])
            continue
        table.append([
            row["target"], latest["status"], latest["dry_run"], when(latest["started_at"]),
            latest["duration_ms"], latest["who"], latest["id"], locked,
        ])  # fmt: skip
    print_table(
        ["target", "status", "dry run", "started", "ms", "who", "run id", "locked by"],
        table,
        f"No targets for project {project.name!r}.",
    )
    say(f"store: {ctx.describe_store()}")
    return 0
