"""The deployment history page: one self-contained HTML file built from the store.

:func:`write_history_page` reads a project's history (:mod:`.model`), renders it with
the Jinja2 templates shipped here (:mod:`.render`) and writes the file. Callers that must
never fail because of the page (the pytest run, see ``--deploy-html``) use
:func:`try_write_history_page`, which turns any problem into a warning naming the path.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from deploy_plugin.engine.errors import soft_warn

from .model import DEFAULT_LIMIT, PageData, build_page
from .render import render_page, write_file

if TYPE_CHECKING:
    from deploy_plugin.config import DeployConfig
    from deploy_plugin.store.base import Store


def write_history_page(
    store: Store,
    project: str,
    path: str | Path,
    *,
    config: DeployConfig | None = None,
    targets: list[str] | None = None,
    limit: int = DEFAULT_LIMIT,
    highlight: list[int] | None = None,
    rootdir: Path | None = None,
) -> PageData:
    """Build and write the page of ``project`` to ``path``: StoreError or OSError.
    ``rootdir``: where the runs' step logs are (their tails are shown), if at hand."""
    data = build_page(
        store, project, config=config, targets=targets, limit=limit, highlight=highlight,
        rootdir=rootdir,
    )  # fmt: skip
    write_file(Path(path), render_page(data))
    return data


def try_write_history_page(
    store: Store | None, project: str, path: str | Path, **kw: object
) -> bool:
    """:func:`write_history_page`, a problem only warns (naming ``path``); whether written."""
    # deferred: +21 modules, 33 ms (store.projects, platform, store.runs, …)
    from deploy_plugin.store.base import StoreError

    if store is None:
        soft_warn(f"pytest-deploy: history page {path} not written: no store is open for this run")
        return False
    try:
        write_history_page(store, project, path, **kw)  # type: ignore[arg-type]
    except (StoreError, OSError) as err:
        soft_warn(f"pytest-deploy: history page {path} not written: {err}")
        return False
    return True


__all__ = ["DEFAULT_LIMIT", "try_write_history_page", "write_history_page"]
