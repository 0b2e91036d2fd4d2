"""deployments/ci: the CI recipes run as copied. Each recipe's jobs (or stages) run, line by
line in bash, in a checkout of this repository (pytest-deploy's source and the demo as the
config's folder) with a fresh Python of their own: the build job builds pytest-deploy's
wheel, each deploy job installs it and deploys the demo, its smoke tests included, with
its DATABASE_URL from the CI's secret store as a process env var. The recipes' CI
settings that protect production (approval, allow_failure, agents) are checked as parsed.

Offline: pip gets no index (PIP_NO_INDEX) and builds without isolation (with this venv's
setuptools); the dependencies of pytest-deploy come from this venv's site-packages, less
pytest-deploy itself, on PYTHONPATH, so a job's ``pip install`` of the wheel finds them
installed and puts only pytest-deploy into the job's Python."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import sysconfig
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from contextlib import closing
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
RECIPES = REPO / "deployments" / "ci"
# the recipes' targets, as the demo's targets
TARGETS = {"staging": "local", "production": "local-b"}
# the demo's smoke tests: a deployment that collected them runs them
SMOKE_TESTS = {"test_every_migration_is_recorded", "test_service_lists_the_published_functions"}
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def deps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This venv's site-packages less pytest-deploy: what a job's pip would download."""
    setuptools = version("setuptools")
    assert int(setuptools.split(".")[0]) >= 77, (
        f"setuptools {setuptools} cannot build pytest-deploy's wheel offline (its pyproject "
        "needs >=77): install the test extra again, pip install -e '.[test]'"
    )
    folder = tmp_path_factory.mktemp("deps")
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        name = entry.name
        if not (name.startswith(("pytest_deploy", "__editable__", "deploy_plugin"))
                or name.endswith(".pth") or name == "__pycache__"):  # fmt: skip
            (folder / name).symlink_to(entry)
    return folder


@pytest.fixture
def checkout(tmp_path: Path) -> Iterator[Path]:
    """A CI job's checkout: pytest-deploy's source (so PYTEST_DEPLOY_SOURCE's default "."
    holds) and the demo at deployments/demo, its targets' ports free and their
    DATABASE_URL left to the process (the recipes pass it from the CI's secrets)."""
    root = tmp_path / "checkout"
    root.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, root / name)
    ignore = shutil.ignore_patterns(".out", ".deploy", "__pycache__")
    shutil.copytree(REPO / "deploy_plugin", root / "deploy_plugin", ignore=ignore)
    demo = root / "deployments" / "demo"
    shutil.copytree(REPO / "deployments" / "demo", demo, ignore=ignore)
    config = yaml.safe_load((demo / "deploy.yaml").read_text())
    for target in TARGETS.values():
        env = config["targets"][target]["env"]
        del env["DATABASE_URL"]
        env["DEMO_PORT"] = str(free_port())
    (demo / "deploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    yield root
    for pidfile in (demo / ".out").glob("*/run/*.pid"):  # the demo's services we started
        try:
            os.kill(int(pidfile.read_text()), signal.SIGTERM)
        except (ProcessLookupError, ValueError):
            pass


def secrets(tmp_path: Path) -> dict[str, str]:
    """The CI secret store: DATABASE_URL per target (a SQLite file the migrations make)."""
    return {
        "DEPLOY_STORE_URL": f"sqlite:///{tmp_path}/team-store.sqlite3",
        "staging": "sqlite:///.out/from-ci-staging.sqlite3",
        "production": "sqlite:///.out/from-ci-production.sqlite3",
    }


def job_env(
    tmp_path: Path, deps: Path, variables: Mapping[str, str]
) -> tuple[dict[str, str], Path]:
    """A fresh job: its own Python (a venv without pip) first on PATH, pip offline."""
    runner = new_folder(tmp_path) / "python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(runner)], check=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DEPLOY_", "PIP_", "PYTHON", "VIRTUAL_ENV"))}  # fmt: skip
    path = [p for p in env.get("PATH", "").split(os.pathsep) if Path(p) != BIN]
    env["PATH"] = os.pathsep.join([str(runner / "bin"), *path])
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               PIP_NO_BUILD_ISOLATION="0",  # (sic) = --no-build-isolation
               PYTHONPATH=str(deps))  # fmt: skip
    env.update(variables)
    return env, runner


def new_folder(tmp_path: Path) -> Path:
    """A new folder of its own for a job's Python."""
    jobs = tmp_path / "jobs"
    jobs.mkdir(exist_ok=True)
    folder = jobs / str(len(list(jobs.iterdir())))
    folder.mkdir()
    return folder


def for_demo(line: str) -> str:
    """A recipe's shell line, its targets the demo's."""
    return re.sub(r"(--deploy-target[= ])(staging|production)\b",
                  lambda m: m.group(1) + TARGETS[m.group(2)], line)  # fmt: skip


def run_job(checkout: Path, env: Mapping[str, str], lines: list[str]) -> str:
    """Run a job's shell lines in the checkout, as its CI would (bash -e, in order)."""
    output = ""
    for line in lines:
        command = for_demo(line)
        result = subprocess.run(["bash", "-e", "-c", command], cwd=checkout, env=env,
                                capture_output=True, text=True, timeout=300)  # fmt: skip
        output += f"$ {command}\n{result.stdout}{result.stderr}"
        assert result.returncode == 0, output
        assert "Traceback" not in result.stdout + result.stderr, output
    return output


def deployed(checkout: Path, runner: Path, target: str, output: str) -> None:
    """The job deployed the demo to ``target`` with pytest-deploy from the wheel, the
    smoke tests run, the migrations applied to the DATABASE_URL of the CI's secrets."""
    demo = checkout / "deployments" / "demo"
    installed = list(runner.glob("lib/python*/site-packages/deploy_plugin/__init__.py"))
    assert installed, f"pytest-deploy was not installed into the job's Python\n{output}"
    assert "(dry run)" in output, output
    cases = ET.parse(checkout / f"reports/deploy-{target}.xml").getroot().iter("testcase")
    names = {c.get("name") or "": c for c in cases}
    assert next(iter(names)).startswith("01 preflight · "), output
    smoke = {n for n in names if " smoke · " in n}
    assert {n.split(" · ")[1].split("[")[0] for n in smoke} == SMOKE_TESTS, list(names)
    for name, case in names.items():  # every step and smoke test passed, none skipped
        problems = [c.tag for c in case if c.tag not in ("system-out", "system-err")]
        assert not problems, f"{name}: {problems}\n{output}"
    report = (checkout / f"reports/deploy-{target}.json").read_text()
    assert "test_every_migration_is_recorded" in report
    database = demo / f".out/from-ci-{target}.sqlite3"  # the secret's URL, not the config's
    assert database.is_file(), f"no database at the DATABASE_URL of the secrets\n{output}"
    with closing(sqlite3.connect(database)) as db:
        assert db.execute("SELECT count(*) FROM demo_items").fetchone()[0] > 0


def expand(value: str, known: Mapping[str, str]) -> str:
    """A CI's variable reference (``$X``, ``${X}``, ``${{ secrets.X }}``) by its value."""
    pattern = r"\$\{\{\s*secrets\.(\w+)\s*\}\}|\$\{?(\w+)\}?"
    return re.sub(pattern, lambda m: known[m.group(1) or m.group(2)], value)


def test_github_actions_recipe(checkout: Path, deps: Path, tmp_path: Path) -> None:
    doc = yaml.safe_load((RECIPES / "github-deploy.yml").read_text())
    jobs: dict[str, Any] = doc["jobs"]
    store = secrets(tmp_path)
    # the workflow's env (your folder for DEPLOY_DIR), its secrets those of the repository
    variables = {k: expand(v, store) for k, v in doc["env"].items()}
    variables["DEPLOY_DIR"] = "deployments/demo"
    for name, job in jobs.items():  # in the order their `needs` run them
        target = job.get("environment")  # a job's secrets: its environment's
        job_secrets = {**store, "DATABASE_URL": store[target]} if target else store
        job_variables = {k: expand(v, job_secrets) for k, v in job.get("env", {}).items()}
        env, runner = job_env(tmp_path, deps, {**variables, **job_variables})
        output = run_job(checkout, env, [s["run"] for s in job["steps"] if "run" in s])
        if target:
            deployed(checkout, runner, target, output)
        else:
            assert list(checkout.glob("dist/*.whl")), f"{name} built no wheel\n{output}"
    assert doc["env"]["PYTEST_DEPLOY_SOURCE"] == "."  # the default: this repository
    assert list(jobs) == ["build", *TARGETS]
    assert jobs["staging"]["needs"] == "build"
    assert jobs["production"]["needs"] == ["build", "staging"]
    [upload] = [s for s in jobs["build"]["steps"] if s.get("uses", "").startswith(
        "actions/upload-artifact")]  # fmt: skip
    assert [p.name for p in checkout.glob(upload["with"]["path"])] == [
        "pytest_deploy-0.2.0-py3-none-any.whl"
    ]
    for target in TARGETS:
        job = jobs[target]
        assert job["environment"] == target  # where GitHub asks for approval
        assert job["env"] == {"DATABASE_URL": "${{ secrets.DATABASE_URL }}"}
        steps = job["steps"]
        [download] = [s for s in steps if s.get("uses", "").startswith("actions/download")]
        assert download["with"]["name"] == upload["with"]["name"]
        assert download["with"]["path"] == upload["with"]["path"].split("/")[0]
        [report_upload] = [s for s in steps if s.get("uses", "").startswith(
            "actions/upload-artifact")]  # fmt: skip
        [report] = [s for s in steps if s.get("uses", "").startswith("dorny/test-reporter")]
        assert report_upload["if"] == report["if"] == "always()"
        assert report["with"]["reporter"] == "java-junit"
        assert report["with"]["path"] == f"reports/deploy-{target}.xml"
        assert "reports/" in report_upload["with"]["path"].split()


def gitlab_jobs(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The jobs, each merged with the template it extends (GitLab replaces lists)."""
    return {
        name: {**doc.get(job.get("extends", ""), {}), **job}
        for name, job in doc.items()
        if isinstance(job, dict) and "script" in job and not name.startswith(".")
    }


def test_gitlab_ci_recipe(checkout: Path, deps: Path, tmp_path: Path) -> None:
    doc = yaml.safe_load((RECIPES / "gitlab-ci.yml").read_text())
    jobs = gitlab_jobs(doc)
    store = secrets(tmp_path)
    # the project's CI/CD variables (masked, production's protected)
    ci_variables = {"STAGING_DATABASE_URL": store["staging"],
                    "PRODUCTION_DATABASE_URL": store["production"],
                    "DEPLOY_STORE_URL": store["DEPLOY_STORE_URL"]}  # fmt: skip
    variables = {**doc["variables"], "DEPLOY_DIR": "deployments/demo", **ci_variables}
    for name, job in jobs.items():  # in stage order, as `needs` runs them
        job_variables = {k: expand(v, ci_variables) for k, v in job.get("variables", {}).items()}
        env, runner = job_env(tmp_path, deps, {**variables, **job_variables})
        output = run_job(checkout, env, job.get("before_script", []) + job["script"])
        if "environment" in job:
            deployed(checkout, runner, job["environment"]["name"], output)
        else:
            assert list(checkout.glob("dist/*.whl")), f"{name} built no wheel\n{output}"
    assert doc["variables"]["PYTEST_DEPLOY_SOURCE"] == "."
    assert list(jobs) == ["build-pytest-deploy", *(f"deploy-{t}" for t in TARGETS)]
    for name, job in jobs.items():  # a manual job must not let the pipeline pass without it
        assert job.get("when") != "manual" or job.get("allow_failure") is False, name
    production = jobs["deploy-production"]
    assert production["when"] == "manual"
    assert production["needs"] == [
        "build-pytest-deploy",
        {"job": "deploy-staging", "artifacts": False},
    ]
    assert jobs["build-pytest-deploy"]["artifacts"]["paths"] == ["dist/"]
    for target in TARGETS:
        job = jobs[f"deploy-{target}"]
        assert job["environment"]["name"] == target and job["resource_group"] == target
        assert "build-pytest-deploy" in job["needs"] and job["extends"] == ".deploy"
        assert job["variables"] == {"DATABASE_URL": f"${target.upper()}_DATABASE_URL"}
        assert job["artifacts"]["when"] == "always"
        assert job["artifacts"]["reports"]["junit"] == "reports/deploy-*.xml"
    written = sorted(p.name for p in checkout.glob("reports/deploy-*.xml"))
    assert written == ["deploy-production.xml", "deploy-staging.xml"]


def jenkins_stages(code: str) -> dict[str, str]:
    """Each stage's text, by name."""
    starts = [(m.start(), m.group(1)) for m in re.finditer(r"stage\('([^']+)'\)", code)]
    ends = [s for s, _ in starts[1:]] + [len(code)]
    return {name: code[start:end] for (start, name), end in zip(starts, ends, strict=True)}


#: a stage's steps that the test runs: ``sh``, ``stash`` and ``unstash``
JENKINS_STEP = re.compile(
    r"\bsh '(?P<sh>[^']*)'|\bstash name: '(?P<stash>[^']+)', includes: '(?P<includes>[^']+)'"
    r"|\bunstash '(?P<unstash>[^']+)'"
)


def test_jenkinsfile_recipe(checkout: Path, deps: Path, tmp_path: Path) -> None:
    code = re.sub(r"//.*", "", (RECIPES / "Jenkinsfile").read_text())
    stages = jenkins_stages(code)
    top = code[: code.index("stages {")]
    variables = dict(re.findall(r"^\s*(\w+) = '([^']*)'", top, re.M))
    variables["DEPLOY_DIR"] = "deployments/demo"
    store = secrets(tmp_path)
    credentials = {"deploy-store-url": store["DEPLOY_STORE_URL"],
                   "staging-database-url": store["staging"],
                   "production-database-url": store["production"]}  # fmt: skip
    stashes: dict[str, dict[Path, bytes]] = {}
    for name, stage in stages.items():
        bound = dict(re.findall(r"^\s*(\w+) = credentials\('([^']+)'\)", stage, re.M))
        secret_values = {variable: credentials[id] for variable, id in bound.items()}
        env, _ = job_env(tmp_path, deps, {**variables, **secret_values})
        output = ""
        for step in JENKINS_STEP.finditer(stage):
            if step["sh"] is not None:
                output += run_job(checkout, env, [step["sh"]])
            elif step["stash"]:
                files = sorted(checkout.glob(step["includes"]))
                assert files, f"{name}: nothing to stash\n{output}"
                stashes[step["stash"]] = {p: p.read_bytes() for p in files}
            else:
                for path, data in stashes[step["unstash"]].items():
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)
        if name.startswith("Deploy "):
            deployed(checkout, checkout / ".venv", name.removeprefix("Deploy "), output)
    assert variables.get("PYTEST_DEPLOY_SOURCE") == "."
    assert list(stages) == ["Build pytest-deploy", *(f"Deploy {t}" for t in TARGETS)]
    # no executor held while production waits: none at the top, one per stage
    assert re.findall(r"\bagent\b\s*(\w+)", top) == ["none"]
    assert all(re.search(r"^\s*agent any\s*$", s, re.M) for s in stages.values())
    production = stages["Deploy production"]
    assert re.search(r"input \{[^}]*\bsubmitter '\w+'", production)  # approval, by whom
    assert production.index("input {") < production.index("steps {")
    for target in TARGETS:
        stage = stages[f"Deploy {target}"]
        assert dict(re.findall(r"^\s*(\w+) = credentials\('([^']+)'\)", stage, re.M)) == {
            "DEPLOY_STORE_URL": "deploy-store-url",
            "DATABASE_URL": f"{target}-database-url",
        }
        [junit] = re.findall(r"junit testResults: '([^']+)'", stage)
        assert junit == f"reports/deploy-{target}.xml"


def test_an_empty_store_url_is_refused_not_replaced_by_a_local_store(tmp_path: Path) -> None:
    """In CI an undefined secret gives DEPLOY_STORE_URL="": that must not silently mean a
    fresh local store (which would run every migration again), from pytest or the CLI."""
    demo = tmp_path
    shutil.copytree(REPO / "deployments" / "demo", demo / "demo",
                    ignore=shutil.ignore_patterns(".out", ".deploy"))  # fmt: skip
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
