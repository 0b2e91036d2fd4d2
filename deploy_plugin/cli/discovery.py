"""The configs pytest collects here: the CLI asks pytest, as a process
(``--deploy-list-configs``, :mod:`deploy_plugin.plugin.listing`), so it sees exactly what a
``pytest`` run in the same folder sees: its rootdir, ``testpaths``, ``norecursedirs``,
``--ignore``, a conftest's ``collect_ignore``, virtualenvs left out. Each config is loaded
here only when a command asks for it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deploy_plugin.config import ConfigError, DeployConfig, load_config
from deploy_plugin.config.fallback import SCRIPT_NAME, script_config
from deploy_plugin.plan import match_group

from .output import CliError, UsageProblem

#: pytest as this CLI runs it (the interpreter it runs on; no cache written).
PYTEST = (sys.executable, "-m", "pytest", "-p", "no:cacheprovider")


def load(path: Path) -> tuple[DeployConfig | None, ConfigError | None]:
    """One config file loaded (a ``deploy.sh`` fallback made), or why it does not load."""
    if path.name == SCRIPT_NAME:
        return script_config(path), None
    # deferred: +2 modules, 3 ms (migrate.downs, migrate)
    from deploy_plugin.migrate.downs import tracked_files_problem

    try:
        config = load_config(path)
    except ConfigError as err:
        return None, err
    # needs the files on disk, so it is not in load_config; pytest reports it the same way
    matched = {g.name: match_group(config, g).files for g in config.groups if g.track_migrations}
    problem = tracked_files_problem(config, str(path), lambda g: matched[g.name])
    return (None, problem) if problem is not None else (config, None)


@dataclass
class ConfigEntry:
    """A config file pytest collects, by project name; loaded when first asked."""

    path: Path
    project: str
    _loaded: tuple[DeployConfig | None, ConfigError | None] | None = field(default=None, repr=False)

    def _load(self) -> tuple[DeployConfig | None, ConfigError | None]:
        if self._loaded is None:
            self._loaded = load(self.path)
        return self._loaded

    @property
    def config(self) -> DeployConfig | None:
        """The loaded config (None when it does not load: see :attr:`error`)."""
        return self._load()[0]

    @property
    def error(self) -> ConfigError | None:
        return self._load()[1]


@dataclass(frozen=True)
class Listing:
    """What pytest collects: its rootdir, the ini's ``deploy_store``, the configs."""

    rootdir: Path
    ini_store: str | None
    entries: list[ConfigEntry]


def list_configs(cwd: Path, paths: Sequence[Path] = (), rootdir: Path | None = None) -> Listing:
    """The configs ``pytest [paths]`` collects in ``cwd`` (with ``--rootdir`` if given);
    CliError (UsageProblem for pytest's usage errors) with pytest's own words when it
    cannot collect."""
    with tempfile.TemporaryDirectory(prefix="pytest-deploy-") as tmp:
        out = Path(tmp, "configs.json")
        command = [
            *PYTEST, "--collect-only", "-q", f"--deploy-list-configs={out}",
            *([f"--rootdir={rootdir}"] if rootdir else []), *map(str, paths),
        ]  # fmt: skip
        try:
            done = subprocess.run(
                command, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                text=True, errors="replace",
            )  # fmt: skip
        except OSError as exc:
            raise CliError(f"Cannot start pytest ({command[0]}): {exc.strerror or exc}.") from exc
        if done.returncode != 0 or not out.is_file():
            raise _failure(cwd, done)
        data = json.loads(out.read_text(encoding="utf-8"))
    return Listing(
        Path(data["rootdir"]),
        data["deploy_store"],
        [ConfigEntry(Path(c["path"]), c["project"]) for c in data["configs"]],
    )


def _failure(cwd: Path, done: subprocess.CompletedProcess[str]) -> CliError:
    """pytest's own words: its exception lines (``E ...``), else its ``ERROR`` lines, else
    its last lines."""
    lines = [line.strip() for line in (done.stdout + "\n" + done.stderr).splitlines()]
    lines = [line for line in lines if line.strip("=_-^ ")]
    told = [line[2:].strip() for line in lines if line.startswith("E ") and line[2:].strip("^ ")]
    told = told or [line for line in lines if line.startswith("ERROR")] or lines[-3:]
    message = (
        f"pytest could not collect the configs in {cwd} (exit status {done.returncode}): "
        f"{' '.join(told[:8]) or 'no output'}. Run `pytest --collect-only` there for its "
        "whole report, and fix what it names."
    )
    return UsageProblem(message) if done.returncode == 4 else CliError(message)
