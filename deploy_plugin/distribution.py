"""pytest-xdist support: one worker per target, each deployment's items in order.

``-n N`` alone selects ``--dist loadgroup``; modes that would spread one deployment (its
steps and its smoke tests) over several workers are refused. The grouping itself is
done by :class:`DeployScheduling`, which keys every deployment item and every smoke test
by its target (xdist's own loadgroup relies on rewriting node ids, which current pytest
no longer allows).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from deploy_plugin.config import is_config_file

SAFE_DIST = ("no", "loadgroup")


def choose_dist_mode(config: pytest.Config) -> None:
    """Keep each deployment on one worker, or refuse the run with one line."""
    dist = config.getoption("dist", "no")
    if dist in SAFE_DIST:
        return
    args = config.invocation_params.args
    explicit = any(a == "--dist" or a.startswith("--dist=") or a == "-d" for a in args)
    if dist == "load" and not explicit:
        config.option.dist = "loadgroup"
        return
    raise pytest.UsageError(
        f"--dist {dist} would split a deployment across workers and break its order; use -n N"
        " alone (the plugin picks --dist loadgroup: one worker per target) or --dist loadgroup"
    )


def target_scope(nodeid: str, targets: list[str], rootdir: Path) -> str | None:
    """``deploy-<target>`` for a deployment item or a smoke test of that target, else None."""
    parts = nodeid.split("::")
    if len(parts) >= 3 and parts[1] in targets and _is_config(rootdir / parts[0]):
        return f"deploy-{parts[1]}"
    if nodeid.endswith("]") and "[" in nodeid:
        params = nodeid[nodeid.rindex("[") :]
        for target in sorted(targets, key=len, reverse=True):
            if any(
                marker in params
                for marker in (f"[{target}]", f"[{target}-", f"-{target}]", f"-{target}-")
            ):
                return f"deploy-{target}"
    return None


@lru_cache(maxsize=1024)
def _is_config(path: Path) -> bool:
    return path.is_file() and is_config_file(path)


def make_scheduler(config: pytest.Config, log: Any, targets: list[str]) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    rootdir = Path(config.rootpath)

    class DeployScheduling(LoadScopeScheduling):
        """Load scheduling where each target's items form one unit of work."""

        def _split_scope(self, nodeid: str) -> str:
            return target_scope(nodeid, targets, rootdir) or nodeid

    return DeployScheduling(config, log)
