"""The options of pytest-deploy (DESIGN §6): their definitions, and one frozen dataclass.

:class:`DeployOptions` is what a pytest session was asked for; the plugin reads it from
pytest's config (:meth:`DeployOptions.from_pytest`) and the ``pytest-deploy`` CLI builds
its pytest command line from one (:meth:`DeployOptions.args`), so both mean the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from deploy_plugin.config import ENV_NAME_RE
from deploy_plugin.store import store_url

if TYPE_CHECKING:  # the CLI builds options without importing pytest
    import pytest

# options that mean nothing without a target, with their flag for the message
NEEDS_TARGET = {
    "deploy_dry_run": "--dry-run",
    "deploy_groups": "--group",
    "deploy_skip_groups": "--skip-group",
    "deploy_continue_on_failure": "--continue-on-failure",
    "deploy_env": "--deploy-env",
    "deploy_report": "--deploy-report",
    "deploy_plan_out": "--deploy-plan-out",
    "deploy_plan": "--deploy-plan",
    "deploy_env_file": "--deploy-env-file",
    "deploy_timeout": "--deploy-timeout",
    "deploy_html": "--deploy-html",
    "deploy_rollback": "--deploy-rollback",
    "deploy_rollback_to": "--deploy-rollback-to",
    "deploy_check_rollback": "--deploy-check-rollback",
    "deploy_atomic": "--deploy-atomic",
    "deploy_strict_schema": "--deploy-strict-schema",
    "deploy_reapply_missing": "--deploy-reapply-missing",
    "deploy_to": "--deploy-to",
}


def add_options(parser: pytest.Parser) -> None:
    """The command-line options and ini keys of DESIGN §6."""
    group = parser.getgroup("deploy", "deployments (pytest-deploy)")

    def flag(name: str, dest: str, help: str) -> None:
        group.addoption(name, action="store_true", dest=dest, help=help)

    def each(name: str, dest: str, metavar: str, help: str) -> None:  # repeatable
        group.addoption(name, action="append", default=[], dest=dest, metavar=metavar, help=help)

    def value(name: str, dest: str, metavar: str, kind: type | None = None, *, help: str) -> None:
        group.addoption(name, dest=dest, metavar=metavar, help=help, type=kind)

    each(
        "--deploy-target",
        "deploy_target",
        "NAME",
        "deploy every collected config to this target (repeatable: one deployment each)",
    )
    flag("--dry-run", "deploy_dry_run", "plan only: show every command, run none, change nothing")
    each("--group", "deploy_groups", "NAME", "deploy only this group (repeatable)")
    each("--skip-group", "deploy_skip_groups", "NAME", "leave this group out (repeatable)")
    flag(
        "--continue-on-failure",
        "deploy_continue_on_failure",
        "after a failed group, carry on with the next group",
    )
    flag("--no-health-check", "deploy_no_health_check", "do not run the health check")
    value(
        "--deploy-health-url",
        "deploy_health_url",
        "URL",
        help="poll this URL instead of the config's health_check.url",
    )
    flag(
        "--skip-validation",
        "deploy_skip_validation",
        "do not check required env vars (drift, the lock and the config are still checked)",
    )
    value(
        "--deploy-store",
        "deploy_store",
        "URL",
        help="store URL: postgresql://... or sqlite:///PATH "
        "(default: $DEPLOY_STORE_URL, ini deploy_store, else <rootdir>/.deploy/state.sqlite3)",
    )
    each(
        "--deploy-env",
        "deploy_env",
        "KEY=VALUE",
        "set an env var for this run's steps (a secret: masked everywhere, but visible"
        " to other users of the machine in the process list: prefer --deploy-env-file)",
    )
    each(
        "--deploy-env-file",
        "deploy_env_file",
        "FILE",
        "read env vars for this run's steps from a dotenv file (KEY=VALUE lines;"
        " secrets, masked everywhere, never on a command line; repeatable, later wins)",
    )
    value(
        "--deploy-timeout",
        "deploy_timeout",
        "SECONDS",
        float,
        help="time limit of each command whose group sets no timeout_seconds, and of a"
        " deploy.sh fallback (default: none)",
    )
    value(
        "--deploy-plan-out",
        "deploy_plan_out",
        "FILE.json",
        help="with --dry-run: save the plan (steps, commands, and what decided them) to apply"
        " later with --deploy-plan",
    )
    value(
        "--deploy-plan",
        "deploy_plan",
        "FILE.json",
        help="apply a saved plan: exactly its steps, once, refused if anything it was made"
        " from changed",
    )
    value(
        "--deploy-report",
        "deploy_report",
        "FILE.json",
        help="write the deployments' results as JSON",
    )
    value(
        "--deploy-html",
        "deploy_html",
        "FILE.html",
        help="write this run with its history around it as one self-contained HTML page",
    )
    flag("--yes", "deploy_yes", "confirm a deployment to a protected target without asking")
    value(
        "--deploy-rollback",
        "deploy_rollback",
        "N",
        int,
        help="roll back the last N applied migrations (newest first) instead of deploying",
    )
    value(
        "--deploy-rollback-to",
        "deploy_rollback_to",
        "FILE",
        help="roll back every migration applied after FILE (root-relative), FILE itself kept",
    )
    flag(
        "--deploy-check-rollback",
        "deploy_check_rollback",
        "for a throw-away or CI database: per pending migration, apply it, run its down,"
        " compare the schema with before, apply it again",
    )
    flag(
        "--deploy-atomic",
        "deploy_atomic",
        "when a step fails, undo this deployment in reverse (rollback_command of each"
        " completed group, the down of each migration it applied); also `atomic: true`",
    )
    flag(
        "--deploy-strict-schema",
        "deploy_strict_schema",
        "fail preflight when a tracked database's schema changed since the last"
        " successful run (default: a warning)",
    )
    flag(
        "--deploy-reapply-missing",
        "deploy_reapply_missing",
        "apply again the migrations that the store records as applied but the target"
        " database's ledger lacks (a restored or recreated database; a CI job that recreates"
        " its database every run); without it such a run stops at preflight",
    )
    value(
        "--deploy-to",
        "deploy_to",
        "FILE",
        help="apply pending migrations up to and including FILE (root-relative, or a base"
        " name only one tracked file has); later ones stay pending, reported skipped",
    )
    parser.addini("deploy_target", "default deploy targets (linelist)", type="linelist")
    parser.addini("deploy_store", "store URL (see --deploy-store)")
    parser.addini("deploy_health_url", "health URL override (see --deploy-health-url)")
    parser.addini(
        "deploy_keep_logs",
        "runs whose step logs each target keeps under .deploy/logs (default 50; 0: every run)",
    )


#: The fixture every deployment fixture depends on; parametrized with the targets' names.
TARGET_PARAM = "_deploy_target_name"


@dataclass(frozen=True)
class DeployOptions:
    """One run's pytest-deploy options (``store`` is not a flag the CLI passes: it goes in
    ``DEPLOY_STORE_URL``, out of the process list)."""

    targets: tuple[str, ...] = ()
    dry_run: bool = False
    groups: tuple[str, ...] = ()
    skip_groups: tuple[str, ...] = ()
    continue_on_failure: bool = False
    no_health_check: bool = False
    health_url: str | None = None
    skip_validation: bool = False
    store: str | None = None
    env: tuple[str, ...] = ()  # KEY=VALUE pairs, secrets
    report: str | None = None
    html: str | None = None
    yes: bool = False
    env_files: tuple[str, ...] = ()  # dotenv files (secrets stay in the file, out of argv)
    timeout: float | None = None
    plan_out: str | None = None
    plan: str | None = None
    keep_logs: int = 50  # ini deploy_keep_logs: runs of step logs kept per target
    rollback: int | None = None  # --deploy-rollback=N
    rollback_to: str | None = None  # --deploy-rollback-to=FILE
    check_rollback: bool = False  # --deploy-check-rollback
    atomic: bool = False  # --deploy-atomic
    strict_schema: bool = False  # --deploy-strict-schema
    reapply_missing: bool = False  # --deploy-reapply-missing
    deploy_to: str | None = None  # --deploy-to=FILE

    @classmethod
    def from_pytest(cls, config: pytest.Config) -> DeployOptions:
        """The options of a pytest session (command line, then ini; the store's URL by its
        precedence, see :func:`deploy_plugin.store.store_url`)."""
        # deferred: +197 modules, 113 ms (_pytest.config, _pytest.subtests, _pytest._code.code, …)
        import pytest

        # deferred: +17 modules, 11 ms (engine.steplogs, datetime, shutil, …)
        from deploy_plugin.engine.steplogs import parse_keep

        opt = config.getoption
        try:
            keep_logs = parse_keep(str(config.getini("deploy_keep_logs") or ""))
        except ValueError as err:
            raise pytest.UsageError(str(err)) from None
        return cls(
            # each target once, in the order given
            targets=tuple(dict.fromkeys(opt("deploy_target") or config.getini("deploy_target"))),
            dry_run=bool(opt("deploy_dry_run")),
            groups=tuple(opt("deploy_groups")),
            skip_groups=tuple(opt("deploy_skip_groups")),
            continue_on_failure=bool(opt("deploy_continue_on_failure")),
            no_health_check=bool(opt("deploy_no_health_check")),
            health_url=opt("deploy_health_url") or config.getini("deploy_health_url") or None,
            skip_validation=bool(opt("deploy_skip_validation")),
            store=store_url(opt("deploy_store"), config.getini("deploy_store")),
            env=tuple(opt("deploy_env")),
            report=opt("deploy_report"),
            html=opt("deploy_html"),
            yes=bool(opt("deploy_yes")),
            env_files=tuple(opt("deploy_env_file")),
            timeout=opt("deploy_timeout"),
            plan_out=opt("deploy_plan_out"),
            plan=opt("deploy_plan"),
            keep_logs=keep_logs,
            rollback=opt("deploy_rollback"),
            rollback_to=opt("deploy_rollback_to"),
            check_rollback=bool(opt("deploy_check_rollback")),
            atomic=bool(opt("deploy_atomic")),
            strict_schema=bool(opt("deploy_strict_schema")),
            reapply_missing=bool(opt("deploy_reapply_missing")),
            deploy_to=opt("deploy_to"),
        )

    def args(self) -> list[str]:
        """These options as pytest command-line arguments (without the store)."""
        args = [f"--deploy-target={t}" for t in self.targets]
        flags = {
            "--dry-run": self.dry_run,
            "--continue-on-failure": self.continue_on_failure,
            "--no-health-check": self.no_health_check,
            "--skip-validation": self.skip_validation,
            "--yes": self.yes,
            "--deploy-check-rollback": self.check_rollback,
            "--deploy-atomic": self.atomic,
            "--deploy-strict-schema": self.strict_schema,
            "--deploy-reapply-missing": self.reapply_missing,
        }
        args += [flag for flag, on in flags.items() if on]
        args += [f"--group={g}" for g in self.groups]
        args += [f"--skip-group={g}" for g in self.skip_groups]
        args += [f"--deploy-env={pair}" for pair in self.env]
        if self.health_url:
            args.append(f"--deploy-health-url={self.health_url}")
        if self.report:
            args.append(f"--deploy-report={self.report}")
        args += [f"--deploy-env-file={path}" for path in self.env_files]
        if self.timeout is not None:
            args.append(f"--deploy-timeout={self.timeout:g}")
        if self.plan_out:
            args.append(f"--deploy-plan-out={self.plan_out}")
        if self.plan:
            args.append(f"--deploy-plan={self.plan}")
        if self.html:
            args.append(f"--deploy-html={self.html}")
        if self.rollback is not None:
            args.append(f"--deploy-rollback={self.rollback}")
        if self.rollback_to is not None:
            args.append(f"--deploy-rollback-to={self.rollback_to}")
        if self.deploy_to is not None:
            args.append(f"--deploy-to={self.deploy_to}")
        return args

    @property
    def rolling_back(self) -> bool:
        """Whether this run rolls migrations back instead of deploying."""
        return self.rollback is not None or self.rollback_to is not None

    def rollback_problem(self) -> str | None:
        """Why the rollback options cannot be run as given (one paragraph), if so."""
        if self.check_rollback and self.rolling_back:
            given = "--deploy-rollback" if self.rollback is not None else "--deploy-rollback-to"
            return (
                f"--deploy-check-rollback and {given} cannot run together: the check applies"
                " each pending migration, runs its down, compares and applies it again, while"
                f" {given} undoes applied ones. Run them one after the other. Nothing was run."
            )
        if self.rollback is not None and self.rollback_to is not None:
            return (
                f"--deploy-rollback={self.rollback} and --deploy-rollback-to={self.rollback_to}"
                " both say how far to roll back; give one of them: --deploy-rollback=N undoes"
                " the last N applied migrations, --deploy-rollback-to=FILE every one applied"
                " after FILE. Nothing was run."
            )
        if self.rollback is not None and self.rollback <= 0:
            return (
                f"--deploy-rollback={self.rollback}: N must be a whole number of at least 1,"
                " the number of applied migrations to undo (newest first). Nothing was run."
            )
        return None

    def env_values(self) -> dict[str, str]:
        """``--deploy-env`` as a dict; pytest.UsageError for a malformed pair."""
        # deferred: +197 modules, 149 ms (_hashlib, _pytest.fixtures, zipfile, …)
        import pytest

        env: dict[str, str] = {}
        for pair in self.env:
            name, sep, value = pair.partition("=")
            if not sep or not ENV_NAME_RE.match(name):
                raise pytest.UsageError(
                    f"--deploy-env expects KEY=VALUE with KEY a shell variable name"
                    f" (letters, digits, _), got {name if sep else pair!r}"
                )
            env[name] = value
        return env
