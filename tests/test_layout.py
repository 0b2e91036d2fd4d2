"""The code layout's rules (DESIGN §7), on the import graph ``benchmarks/layout.py`` prints:
every import of the package's source, imports inside functions (and under
``TYPE_CHECKING``) counted. No module over 400 lines; no import cycle between modules;
packages import only the layers below them (``MAY_IMPORT``).

The engine is a deployment without pytest: no module of ``deploy_plugin.engine`` imports
pytest (or its internals, xdist, pluggy), directly or through any module of ours it
imports, and none imports the layers above it (``plugin``, ``report``, ``notify``, ``cli``).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent
#: Third-party packages the engine never imports: pytest's own, and what runs it.
PYTEST_WORLD = ("pytest", "_pytest", "xdist", "pluggy")
#: The layers above the engine.
ABOVE_ENGINE = ("plugin", "report", "notify", "cli")
#: Which packages each layer may import (DESIGN §7): imports point one way. "(root)" is the
#: package's own top-level modules (plan's neighbours: targets, secrets, db, facts ...).
MAY_IMPORT = {
    "config": set(),
    "plan": {"config"},
    "(root)": {"config", "plan", "store"},  # store: type hints of targets/identity only
    "store": {"(root)", "config"},
    "migrate": {"(root)", "config", "plan"},
    "engine": {"(root)", "config", "plan", "store", "migrate"},
    "report": {"(root)", "config", "plan", "store", "migrate", "engine"},
    "notify": {"(root)", "config", "plan", "engine"},
    "plugin": {"(root)", "config", "plan", "store", "migrate", "engine", "report", "notify"},
    "cli": {"(root)", "config", "plan", "store", "migrate", "report", "plugin"},
}
#: What of ``plugin`` the CLI uses: the one options object it passes to the pytest it runs
#: (DESIGN §7: the CLI runs pytest as a process and reuses the plugin's options).
CLI_FROM_PLUGIN = {"deploy_plugin.plugin", "deploy_plugin.plugin.options"}
#: Modules of our own that import nothing of ours (the bottom of the graph).
LEAVES = ("deploy_plugin.secrets",)


def _load_layout() -> ModuleType:
    """benchmarks/layout.py, imported from the repository (benchmarks is no package)."""
    spec = importlib.util.spec_from_file_location("layout", REPO / "benchmarks" / "layout.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


layout = _load_layout()
MODULES: dict[str, Path] = layout.modules()
GRAPH: dict[str, set[str]] = layout.graph()
ENGINE = sorted(name for name in MODULES if name.startswith("deploy_plugin.engine"))
#: module -> the packages of PYTEST_WORLD its file imports
PYTEST_USES = {
    name: [top for top in PYTEST_WORLD if layout.third_party(path, top)]
    for name, path in MODULES.items()
}


def _with_parents(name: str) -> Iterable[str]:
    """``name`` and the packages Python imports before it (``a.b.c``: ``a``, ``a.b``)."""
    parts = name.split(".")
    return (".".join(parts[:end]) for end in range(1, len(parts) + 1))


def reached(start: str) -> dict[str, list[str]]:
    """Every module of ours importing ``start`` loads, each with the chain that leads there."""
    chains = {start: [start]}
    todo = [start]
    while todo:
        name = todo.pop()
        for imported in GRAPH.get(name, ()):
            for module in _with_parents(imported):
                if module in MODULES and module not in chains:
                    chains[module] = [*chains[name], module]
                    todo.append(module)
    return chains


def test_the_graph_sees_the_engine() -> None:
    assert "deploy_plugin.engine.runtime" in ENGINE
    assert "deploy_plugin.engine.shell" in reached("deploy_plugin.engine.rollback")


@pytest.mark.parametrize("module", ENGINE)
def test_no_engine_module_imports_pytest(module: str) -> None:
    """Not directly, not through a module of ours it imports (anywhere in their files)."""
    found = [
        f"{' -> '.join(chain)} imports {top}"
        for name, chain in sorted(reached(module).items())
        for top in PYTEST_USES[name]
    ]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("module", ENGINE)
def test_no_engine_module_imports_the_layers_above_it(module: str) -> None:
    found = [
        " -> ".join(chain)
        for name, chain in sorted(reached(module).items())
        if layout.package_of(name) in ABOVE_ENGINE
    ]
    assert not found, "\n".join(found)


def test_importing_the_whole_engine_loads_no_pytest() -> None:
    """The same, as Python sees it: a fresh interpreter imports every engine module."""
    code = (
        "import importlib, sys\n"
        f"for name in {ENGINE!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {PYTEST_WORLD!r}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_no_module_is_over_400_lines() -> None:
    lines = {
        name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in MODULES.items()
    }
    assert {name: count for name, count in lines.items() if count > 400} == {}


def _undeclared_deferrals(path: Path) -> list[int]:
    """Lines of imports inside a function of ``path`` with no ``# deferred:`` comment right
    above (one comment covers a block of consecutive imports)."""
    import ast

    lines = path.read_text(encoding="utf-8").splitlines()
    inside: dict[int, ast.stmt] = {}
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Import | ast.ImportFrom):
                    inside[sub.lineno] = sub
    ends = {node.end_lineno for node in inside.values()}

    def declared(line: int) -> bool:  # the comment right above (it may span several lines)
        above = line - 2
        while above >= 0 and lines[above].strip().startswith("#"):
            if lines[above].strip().startswith("# deferred:"):
                return not lines[above].strip().startswith("# deferred: +0 ")  # saves nothing
            above -= 1
        return False

    return [line for line in sorted(inside) if line - 1 not in ends and not declared(line)]


def test_every_import_inside_a_function_says_what_it_saves() -> None:
    """An import goes inside a function only where it keeps a module's import lighter, with
    the figure of benchmarks/deferred_imports.py in a ``# deferred:`` comment above it."""
    missing = {
        name: lines for name, path in MODULES.items() if (lines := _undeclared_deferrals(path))
    }
    assert missing == {}


def test_no_import_cycle() -> None:
    """Not between modules (imports inside functions counted) ..."""
    assert layout.cycles(GRAPH) == []


def test_packages_import_one_way() -> None:
    """... and not between packages: each imports only the layers below it."""
    wrong = sorted(
        f"{name} imports {imported}"
        for name, imports in GRAPH.items()
        for imported in imports
        if layout.package_of(imported) != layout.package_of(name)
        and layout.package_of(imported) not in MAY_IMPORT[layout.package_of(name)]
    )
    assert wrong == []


def test_every_package_has_its_rule() -> None:
    assert {layout.package_of(name) for name in MODULES} == set(MAY_IMPORT)


def test_the_cli_uses_only_the_plugins_options() -> None:
    used = sorted(
        f"{name} imports {imported}"
        for name, imports in GRAPH.items()
        if layout.package_of(name) == "cli"
        for imported in imports
        if layout.package_of(imported) == "plugin" and imported not in CLI_FROM_PLUGIN
    )
    assert used == []


@pytest.mark.parametrize("module", LEAVES)
def test_leaves_import_nothing_of_ours(module: str) -> None:
    assert GRAPH[module] == set()
