"""Protected targets: a real deployment needs --yes or the target's name typed at a terminal."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

CONFIG = {
    "project": "p",
    "targets": {"prod": {"protected": True}},
    "groups": [{"name": "a", "order": 1, "build_command": "touch deployed"}],
}


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    (pytester.path / "deploy.yaml").write_text(yaml.safe_dump(CONFIG))
    return pytester


def test_without_a_terminal_it_asks_for_yes(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("--deploy-target=prod", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1, skipped=2)  # no lock is taken either
    result.stdout.fnmatch_lines(["*target 'prod' of project 'p' is protected*pass --yes*"])
    assert not (project.path / "deployed").exists()


def test_yes_confirms(project: pytest.Pytester) -> None:
    project.runpytest("--deploy-target=prod", "--yes").assert_outcomes(passed=5)
    assert (project.path / "deployed").exists()


def test_a_dry_run_needs_no_confirmation(project: pytest.Pytester) -> None:
    project.runpytest("--deploy-target=prod", "--dry-run").assert_outcomes(passed=3)


def run_at_terminal(cwd: Path, answer: str) -> str:
    """Run pytest with a real pseudo-terminal as stdin and type ``answer``."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "--deploy-target=prod", "-p", "no:cacheprovider"],
        cwd=cwd, stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    os.close(terminal)
    os.write(controller, (answer + "\n").encode())
    out, _ = proc.communicate(timeout=60)
    os.close(controller)
    return out


@pytest.mark.parametrize(("answer", "deployed"), [("prod", True), ("yes", False)])
def test_typing_the_target_name_confirms(project: pytest.Pytester, answer: str, deployed: bool):
    out = run_at_terminal(project.path, answer)
    assert "is a protected target. Type its name (prod) to deploy:" in out
    assert (project.path / "deployed").exists() is deployed, out
