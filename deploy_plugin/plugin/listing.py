"""``--deploy-list-configs=FILE``: the deployment configs this pytest run collects, as JSON;
nothing is run. The ``pytest-deploy`` CLI finds its projects so (DESIGN §7: the CLI runs
pytest as a process), so it always sees what pytest sees.

Collection is pytest's own: rootdir, ``testpaths``, ``norecursedirs``, ``--ignore``, a
conftest's ``collect_ignore``, virtualenvs, the arguments given. Of what it collects only
the files this plugin collects are kept (no test module is imported), and their items are
not made: each config is read once, here. The JSON (FILE, or stdout for ``-``)::

    {"rootdir": "/abs", "inifile": "/abs/pytest.ini" or null,
     "deploy_store": the ini's deploy_store or null,
     "configs": [{"path": "/abs/deploy.yaml", "kind": "config" (or "script": a deploy.sh
                  fallback), "project": "shop", "targets": ["local"]}]}

Configs are listed, not validated (:func:`describe`): a plain ``pytest`` run validates them.
The exit status is 0 when nothing else went wrong, also with no config found.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

#: What this plugin's collectors are (:func:`deploy_plugin.plugin.hooks.pytest_collect_file`
#: makes them); told apart by module, so that listing imports none of them.
_OURS = "deploy_plugin.plugin."


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("deploy", "deployments (pytest-deploy)").addoption(
        "--deploy-list-configs",
        dest="deploy_list_configs",
        metavar="FILE",
        help="write the deployment configs pytest collects as JSON to FILE ('-': stdout) and"
        " run nothing (how the pytest-deploy command finds projects)",
    )


def pytest_configure(config: pytest.Config) -> None:
    destination = config.getoption("deploy_list_configs", None)
    if destination:
        config.pluginmanager.register(ConfigListing(destination), "deploy-list-configs")


class ConfigListing:
    """Keeps the configs pytest collects, and writes them once collection is done."""

    def __init__(self, destination: str) -> None:
        self.destination = destination
        self.files: list[pytest.Collector] = []
        self.ours: set[int] = set()  # their ids

    @pytest.hookimpl(wrapper=True)
    def pytest_collect_file(self, file_path: Path) -> Any:
        collectors = yield
        ours = [c for c in collectors if type(c).__module__.startswith(_OURS)]
        self.files += ours
        self.ours.update(map(id, ours))
        return ours  # no other file is collected: no test module is imported

    @pytest.hookimpl(tryfirst=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Any:
        if id(collector) in self.ours:  # collected, but its items are not made (nor read twice)
            return pytest.CollectReport(collector.nodeid, "passed", None, [])
        return None

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        config = session.config
        listing = {
            "rootdir": str(config.rootpath),
            "inifile": str(config.inipath) if config.inipath else None,
            "deploy_store": config.getini("deploy_store") or None,
            "configs": [describe(file.path) for file in self.files],
        }
        text = json.dumps(listing, ensure_ascii=False)
        if self.destination == "-":
            terminal = config.pluginmanager.get_plugin("terminalreporter")
            if terminal is not None:
                terminal.write_line(text)
            else:
                print(text)
        else:
            Path(self.destination).write_text(text + "\n", encoding="utf-8")

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self) -> bool:
        return True  # nothing runs

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
            session.exitstatus = pytest.ExitCode.OK  # the listing is the result


def describe(path: Path) -> dict[str, Any]:
    """One collected file: its project and declared targets, read without validating (the
    run that deploys validates; the CLI loads what it uses). The project is the config's
    ``project`` key, else the name of its root folder (DESIGN §1), as its loader names it;
    a file that does not parse is named after its folder."""
    # deferred: +16 modules, 42 ms (config.model, config.validation, config.loading, …)
    from deploy_plugin.config.fallback import SCRIPT_NAME, script_config

    if path.name == SCRIPT_NAME:
        return {"path": str(path), "kind": "script", "project": script_config(path).project,
                "targets": []}  # fmt: skip
    data = _document(path)
    project, root, targets = data.get("project"), data.get("root"), data.get("targets")
    if not (isinstance(project, str) and project):
        project = (path.parent / (root if isinstance(root, str) else ".")).resolve().name
    return {"path": str(path), "kind": "config", "project": project,
            "targets": list(targets) if isinstance(targets, dict) else []}  # fmt: skip


def _document(path: Path) -> dict[str, Any]:
    """The top-level mapping of a YAML or JSON file; empty when it has none."""
    try:
        text = path.read_text(encoding="utf-8-sig")
        if path.suffix == ".json":
            data = json.loads(text)
        else:
            # deferred: +18 modules, 13 ms (yaml.reader, yaml.scanner, yaml.resolver, …)
            import yaml

            data = yaml.safe_load(text)
    except Exception:  # noqa: BLE001 - a broken file: named after its folder
        return {}
    return data if isinstance(data, dict) else {}
