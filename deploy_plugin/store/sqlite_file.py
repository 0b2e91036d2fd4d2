"""The SQLite store's file: made 0600 with its folder's .gitignore, foreign files refused,
and driver errors as one paragraph each."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from deploy_plugin.db import BUSY_TIMEOUT_S, sqlite_connect

from .errors import StoreError

_OURS = {"schema_version", "store_meta"}


def refuse_foreign(path: Path) -> None:
    """Refuse a path that is not an empty file or a store of ours, changing nothing."""
    problem = None
    if not path.is_file():
        problem = "is not a regular file"
    elif path.stat().st_size:
        try:
            conn = sqlite_connect(path, mode="ro", timeout=5)
            try:
                tables = {
                    row[0]
                    for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                }
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise sqlite_error(path, "open the store", exc) from exc  # its own paragraph
        else:
            if tables and not _OURS <= tables:
                shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
                problem = f"is an SQLite database of something else (tables: {shown})"
    if problem:
        raise StoreError(
            f"The store {path} {problem}, so pytest-deploy will not use it: a store is a file"
            " it creates itself, or an empty one. Nothing was changed. Choose another path"
            " with --deploy-store sqlite:///PATH (or DEPLOY_STORE_URL / ini deploy_store)."
        )


def prepare_file(path: Path, gitignore_dir: Path | None) -> None:
    """Create the folder (with its .gitignore) and the file, mode 0600, before SQLite does."""
    try:
        if gitignore_dir is not None:
            gitignore_dir.mkdir(parents=True, exist_ok=True)
            try:
                with open(gitignore_dir / ".gitignore", "x", encoding="utf-8") as handle:
                    handle.write("*\n")
            except FileExistsError:
                pass
        path.parent.mkdir(parents=True, exist_ok=True)
        # 0600 from the start: env vars (secrets) are stored in this file. SQLite gives
        # the -wal and -shm files the same mode.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)  # a file that existed before keeps no looser mode
    except OSError as exc:
        raise StoreError(
            f"Cannot create the SQLite store {path}: {exc.strerror or exc} "
            f"({exc.filename or path}). Check that you may write to that folder, or choose "
            f"another store with --deploy-store / DEPLOY_STORE_URL / ini deploy_store."
        ) from exc


def sqlite_error(path: Path, what: str, exc: sqlite3.Error) -> StoreError:
    """One paragraph for a sqlite3 error while doing ``what`` (e.g. "record a migration")."""
    text = str(exc)
    if "file is not a database" in text or "malformed" in text:
        return StoreError(
            f"The SQLite store {path} is not a usable SQLite database ({text}). If it was "
            f"overwritten, move it away (a new, empty store is created on the next run) or "
            f"point --deploy-store / DEPLOY_STORE_URL at another file."
        )
    if "unable to open" in text:
        return StoreError(
            f"Cannot open the SQLite store {path} ({text}). Check that the file and its "
            f"folder exist and that you may read and write them."
        )
    if "readonly" in text or "read-only" in text:
        return StoreError(
            f"Cannot {what} in the SQLite store {path}: it is read-only ({text}). Give this "
            f"user write permission on the file and its folder (SQLite also writes "
            f"{path.name}-wal and {path.name}-shm next to it)."
        )
    if "locked" in text or "busy" in text:
        return StoreError(
            f"Cannot {what} in the SQLite store {path}: another process kept it locked for "
            f"more than {BUSY_TIMEOUT_S:.0f} s ({text}). Run again when it has finished."
        )
    if "already exists" in text:
        return StoreError(
            f"Cannot {what} in {path}: the file already holds tables of another application "
            f"({text}). A SQLite store needs its own file; point --deploy-store at a new one."
        )
    return StoreError(f"Cannot {what} in the SQLite store {path}: {text}.")
