"""Issue 14: a plain pytest run (no ``--deploy-target``) in a project with a config pays
only for validating it. What deploys is imported by the hooks and collectors of a target.

Every run reads, parses and validates the config from its file (DESIGN §5, issue 20: no
parsed data from pytest's cache), so such a run does load the parser and jsonschema.

Import *time* is a benchmark figure (``benchmarks/import_cost.py``); these tests pin the
behaviour behind it: which modules such a run loads.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.projects import write_project

# what only a deployment needs: a run without a target must not import them
DEPLOYING = (
    "deploy_plugin.engine.runtime",
    "deploy_plugin.plugin.items",
    "deploy_plugin.plugin.steps",
    "deploy_plugin.plugin.reporter",
    "deploy_plugin.plugin.preflight",
    "deploy_plugin.plan",
    "deploy_plugin.engine.shell",
    "deploy_plugin.secrets",
    "deploy_plugin.store.base",
    "deploy_plugin.plugin.summary",
    "deploy_plugin.migrate.downs",
    "psycopg",
)

# what validating a config needs, in every run that collects one
VALIDATING = ("deploy_plugin.config.schema_check", "deploy_plugin.config.validation", "jsonschema")

PROBE = """
import json, sys
import pytest
code = pytest.main(sys.argv[2:])
loaded = sorted(
    m for m in sys.modules if m.startswith(("deploy_plugin", "jsonschema", "psycopg", "yaml"))
)
open(sys.argv[1], "w").write(json.dumps({"code": int(code), "loaded": loaded}))
"""


def loaded_by(root: Path, *args: str) -> tuple[int, set[str]]:
    """The exit code of ``pytest -q ARGS`` in ``root`` and the modules it loaded (ours,
    jsonschema's, psycopg's, PyYAML's). pytest's cache is on, as in a user's project."""
    out = root / "loaded.json"
    subprocess.run(
        [sys.executable, "-c", PROBE, str(out), "-q", *args],
        cwd=root,
        capture_output=True,
        timeout=120,
    )
    data = json.loads(out.read_text())
    return data["code"], set(data["loaded"])


def test_a_run_without_a_target_only_validates_the_config(pytester) -> None:  # noqa: ANN001
    """Each run, the first and the next (pytest's cache on), parses and validates in full,
    and imports nothing that deploys."""
    write_project(pytester, {"groups": [{"name": "g", "order": 1, "deploy_command": "true"}]})
    pytester.makepyfile(test_unit="def test_one():\n    pass\n")
    for _ in range(2):
        code, loaded = loaded_by(pytester.path)
        assert code == 0
        assert {*VALIDATING, "yaml"} <= loaded
        assert not loaded & set(DEPLOYING), sorted(loaded & set(DEPLOYING))


def test_an_edited_config_fails_its_next_run(pytester) -> None:  # noqa: ANN001
    path = write_project(pytester, {"groups": [{"name": "g", "order": 1, "deploy_command": "x"}]})
    assert loaded_by(pytester.path)[0] == 0
    path.write_text(path.read_text().replace("order: 1", "order: one"))
    result = pytester.runpytest()  # pytest's cache of the run above, in the same folder
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*groups[[]0[]].order*expected*integer*"])


def test_a_json_config_needs_no_yaml(pytester) -> None:  # noqa: ANN001
    """PyYAML is imported only to read a YAML file: a ``deploy.json`` project runs without
    it (telling the file is ours included)."""
    group = {"name": "g", "order": 1, "deploy_command": "true"}
    config = {"project": "p", "targets": {"t": {}}, "groups": [group]}
    (pytester.path / "deploy.json").write_text(json.dumps(config))
    for args in ((), ("--deploy-target=t",)):
        code, loaded = loaded_by(pytester.path, *args)
        assert code == 0
        assert "deploy_plugin.config.validation" in loaded  # the config was validated
        assert not {m for m in loaded if m.split(".")[0] == "yaml"}, args


def test_a_bad_config_fails_its_validate_item_without_the_deploying_modules(pytester) -> None:  # noqa: ANN001
    (pytester.path / "deploy.yaml").write_text("project: p\ngroups: 3\n")
    code, loaded = loaded_by(pytester.path)
    assert code == 1  # the validate item failed
    assert not loaded & set(DEPLOYING), sorted(loaded & set(DEPLOYING))


def test_a_target_loads_what_deploys(pytester) -> None:  # noqa: ANN001
    """The other side: the lazy imports are really reached when a deployment runs."""
    write_project(pytester, {"groups": [{"name": "g", "order": 1, "deploy_command": "true"}]})
    code, loaded = loaded_by(pytester.path, "--deploy-target=t")
    assert code == 0
    expected = {
        "deploy_plugin.engine.runtime",
        "deploy_plugin.plugin.items",
        "deploy_plugin.store.base",
    }
    assert expected <= loaded
