"""The deployment config: model, loading (YAML or JSON, with line numbers) and validation.

A config is validated in two passes: the JSON Schema shipped in this package
(``schema.json``, also usable by editors) checks shapes and types, then Python checks
what a schema cannot say (unique names, placeholders, the tracked-group rule, the root
folder...). Every problem becomes a :class:`ConfigError` whose text is one paragraph naming
the file, line and field, what was expected and how to fix it.

This package imports nothing else of ours. Its modules, each importing only those above it:

* ``errors``       :class:`ConfigError`
* ``commands``     command placeholders: finding, checking, rendering
* ``model``        the frozen dataclasses of a loaded config
* ``paths``        field paths (``groups[1].order``) and their lines
* ``yaml_parser``, ``json_parser``, ``parsing``   reading a file with a line per field
* ``hints``        the wording of problems: type words, per-field hints
* ``schema_check`` the JSON Schema pass (``schema.json``), each error worded
* ``requires``     the promotion gate's checks (``targets.<name>.requires``)
* ``validation``   the checks a schema cannot express
* ``loading``      :func:`load_config` and :func:`is_config_file`

Names are imported from their module when first used (PEP 562), so that a plain pytest
run, which imports the plugin, pays for PyYAML and the validation only when it reads a
config.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .commands import (
        FILE_PLACEHOLDERS,
        PLACEHOLDERS,
        PlaceholderError,
        placeholders,
        render_command,
        render_path,
    )
    from .errors import ConfigError
    from .loading import CONFIG_SUFFIXES, is_config_file, load_config
    from .model import (
        ENV_NAME_RE,
        NAME_RE,
        RESERVED_GROUP_NAMES,
        TARGET_TYPES,
        DeployConfig,
        EmailNotify,
        Group,
        HealthCheck,
        Notify,
        TargetDecl,
        is_repeatable,
        target_type_problem,
    )
    from .paths import format_path
    from .schema_check import SCHEMA_PATH, schema
    from .validation import url_scheme_problem

#: Where each public name lives.
_HOME = {
    **dict.fromkeys(
        ("FILE_PLACEHOLDERS", "PLACEHOLDERS", "PlaceholderError", "placeholders",
         "render_command", "render_path"),
        "commands",
    ),
    "ConfigError": "errors",
    **dict.fromkeys(
        ("CONFIG_SUFFIXES", "is_config_file", "load_config"), "loading"
    ),
    **dict.fromkeys(
        ("ENV_NAME_RE", "NAME_RE", "RESERVED_GROUP_NAMES", "TARGET_TYPES", "DeployConfig",
         "EmailNotify", "Group", "HealthCheck", "Notify", "TargetDecl", "is_repeatable",
         "target_type_problem"),
        "model",
    ),
    "format_path": "paths",
    **dict.fromkeys(("SCHEMA_PATH", "schema"), "schema_check"),
    "url_scheme_problem": "validation",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    # not cached in globals(): pytester (in-process runs) drops the submodules afterwards
    return value


__all__ = [
    "ENV_NAME_RE",
    "NAME_RE",
    "CONFIG_SUFFIXES",
    "FILE_PLACEHOLDERS",
    "PLACEHOLDERS",
    "RESERVED_GROUP_NAMES",
    "TARGET_TYPES",
    "SCHEMA_PATH",
    "ConfigError",
    "DeployConfig",
    "EmailNotify",
    "Group",
    "HealthCheck",
    "Notify",
    "PlaceholderError",
    "TargetDecl",
    "format_path",
    "is_config_file",
    "is_repeatable",
    "load_config",
    "placeholders",
    "render_command",
    "render_path",
    "schema",
    "target_type_problem",
    "url_scheme_problem",
]
