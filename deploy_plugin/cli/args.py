"""argparse helpers shared by the command modules: common options, one place for help."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def common_options(*, config: bool = True) -> argparse.ArgumentParser:
    """Options every command accepts (a parent parser, added to each leaf command)."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("where")
    group.add_argument(
        "--rootdir",
        metavar="DIR",
        help="pytest's rootdir (default: found like pytest, upward from the current folder)",
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
            help="the project's config file (default: search the current folder)",
        )
    parent.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    return parent


def add_command(
    subparsers: Any,
    name: str,
    *,
    help: str,
    example: str,
    handler: Callable[..., int | None] | None = None,
    parents: list[argparse.ArgumentParser] | None = None,
    description: str | None = None,
) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` ends with an example."""
    parser = subparsers.add_parser(
        name,
        help=help,
        description=description or help[:1].upper() + help[1:] + ".",
        epilog="example:\n" + "\n".join(f"  {line}" for line in example.strip().splitlines()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=parents or [],
    )
    if handler is not None:
        parser.set_defaults(handler=handler)
    return parser  # type: ignore[no-any-return]  # argparse's subparsers are untyped


def add_family(subparsers: Any, name: str, *, help: str, example: str) -> Any:
    """A command family (``target``, ``env``...): its own subcommands, one required."""
    parser = add_command(subparsers, name, help=help, example=example)
    return parser.add_subparsers(dest=f"{name}_command", metavar="COMMAND", required=True)


def add_target_option(parser: argparse.ArgumentParser, *, help: str) -> None:
    """``--target NAME`` (checked by the command, so that a missing one lists the known)."""
    parser.add_argument("--target", "-t", metavar="NAME", help=help)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value
