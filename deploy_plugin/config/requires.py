"""``targets.<name>.requires``, the promotion gate's config checks that a schema cannot
express: each required target is declared, no target requires itself, and requirements form
no cycle (such targets could never deploy). Problems are ``(field, text)`` pairs."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .model import TargetDecl


def _field(name: str, raw: Any, index: int) -> str:
    """The field of ``name``'s ``index``-th required target (a string is one field)."""
    at = f"targets.{name}.requires"
    return at if isinstance(raw, str) else f"{at}[{index}]"


def requires_problems(
    targets: Mapping[str, TargetDecl], raw_targets: Mapping[str, Any]
) -> Iterator[tuple[str, str]]:
    """(field, problem) for each bad ``requires`` of the declared ``targets``."""
    declared = sorted(targets)
    for name, decl in targets.items():
        raw = (raw_targets.get(name) or {}).get("requires")
        for index, required in enumerate(decl.requires):
            if required == name:
                yield (
                    _field(name, raw, index),
                    f"a target cannot require itself: '{name}' requires '{name}'. Name the"
                    " target(s) a deployment must have succeeded on before it runs here,"
                    " e.g. `requires: staging`.",
                )
            elif required not in targets:
                close = difflib.get_close_matches(required, declared, n=1, cutoff=0.6)
                maybe = f" Did you mean '{close[0]}'?" if close else ""
                yield (
                    _field(name, raw, index),
                    f"'{required}' is not a target declared under `targets`.{maybe} A"
                    " promotion gate names declared targets; declared targets:"
                    f" {', '.join(declared)}.",
                )
    yield from _cycles(targets, raw_targets)


def _cycles(
    targets: Mapping[str, TargetDecl], raw_targets: Mapping[str, Any]
) -> Iterator[tuple[str, str]]:
    """One problem per cycle of requirements, at the first of its targets in the file."""
    edges = {
        name: [r for r in decl.requires if r in targets and r != name]
        for name, decl in targets.items()
    }
    seen: set[frozenset[str]] = set()
    for start in targets:  # file order
        cycle = _cycle_from(start, edges)
        if cycle is None or frozenset(cycle) in seen:
            continue
        seen.add(frozenset(cycle))
        chain = ", which requires ".join(cycle[1:] + [start])
        index = targets[start].requires.index(cycle[1])
        raw = (raw_targets.get(start) or {}).get("requires")
        yield (
            _field(start, raw, index),
            f"requirements form a cycle: {start} requires {chain}, so none of them could"
            " ever deploy. Remove one of these `requires` (promotion goes one way, e.g."
            " production requires staging).",
        )


def _cycle_from(start: str, edges: Mapping[str, list[str]]) -> list[str] | None:
    """A path ``[start, ..., last]`` whose last target requires ``start``, or None."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    visited: set[str] = set()
    while stack:
        node, path = stack.pop()
        for nxt in reversed(edges.get(node, [])):
            if nxt == start:
                return path
            if nxt not in visited:
                visited.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def promotion_order(names: Sequence[str], targets: Mapping[str, TargetDecl]) -> list[str]:
    """``names`` (a run's targets) with each after those among them that it requires, in
    the given order otherwise: ``production staging`` deploys staging first, so that
    production's gate sees it succeed in the same run."""
    ordered: list[str] = []

    def place(name: str, seen: set[str]) -> None:
        if name in ordered or name in seen:
            return
        seen.add(name)
        decl = targets.get(name)
        for required in decl.requires if decl is not None else ():
            if required in names:
                place(required, seen)
        ordered.append(name)

    for name in names:
        place(name, set())
    return ordered
