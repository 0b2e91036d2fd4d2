"""The stop policy on its own (no pytest items, no store): table-driven."""

from __future__ import annotations

import pytest

from deploy_plugin.engine.policy import LOCK_LOST, StepId, StopPolicy

PRE = StepId("c::t::preflight::env", "preflight")
PRE2 = StepId("c::t::preflight::files", "preflight")
A1 = StepId("c::t::a::build", "build", "a")
A2 = StepId("c::t::a::deploy", "deploy", "a")
B1 = StepId("c::t::b::deploy", "deploy", "b")
HEALTH = StepId("c::t::health_check", "health_check")


@pytest.mark.parametrize(
    ("continue_on_failure", "failed", "step", "blocker"),
    [
        (False, [], B1, None),
        (False, [A1], A2, A1.nodeid),  # a failure stops the deployment
        (False, [A1], B1, A1.nodeid),
        (True, [A1], A2, A1.nodeid),  # ... its own group, even when continuing
        (True, [A1], B1, None),  # the next group runs with --continue-on-failure
        (True, [A1], HEALTH, A1.nodeid),  # never the health check after a failure
        (False, [PRE], PRE2, None),  # preflight reports every problem at once
        (True, [PRE], B1, PRE.nodeid),  # after a failed preflight nothing else runs
    ],
)
def test_blocker(continue_on_failure, failed, step, blocker) -> None:
    policy = StopPolicy(continue_on_failure=continue_on_failure)
    for ref in failed:
        policy.record_failure(ref)
    assert policy.blocker(step) == blocker


def test_a_store_failure_or_a_lost_lock_stops_everything() -> None:
    policy = StopPolicy(continue_on_failure=True)
    policy.record_failure(A1, store_error=True)
    assert policy.blocker(PRE) == A1.nodeid and policy.blocker(B1) == A1.nodeid
    lost = StopPolicy()
    lost.lock_lost = "the session ended"
    assert lost.blocker(PRE2) == LOCK_LOST and lost.any_failed
