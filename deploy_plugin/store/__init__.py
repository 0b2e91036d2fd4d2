"""Where targets, env vars, migration history, deployment runs and locks are kept.

``open_store(url, rootdir)`` gives a :class:`Store`: SQLite (the default, a file under
``<rootdir>/.deploy/``) or PostgreSQL (``postgresql://``, tables in the schema ``deploy``).
Both create and upgrade their own schema when opened; see ``schema.py``.

Store URLs:

* ``None`` — ``<rootdir>/.deploy/state.sqlite3`` (the folder gets a ``.gitignore``)
* ``""`` (blank) — refused: ``store_url`` gives it for a ``DEPLOY_STORE_URL`` that is set
  but empty, which must not silently mean the default store
* ``sqlite:///PATH`` — everything after ``sqlite:///`` is the path, as in SQLAlchemy:
  ``sqlite:///state.db`` is relative to ``rootdir``, ``sqlite:////var/lib/x.db`` absolute
* ``postgresql://USER:PASSWORD@HOST:PORT/DB`` (or ``postgres://``)
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import (
        DeployLock,
        DeploymentRecord,
        EnvVarRecord,
        LockHeld,
        LockInfo,
        MigrationRecord,
        StepRecord,
        Store,
        StoreError,
        TargetRecord,
        describe_url,
    )


def __getattr__(name: str) -> Any:
    # The names of __all__ not defined here are ``base``'s, imported when first used (PEP
    # 562): the plugin reads the store's URL in every pytest run, and a plain run (no target)
    # never opens a store.
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # not cached in globals(): pytester (in-process runs) drops the submodules afterwards
    return getattr(importlib.import_module(".base", __name__), name)


__all__ = [
    "DeployLock",
    "DeploymentRecord",
    "EnvVarRecord",
    "LockHeld",
    "LockInfo",
    "MigrationRecord",
    "StepRecord",
    "Store",
    "StoreError",
    "TargetRecord",
    "default_store_path",
    "describe_url",
    "is_postgres_url",
    "open_store",
    "sqlite_path",
    "store_home",
    "store_url",
]

STORE_FOLDER = ".deploy"
STORE_FILE = "state.sqlite3"


def default_store_path(rootdir: Path) -> Path:
    """``<rootdir>/.deploy/state.sqlite3``."""
    return Path(rootdir) / STORE_FOLDER / STORE_FILE


#: What marks a project's top folder: a repository, or a file holding pytest's settings
#: (a pyproject.toml, tox.ini or setup.cfg only with its pytest section, as pytest reads them).
HOME_MARKERS = {
    ".git": None,
    "pytest.ini": None,
    ".pytest.ini": None,
    "pytest.toml": None,
    "pyproject.toml": "[tool.pytest",
    "tox.ini": "[pytest]",
    "setup.cfg": "[tool:pytest]",
}


def _is_top(folder: Path) -> bool:
    for name, section in HOME_MARKERS.items():
        path = folder / name
        if not path.exists():
            continue
        if section is None:
            return True
        try:
            if section in path.read_text(encoding="utf-8", errors="replace"):
                return True
        except OSError:
            continue
    return False


def store_home(config_path: Path, rootdir: Path) -> Path:
    """The folder of the embedded store of the project whose config is ``config_path``,
    whatever the current directory (pytest's rootdir and the CLI's depend on it).

    Upward from the config's folder: the nearest folder that already holds
    ``.deploy/state.sqlite3`` (so stores made before keep working, even above a nested
    package's own markers); else the project's top (the nearest folder holding ``.git`` or
    pytest's settings); without either, ``rootdir``, as before. The walk never goes into
    the home folder or the temp folder (a stray store there is nobody's project), unless
    the config itself is there."""
    # deferred: +16 modules, 8 ms (shutil, tempfile, zlib, …)
    import tempfile

    start = Path(config_path).absolute().parent
    stops = {Path.home().absolute(), Path(tempfile.gettempdir()).absolute()}
    folders = []
    for folder in (start, *start.parents):
        if folder != start and (folder in stops or folder == Path(folder.anchor)):
            break
        folders.append(folder)
    for folder in folders:
        if default_store_path(folder).is_file():
            return folder
    for folder in folders:
        if _is_top(folder):
            return folder
    return Path(rootdir)


def store_url(option: str | None, ini: str | None) -> str | None:
    """The store URL by precedence, for pytest and the CLI alike: ``--deploy-store``, then
    ``$DEPLOY_STORE_URL``, then ini ``deploy_store``; None means the default SQLite file.
    ``""``: ``DEPLOY_STORE_URL`` is set but empty and nothing else names a store, which
    :func:`open_store` refuses (in CI an undefined secret gives an empty value: silently
    using a fresh local store would run every migration again)."""
    env = os.environ.get("DEPLOY_STORE_URL")
    for value in (option, env, ini):
        if value and value.strip():
            return value.strip()
    if env is not None:
        return ""  # set but empty (an undefined CI secret): open_store refuses it
    return None


def is_postgres_url(url: str | None) -> bool:
    """Whether ``url`` names a PostgreSQL store."""
    return bool(url) and url.startswith(("postgresql://", "postgres://"))  # type: ignore[union-attr]


def sqlite_path(url: str, base: Path) -> Path:
    """The file of a ``sqlite:///PATH`` URL; a relative PATH is relative to ``base``."""
    # deferred: +82 modules, 104 ms (store.history, store.records, store.projects, …)
    from .base import StoreError

    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise StoreError(
            f"The store URL {url!r} is not a valid SQLite URL. Write sqlite:///relative/path "
            f"(relative to the rootdir) or sqlite:////absolute/path."
        )
    return Path(base) / url[len(prefix) :]  # an absolute PATH replaces base


def open_store(
    url: str | None, rootdir: Path, *, create: bool = True, missing_database_ok: bool = True
) -> Store | None:
    """Open the store named by ``url`` (None: the default SQLite file under ``rootdir``).

    ``create=True`` creates what is missing (``.deploy/`` with its ``.gitignore``, the file
    with mode 0600, the schema) and upgrades an older schema. ``create=False`` (dry runs)
    creates and upgrades nothing: it returns None when the store, its schema or its
    database is missing, or its schema is older than this version writes; otherwise the
    store opens read/write. Problems (not a database, unreachable server, wrong password,
    permissions) raise :class:`StoreError` with a one-paragraph message. A PostgreSQL
    database that does not exist is such a problem too unless ``missing_database_ok``.
    """
    # deferred: +82 modules, 74 ms (store.history, store.records, secrets, …)
    from .base import StoreError, describe_url

    rootdir = Path(rootdir)
    if url is not None and not url.strip():
        raise StoreError(
            "The store URL is empty: DEPLOY_STORE_URL is set but empty, and neither"
            " --deploy-store nor ini deploy_store names a store (in CI, a secret that is"
            " not defined gives an empty value). Give the store's URL, or unset"
            f" DEPLOY_STORE_URL to use the default store {default_store_path(rootdir)}."
        )
    if not url:
        path = default_store_path(rootdir)
        return _open_sqlite(path, f"sqlite:///{path.absolute()}", create, path.parent)
    if url.startswith("sqlite:"):
        path = sqlite_path(url, rootdir).absolute()
        # The default folder gets its .gitignore however it was named.
        folder = path.parent if path.parent == (rootdir / STORE_FOLDER).absolute() else None
        return _open_sqlite(path, url, create, folder)
    if is_postgres_url(url):
        return _open_postgres(url, create, missing_database_ok)
    raise StoreError(
        f"The store URL {describe_url(url)} is not supported. Use sqlite:///PATH or "
        f"postgresql://USER@HOST:PORT/DATABASE (--deploy-store, DEPLOY_STORE_URL or ini "
        f"deploy_store)."
    )


# The drivers are imported when a store is opened: a plain run (no target) never opens
# one, and psycopg alone costs tens of milliseconds (benchmarks/import_cost.py).


def _open_sqlite(path: Path, url: str, create: bool, gitignore_dir: Path | None) -> Store | None:
    # deferred: +89 modules, 93 ms (store.history, store.records, store.projects, …)
    from .base import Store
    from .sqlite import open_sqlite
    from .sqlite_lock import SQLiteLocks

    driver = open_sqlite(path, url, create=create, gitignore_dir=gitignore_dir)
    return None if driver is None else Store(driver, SQLiteLocks(driver))


def _open_postgres(url: str, create: bool, missing_database_ok: bool) -> Store | None:
    # deferred: +267 modules, 192 ms (store.history, psycopg, store.records, …)
    from .base import Store
    from .postgres import open_postgres
    from .postgres_lock import PostgresLocks

    driver = open_postgres(url, create=create, missing_database_ok=missing_database_ok)
    return None if driver is None else Store(driver, PostgresLocks(driver))
