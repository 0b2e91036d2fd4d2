"""``--deploy-env-file FILE``: env vars of a run read from a dotenv file, off the command line.

Dotenv syntax as python-dotenv reads it (the common reader of ``.env`` files): ``KEY=VALUE``
lines, ``# comments``, single or double quotes (double quotes take ``\\n``-style escapes
and may span lines), an optional ``export`` prefix. Values are taken as written: no
``${VAR}`` expansion (the shell of each step expands ``$VARS``). Every value is a secret,
masked like a stored one.
"""

from __future__ import annotations

import io
from pathlib import Path

from dotenv.parser import parse_stream

from deploy_plugin.config import ENV_NAME_RE


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
        values[binding.key] = binding.value
    return values


def read_env_files(paths: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Several files, in order: a later file's value of a name wins."""
    values: dict[str, str] = {}
    for path in paths:
        values.update(read_env_file(path))
    return values
