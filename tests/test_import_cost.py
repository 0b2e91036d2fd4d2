"""Issue 14: a plain pytest run (no ``--deploy-target``) in a project with a config pays
only for validating it. What deploys is imported by the hooks and collectors of a target.

Import *time* is a benchmark figure (``benchmarks/import_cost.py``); these tests pin the
behaviour behind it: which of our modules such a run loads.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.projects import write_project

# what only a deployment needs: a run without a target must not import them
DEPLOYING = (
    "deploy_plugin.runtime",
    "deploy_plugin.items",
    "deploy_plugin.preflight",
    "deploy_plugin.plan",
    "deploy_plugin.shell",
    "deploy_plugin.secrets",
    "deploy_plugin.store.base",
    "deploy_plugin.report",
    "deploy_plugin.downs",
    "jsonschema",
    "psycopg",
)

PROBE = """
import json, sys
import pytest
code = pytest.main(sys.argv[2:])
loaded = sorted(m for m in sys.modules if m.startswith(("deploy_plugin", "jsonschema", "psycopg")))
open(sys.argv[1], "w").write(json.dumps({"code": int(code), "loaded": loaded}))
"""


def loaded_by(root: Path, *args: str) -> tuple[int, set[str]]:
    """The exit code of ``pytest -q ARGS`` in ``root`` and the modules it loaded (ours,
    jsonschema's, psycopg's). pytest's cache is on, as in a user's project."""
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
    write_project(pytester, {"groups": [{"name": "g", "order": 1, "deploy_command": "true"}]})
    pytester.makepyfile(test_unit="def test_one():\n    pass\n")
    code, loaded = loaded_by(pytester.path)
    assert code == 0
    assert "jsonschema" in loaded  # a config never seen: the schema pass ran
    code, loaded = loaded_by(pytester.path)
    assert code == 0
    assert "deploy_plugin.config.validation" in loaded  # validated (semantic checks) again
    # ... but the same bytes need no second schema pass, and nothing deploys
    assert not loaded & set(DEPLOYING), sorted(loaded & set(DEPLOYING))


def test_an_edited_config_gets_the_schema_pass_again(pytester) -> None:  # noqa: ANN001
    path = write_project(pytester, {"groups": [{"name": "g", "order": 1, "deploy_command": "x"}]})
    assert loaded_by(pytester.path)[0] == 0
    path.write_text(path.read_text().replace("order: 1", "order: one"))
    result = pytester.runpytest()  # the cache of the runs above, in the same folder
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*groups[[]0[]].order*expected*integer*"])


def test_a_config_loaded_before_is_not_parsed_again(pytester) -> None:  # noqa: ANN001
    """Its parse is remembered in pytest's cache: neither PyYAML nor the schema pass is
    needed for the same bytes, with or without a target; an edit is parsed again."""
    group = {"name": "g", "order": 1, "deploy_command": "true"}
    path = write_project(pytester, {"groups": [group]})
    probe = PROBE.replace('"psycopg"))', '"psycopg", "yaml"))')
    out = pytester.path / "loaded.json"

    def yaml_loaded(*args: str) -> bool:
        subprocess.run([sys.executable, "-c", probe, str(out), "-q", *args], cwd=pytester.path)
        data = json.loads(out.read_text())
        assert data["code"] == 0
        return "yaml" in data["loaded"]

    assert yaml_loaded()  # never seen: parsed
    assert not yaml_loaded()
    assert not yaml_loaded("--deploy-target=t")
    path.write_text(path.read_text() + "\n# edited\n")
    assert yaml_loaded("--deploy-target=t")


def test_without_the_cache_every_run_validates_in_full(pytester) -> None:  # noqa: ANN001
    write_project(pytester, {"groups": [{"name": "g", "order": 1, "deploy_command": "true"}]})
    for _ in range(2):
        code, loaded = loaded_by(pytester.path, "-p", "no:cacheprovider")
        assert code == 0 and "jsonschema" in loaded


def test_a_wrong_cache_entry_still_gives_the_usual_error(pytester) -> None:  # noqa: ANN001
    """A hand-edited cache that claims a bad file passed: the model cannot be built from it,
    so the file is parsed and validated in full and reads as usual (no traceback)."""
    import hashlib

    from deploy_plugin.config.validation import schema_pass_key

    path = pytester.path / "deploy.yaml"
    path.write_text("project: p\ntargets: {t: {}}\ngroups: [{name: g, order: one}]\n")
    key = schema_pass_key(hashlib.sha256(path.read_bytes()).hexdigest(), path)
    cache = pytester.path / ".pytest_cache" / "v" / "deploy" / "parsed-configs"
    cache.parent.mkdir(parents=True)
    data = {"project": "p", "targets": {"t": {}}, "groups": [{"name": "g", "order": "one"}]}
    cache.write_text(json.dumps({key: [data, {"groups[0]": 3}]}))
    result = pytester.runpytest()
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*groups[[]0[]].order*"])
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*ValueError*")


def test_a_bad_config_fails_its_validate_item_without_the_deploying_modules(pytester) -> None:  # noqa: ANN001
    (pytester.path / "deploy.yaml").write_text("project: p\ngroups: 3\n")
    code, loaded = loaded_by(pytester.path)
    assert code == 1  # the validate item failed
    assert not loaded & set(DEPLOYING) - {"jsonschema"}, sorted(loaded & set(DEPLOYING))


def test_a_target_loads_what_deploys(pytester) -> None:  # noqa: ANN001
    """The other side: the lazy imports are really reached when a deployment runs."""
    write_project(pytester, {"groups": [{"name": "g", "order": 1, "deploy_command": "true"}]})
    code, loaded = loaded_by(pytester.path, "--deploy-target=t")
    assert code == 0
    assert {"deploy_plugin.runtime", "deploy_plugin.items", "deploy_plugin.store.base"} <= loaded


def test_a_config_the_cache_cannot_hold_is_not_remembered(pytester) -> None:  # noqa: ANN001
    """A YAML escape making a lone surrogate is valid YAML but not UTF-8: pytest's cache
    (UTF-8 JSON) cannot hold it, so its parse is not remembered, and the cache keeps the
    other configs' parses."""
    (pytester.path / "other").mkdir()
    group = {"name": "g", "order": 1, "deploy_command": "true"}
    write_project(pytester, {"groups": [group]}, name="other/deploy.yaml")
    assert pytester.runpytest("other").ret == 0
    cache = pytester.path / ".pytest_cache" / "v" / "deploy" / "parsed-configs"
    kept = cache.read_text()
    (pytester.path / "deploy.yaml").write_text(
        "project: p\ntargets: {t: {}}\n"
        'groups: [{name: g, order: 1, deploy_command: "echo \\ud800"}]\n'
    )
    for _ in range(2):
        result = pytester.runpytest()
        result.assert_outcomes(passed=2)
    assert cache.read_text() == kept


def test_a_hand_broken_cache_entry_is_parsed_again(pytester) -> None:  # noqa: ANN001
    """An entry that builds but breaks a check (a list where a command belongs): the file
    is parsed and validated in full instead, as if the cache were empty."""
    group = {"name": "g", "order": 1, "deploy_command": "true"}
    write_project(pytester, {"groups": [group]})
    assert pytester.runpytest().ret == 0
    cache = pytester.path / ".pytest_cache" / "v" / "deploy" / "parsed-configs"
    entries = json.loads(cache.read_text())
    for data, _ in entries.values():
        data["groups"][0]["deploy_command"] = ["echo", "x"]
    cache.write_text(json.dumps(entries))
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
