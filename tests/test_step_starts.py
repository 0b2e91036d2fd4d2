"""Each step's start is recorded (issue 12: the Gantt chart shows real starts)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.projects import BARRIER, write_project


def test_steps_record_their_start_and_parallel_ones_overlap(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deploy_plugin.report.html.gantt import layout_steps
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


def test_a_parallel_steps_recorded_interval_covers_its_command(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A max_parallel group's later items only collect results their commands already have:
    each step row must keep its command's own start *and* duration, not the item's short
    wait (CI once saw b's recorded end before a's start)."""
    from deploy_plugin.store import open_store

    monkeypatch.setenv("N", "2")
    (pytester.path / "fns").mkdir()
    for name in ("a", "b"):
        (pytester.path / "fns" / f"{name}.txt").write_text(name)
    # each command logs its own start and end (after the barrier, so both have started)
    logged = 'echo {stem} start "$(date +%s.%N)" >> own.log && ' + BARRIER.replace(
        "intervals.log", "/dev/null"
    ) + ' && echo {stem} end "$(date +%s.%N)" >> own.log'
    write_project(pytester, {
        "groups": [
            {"name": "par", "order": 1, "file_patterns": ["fns/*.txt"], "max_parallel": 2,
             "deploy_command": logged},
        ],
    })  # fmt: skip
    result = pytester.runpytest("--deploy-target=t")
    assert result.ret == 0, result.stdout.str()
    own: dict[tuple[str, str], float] = {}
    for line in (pytester.path / "own.log").read_text().splitlines():
        stem, edge, stamp = line.split()
        own[(stem, edge)] = float(stamp)
    store = open_store(None, pytester.path)
    (run,) = store.deployments("p", "t")
    steps = {s.file: s for s in store.deployment_steps(run.id) if s.file}
    store.close()
    for stem in ("a", "b"):
        step = steps[f"fns/{stem}.txt"]
        assert step.started_at is not None
        start = step.started_at.timestamp()
        end = start + step.duration_ms / 1000
        assert start <= own[(stem, "start")], (stem, step)
        # duration_ms is whole milliseconds: allow the one lost to rounding down
        assert end + 0.001 >= own[(stem, "end")], (stem, step, own)
