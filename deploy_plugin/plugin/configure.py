"""Checks of pytest-deploy's options at ``pytest_configure``, before anything is collected:
files they name (the report's and plan's paths, env files, a plan to apply) and mixes of
options that mean nothing. Each is a usage error (pytest.UsageError: exit 4, pytest's
USAGE_ERROR, one paragraph on stderr, nothing run), as pytest's own for --junitxml: a bad
file, a bad --deploy-timeout, a mix of saved-plan options that means nothing, a path that
could never be written.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from deploy_plugin.plugin.session import DeploySession


def read_env_files(config: pytest.Config, session: DeploySession) -> None:
    """Read --deploy-env-file (a usage error on a bad file); warn that --deploy-env is
    visible."""
    if session.options.env_files:  # python-dotenv is imported only for them
        # deferred: +12 modules, 22 ms (envfile, config.commands, config.lint, …)
        from deploy_plugin.envfile import EnvFileError, read_env_files

        try:
            session.file_env = read_env_files(session.options.env_files)
        except EnvFileError as err:
            raise pytest.UsageError(str(err)) from None
    if session.cli_env:
        names = ", ".join(sorted(session.cli_env))
        option_warning(
            config,
            f"pytest-deploy: --deploy-env puts the value of {names} on the command line,"
            " where other users of this machine can read it (ps, /proc/<pid>/cmdline);"
            " put it in a file readable only by you and pass --deploy-env-file FILE"
            " instead (or store it with `pytest-deploy env set`)",
        )


def option_warning(config: pytest.Config, text: str) -> None:
    """Warn of how an option is used, at configure time. A filter that makes warnings
    errors (``-W error``) makes it a usage error: one paragraph, exit 4, nothing run (an
    exception out of pytest_configure would be an INTERNALERROR traceback)."""
    try:
        config.issue_config_time_warning(pytest.PytestWarning(text), stacklevel=3)
    except Warning as err:
        raise pytest.UsageError(
            f"{err} (a warning, made an error by -W or filterwarnings)"
        ) from None


def check_plan_options(config: pytest.Config, session: DeploySession) -> None:
    """Refuse option mixes saved plans cannot honour (a usage error, as for a plan that does
    not match); read the plan being applied."""
    options = session.options
    if options.timeout is not None and not (math.isfinite(options.timeout) and options.timeout > 0):
        raise pytest.UsageError(
            f"--deploy-timeout {options.timeout:g}: give a number of seconds above 0 (a"
            " finite one); nothing was run"
        )
    if not (options.plan or options.plan_out):
        return
    problem = None
    if options.plan and options.plan_out:
        problem = "--deploy-plan applies a plan and --deploy-plan-out makes one: give one of them"
    elif options.plan_out and not options.dry_run:
        problem = (
            "--deploy-plan-out saves the plan of a dry run: add --dry-run (then apply the"
            " file with --deploy-plan)"
        )
    elif options.plan and options.dry_run:
        problem = (
            "--deploy-plan applies a saved plan; drop --dry-run (the plan file already shows"
            " what would run)"
        )
    elif config.getoption("numprocesses", None):
        problem = (
            "saved plans (--deploy-plan, --deploy-plan-out) are made and applied in one"
            " process: drop -n"
        )
    if problem is not None:
        raise pytest.UsageError(f"{problem}; nothing was run")
    if options.plan_out:
        check_writable(options.plan_out, "--deploy-plan-out")
    if options.plan:
        # deferred: +3 modules, 8 ms (saved_plans, hmac, secrets)
        from deploy_plugin.saved_plans import PlanFileError, load

        try:
            session.saved_plan = load(options.plan)
        except PlanFileError as err:
            raise pytest.UsageError(str(err)) from None


def check_writable(path: str, flag: str = "--deploy-report") -> None:
    """Refuse a --deploy-report path that could never be written, before deploying."""
    if Path(path).is_dir():
        raise pytest.UsageError(
            f"{flag} {path}: that is a folder; give a file name, e.g. {path}/report.json"
        )
    folder = Path(path).absolute().parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise pytest.UsageError(
            f"{flag} {path}: {folder} is not a writable folder; choose another path"
        )
