"""Print the module map (lines per package), the import graph between packages and every
import cycle between modules of deploy_plugin (imports inside functions counted).

    .venv/bin/python benchmarks/layout.py [--modules]

Reads the source with ``ast``; imports nothing of ours. tests/test_layout.py asserts the
rules (no cycle, no module over 400 lines, engine/ imports no pytest) on the same graph.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "deploy_plugin"
PACKAGE = "deploy_plugin"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The deploy_plugin modules ``name`` imports anywhere in its file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                if not is_package:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            targets = [stem] + [f"{stem}.{alias.name}" for alias in node.names]
        for target in targets:
            if not target.startswith(PACKAGE):
                continue
            resolved = _resolve(target, known)
            if resolved and resolved != name:
                found.add(resolved)
    # a package's own submodules imported by its __init__ are not a cycle with it
    return found


def third_party(path: Path, top: str) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == top for a in node.names):
            return True
        module = node.module or "" if isinstance(node, ast.ImportFrom) else ""
        if isinstance(node, ast.ImportFrom) and not node.level and module.split(".")[0] == top:
            return True
    return False


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(10_000)

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            # a module importing its own package's __init__ (or the reverse) is how
            # Python packages work, not a cycle of ours
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def package_of(name: str) -> str:
    parts = name.split(".")
    if len(parts) > 2 or (len(parts) == 2 and (ROOT / parts[1]).is_dir()):
        return parts[1]
    return "(root)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", action="store_true", help="list every module's lines")
    args = parser.parse_args()
    known = modules()
    edges = graph()
    lines = {n: len(p.read_text(encoding="utf-8").splitlines()) for n, p in known.items()}
    per_package: dict[str, list[int]] = defaultdict(list)
    for name, count in lines.items():
        per_package[package_of(name)].append(count)
    print("module map (package: modules, lines)")
    for package, counts in sorted(per_package.items()):
        print(f"  {package:<10} {len(counts):>3} modules {sum(counts):>6} lines")
    print(f"  {'total':<10} {len(lines):>3} modules {sum(lines.values()):>6} lines")
    big = sorted(((c, n) for n, c in lines.items() if c > 400), reverse=True)
    print(f"modules over 400 lines: {len(big)}" + "".join(f"\n  {n} {c}" for c, n in big))
    print("package import graph (imports inside functions counted)")
    pkg_edges: dict[str, set[str]] = defaultdict(set)
    for src, dsts in edges.items():
        for dst in dsts:
            a, b = package_of(src), package_of(dst)
            if a != b:
                pkg_edges[a].add(b)
    for package in sorted(per_package):
        print(f"  {package} -> {', '.join(sorted(pkg_edges.get(package, ()))) or '-'}")
    pytest_users = sorted(
        n for n, p in known.items() if third_party(p, "pytest") or third_party(p, "_pytest")
    )
    print(f"modules importing pytest: {len(pytest_users)}")
    found = cycles(edges)
    print(f"module import cycles: {len(found)}")
    for component in found:
        print("  " + " <-> ".join(component))
    if args.modules:
        for name, count in sorted(lines.items()):
            print(f"{count:>5} {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
