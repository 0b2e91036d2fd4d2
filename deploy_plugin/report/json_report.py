"""``--deploy-report FILE``: the deployments of a run as one JSON file (DESIGN §6's shared
report shape, each deployment's :meth:`~deploy_plugin.engine.results.DeploymentReport.to_json`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from deploy_plugin.engine.errors import soft_warn
from deploy_plugin.engine.results import DeploymentReport


def write_json(path: str, reports: list[DeploymentReport]) -> None:
    """``{"deployments": [...]}`` in the shared report shape, written atomically."""
    data = {"deployments": [report.to_json() for report in reports]}
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, target)
    except OSError as err:
        soft_warn(f"pytest-deploy: --deploy-report {path} not written: {err}")
