"""The stop policy of a deployment (DESIGN §3): which step may still run after a failure.

Pure: it knows step references (node id, kind, group), never pytest or a store.

* A failed step stops its deployment: every later step is "not run: <node id> failed".
* Preflight reports every problem at once: its checks all run; after a failed check,
  nothing else does.
* With ``continue_on_failure`` the next groups still run; the failed group's remaining
  steps do not, and neither does the health check.
* A store failure or a lost lock stops everything, preflight included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class StepRef(Protocol):
    """What the policy needs to know of a step."""

    @property
    def nodeid(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def group_name(self) -> str | None: ...


@dataclass(frozen=True)
class StepId:
    """A plain :class:`StepRef`."""

    nodeid: str
    kind: str
    group_name: str | None = None


def step_ref(item: object) -> StepRef:
    """A StepRef of a deployment's item (only smoke tests, plain pytest tests, have no kind)."""
    return StepId(
        str(getattr(item, "nodeid")),  # noqa: B009 - any object with a node id
        str(getattr(item, "kind", "smoke")),
        getattr(item, "group_name", None),
    )


LOCK_LOST = "deployment lock lost"


@dataclass
class StopPolicy:
    """Failures seen so far in one deployment, and what they block."""

    continue_on_failure: bool = False
    failed: list[str] = field(default_factory=list)  # node ids, in order
    failed_groups: dict[str, str] = field(default_factory=dict)  # group -> first failure
    preflight_failed: str | None = None
    store_failed: str | None = None
    lock_lost: str | None = None  # why, once the deployment lock is gone
    soft_failed: list[str] = field(default_factory=list)  # failures that block nothing

    def blocker(self, step: StepRef) -> str | None:
        """Why ``step`` must not run: a failed step's node id or :data:`LOCK_LOST`; None if
        it may run."""
        if self.lock_lost:
            return LOCK_LOST
        if self.store_failed:
            return self.store_failed
        if self.preflight_failed and step.kind != "preflight":
            return self.preflight_failed
        if not self.failed:
            return None
        if step.kind == "health_check":
            return self.failed[0]
        if step.kind == "preflight":
            return None  # preflight reports every problem at once
        if self.continue_on_failure:
            return self.failed_groups.get(step.group_name or "")
        return self.failed[0]

    def record_failure(
        self, step: StepRef, *, store_error: bool = False, blocking: bool = True
    ) -> None:
        """Note that ``step`` failed (``store_error``: its store failed under it; not
        ``blocking``: a failure after which the next steps still run, e.g. a reversibility
        check's "schema differs")."""
        if not blocking:
            self.soft_failed.append(step.nodeid)
            return
        self.failed.append(step.nodeid)
        if store_error:
            # without its store nothing else of the deployment can run, preflight included
            self.store_failed = self.store_failed or step.nodeid
        if step.kind == "preflight":
            self.preflight_failed = self.preflight_failed or step.nodeid
        if step.group_name:
            self.failed_groups.setdefault(step.group_name, step.nodeid)

    @property
    def any_failed(self) -> bool:
        return bool(self.failed or self.soft_failed or self.lock_lost)
