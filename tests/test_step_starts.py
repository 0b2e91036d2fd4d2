"""Each step's start is recorded (issue 12: the Gantt chart shows real starts)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.projects import BARRIER, write_project


def test_steps_record_their_start_and_parallel_ones_overlap(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deploy_plugin.html.gantt import layout_steps
    from deploy_plugin.store import open_store

    monkeypatch.setenv("N", "2")
    (pytester.path / "fns").mkdir()
    for name in ("a", "b"):
        (pytester.path / "fns" / f"{name}.txt").write_text(name)
    write_project(pytester, {
        "groups": [
            {"name": "par", "order": 1, "file_patterns": ["fns/*.txt"], "max_parallel": 2,
             "deploy_command": BARRIER},
            {"name": "after", "order": 2, "deploy_command": "true"},
        ],
    })  # fmt: skip
    result = pytester.runpytest("--deploy-target=t")
    assert result.ret == 0, result.stdout.str()
    store = open_store(None, pytester.path)
    (run,) = store.deployments("p", "t")
    steps = store.deployment_steps(run.id)
    store.close()
    assert all(step.started_at is not None for step in steps), steps
    by_name = {step.node_id.rsplit("::", 1)[-1]: step for step in steps}
    a, b = by_name["deploy[fns/a.txt]"], by_name["deploy[fns/b.txt]"]

    def end(step):  # noqa: ANN001, ANN202
        return step.started_at + timedelta(milliseconds=step.duration_ms)

    # the barrier proves they ran at once: their recorded intervals overlap
    assert a.started_at <= end(b) and b.started_at <= end(a)
    after = by_name["deploy"]
    assert after.started_at >= min(a.started_at, b.started_at)
    placed = layout_steps(steps, {"par": 2}, run.started_at)
    starts = {s.node_id.rsplit("::", 1)[-1]: p for s, p in zip(steps, placed, strict=True)}
    assert starts["deploy[fns/a.txt]"][1] != starts["deploy[fns/b.txt]"][1]  # two lanes
    offset = int((a.started_at - run.started_at).total_seconds() * 1000)
    assert abs(starts["deploy[fns/a.txt]"][0] - offset) <= 1
