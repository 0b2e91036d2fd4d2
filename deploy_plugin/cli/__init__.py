"""The ``pytest-deploy`` command: targets, env vars, migrations and deployments of the
projects whose configs live under the current folder (DESIGN §6).

One module per command family; each has ``register(subparsers)``. ``deploy run`` and
``migration apply`` run pytest underneath (``runner``), so there is one engine. Exit codes:
0 ok, 1 failed, 2 usage (bad input; nothing changed).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from deploy_plugin.config import ConfigError
from deploy_plugin.store import StoreError

from . import configs, deploy, env, history, init, migrations, projects, targets
from .args import Commands
from .context import Context
from .output import FAILED, USAGE, CliError, UsageProblem, note

__all__ = ["build_parser", "main"]

EXAMPLES = """\
examples (the seed's walk-through):
  pytest-deploy init deployments/shop
  pytest-deploy target add woofs production --type database --host db.example.com
  pytest-deploy env set woofs DATABASE_URL - --target production      # value on stdin
  pytest-deploy migration status woofs --target production
  pytest-deploy deploy run woofs --target production --dry-run
  pytest-deploy deploy run woofs --target production
  pytest-deploy migration history woofs --target production --limit 20
  pytest-deploy project show woofs

Every command takes --help, --json, --rootdir, --deploy-store and --config.
Exit codes: 0 ok, 1 failed, 2 usage (bad input: nothing changed)."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="pytest-deploy",
        description="Manage pytest-deploy projects: targets, env vars, migrations, deployments.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"pytest-deploy {_version()}",
        help="print pytest-deploy's version and exit",
    )  # fmt: skip
    commands = Commands(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    for module in (init, configs, targets, env, migrations, deploy, history, projects):
        module.register(commands)
    return parser


def _version() -> str:
    """The installed distribution's version (importlib.metadata: no import of our own)."""
    # deferred: +31 modules, 10 ms (importlib.metadata, zipfile, email.message, …)
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pytest-deploy")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _split_pytest_args(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """Arguments after the first ``--`` go to pytest (``deploy run`` only)."""
    if "--" not in argv:
        return argv, None
    index = argv.index("--")
    return argv[:index], argv[index + 1 :]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``pytest-deploy`` with ``argv`` (default: the command line); returns the exit code."""
    own, extra = _split_pytest_args(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    try:
        args = parser.parse_args(own)
    except SystemExit as exc:  # --help (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else USAGE
    ctx = Context(args)
    try:
        if extra is not None:
            if not getattr(args, "takes_pytest_args", False):
                raise UsageProblem(
                    "Only `deploy run` takes pytest options after `--`. To pass a value that "
                    "starts with '-' to `env set`, give '-' and the value on stdin."
                )
            args.pytest_args = extra
        code = args.handler(ctx) or 0
        if ctx.store_read:
            # on stderr, so that stdout (tables, --json) stays as it was; errors stay one
            # paragraph (the store's own errors name it)
            note(f"store: {ctx.describe_store()}")
        return code
    except CliError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.code
    except (StoreError, ConfigError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return FAILED
    except OSError as err:  # a file that vanished or cannot be read mid-command
        print(f"error: {err.strerror or err} ({err.filename or 'no file name'}).", file=sys.stderr)
        return FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        ctx.close()
