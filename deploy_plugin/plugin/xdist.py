"""pytest-xdist support: one worker per target, each deployment's items in order.

A target that requires another target of the same run (the promotion gate) shares that
target's unit of work: one worker deploys the required one first (:func:`promotion_units`).

``-n N`` alone selects ``--dist loadgroup``; modes that would spread one deployment (its
steps and its smoke tests) over several workers are refused. The grouping itself is
done by :class:`DeployScheduling`, which keys every deployment item and every smoke test
by its target (xdist's own loadgroup relies on rewriting node ids, which current pytest
no longer allows).

When a worker dies, xdist puts its unfinished work units back in the queue for the
others: a deployment would go on on another worker from the step after the crash, with
neither its preflight nor its lock, and a step that kills its worker would run again and
again. :meth:`DeployScheduling.remove_node` keeps the unit of a deployment the worker had
started out of the queue instead and remembers its unfinished items (:class:`EndedUnit`);
the crash hooks in :mod:`deploy_plugin.plugin.crashes` report them "not run: worker crashed" and
end the deployment ``interrupted``. A deployment the worker had not started yet goes to
another worker and runs in full (preflight and lock first); plain tests of a crashed
worker are rescheduled as xdist does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from deploy_plugin.config import ConfigError, is_config_file, load_config

SAFE_DIST = ("no", "loadgroup")
#: The start of a deployment's unit of work (its target's steps and smoke tests) in the
#: scheduler; no node id starts so (a plain test's unit is its node id).
SCOPE_PREFIX = "::deploy-"
#: The name the xdist controller registers its CrashWatch under (deploy_plugin.plugin.crashes).
CRASH_WATCH = "deploy-crash-watch"


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


def target_scope(nodeid: str, targets: Sequence[str], rootdir: Path) -> str | None:
    """``::deploy-<target>`` for a deployment item or a smoke test of that target, else None."""
    parts = nodeid.split("::")
    if len(parts) >= 3 and parts[1] in targets and _is_config(rootdir / parts[0]):
        return f"{SCOPE_PREFIX}{parts[1]}"
    if nodeid.endswith("]") and "[" in nodeid:
        params = nodeid[nodeid.rindex("[") :]
        for target in sorted(targets, key=len, reverse=True):
            if any(
                marker in params
                for marker in (f"[{target}]", f"[{target}-", f"-{target}]", f"-{target}-")
            ):
                return f"{SCOPE_PREFIX}{target}"
    return None


@lru_cache(maxsize=1024)
def _is_config(path: Path) -> bool:
    return path.is_file() and is_config_file(path)


@dataclass(frozen=True)
class EndedUnit:
    """A deployment's unit of work that a crashed worker had started and left unfinished:
    never given to another worker. ``pending``: its node ids not run to the end, in run order (the
    crashed item first when it was this unit's); ``crashitem``: what the worker was
    running when it died (maybe an item of another unit)."""

    worker: str
    scope: str
    crashitem: str
    pending: tuple[str, ...]


def promotion_units(
    nodeids: Sequence[str], targets: Sequence[str], rootdir: Path
) -> dict[str, str]:
    """Each target of the run -> the target whose unit of work it joins: one that requires
    (``requires:``, in any collected config) another target of this run is deployed after
    it on the same worker, so that its promotion gate sees that deployment's record."""
    joined = {target: target for target in targets}

    def root(target: str) -> str:
        while joined[target] != target:
            target = joined[target]
        return target

    configs = {nodeid.split("::")[0] for nodeid in nodeids if nodeid.count("::") >= 2}
    for name in sorted(configs):
        path = rootdir / name
        if not _is_config(path):
            continue
        try:
            declared = load_config(path).targets
        except ConfigError:
            continue  # its validate item reports it
        for target, decl in declared.items():
            for required in decl.requires:
                if target in joined and required in joined:
                    a, b = sorted((root(target), root(required)), key=list(targets).index)
                    joined[b] = a
    return {target: root(target) for target in targets}


def make_scheduler(config: pytest.Config, log: Any, targets: Sequence[str]) -> Any:
    # deferred: +27 modules, 12 ms (execnet.gateway_base, xdist.remote, xdist.workermanage, …)
    from xdist.scheduler import LoadScopeScheduling

    rootdir = Path(config.rootpath)

    class DeployScheduling(LoadScopeScheduling):
        """Load scheduling where each target's items form one unit of work, and the
        unit of a deployment a crashed worker left unfinished ends there."""

        def __init__(self, config: pytest.Config, log: Any) -> None:
            super().__init__(config, log)
            self.ended: list[EndedUnit] = []
            self.units: dict[str, str] | None = None  # target -> the target whose unit it joins

        def _split_scope(self, nodeid: str) -> str:
            scope = target_scope(nodeid, targets, rootdir)
            if scope is None:
                return nodeid
            if self.units is None:  # the whole collection is known by the first call
                self.units = promotion_units(self.collection or [nodeid], targets, rootdir)
            return SCOPE_PREFIX + self.units[scope.removeprefix(SCOPE_PREFIX)]

        def remove_node(self, node: Any) -> str | None:
            """xdist's removal, except that a deployment's unfinished unit is not put back
            in the queue (the base class reschedules every unfinished unit)."""
            workload: dict[str, dict[str, bool]] = self.assigned_work.get(node, {})
            pending = [
                (scope, nodeid)
                for scope, unit in workload.items()
                for nodeid, done in unit.items()
                if not done
            ]
            if not pending:
                return super().remove_node(node)  # type: ignore[no-any-return]
            crashitem = pending[0][1]  # a worker runs its units' items in order
            for scope in [s for s in workload if s.startswith(SCOPE_PREFIX)]:
                unit = workload[scope]
                left = tuple(nodeid for nodeid, done in unit.items() if not done)
                started = crashitem in unit or any(unit.values())
                if left and started:
                    self.ended.append(EndedUnit(node.gateway.id, scope, crashitem, left))
                    del workload[scope]  # settled here: reported "not run", never rerun
            # what is left goes back in the queue: plain tests' unfinished units, and
            # deployments the worker had not started (another runs them in full)
            super().remove_node(node)
            return crashitem

        def take_ended(self) -> list[EndedUnit]:
            """The deployments' units ended by crashes since the last call."""
            ended, self.ended = self.ended, []
            return ended

    return DeployScheduling(config, log)
