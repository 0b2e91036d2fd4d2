"""Other pytest plugins cannot bypass a deployment's safeguards (issue 20 #11).

pytest-rerunfailures would run a failed step again and report the deployment's failure
as a "rerun" (JUnit failures="0", the JSON report "skipped"); pytest-timeout's thread
method ends the process with ``os._exit`` and leaves the step running and the run
``running``. Both are refused under ``--deploy-target``; the signal method works. The
last test deploys deployments/demo for real with the usual plugins active.

These plugins are not in the ``test`` extra (pytest-randomly would shuffle the main
suite): they come with ``pip install -e '.[plugins]'``; CI runs this module in a venv of
its own (``.ci/plugins``, which ``.ci/run`` runs). Without them, and outside CI, the
module is skipped.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.procs import alive
from tests.projects import write_config

PLUGINS = ("pytest_timeout", "pytest_rerunfailures", "pytest_randomly", "pytest_cov", "pytest_html")
MISSING = [name for name in PLUGINS if importlib.util.find_spec(name) is None]
if MISSING and not os.environ.get("CI"):
    pytest.skip(
        f"needs {', '.join(MISSING)} (pip install -e '.[plugins]')", allow_module_level=True
    )

REPO = Path(__file__).resolve().parent.parent


def two_groups(pytester: pytest.Pytester, first: str) -> None:
    write_config(
        pytester,
        {
            "project": "p",
            "targets": {"t": {}},
            "groups": [
                {"name": "one", "order": 1, "build_command": first},
                {"name": "two", "order": 2, "build_command": "echo two >> stamps"},
            ],
        },
    )


def assert_refused(result: pytest.RunResult, pytester: pytest.Pytester, *words: str) -> None:
    """Exit 4 (pytest's usage error: an option, or a mark found once collected), one
    paragraph naming the option or item, nothing run."""
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1, result.stderr.str()
    for word in words:
        assert word in errors[0]
    assert "Traceback" not in result.stderr.str()
    assert not (pytester.path / "stamps").exists()


@pytest.mark.parametrize(
    "args",
    [["--reruns", "2"], ["--force-reruns", "1"], ["-o", "reruns=2"]],
    ids=["reruns", "force-reruns", "ini"],
)
def test_reruns_are_refused(pytester: pytest.Pytester, args: list[str]) -> None:
    two_groups(pytester, "echo one >> stamps; false")
    result = pytester.runpytest_subprocess("--deploy-target=t", "-p", "no:cacheprovider", *args)
    assert_refused(result, pytester, "rerun", "deployment")


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["", "xdist"])
def test_a_flaky_mark_on_a_smoke_test_is_refused(
    pytester: pytest.Pytester, xdist: list[str]
) -> None:
    two_groups(pytester, "echo one >> stamps")
    pytester.makepyfile(
        test_smoke=(
            "import pytest\n\n"
            "@pytest.mark.flaky(reruns=3)\n"
            "def test_up(deploy_target):\n"
            "    assert False\n"
        )
    )
    result = pytester.runpytest_subprocess("--deploy-target=t", "-p", "no:cacheprovider", *xdist)
    assert_refused(result, pytester, "flaky", "test_smoke.py::test_up[t]")


def test_reruns_without_a_target_still_work(pytester: pytest.Pytester) -> None:
    """Plain tests (no --deploy-target: nothing deploys) may still be rerun."""
    pytester.makepyfile(
        test_plain=(
            "import pathlib\n\n"
            "def test_second_time():\n"
            "    p = pathlib.Path('seen')\n"
            "    first = not p.exists()\n"
            "    p.touch()\n"
            "    assert not first\n"
        )
    )
    result = pytester.runpytest_subprocess("--reruns", "1", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert (outcomes.get("passed"), outcomes.get("rerun")) == (1, 1), outcomes


@pytest.mark.parametrize(
    "args",
    [["--timeout=60", "--timeout-method=thread"], ["-o", "timeout_method=thread"]],
    ids=["option", "ini"],
)
def test_the_thread_timeout_method_is_refused(pytester: pytest.Pytester, args: list[str]) -> None:
    two_groups(pytester, "echo one >> stamps")
    result = pytester.runpytest_subprocess("--deploy-target=t", "-p", "no:cacheprovider", *args)
    assert_refused(result, pytester, args[-1].replace("-o ", ""), "--timeout-method=signal")


def test_a_thread_timeout_mark_on_a_smoke_test_is_refused(pytester: pytest.Pytester) -> None:
    two_groups(pytester, "echo one >> stamps")
    pytester.makepyfile(
        test_smoke=(
            "import pytest\n\n"
            "@pytest.mark.timeout(30, method='thread')\n"
            "def test_up(deploy_target):\n"
            "    pass\n"
        )
    )
    result = pytester.runpytest_subprocess("--deploy-target=t", "-p", "no:cacheprovider")
    assert_refused(result, pytester, "timeout", "thread", "test_smoke.py::test_up[t]")


def test_the_signal_timeout_ends_the_step_and_says_so(pytester: pytest.Pytester) -> None:
    two_groups(pytester, "sleep 300 & echo $! > sleeper; echo $$ > shell; wait")
    result = pytester.runpytest_subprocess(
        "--deploy-target=t", "-p", "no:cacheprovider", "--timeout=2",
        "--timeout-method=signal", "--deploy-report=report.json",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=3, failed=1, skipped=1)
    # the step's process group was ended, not left behind
    for name in ("shell", "sleeper"):
        assert not alive(int((pytester.path / name).read_text()))
    # a paragraph that says what timed out, not pytest's traceback
    result.stdout.fnmatch_lines(["t::one::build was stopped while it ran*pytest-timeout*"])
    result.stdout.no_fnmatch_line("*def from_call*")
    (deployment,) = json.loads((pytester.path / "report.json").read_text())["deployments"]
    assert deployment["status"] == "failure"
    step = next(s for s in deployment["steps"] if s["node_id"].endswith("one::build"))
    assert step["outcome"] == "failed" and "pytest-timeout" in step["message"]
    with sqlite3.connect(pytester.path / ".deploy" / "state.sqlite3") as conn:
        assert conn.execute("SELECT status FROM deployments").fetchall() == [("failure",)]
    assert not (pytester.path / "stamps").exists()  # group two did not run



def test_the_demo_deploys_in_order_with_the_usual_plugins(demo: Path) -> None:
    """pytest-randomly (on by default), pytest-cov, pytest-html and pytest-timeout's
    signal method active: the demo deploys, every step in its order."""
    from tests.test_demo import free_port

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "demo", "-p", "no:cacheprovider", "-v",
         "--deploy-target=local", f"--deploy-env=DEMO_PORT={free_port()}",
         "-p", "randomly", "--cov=demo", "--cov-report=", "--html=report.html",
         "--timeout=60", "--timeout-method=signal", "--junitxml=deploy.xml",
         "--deploy-report=deploy.json"],
        cwd=demo.parent, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Using --randomly-seed=" in result.stdout  # pytest-randomly was active
    assert (demo.parent / "report.html").exists()
    (deployment,) = json.loads((demo.parent / "deploy.json").read_text())["deployments"]
    assert deployment["status"] == "success"
    ran = [s["node_id"] for s in deployment["steps"]]
    assert ran == DEMO_ORDER
    shown = [line.split(" PASSED")[0] for line in result.stdout.splitlines() if " PASSED" in line]
    assert shown == DEMO_ORDER  # the terminal's order is the run's order
    assert sum(1 for _ in ET.parse(demo.parent / "deploy.xml").getroot().iter("testcase")) == 19


STEP = "demo/deploy.yaml::local::"
SMOKE = "demo/smoke/test_demo_smoke.py::"
DEMO_ORDER = [
    *(f"{STEP}preflight::{name}" for name in ("lock", "env", "files", "migrations-drift")),
    f"{STEP}migrations::pre_deploy[0]",
    *(
        f"{STEP}migrations::deploy[migrations/{name}.sql]"
        for name in ("001_create_items", "002_seed_items", "003_add_created_by")
    ),
    f"{SMOKE}test_every_migration_is_recorded[local]",
    f"{STEP}build::pre_deploy[0]", f"{STEP}build::build", f"{STEP}build::test",
    f"{STEP}functions::deploy[functions/greet/handler.py]",
    f"{STEP}functions::deploy[functions/report/handler.py]",
    f"{STEP}functions::post_deploy[0]",
    f"{STEP}services::deploy[services/demo-api.service]", f"{STEP}services::post_deploy[0]",
    f"{SMOKE}test_service_lists_the_published_functions[local]",
    f"{STEP}health_check",
]  # fmt: skip
