"""pytest's rootdir and ini options, found the way pytest finds them.

Upward from the current folder, the first of ``pytest.toml``/``.pytest.toml`` (``[pytest]``),
``pytest.ini``/``.pytest.ini`` (always), ``pyproject.toml`` with ``[tool.pytest]`` or
``[tool.pytest.ini_options]``, ``tox.ini`` with ``[pytest]``, ``setup.cfg`` with
``[tool:pytest]``; failing those, the first ``pyproject.toml`` seen; else the current folder.
The CLI reads ``deploy_store`` from the options, and hands the rootdir to the pytest runs it
starts, so both always use the same store.
"""

from __future__ import annotations

import configparser
import sys
from pathlib import Path
from typing import Any

from .output import UsageProblem


def _toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - pytest depends on tomli there
        import tomli as tomllib  # type: ignore[import-not-found]
    try:
        loaded: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
        return loaded
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageProblem(f"Cannot read the pytest config file {path}: {exc}.") from exc


def _ini_section(path: Path, section: str) -> dict[str, str] | None:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise UsageProblem(f"Cannot read the pytest config file {path}: {exc}.") from exc
    return dict(parser[section]) if parser.has_section(section) else None


def _pytest_options(path: Path) -> dict[str, Any] | None:
    """The pytest options of a config file, or None when it is not a pytest config."""
    name = path.name
    if name in ("pytest.toml", ".pytest.toml"):
        return dict(_toml(path).get("pytest") or {})
    if name in ("pytest.ini", ".pytest.ini"):
        return _ini_section(path, "pytest") or {}
    if name == "pyproject.toml":
        tool = _toml(path).get("tool", {}).get("pytest")
        if not isinstance(tool, dict):
            return None
        native = {k: v for k, v in tool.items() if k != "ini_options"}
        return native or dict(tool.get("ini_options") or {})
    if name == "tox.ini":
        return _ini_section(path, "pytest")
    if name == "setup.cfg":
        return _ini_section(path, "tool:pytest")
    return None


PYTEST_CONFIG_NAMES = (
    "pytest.toml", ".pytest.toml", "pytest.ini", ".pytest.ini",
    "pyproject.toml", "tox.ini", "setup.cfg",
)  # fmt: skip


def find_rootdir(start: Path) -> tuple[Path, Path | None, dict[str, Any]]:
    """(rootdir, ini file, its pytest options) found upward from ``start`` as pytest does."""
    first_pyproject = None
    for base in (start, *start.parents):
        for name in PYTEST_CONFIG_NAMES:
            path = base / name
            if not path.is_file():
                continue
            if name == "pyproject.toml" and first_pyproject is None:
                first_pyproject = path
            options = _pytest_options(path)
            if options is not None:
                return base, path, options
    # no ini file: pytest then takes the first folder upward holding a setup.py
    for base in (start, *start.parents):
        if (base / "setup.py").is_file():
            return base, None, {}
    if first_pyproject is not None:
        return first_pyproject.parent, first_pyproject, {}
    return start, None, {}
