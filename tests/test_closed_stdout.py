"""Issue 21: a closed stdout never changes a deployment (``pytest … | head -13``).

The deployment goes on, its steps and history are recorded as with an open stdout, nothing
more reaches the closed pipe and the exit status is the run's own. Each run here reads its
stdout through a real pipe and closes the read end while one step waits for the file
``closed`` (written by the test once the pipe is closed): what the run writes after that
meets a pipe with no reader (EPIPE), at the start, the middle or the end of the deployment.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml

from deploy_plugin.store import open_store

CLI = Path(sys.executable).with_name("pytest-deploy")
WAIT = "for i in $(seq 2000); do [ -e closed ] && break; sleep 0.01; done; [ -e closed ]"
GROUPS = ("a", "b", "c")


def write_project(root: Path, waiting: str, *, fail: bool = False) -> None:
    """Groups a, b, c echo a line; ``waiting`` first waits for ``closed`` (then fails)."""
    groups = []
    for order, name in enumerate(GROUPS, 1):
        command = f"echo step {name}"
        if name == waiting:
            command = f"{WAIT} && echo step {name}" + (
                " && echo no disk left >&2 && exit 3" if fail else ""
            )
        groups.append({"name": name, "order": order, "deploy_command": command})
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "deploy.yaml").write_text(
        yaml.safe_dump({"project": "p", "targets": {"t": {}}, "groups": groups})
    )


def run_closing_stdout(root: Path, command: list[str], until: str | None) -> tuple[int, str]:
    """Run ``command`` in ``root`` with stdout a pipe: read lines up to the first one that
    holds ``until`` (none if None), close the read end, then let the waiting step go on.
    Returns the exit status and stderr."""
    with open(root / "stderr.txt", "w+b") as stderr:
        proc = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=stderr)
        assert proc.stdout is not None
        try:
            while until is not None:
                line = proc.stdout.readline().decode()
                assert line, f"the run ended before a line with {until!r}"
                if until in line:
                    break
            proc.stdout.close()
            (root / "closed").touch()
            code = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        stderr.seek(0)
        return code, stderr.read().decode()


Recorded = tuple[str, list[tuple[str, str, str | None]], list[tuple[str, ...]]]


def recorded(root: Path) -> Recorded:
    """The newest deployment's status and its steps (node id, outcome, message) in the
    store, and the JUnit XML's testcases (name and outcome), when the run wrote one."""
    store = open_store(None, root)
    assert store is not None
    try:
        (run, *_) = store.deployments("p", "t")
        steps = [(s.node_id, s.outcome, s.message) for s in store.deployment_steps(run.id)]
    finally:
        store.close()
    junit = root / "junit.xml"
    cases = []
    if junit.exists():
        for case in ElementTree.parse(junit).iter("testcase"):
            cases.append((case.get("name", ""), *(child.tag for child in case)))
    return run.status, steps, cases


def pytest_command() -> list[str]:
    return [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--deploy-target=t", "-v",
        "--junitxml=junit.xml", "-o", "junit_logging=system-out",
    ]  # fmt: skip


def reference(tmp_path: Path, waiting: str, *, fail: bool) -> Recorded:
    """The same deployment with an open stdout."""
    root = tmp_path / "open"
    root.mkdir()
    write_project(root, waiting, fail=fail)
    (root / "closed").touch()
    done = subprocess.run(pytest_command(), cwd=root, capture_output=True, timeout=120)
    assert done.returncode == (1 if fail else 0), done.stdout.decode()
    return recorded(root)


# (waiting group, the line read last before closing): nothing read, the session's first
# line, the last line before the deployment's middle step, and before its last one
POINTS = [
    ("a", None), ("a", "test session starts"), ("b", "::a::deploy PASSED"),
    ("c", "::b::deploy PASSED"),
]  # fmt: skip


@pytest.mark.parametrize("fail", [False, True], ids=["success", "failure"])
@pytest.mark.parametrize(("waiting", "until"), POINTS, ids=["start", "early", "middle", "end"])
def test_a_closed_stdout_leaves_the_deployment_as_it_is(
    tmp_path: Path, waiting: str, until: str | None, fail: bool
) -> None:
    expected = reference(tmp_path, waiting, fail=fail)
    root = tmp_path / "closed-stdout"
    root.mkdir()
    write_project(root, waiting, fail=fail)
    code, stderr = run_closing_stdout(root, pytest_command(), until)
    assert "Traceback" not in stderr and "INTERNALERROR" not in stderr, stderr
    assert code == (1 if fail else 0), stderr
    status, steps, testcases = recorded(root)
    assert (status, steps, testcases) == expected  # store and JUnit XML alike
    assert len(steps) == len(testcases) == 6  # preflight's three and a, b, c
    if fail:
        assert status == "failure"
        assert any("no disk left" in (message or "") for _, _, message in steps), steps


@pytest.mark.parametrize("fail", [False, True], ids=["success", "failure"])
@pytest.mark.parametrize(("waiting", "until"), [POINTS[0], POINTS[2], POINTS[3]],
                         ids=["start", "middle", "end"])  # fmt: skip
def test_deploy_run_with_a_closed_stdout_leaves_the_deployment_as_it_is(
    tmp_path: Path, waiting: str, until: str | None, fail: bool
) -> None:
    """``pytest-deploy deploy run`` relays the run's output: its relay meets the closed pipe
    and the run itself never notices."""
    expected = reference(tmp_path, waiting, fail=fail)
    root = tmp_path / "closed-stdout"
    root.mkdir()
    write_project(root, waiting, fail=fail)
    command = [str(CLI), "deploy", "run", "p", "--target", "t", "--", "-v"]
    code, stderr = run_closing_stdout(root, command, until)
    assert "Traceback" not in stderr and "Broken pipe" not in stderr, stderr
    assert code == (1 if fail else 0), stderr
    assert recorded(root)[:2] == expected[:2]  # the store (no JUnit XML here)
