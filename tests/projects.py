"""Small project files for pytester tests, and timing-free proofs of parallelism."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

# A step that waits (bounded) until N steps have announced themselves in started/:
# it proves that N of them ran at the same time, without timing anything.
BARRIER = (
    "mkdir -p started && touch started/{stem} && "
    "for i in $(seq 400); do [ $(ls started | wc -l) -ge $N ] && break; sleep 0.05; done && "
    "[ $(ls started | wc -l) -ge $N ] && "
    'echo {stem} "$(date +%s.%N)" >> intervals.log'
)


def write_config(pytester: pytest.Pytester, data: dict, name: str = "deploy.yaml") -> Path:
    """A config file exactly as given."""
    path = pytester.path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def write_project(pytester: pytest.Pytester, data: dict, name: str = "deploy.yaml") -> Path:
    """A config of project ``p`` with target ``t`` declared, plus ``data``."""
    path = pytester.path / name
    path.write_text(yaml.safe_dump({"project": "p", "targets": {"t": {}}, **data}))
    return path


def intervals(log: Path) -> list[tuple[str, float, float]]:
    spans: dict[str, list[float]] = {}
    for line in log.read_text().splitlines():
        name, stamp = line.split()
        spans.setdefault(name, []).append(float(stamp))
    return [(name, min(s), max(s)) for name, s in spans.items()]


def max_overlap(spans: list[tuple[str, float, float]]) -> int:
    events = sorted([(start, 1) for _, start, _ in spans] + [(end, -1) for _, _, end in spans])
    best = now = 0
    for _, delta in events:
        now += delta
        best = max(best, now)
    return best
