"""deployments/ci: the CI recipes parse, and every deployment command in them is one the
plugin and the CLI accept: each runs as a dry run against a copy of deployments/demo
(only its target and paths replaced), and each JUnit file a recipe hands to its CI's
test report is one those commands wrote."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
RECIPES = REPO / "deployments" / "ci"
# the recipes' targets, as the demo's targets
TARGETS = {"staging": "local", "production": "local-b"}
# the recipes' variables, as paths and names of the copy (relative to its folder)
VARIABLES = {"DEPLOY_CONFIG": "demo/deploy.yaml", "DEPLOY_PROJECT": "demo"}
BIN = Path(sys.executable).parent


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "deployments" / "demo", tmp_path / "demo",
                    ignore=shutil.ignore_patterns(".out", ".deploy"))  # fmt: skip
    return tmp_path


def deploy_commands(scripts: Iterator[str]) -> list[list[str]]:
    """The pytest / pytest-deploy commands among shell scripts, as argument lists."""
    commands = []
    for script in scripts:
        for line in script.splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if words and Path(words[0]).name in ("pytest", "pytest-deploy"):
                    commands.append(words)
    return commands


def as_dry_run(words: list[str]) -> list[str]:
    """The command for the demo: its targets, variables and paths, --dry-run added."""
    out = []
    for word in words:
        word = re.sub(r"\$\{?(\w+)\}?", lambda m: VARIABLES[m.group(1)], word)
        name, eq, value = word.partition("=")
        if name == "--deploy-target" and eq:
            word = f"{name}={TARGETS[value]}"
        elif out and out[-1] == "--target":
            word = TARGETS[word]
        out.append(word)
    out[0] = str(BIN / Path(out[0]).name)  # `.venv/bin/pytest` is this venv's
    if "--dry-run" not in out:
        out.insert(out.index("--") if "--" in out else len(out), "--dry-run")
    return out


def run_dry(folder: Path, words: list[str]) -> None:
    command = as_dry_run(words)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPLOY_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{shlex.join(words)}\n-> {shlex.join(command)}\n{output}"
    assert "(dry run)" in output and "Traceback" not in output, output
    assert not (folder / "demo" / ".out").exists()  # a dry run changed nothing


def variables_used(commands: list[list[str]]) -> set[str]:
    return {v for words in commands for w in words for v in re.findall(r"\$\{?(\w+)", w)}


def junit_cases(path: Path) -> list[str]:
    return [c.get("name") or "" for c in ET.parse(path).getroot().iter("testcase")]


def test_github_actions_recipe(demo: Path) -> None:
    doc = yaml.safe_load((RECIPES / "github-deploy.yml").read_text())
    jobs: dict[str, Any] = doc["jobs"]
    assert set(jobs) == set(TARGETS) and jobs["production"]["needs"] == "staging"
    for target, job in jobs.items():
        assert job["environment"] == target  # where GitHub asks for approval
        steps = job["steps"]
        commands = deploy_commands(s["run"] for s in steps if "run" in s)
        assert len(commands) == 2 and variables_used(commands) <= set(doc["env"])
        for words in commands:
            assert f"--deploy-target={target}" in words
            run_dry(demo, words)
        [upload] = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact")]
        [report] = [s for s in steps if s.get("uses", "").startswith("dorny/test-reporter")]
        assert upload["if"] == report["if"] == "always()"
        junit = report["with"]["path"]
        assert report["with"]["reporter"] == "java-junit"
        assert junit.split("/")[0] + "/" in upload["with"]["path"].split()
        assert any(f"--junitxml={junit}" in words for words in commands)
        assert junit_cases(demo / junit)[0] == "01 preflight · env"


def test_gitlab_ci_recipe(demo: Path) -> None:
    doc = yaml.safe_load((RECIPES / "gitlab-ci.yml").read_text())
    template = doc[".deploy"]
    junit = template["artifacts"]["reports"]["junit"]
    assert template["artifacts"]["when"] == "always"
    jobs = {n: {**template, **j} for n, j in doc.items() if isinstance(j, dict) and "script" in j}
    assert set(jobs) == {f"deploy-{t}" for t in TARGETS}
    assert jobs["deploy-production"]["needs"] == ["deploy-staging"]
    for target in TARGETS:
        job = jobs[f"deploy-{target}"]
        assert job["environment"]["name"] == target and job["extends"] == ".deploy"
        commands = deploy_commands(iter(job["before_script"] + job["script"]))
        assert len(commands) == 2 and variables_used(commands) <= set(doc["variables"])
        for words in commands:
            assert words[:3] == ["pytest-deploy", "deploy", "run"]
            assert words[words.index("--target") + 1] == target
            run_dry(demo, words)
    written = sorted(demo.glob(junit))
    assert [p.name for p in written] == ["deploy-production.xml", "deploy-staging.xml"]
    assert all(junit_cases(p)[0] == "01 preflight · env" for p in written)


def test_jenkinsfile_recipe(demo: Path) -> None:
    text = (RECIPES / "Jenkinsfile").read_text()
    declared = set(re.findall(r"^\s*(\w+) = ", text, re.M))
    commands = deploy_commands(iter(re.findall(r"\bsh '([^']*)'", text)))
    assert len(commands) == 4 and variables_used(commands) <= declared
    for words in commands:
        run_dry(demo, words)
    for target in TARGETS:
        stage = text[text.index(f"stage('Deploy {target}')") :]
        stage = stage[: stage.find("stage(", 1) if "stage(" in stage[1:] else None]
        assert any(f"--deploy-target={target}" in words for words in commands)
        [junit] = re.findall(r"junit testResults: '([^']+)'", stage)
        assert junit == f"reports/deploy-{target}.xml"
        assert junit_cases(demo / junit)[0] == "01 preflight · env"
    assert "input {" in text[text.index("stage('Deploy production')") :]  # approval


def test_an_empty_store_url_is_refused_not_replaced_by_a_local_store(demo: Path) -> None:
    """In CI an undefined secret gives DEPLOY_STORE_URL="": that must not silently mean a
    fresh local store (which would run every migration again), from pytest or the CLI."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPLOY_")}
    env["DEPLOY_STORE_URL"] = ""
    for command in (
        [str(BIN / "pytest"), "demo", "--deploy-target=local", "-p", "no:cacheprovider"],
        [str(BIN / "pytest-deploy"), "migration", "status", "demo", "--target", "local",
         "--config", "demo/deploy.yaml"],
    ):  # fmt: skip
        result = subprocess.run(command, cwd=demo, env=env, capture_output=True, text=True,
                                timeout=120)  # fmt: skip
        output = result.stdout + result.stderr
        assert result.returncode != 0, output
        assert "DEPLOY_STORE_URL is set but empty" in output and "Traceback" not in output
        assert not list(demo.rglob("state.sqlite3"))  # no store was made in its place
        assert not (demo / "demo" / ".out").exists()  # nothing deployed
