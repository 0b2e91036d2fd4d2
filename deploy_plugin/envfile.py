"""``--deploy-env-file FILE``: env vars of a run read from a dotenv file, off the command line.

Dotenv syntax as python-dotenv reads it (the common reader of ``.env`` files): ``KEY=VALUE``
lines, ``# comments``, single or double quotes (double quotes take ``\\n``-style escapes
and may span lines), an optional ``export`` prefix. Values are taken as written: no
``${VAR}`` expansion (the shell of each step expands ``$VARS``). Every value is a secret,
masked like a stored one.

Every value is checked as it is read, so a bad file is exit 2 before anything runs: a
value holding a NUL byte or over Linux's 128 KiB per variable, or files whose variables
are more than any process can be started with (ARG_MAX), would otherwise be found only by
the first step.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from dotenv.parser import parse_stream

from deploy_plugin.config import ENV_NAME_RE
from deploy_plugin.facts import MAX_ARG_CHARS


class EnvFileError(Exception):
    """A dotenv file that cannot be used: one paragraph with the file and line."""


def read_env_file(path: str | Path) -> dict[str, str]:
    """The variables of one dotenv file, in file order (a repeated name: the last wins)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        why = getattr(err, "strerror", None) or "not UTF-8 text"
        raise EnvFileError(
            f"--deploy-env-file {path}: cannot read it ({why}). Give a readable dotenv file"
            " of KEY=VALUE lines."
        ) from None
    values: dict[str, str] = {}
    for binding in parse_stream(io.StringIO(text)):
        line = binding.original.line
        if binding.key is None and not binding.error:
            continue  # a blank line or a comment
        if binding.error or binding.key is None or binding.value is None:
            raise EnvFileError(
                f"--deploy-env-file {path}, line {line}: expected KEY=VALUE (optionally"
                " `export KEY=VALUE`, the value in quotes if it holds spaces or #); the line is"
                " not shown, as it may hold a secret. Fix that line; nothing was run."
            )
        if not ENV_NAME_RE.match(binding.key):
            raise EnvFileError(
                f"--deploy-env-file {path}, line {line}: the name before '=' is not a shell"
                " variable name (letters, digits and _, not starting with a digit), so no"
                " command could read it as $NAME (the line is not shown: it may be part of a"
                " secret, e.g. a base64 value's continuation). Rename it; nothing was run."
            )
        problem = _unpassable(binding.key, binding.value)
        if problem:
            raise EnvFileError(
                f"--deploy-env-file {path}, line {line}: the value of {binding.key} {problem}"
                " (the value is not shown: it may be a secret). Fix that line; nothing was run."
            )
        values[binding.key] = binding.value
    return values


def _unpassable(name: str, value: str) -> str | None:
    """Why no process could be given ``name=value`` in its environment (None: it can).

    The same limits :mod:`deploy_plugin.engine.shell` enforces at each step, found here before
    the first step, so a bad file runs nothing."""
    if "\0" in value:
        return "holds a NUL byte, which no process environment can carry"
    size = len(name.encode()) + len(value.encode()) + 1
    if size >= MAX_ARG_CHARS:
        return (
            f"is {size:,} bytes with its name; Linux passes at most {MAX_ARG_CHARS:,} bytes"
            " per variable. Keep large values in a file and pass its path"
        )
    return None


def read_env_files(paths: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Several files, in order: a later file's value of a name wins. EnvFileError when,
    with this process's environment (which every step inherits), they are more than any
    process can be started with."""
    values: dict[str, str] = {}
    for path in paths:
        values.update(read_env_file(path))
    size = environment_size({**os.environ, **values})
    limit = os.sysconf("SC_ARG_MAX")
    if values and size >= limit:
        raise EnvFileError(
            f"--deploy-env-file {', '.join(map(str, paths))}: its {len(values):,} variable(s),"
            f" with the environment of this process, take {size:,} bytes; Linux starts a"
            f" process with at most {limit:,} bytes of arguments and environment together"
            " (ARG_MAX), so no step could start. Keep large or many values in a file and pass"
            " its path; nothing was run."
        )
    return values


def environment_size(env: dict[str, str]) -> int:
    """What ``env`` takes of ARG_MAX when a process starts: each ``NAME=VALUE`` string with
    its NUL, and its pointer."""
    return sum(len(k.encode()) + len(v.encode()) + 2 + 8 for k, v in env.items())
