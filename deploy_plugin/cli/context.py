"""Where a CLI command works: rootdir, store and projects.

* projects and rootdir: what pytest collects here (:mod:`.discovery`, pytest run as a
  process): the configs under the current folder, or the ``--config`` file (as
  ``pytest PATH`` collects it), by project name; store-only commands also accept projects
  that only the store knows. ``--rootdir`` is handed to pytest.
* store URL: ``--deploy-store``, ``DEPLOY_STORE_URL``, ini ``deploy_store`` (pytest's ini),
  else the default SQLite file in the projects' store home; a store named by option or
  environment needs no pytest run to find, nor does a PostgreSQL store or an absolute
  SQLite path need a home.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from deploy_plugin.config import DeployConfig
from deploy_plugin.facts import who
from deploy_plugin.store import (
    Store,
    default_store_path,
    describe_url,
    is_postgres_url,
    open_store,
    store_home,
    store_url,
)

from .args import check_target_name
from .discovery import ConfigEntry, Listing, list_configs
from .output import CliError, UsageProblem, warn


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


class Context:
    """The resolved environment of one CLI invocation; close it when done."""

    def __init__(self, args: argparse.Namespace, cwd: Path | None = None) -> None:
        self.args = args
        self.cwd = Path(cwd or os.getcwd()).absolute()
        self._listing: Listing | None = None
        self._home: Path | None = None
        self._store: Store | None = None
        self._probed = False
        self.store_read = False  # a store was looked for: the command names it at the end

    # -- what pytest collects -------------------------------------------------------------

    def _given(self, option: str, folder: bool) -> Path | None:
        """``--rootdir`` / ``--config`` as an absolute path; UsageProblem if it is missing."""
        given = getattr(self.args, option, None)
        if not given:
            return None
        path: Path = (self.cwd / (os.path.expandvars(given) if folder else given)).absolute()
        if folder and not path.is_dir():
            raise UsageProblem(
                f"--rootdir {given}: no such folder ({path}). Pass an existing folder, or leave"
                " --rootdir out for pytest's."
            )
        if not folder and not path.is_file():
            raise UsageProblem(
                f"--config {given}: no such file ({path}). Pass the path of a deployment"
                " config (deploy.yaml, *.deploy.json...)."
            )
        return path

    def listing(self) -> Listing:
        """What pytest collects here (or the ``--config`` file), asked once."""
        if self._listing is None:
            config = self._given("config", folder=False)
            rootdir = self._given("rootdir", folder=True)
            listing = list_configs(self.cwd, [config] if config else [], rootdir)
            if config is not None and not listing.entries:
                raise UsageProblem(
                    f"--config {self.args.config}: pytest does not collect {config} as a"
                    " deployment config (deploy.yaml|yml|json with a top-level `groups` key,"
                    " or *.deploy.yaml|yml|json). Pass the project's config file."
                )
            self._listing = listing
        return self._listing

    def entries(self) -> list[ConfigEntry]:
        """The config files pytest collects here (or ``--config``), by project name."""
        return self.listing().entries

    @property
    def rootdir(self) -> Path:
        """pytest's rootdir for this invocation."""
        return self.listing().rootdir

    # -- the store ------------------------------------------------------------------------

    @property
    def store_url(self) -> str | None:
        """The store URL (None: the default SQLite file in the store home)."""
        option = getattr(self.args, "deploy_store", None)
        return store_url(option, None) or store_url(option, self.listing().ini_store)

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
            entries = self.entries()
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
            url = self.store_url
            # a PostgreSQL store or an absolute SQLite path needs no home: pytest is not asked
            fixed = is_postgres_url(url) or str(url).startswith("sqlite:////")
            home = self.cwd if fixed else self.store_home
            self.store_read = True
            # a mistyped PostgreSQL database is an error here, not "nothing stored yet"
            self._store = open_store(url, home, create=create, missing_database_ok=False)
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
                f"out for the configs pytest collects here."
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
        given = getattr(self.args, "config", None)
        where = "in --config" if given else f"pytest collects in {self.cwd}"
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
        # deferred: +1 modules, 1 ms (identity)
        from deploy_plugin import identity

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
