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


def test_a_refused_run_is_recorded_as_refused_never_as_the_latest(
    project: pytest.Pytester,
) -> None:
    """Issue 21 #6: a protected target without --yes, or a run refused by the lock, ran
    nothing: the store records it as ``refused``, and ``deploy status`` and the history page
    still show the last real deployment as the target's state."""
    from deploy_plugin.report.html.model import build_page
    from deploy_plugin.store import open_store

    project.runpytest("--deploy-target=prod", "--yes", "-p", "no:cacheprovider").assert_outcomes(
        passed=5
    )
    project.runpytest_subprocess("--deploy-target=prod", "-p", "no:cacheprovider")
    store = open_store(None, project.path)
    assert store is not None
    lock = store.acquire_lock("p", "prod", holder="someone-else")
    try:
        held = project.runpytest_subprocess(
            "--deploy-target=prod", "--yes", "-p", "no:cacheprovider"
        )
        held.stdout.fnmatch_lines(["*someone-else*"])
    finally:
        lock.release()
    runs = store.deployments("p", "prod")
    assert [r.status for r in runs] == ["refused", "refused", "success"]
    page = build_page(store, "p")
    (summary,) = page.targets
    assert summary.last is not None and summary.last.status == "success"
    assert summary.trend.failure_rates == [0.0]
    store.close()
    cli = Path(sys.executable).with_name("pytest-deploy")
    status = subprocess.run(
        [str(cli), "deploy", "status", "p", "--json"], cwd=project.path, capture_output=True,
        text=True, timeout=60, env={k: v for k, v in os.environ.items()
                                    if not k.startswith(("PYTEST_", "DEPLOY_"))},
    )  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert '"status": "success"' in status.stdout, status.stdout
