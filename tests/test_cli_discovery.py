"""Issue 22: the CLI sees exactly the configs pytest collects (it asks pytest, as a process).

Each test compares ``pytest-deploy`` with ``pytest --collect-only`` in the same folder:
pytest's own settings (``norecursedirs``, a conftest's ``collect_ignore``, virtualenvs)
decide which configs are projects, for both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = Path(sys.executable).with_name("pytest-deploy")


def config(project: str) -> str:
    return (
        f"project: {project}\ntargets:\n  local: {{}}\n"
        "groups:\n  - name: build\n    order: 1\n    build_command: echo built\n"
    )


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DEPLOY_STORE_URL"}
    return subprocess.run(
        [str(CLI), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def collected(cwd: Path) -> list[str]:
    """The config files ``pytest --collect-only -q`` lists (their ``validate`` items)."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=cwd, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return sorted(
        line.split("::")[0] for line in done.stdout.splitlines() if line.endswith("::validate")
    )


def validated(cwd: Path) -> list[str]:
    done = run_cli(cwd, "config", "validate", "--json")
    assert done.returncode == 0, done.stderr
    return sorted(entry["path"] for entry in json.loads(done.stdout))


def test_the_cli_sees_what_pytest_collects_with_norecursedirs(tmp_path: Path) -> None:
    """norecursedirs (and a conftest's collect_ignore) hide a config from pytest: the CLI
    must not find it either."""
    (tmp_path / "pytest.ini").write_text("[pytest]\nnorecursedirs = ignored\n")
    (tmp_path / "conftest.py").write_text('collect_ignore = ["dropped"]\n')
    for folder, project in (("app", "app"), ("ignored", "hidden"), ("dropped", "gone")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "deploy.yaml").write_text(config(project))
    assert collected(tmp_path) == ["app/deploy.yaml"]
    assert validated(tmp_path) == ["app/deploy.yaml"]
    done = run_cli(tmp_path, "config", "show", "hidden")
    assert done.returncode == 2, done.stdout
    assert "Unknown project 'hidden'" in done.stderr and "app (app/deploy.yaml)" in done.stderr
    assert run_cli(tmp_path, "config", "show", "gone").returncode == 2
    done = run_cli(tmp_path, "config", "show", "app")
    assert done.returncode == 0 and "project app" in done.stdout, done.stderr


def test_another_tools_files_outside_a_project_are_left_to_pytest(tmp_path: Path) -> None:
    """From a folder outside any project (no pytest settings), holding a virtualenv whose
    packages ship another tool's ``deploy.yaml`` and ``*.deploy.json`` (pytest never goes
    into a virtualenv) and other YAML files: the CLI sees the one config pytest collects,
    and nothing of the rest."""
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "deploy.yaml").write_text(config("shop"))
    tool = tmp_path / "env" / "lib" / "python3" / "site-packages" / "shop"
    tool.mkdir(parents=True)
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (tool / "deploy.yaml").write_text("groups: {web: [1, 2]}\nproject: [not, ours]\n")
    (tool / "release.deploy.json").write_bytes(b'{"groups": "\xff\xfe"')
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "mkdocs.yml").write_text("site_name: x\nnav: [a, b\n")
    assert collected(tmp_path) == ["shop/deploy.yaml"]
    assert validated(tmp_path) == ["shop/deploy.yaml"]
    done = run_cli(tmp_path, "config", "show", "shop")
    assert done.returncode == 0 and "project shop" in done.stdout, done.stderr
    done = run_cli(tmp_path, "target", "list", "shop")
    assert done.returncode == 0 and "local" in done.stdout, done.stderr


def test_pytest_lists_its_configs_as_json(pytester: pytest.Pytester) -> None:
    """``--deploy-list-configs=-``: the configs collected, as JSON, and nothing run."""
    pytester.makeini("[pytest]\nnorecursedirs = ignored\n")
    for folder, project in (("app", "app"), ("ignored", "hidden")):
        pytester.mkdir(folder)
        (pytester.path / folder / "deploy.yaml").write_text(config(project))
    (pytester.path / "legacy").mkdir()
    (pytester.path / "legacy" / "deploy.sh").write_text("echo deployed\n")
    (pytester.path / "broken").mkdir()
    (pytester.path / "broken" / "deploy.yaml").write_text("project: broken\ngroups: 3\n")
    pytester.makepyfile(test_unit="def test_x():\n    raise AssertionError('the unit test ran')\n")
    result = pytester.runpytest_subprocess("--deploy-list-configs=-", "-q")
    assert result.ret == 0, result.stdout.str()
    line = next(x for x in result.stdout.lines if x.startswith("{"))
    listing = json.loads(line)
    assert listing["rootdir"] == str(pytester.path)
    by_project = {c["project"]: c for c in listing["configs"]}
    assert sorted(by_project) == ["app", "broken", "legacy"]
    assert by_project["app"]["path"] == str(pytester.path / "app" / "deploy.yaml")
    assert by_project["app"]["targets"] == ["local"] and by_project["app"]["kind"] == "config"
    assert by_project["legacy"]["kind"] == "script"
    assert "the unit test ran" not in result.stdout.str()


def test_a_folder_pytest_cannot_collect_is_one_paragraph(tmp_path: Path) -> None:
    """pytest's own collection error (a broken conftest) is the CLI's error, in one
    paragraph that names it, without a traceback; pytest's usage error (exit 4, as a root
    conftest that does not import is) is a usage error here too (exit 2)."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "conftest.py").write_text("import no_such_module_here\n")
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "deploy.yaml").write_text(config("shop"))
    done = run_cli(tmp_path, "config", "show", "shop")
    assert done.returncode == 2, done.stdout
    assert "no_such_module_here" in done.stderr and "pytest --collect-only" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    (tmp_path / "conftest.py").write_text("")
    (tmp_path / "shop" / "conftest.py").write_text("def broken(:\n")
    done = run_cli(tmp_path, "config", "show", "shop")
    assert done.returncode == 1, done.stdout
    assert "SyntaxError" in done.stderr and "shop/conftest.py" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_store_commands_with_a_store_url_need_no_collection(tmp_path: Path) -> None:
    """A command that only reads the store (``project show``), given a store that needs no
    home folder (an absolute SQLite path), works where pytest could not collect."""
    store = tmp_path / "elsewhere" / "state.db"
    store.parent.mkdir()
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "deploy.yaml").write_text(config("shop"))
    url = f"sqlite:///{store}"
    done = run_cli(tmp_path / "shop", "target", "add", "shop", "staging", "--deploy-store", url)
    assert done.returncode == 0, done.stderr
    (tmp_path / "conftest.py").write_text("import no_such_module_here\n")
    done = run_cli(tmp_path, "project", "show", "shop", "--deploy-store", url)
    assert done.returncode == 0 and "project     shop" in done.stdout, done.stderr
