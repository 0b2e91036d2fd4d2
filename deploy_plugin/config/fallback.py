"""The config a ``deploy.sh`` stands for in a folder without a config (DESIGN §1).

Pure (the plugin's collector is :mod:`deploy_plugin.script`; the CLI finds projects with it).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .loading import is_config_file
from .model import DeployConfig, Group

SCRIPT_NAME = "deploy.sh"
#: The command the fallback runs, in the script's folder.
SCRIPT_COMMAND = f"bash {SCRIPT_NAME}"


def is_fallback_script(path: Path) -> bool:
    """Whether ``path`` is a ``deploy.sh`` whose folder holds no config (DESIGN §1)."""
    if path.name != SCRIPT_NAME or not path.is_file():
        return False
    try:
        siblings = list(path.parent.iterdir())
    except OSError:
        return False
    return not any(is_config_file(p) for p in siblings if p.is_file())


def script_config(path: Path) -> DeployConfig:
    """The config a ``deploy.sh`` stands for: one group ``deploy`` running it."""
    raw = path.read_bytes()
    root = path.parent.resolve()
    group = Group(name="deploy", order=1, index=0, deploy_command=SCRIPT_COMMAND)
    return DeployConfig(
        path=path,
        root=root,
        project=root.name,
        groups=(group,),
        health_check=None,
        notify=(),
        targets={},
        source_text=raw.decode("utf-8", errors="replace"),
        sha256=hashlib.sha256(raw).hexdigest(),
        data={},
    )
