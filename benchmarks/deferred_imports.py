"""What each import placed inside a function of ``deploy_plugin`` saves (issue 22).

    .venv/bin/python benchmarks/deferred_imports.py [--json FILE]

An import inside a function is there only to keep a module's own import light: it pays
when the module it names is not loaded anyway by the importing module's top-level imports.
For each module M of the package this measures, with ``python -X importtime`` in a fresh
interpreter, what ``import M`` loads; then, for each import inside a function of M, what
importing its target on top of that loads in addition: the modules and the sum of their
own (``self``) import times. ``0 modules`` means the deferral saves nothing (the target is
loaded with M): such an import belongs at the top. The others carry a ``# deferred:``
comment naming what they save (tests/test_layout.py checks each has one).

Figures are in-process import times on this machine (they move with load: compare the
module counts, which do not).
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "deploy_plugin"


@dataclass(frozen=True)
class Deferred:
    module: str  # the importing module
    line: int
    targets: tuple[str, ...]  # the modules the statement imports
    extra_modules: int  # loaded by it on top of the module's own imports
    extra_ms: float
    biggest: tuple[str, ...]  # the heaviest of those, by self time
    extra: dict[str, int]  # all of them: module -> self import time (µs)


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def function_imports(path: Path) -> list[tuple[int, tuple[str, ...], str]]:
    """(line, imported module names, the statement made absolute) of each import statement
    inside a function. The statement itself is what is timed: ``from deploy_plugin.config
    import X`` loads the submodule that holds X (the package loads its names on first use,
    PEP 562), which importing the package alone would not show."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Import):
                names = tuple(alias.name for alias in sub.names)
                found.append((sub.lineno, names, ast.unparse(sub)))
            elif isinstance(sub, ast.ImportFrom):
                base = sub.module or ""
                if sub.level:
                    base = ".".join(package[: len(package) - sub.level + 1] + [base]).strip(".")
                # `from pkg import sub` may name a submodule: both are tried
                names = [base] + [f"{base}.{alias.name}" for alias in sub.names]
                absolute = ast.ImportFrom(module=base, names=sub.names, level=0)
                found.append((sub.lineno, tuple(names), ast.unparse(absolute)))
    return sorted(set(found))


def loaded(statement: str) -> dict[str, int]:
    """module -> self import time (µs) of what ``statement`` loads in a fresh interpreter."""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    if run.returncode:
        raise SystemExit(f"{statement!r} failed:\n{run.stderr[-2000:]}")
    times: dict[str, int] = {}
    for line in run.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            self_us, _, name = (part.strip() for part in line[12:].split("|"))
            if self_us.isdigit():
                times[name] = int(self_us)
    return times


def _spec(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def measure() -> list[Deferred]:
    rows: list[Deferred] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        imports = function_imports(path)
        if not imports:
            continue
        module = module_name(path)
        own = loaded(f"import {module}")
        for line, names, statement in imports:
            targets = tuple(n for n in names if _spec(n))
            both = loaded(f"import {module}; {statement}")
            extra = {name: us for name, us in both.items() if name not in own}
            heavy = sorted(extra, key=lambda n: -extra[n])[:3]
            rows.append(Deferred(module, line, targets, len(extra),
                                 round(sum(extra.values()) / 1000, 1), tuple(heavy),
                                 dict(sorted(extra.items()))))  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    rows = measure()
    for row in rows:
        what = ", ".join(row.biggest)
        print(f"{row.module}:{row.line}  +{row.extra_modules} modules {row.extra_ms} ms  {what}")
    free = sum(1 for row in rows if row.extra_modules == 0)
    print(f"{len(rows)} imports inside functions; {free} save nothing (target loaded anyway)")
    if args.json:
        args.json.write_text(json.dumps([asdict(row) for row in rows], indent=1))


if __name__ == "__main__":
    main()
