"""Where a CLI command works: rootdir, store and projects.

* rootdir: ``--rootdir``, else found like pytest finds it (``rootdir.py``): upward from the
  ``--config`` file's folder when one is given (as ``pytest PATH`` does), else from the
  current folder.
* store URL: ``--deploy-store``, ``DEPLOY_STORE_URL``, ini ``deploy_store``, else the default
  SQLite file under the rootdir.
* projects: config files found under the current directory as pytest collects them (or
  ``--config PATH``), by project name; store-only commands also accept projects that only
  the store knows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy_plugin.config import (
    ENV_NAME_RE,
    NAME_RE,
    ConfigError,
    DeployConfig,
    is_config_file,
    load_config,
)
from deploy_plugin.config.fallback import SCRIPT_NAME, is_fallback_script, script_config
from deploy_plugin.store import (
    Store,
    default_store_path,
    describe_url,
    open_store,
    store_home,
    store_url,
)

from .output import CliError, UsageProblem, warn
from .rootdir import find_rootdir

# pytest's default norecursedirs (hidden folders are skipped separately) and a few more
SKIPPED_DIRS = frozenset(
    {"node_modules", "__pycache__", "venv", "build", "dist", "CVS", "_darcs", "{arch}"}
)


@dataclass
class ConfigEntry:
    """A config file found under the current directory (loaded, or why it is not)."""

    path: Path
    project: str
    config: DeployConfig | None
    error: ConfigError | None


@dataclass
class Project:
    """A resolved ``<project>`` argument and its config file (None: known to the store only)."""

    name: str
    entry: ConfigEntry | None = None

    @property
    def config(self) -> DeployConfig | None:
        return self.entry.config if self.entry else None

    def require_config(self) -> DeployConfig:
        """The loaded config; the config's error (exit 1) when it does not load."""
        if self.entry is None:
            raise UsageProblem(
                f"Project {self.name!r} is known only to the store: this command needs its "
                f"config file. Run it from a folder that holds the config, or pass "
                f"--config PATH."
            )
        if self.entry.config is None:
            raise CliError(str(self.entry.error))
        return self.entry.config

    def group_names(self) -> list[str]:
        config = self.config
        return [g.name for g in config.groups] if config else []


def guess_project(path: Path) -> str:
    """The project name of a config that does not load: its ``project`` key if readable,
    else the name of its root folder (DESIGN §1)."""
    data: Any = None
    try:
        text = path.read_text(encoding="utf-8-sig")
        if path.suffix == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception:  # noqa: BLE001 - a broken file: fall back to its folder's name
        data = None
    if isinstance(data, dict):
        if isinstance(data.get("project"), str) and data["project"]:
            return str(data["project"])
        if isinstance(data.get("root"), str):
            return (path.parent / str(data["root"])).resolve().name
    return path.parent.resolve().name


def find_config_files(top: Path, rootdir: Path | None = None) -> list[Path]:
    """Config files under ``top`` as pytest would collect them, sorted by path (with the
    ``deploy.sh`` of each folder that has no config, up to ``rootdir`` as pytest looks:
    its fallback)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith(".") and d not in SKIPPED_DIRS and not d.endswith(".egg")
        )
        for name in filenames:
            if name.endswith((".yaml", ".yml", ".json")) and "deploy." in name:
                path = Path(dirpath, name)
                if is_config_file(path):
                    found.append(path)
            elif name == SCRIPT_NAME and is_fallback_script(Path(dirpath, name), rootdir or top):
                found.append(Path(dirpath, name))  # a folder's deploy.sh stands for a config
    return sorted(found)


def load_entry(path: Path) -> ConfigEntry:
    """Load one config file; a broken one keeps its error and a guessed project name."""
    if path.name == SCRIPT_NAME:
        config = script_config(path)
        return ConfigEntry(path, config.project, config, None)
    from deploy_plugin.migrate.downs import tracked_files_problem
    from deploy_plugin.plan import match_group

    try:
        config = load_config(path)
    except ConfigError as err:
        return ConfigEntry(path, guess_project(path), None, err)
    # needs the files on disk, so it is not in load_config; pytest reports it the same way
    matched = {g.name: match_group(config, g).files for g in config.groups if g.track_migrations}
    problem = tracked_files_problem(config, str(path), lambda g: matched[g.name])
    if problem is not None:
        return ConfigEntry(path, config.project, None, problem)
    return ConfigEntry(path, config.project, config, None)


class Context:
    """The resolved environment of one CLI invocation; close it when done."""

    def __init__(self, args: argparse.Namespace, cwd: Path | None = None) -> None:
        self.args = args
        self.cwd = Path(cwd or os.getcwd()).absolute()
        self._root: tuple[Path, Path | None, dict[str, Any]] | None = None
        self._entries: list[ConfigEntry] | None = None
        self._home: Path | None = None
        self._store: Store | None = None
        self._probed = False
        self.store_read = False  # a store was looked for: the command names it at the end

    # -- rootdir, ini, store --------------------------------------------------------------

    def _find_root(self) -> tuple[Path, Path | None, dict[str, Any]]:
        if self._root is None:
            config = getattr(self.args, "config", None)
            start = (self.cwd / config).absolute().parent if config else self.cwd
            found = find_rootdir(start if start.is_dir() else self.cwd)
            given = getattr(self.args, "rootdir", None)
            if given:
                rootdir = (self.cwd / os.path.expandvars(given)).absolute()
                if not rootdir.is_dir():
                    raise UsageProblem(
                        f"--rootdir {given}: no such folder ({rootdir}). Pass an existing "
                        f"folder, or leave --rootdir out to find it like pytest does."
                    )
                found = (rootdir, found[1], found[2])
            self._root = found
        return self._root

    @property
    def rootdir(self) -> Path:
        """pytest's rootdir for this invocation."""
        return self._find_root()[0]

    @property
    def store_url(self) -> str | None:
        """The store URL (None: the default SQLite file under the rootdir)."""
        ini = self._find_root()[2].get("deploy_store")
        return store_url(getattr(self.args, "deploy_store", None), str(ini) if ini else None)

    def store_url_for_pytest(self) -> str:
        """The store URL spelled out for a pytest run underneath (the default as a path)."""
        url = self.store_url
        if url is not None:  # "" (DEPLOY_STORE_URL set but empty) stays refused underneath
            return url
        return f"sqlite:///{default_store_path(self.store_home).absolute()}"

    def describe_store(self) -> str:
        """The store for messages (password masked)."""
        url = self.store_url
        return str(default_store_path(self.store_home)) if not url else describe_url(url)

    @property
    def store_home(self) -> Path:
        """The embedded store's folder: where the configs found here keep it
        (:func:`deploy_plugin.store.store_home`: the same whatever the current directory,
        as for pytest), else the rootdir: the named project's config when there is one,
        else every config found here, which must agree (UsageProblem otherwise)."""
        if self._home is None:
            try:
                entries = self.entries()
            except UsageProblem:
                entries = []
            named = getattr(self.args, "project", None)
            mine = [e for e in entries if e.project == named] or entries
            homes = {store_home(e.path, self.rootdir) for e in mine}
            if len(homes) > 1:
                raise UsageProblem(
                    "The configs found here keep their stores in different places ("
                    + ", ".join(sorted(str(default_store_path(h)) for h in homes))
                    + "): run the command in one project's folder, or name the project."
                    " Nothing changed."
                )
            self._home = homes.pop() if homes else self.rootdir
        return self._home

    def store(self, *, create: bool = False) -> Store | None:
        """The store; without ``create`` None when it does not exist yet (nothing is made).

        Commands validate their input before asking with ``create=True``, so bad input
        never creates or changes a store.
        """
        if self._store is None and (create or not self._probed):
            self._probed = True
            url, rootdir = self.store_url, self.store_home
            self.store_read = True
            # a mistyped PostgreSQL database is an error here, not "nothing stored yet"
            self._store = open_store(url, rootdir, create=create, missing_database_ok=False)
        return self._store

    def writable_store(self) -> Store:
        """The store, created (with its schema) if missing."""
        store = self.store(create=True)
        assert store is not None
        return store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        self._probed = False

    # -- projects -------------------------------------------------------------------------

    def entries(self) -> list[ConfigEntry]:
        """Config files under the current directory (or ``--config``), loaded."""
        if self._entries is None:
            given = getattr(self.args, "config", None)
            if given:
                path = (self.cwd / given).absolute()
                if not path.is_file():
                    raise UsageProblem(
                        f"--config {given}: no such file ({path}). Pass the path of a "
                        f"deployment config (deploy.yaml, *.deploy.json...)."
                    )
                self._entries = [load_entry(path)]
            else:
                self._entries = [load_entry(p) for p in find_config_files(self.cwd, self.rootdir)]
        return self._entries

    def shown(self, path: Path) -> str:
        """A path as the user should read it: relative to the current directory if under it."""
        try:
            return str(path.relative_to(self.cwd))
        except ValueError:
            return str(path)

    def project(
        self, name: str, *, store_only_ok: bool = False, check_identity: bool = True
    ) -> Project:
        """Resolve a ``<project>`` argument; UsageProblem (exit 2) when it is unknown.

        ``store_only_ok``: a project known only to the store is accepted (target, env and
        history commands); for those, a project named by a config here is refused when the
        store binds its name to another ``project_id`` (unless not ``check_identity``: the
        ``project adopt`` command), so a stranger's checkout never reads its env vars.
        """
        entries = self.entries()
        matches = [e for e in entries if e.project == name]
        if len(matches) > 1:
            files = ", ".join(self.shown(e.path) for e in matches)
            raise UsageProblem(
                f"Project {name!r} has several config files here: {files}. Pass the one you "
                f"mean with --config PATH."
            )
        if matches:
            entry = matches[0]
            if entry.error is not None and store_only_ok:
                warn(
                    f"{self.shown(entry.path)} does not load, so its declared targets and "
                    f"groups are left out: {entry.error}"
                )
            if store_only_ok and check_identity and entry.config is not None:
                self._check_identity(entry.config)
            return Project(name, entry)
        if getattr(self.args, "config", None) and entries:
            raise UsageProblem(
                f"--config {self.shown(entries[0].path)} is the config of project "
                f"{entries[0].project!r}, not {name!r}. Name its project, or leave --config "
                f"out to search the current directory."
            )
        stored: list[str] = []
        if store_only_ok:
            store = self.store()
            stored = store.projects() if store is not None else []
            if name in stored:
                return Project(name, None)
        known = [f"{e.project} ({self.shown(e.path)})" for e in entries]
        if store_only_ok:
            known += [f"{p} (store only)" for p in stored if p not in {e.project for e in entries}]
        where = f"under {self.cwd}" if not getattr(self.args, "config", None) else "in --config"
        raise UsageProblem(
            f"Unknown project {name!r}: no config file {where} names it"
            + (" and the store does not know it" if store_only_ok else "")
            + f". Known projects: {', '.join(known) or 'none'}. A project's name is its "
            f"config's `project` key, else the name of the config's folder; run from a folder "
            f"that holds the config or pass --config PATH."
        )

    def _check_identity(self, config: DeployConfig) -> None:
        """UsageProblem when the store binds the config's project name to another identity
        (deploy_plugin.identity); reads only."""
        from deploy_plugin import identity
        from deploy_plugin.facts import who

        store = self.store()
        if store is None:
            return
        verdict = identity.check(
            store, config, shown=self.shown(config.path), bind=False, who=who()
        )
        if verdict.refusal:
            raise UsageProblem(verdict.refusal)

    # -- targets --------------------------------------------------------------------------

    def known_targets(self, project: Project, *, in_use: bool = False) -> dict[str, str]:
        """Target name → origin (``config``, ``store``, ``config+store``; with ``in_use``
        also ``history`` for names that only have env vars, history or runs)."""
        config = project.config
        known = {name: "config" for name in (config.targets if config else {})}
        store = self.store()
        if store is not None:
            for record in store.list_targets(project.name):
                known[record.name] = "config+store" if record.name in known else "store"
            if in_use:
                for name in store.targets_in_use(project.name):
                    known.setdefault(name, "history")
        return known

    def require_target(self, project: Project, name: str | None, *, in_use: bool = False) -> str:
        """A ``--target`` value that names a known target; UsageProblem listing them if not."""
        known = self.known_targets(project, in_use=in_use)
        listing = ", ".join(f"{n} ({o})" for n, o in sorted(known.items())) or "none"
        if not name:
            raise UsageProblem(
                f"This command works on one target of project {project.name!r}: pass "
                f"--target NAME. Known targets: {listing}."
            )
        check_target_name(name)
        if name not in known:
            raise UsageProblem(
                f"Unknown target {name!r} for project {project.name!r}. Known targets: "
                f"{listing}. Declare it under `targets:` in the config or add it with "
                f"`pytest-deploy target add {project.name} {name}`."
            )
        return name


def check_target_name(name: str) -> None:
    """UsageProblem unless ``name`` is a valid target name (letters, digits, _ and -)."""
    if not NAME_RE.match(name):
        raise UsageProblem(
            f"Invalid target name {name!r}: a target name may hold only letters, digits, '_' "
            f"and '-' (no spaces), because it becomes a level of every node id "
            f"(deploy.yaml::<target>::...). Example: production, staging-eu."
        )


def check_var_name(name: str) -> None:
    """UsageProblem unless ``name`` is a valid shell variable name."""
    if not ENV_NAME_RE.match(name):
        raise UsageProblem(
            f"Invalid env var name {name!r}: it must be a shell identifier (letters, digits "
            f"and '_', not starting with a digit), so that commands can read it as $NAME. "
            f"Example: DATABASE_URL."
        )


def confirm(question: str, *, yes: bool) -> bool:
    """``--yes``, else ask at a terminal; without one, UsageProblem asking for ``--yes``."""
    if yes:
        return True
    if not sys.stdin or not sys.stdin.isatty():
        raise UsageProblem(f"{question} No terminal to ask at: pass --yes to confirm.")
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        answer = ""
    return answer.strip().lower() in ("y", "yes")
