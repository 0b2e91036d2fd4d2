"""argparse, written once: a command is one :meth:`Commands.add` line naming its handler
and arguments; the handler's docstring is its help, ending with an example.

The options every command takes (``--rootdir``, ``--deploy-store``, ``--config``,
``--json``), the positional arguments and the options many take (``--target``, ``--yes``,
``--reason``, ``--dry-run``, ``--deploy-env``) are defined here once; a command adds only
what is its own.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from deploy_plugin.config import ENV_NAME_RE, NAME_RE

from .output import UsageProblem

#: A command's handler: the invocation's Context in, the exit code out (None: 0).
Handler = Callable[[Any], "int | None"]

#: The positional arguments, by the name a command lists them with: (dest, keywords).
POSITIONALS: dict[str, tuple[str, dict[str, Any]]] = {
    "project": ("project", {"metavar": "PROJECT"}),
    "project?": ("project", {"metavar": "PROJECT", "nargs": "?"}),
    "target": ("name", {"metavar": "TARGET"}),
    "var": ("name", {"metavar": "NAME"}),
    "file": ("file", {"metavar": "FILE", "help": "path relative to the config's root"}),
}

DEPLOY_ENV_HELP = "an env var for this run (a secret: masked)"
TARGET_REQUIRED = "the target (required)"
YES_PROTECTED = "confirm a protected target"


@cache
def where_options(config: bool = True) -> argparse.ArgumentParser:
    """The options every command accepts (a parent parser of each leaf command)."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("where")
    group.add_argument(
        "--rootdir",
        metavar="DIR",
        help="pytest's rootdir (default: pytest's, found from the current folder)",
    )
    group.add_argument(
        "--deploy-store",
        metavar="URL",
        help="store URL: postgresql://... or sqlite:///PATH (default: $DEPLOY_STORE_URL, "
        "ini deploy_store, else <rootdir>/.deploy/state.sqlite3)",
    )
    if config:
        group.add_argument(
            "--config",
            metavar="PATH",
            help="the project's config file (default: the configs pytest collects here)",
        )
    parent.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    return parent


class Commands:
    """The subcommands of the program, or of a family (``target``, ``env``...)."""

    def __init__(self, subparsers: Any) -> None:
        self.subparsers = subparsers

    def _parser(
        self, name: str, doc: str | None, parents: Sequence[argparse.ArgumentParser]
    ) -> argparse.ArgumentParser:
        """A subcommand whose help is ``doc``'s first paragraph and whose ``--help`` ends
        with its last one, the example."""
        head, _, rest = (doc or "").partition("\n")
        paragraphs = f"{head}\n{textwrap.dedent(rest)}".strip().split("\n\n")
        summary, example = " ".join(paragraphs[0].split()), paragraphs[-1]
        parser: argparse.ArgumentParser = self.subparsers.add_parser(
            name,
            help=summary[:1].lower() + summary[1:].rstrip("."),
            description=summary,
            epilog="example:\n" + textwrap.indent(example.strip(), "  "),
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=parents,
        )
        return parser

    def family(self, name: str, doc: str | None) -> Commands:
        """A command family (``doc`` as for :meth:`add`): its own subcommands, one of them
        required."""
        parser = self._parser(name, doc, [])
        return Commands(
            parser.add_subparsers(dest=f"{name}_command", metavar="COMMAND", required=True)
        )

    def add(
        self,
        handler: Handler,
        args: str = "",
        *,
        name: str | None = None,
        target: str | None = None,
        dry_run: bool = False,
        yes: str | None = None,
        reason: str | None = None,
        deploy_env: str | None = None,
        config: bool = True,
    ) -> argparse.ArgumentParser:
        """A leaf command run by ``handler`` and named after it (``run_mark_applied``:
        ``mark-applied``) unless ``name`` is given. The handler's docstring is its help:
        the first paragraph what the command does, the last one its example.

        ``args`` names its positional arguments (:data:`POSITIONALS`, space-separated); an
        option is added when its help is given (``--target`` is checked by the command, so
        that a missing one lists the known targets)."""
        name = name or handler.__name__.removeprefix("run_").replace("_", "-")
        parser = self._parser(name, handler.__doc__, [where_options(config)])
        parser.set_defaults(handler=handler)
        for arg in args.split():
            dest, keywords = POSITIONALS[arg]
            parser.add_argument(dest, **keywords)
        if target:
            parser.add_argument("--target", "-t", metavar="NAME", help=target)
        if dry_run:
            parser.add_argument(
                "--dry-run", action="store_true", help="show the plan, change nothing"
            )
        if yes:
            parser.add_argument("--yes", "-y", action="store_true", help=yes)
        if reason:
            parser.add_argument("--reason", metavar="TEXT", help=reason)
        if deploy_env:
            parser.add_argument(
                "--deploy-env", action="append", default=[], metavar="KEY=VALUE", help=deploy_env
            )
        return parser


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def check_target_name(name: str) -> None:
    """UsageProblem unless ``name`` is a valid target name (letters, digits, _ and -)."""
    _check(
        NAME_RE.match(name),
        f"Invalid target name {name!r}: a target name may hold only letters, digits, '_' and"
        " '-' (no spaces), because it becomes a level of every node id"
        " (deploy.yaml::<target>::...). Example: production, staging-eu.",
    )


def check_var_name(name: str) -> None:
    """UsageProblem unless ``name`` is a valid shell variable name."""
    _check(
        ENV_NAME_RE.match(name),
        f"Invalid env var name {name!r}: it must be a shell identifier (letters, digits and"
        " '_', not starting with a digit), so that commands can read it as $NAME. Example:"
        " DATABASE_URL.",
    )


def _check(valid: object, problem: str) -> None:
    if not valid:
        raise UsageProblem(problem)
