"""The config a ``deploy.sh`` stands for in a folder without a config (DESIGN §1).

Pure (the plugin's collector is :mod:`deploy_plugin.plugin.script`; the CLI finds projects with it).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .loading import is_config_file
from .model import DeployConfig, Group

SCRIPT_NAME = "deploy.sh"
#: The command the fallback runs, in the script's folder.
SCRIPT_COMMAND = f"bash {SCRIPT_NAME}"


def is_fallback_script(path: Path, top: Path | None = None) -> bool:
    """Whether ``path`` is a ``deploy.sh`` that stands for a project of its own: no config
    in its folder (DESIGN §1), nor in a folder above it up to ``top`` (pytest's rootdir,
    the CLI's search folder): a script inside a config's tree is that project's, run by
    its groups if at all, never a second deployment."""
    if path.name != SCRIPT_NAME or not path.is_file():
        return False
    folder = path.parent.resolve()
    stop = Path(top).resolve() if top is not None else folder
    while True:
        try:
            entries = list(folder.iterdir())
        except OSError:
            return False
        if any(is_config_file(p) for p in entries if p.is_file()):
            return False
        if folder == stop or stop not in folder.parents:
            return True
        folder = folder.parent


def script_config(path: Path) -> DeployConfig:
    """The config a ``deploy.sh`` stands for: one group ``deploy`` running it."""
    raw = path.read_bytes()
    root = path.parent.resolve()
    group = Group(name="deploy", order=1, index=0, deploy_command=SCRIPT_COMMAND)
    return DeployConfig(
        path=path,
        root=root,
        project=root.name,
        project_named=False,
        groups=(group,),
        health_check=None,
        notify=(),
        targets={},
        source_text=raw.decode("utf-8", errors="replace"),
        sha256=hashlib.sha256(raw).hexdigest(),
        data={},
    )
