"""Where each step of a deployment sits on its Gantt chart.

The store keeps each step's start (schema version 6 on) and duration: a step starts where
it was recorded to start, on the first lane free by then, so steps that ran at the same
time sit side by side. Runs recorded before version 6 have no starts; theirs are
reconstructed: steps run one after another, except the per-file deploy steps of a group
with ``max_parallel`` > 1 (read from the run's config snapshot), which run side by side
on that many lanes, each starting when a lane is free (what :mod:`deploy_plugin.engine.parallel`
does).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import yaml

from deploy_plugin.store.records import StepRecord


def group_parallelism(snapshot: str) -> dict[str, int]:
    """``max_parallel`` of each group of a config snapshot (YAML or JSON); {} if unreadable."""
    try:
        data: Any = yaml.safe_load(snapshot)
    except yaml.YAMLError:
        return {}
    groups = data.get("groups") if isinstance(data, dict) else None
    if not isinstance(groups, list):
        return {}
    found: dict[str, int] = {}
    for group in groups:
        if isinstance(group, dict) and isinstance(group.get("name"), str):
            value = group.get("max_parallel", 1)
            found[group["name"]] = value if isinstance(value, int) and value > 0 else 1
    return found


def layout_steps(
    steps: Sequence[StepRecord], parallel: dict[str, int], run_started: datetime | None = None
) -> list[tuple[int, int]]:
    """``(start_ms, lane)`` of each step, from the run's start; lane 0 is sequential."""
    if run_started is not None and steps and all(s.started_at is not None for s in steps):
        return _recorded(steps, run_started)
    placed: list[tuple[int, int]] = []
    clock = 0
    index = 0
    while index < len(steps):
        step = steps[index]
        width = parallel.get(step.group or "", 1)
        if width <= 1 or not _per_file_deploy(step):
            placed.append((clock, 0))
            clock += max(0, step.duration_ms)
            index += 1
            continue
        end = index
        while end < len(steps) and steps[end].group == step.group and _per_file_deploy(steps[end]):
            end += 1
        lanes: list[tuple[int, int]] = []  # (free at, lane) of the busy lanes
        finish = clock
        for number, member in enumerate(steps[index:end]):
            # the first ``width`` start together, each on its own lane; then the next
            # starts on the lane freed first
            free_at, lane = (clock, number) if number < width else heapq.heappop(lanes)
            placed.append((free_at, lane))
            done = free_at + max(0, member.duration_ms)
            finish = max(finish, done)
            heapq.heappush(lanes, (done, lane))
        clock = finish
        index = end
    return placed


def _recorded(steps: Sequence[StepRecord], run_started: datetime) -> list[tuple[int, int]]:
    """Recorded starts; each step on the lowest lane free at its start."""
    starts = [
        max(0, round((step.started_at - run_started).total_seconds() * 1000))
        for step in steps
        if step.started_at is not None
    ]
    ends: list[int] = []  # when each lane is free again
    placed: list[tuple[int, int]] = [(0, 0)] * len(steps)
    for index in sorted(range(len(steps)), key=lambda i: (starts[i], i)):
        start = starts[index]
        lane = next((i for i, end in enumerate(ends) if end <= start), len(ends))
        if lane == len(ends):
            ends.append(0)
        # at least 1 ms: durations are whole milliseconds, and a step recorded as 0 ms
        # still held its lane at its start
        ends[lane] = start + max(1, steps[index].duration_ms)
        placed[index] = (start, lane)
    return placed


def _per_file_deploy(step: StepRecord) -> bool:
    return step.kind == "deploy" and step.file is not None
