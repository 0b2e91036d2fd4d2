"""Every deploy item runs through pytest's own run protocol (issue 22: no copy of it):
setup, call and teardown hooks, finalizers, ``sys.last_value``, ``-x``, marks, JUnit and
``-rA`` as for any test."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from tests.projects import write_config

CONFIG = {
    "project": "p",
    "targets": {"t": {"env": {"DATABASE_URL": "sqlite:///target.sqlite3"}}},
    "groups": [
        {"name": "migrations", "order": 1, "file_patterns": ["migrations/*.sql"]},
        {"name": "files", "order": 2, "file_patterns": ["files/*.txt"],
         "deploy_command": "echo deploying {file}; test {file} != files/3.txt"},
        {"name": "later", "order": 3, "build_command": "echo never"},
    ],
}  # fmt: skip

# Records, through pluggy's public monitoring (no runtest hook implemented here), which
# items went through pytest_runtest_call.
MONITOR = """
import os

def pytest_configure(config):
    def before(hook_name, hook_impls, kwargs):
        if hook_name == "pytest_runtest_call":
            with open(os.path.join(str(config.rootpath), "called.txt"), "a") as out:
                out.write(kwargs["item"].nodeid + "\\n")
    config.pluginmanager.add_hookcall_monitoring(before, lambda *args: None)
"""


def project(pytester: pytest.Pytester) -> None:
    write_config(pytester, CONFIG)
    for i in range(1, 5):
        pytester.path.joinpath("migrations").mkdir(exist_ok=True)
        pytester.path.joinpath("migrations", f"{i}.sql").write_text(f"CREATE TABLE t{i} (id INT);")
        pytester.path.joinpath("files").mkdir(exist_ok=True)
        pytester.path.joinpath("files", f"{i}.txt").write_text("")


def called(pytester: pytest.Pytester) -> list[str]:
    path = pytester.path / "called.txt"
    lines = path.read_text().splitlines() if path.exists() else []
    path.unlink(missing_ok=True)
    return lines


def junit(pytester: pytest.Pytester) -> list[tuple[str, str, str, str]]:
    """Each testcase: name, outcome, message and output, without times and durations."""
    root = ET.parse(pytester.path / "deploy.xml").getroot()
    cases = []
    for case in root.iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            found = case.find(tag)
            if found is not None:
                outcome, message = tag, found.get("message", "")
        out = case.find("system-out")
        text = out.text if out is not None and out.text else ""
        cases.append((case.get("name", ""), outcome, message, text))
    return [tuple(_timeless(part) for part in case) for case in cases]  # type: ignore[misc]


def _timeless(text: str) -> str:
    text = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z?", "WHEN", text)
    text = re.sub(r"\b\d+ ms\b", "N ms", text)
    return re.sub(r"(log: )\S+", r"\1LOG", text)


Run = tuple[pytest.RunResult, list[tuple[str, str, str, str]], list[str]]


def run_twice(pytester: pytest.Pytester, *args: str) -> list[Run]:
    """A first run (applies, fails at files/3.txt) and a re-run (skips what is applied):
    each run's result, its JUnit testcases and the items that went through
    pytest_runtest_call."""
    runs = []
    for _ in range(2):
        result = pytester.runpytest_subprocess(
            "--deploy-target=t", "--junitxml=deploy.xml", "-rA", *args
        )
        runs.append((result, junit(pytester), called(pytester)))
    return runs


def test_every_item_runs_through_pytests_own_protocol(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makeconftest(MONITOR)
    (first, first_junit, first_called), (rerun, rerun_junit, rerun_called) = run_twice(pytester)
    first.assert_outcomes(passed=10, failed=1, skipped=2)
    # re-run: the four applied migrations are one item (deploy_plugin/plugin/applied.py)
    rerun.assert_outcomes(passed=6, failed=1, skipped=3)
    for result, cases, calls, count in (
        (first, first_junit, first_called, 13),
        (rerun, rerun_junit, rerun_called, 10),
    ):
        assert len(calls) == len(cases) == count  # every item, mid-group steps too
        assert any("files/1.txt" in n for n in calls)
        lines = [
            line for line in result.outlines
            if line.startswith(("PASSED", "FAILED", "SKIPPED", "ERROR"))
        ]  # fmt: skip
        assert len(lines) >= 3  # -rA listed the outcomes
    assert any("::migrations::deploy[migrations/1.sql]" in n for n in first_called)
    assert any(n.endswith("::migrations::applied") for n in rerun_called)
    outcomes = [case[1] for case in first_junit]
    assert outcomes.count("failure") == 1 and outcomes.count("skipped") == 2
    failed = next(case for case in first_junit if case[1] == "failure")
    assert "deploy[files/3.txt]" in failed[0] and "files/3.txt" in failed[2]
    (applied,) = [case for case in rerun_junit if case[0].endswith("migrations · applied")]
    assert applied[1] == "skipped"
    assert applied[2].startswith("4 files already applied: migrations/1.sql, migrations/2.sql")


def first_run(pytester: pytest.Pytester, conftest: str) -> None:
    """The project's first run (applies, fails at files/3.txt) with this conftest."""
    project(pytester)
    pytester.makeconftest(conftest)
    result = pytester.runpytest_subprocess("--deploy-target=t")
    result.assert_outcomes(passed=10, failed=1, skipped=2)


def test_a_per_step_hook_sees_every_step(pytester: pytest.Pytester) -> None:
    first_run(
        pytester,
        MONITOR
        + "\ndef pytest_deploy_before_step(deployment, step):\n"
        + "    print('before', step.node_id)\n",
    )
    assert len(called(pytester)) == 13


def test_an_items_finalizer_runs_for_every_step(pytester: pytest.Pytester) -> None:
    # pytest's setup state runs what item.addfinalizer registered (here once the item is
    # set up) at the item's teardown
    first_run(
        pytester,
        "def pytest_runtest_makereport(item, call):\n"
        "    if call.when == 'setup':\n"
        "        item.addfinalizer(lambda nodeid=item.nodeid: open('finalized.txt', 'a')"
        ".write(nodeid + '\\n'))\n",
    )
    finalized = pytester.path.joinpath("finalized.txt").read_text().splitlines()
    assert len(finalized) == 13
    assert any("files/1.txt" in n for n in finalized)


def test_a_failed_step_is_sys_last_value(pytester: pytest.Pytester) -> None:
    # as for any item whose call fails, pytest keeps the exception in sys.last_value
    first_run(
        pytester,
        "import sys\n"
        "def pytest_runtest_logreport(report):\n"
        "    if report.when == 'call' and report.failed:\n"
        "        with open('last.txt', 'w') as out:\n"
        "            out.write(type(getattr(sys, 'last_value', None)).__name__)\n",
    )
    assert pytester.path.joinpath("last.txt").read_text() == "DeployFailure"


def test_stop_at_first_failure_in_the_middle_of_a_group(pytester: pytest.Pytester) -> None:
    project(pytester)
    result = pytester.runpytest_subprocess("--deploy-target=t", "-x")
    result.assert_outcomes(passed=10, failed=1)
    result.stdout.fnmatch_lines(["p → t: FAILURE*", "*stopping after 1 failures*"])
    assert result.ret == 1
    again = pytester.runpytest_subprocess("--deploy-target=t", "-x")
    again.assert_outcomes(passed=6, failed=1, skipped=1)  # the migrations are applied


def test_a_step_marked_skip_by_a_conftest_is_not_run(pytester: pytest.Pytester) -> None:
    # markers act in pytest's setup hooks
    project(pytester)
    pytester.makeconftest(
        "import pytest\n"
        "def pytest_collection_modifyitems(items):\n"
        "    for item in items:\n"
        "        if item.name == 'deploy[files/2.txt]':\n"
        "            item.add_marker(pytest.mark.skip(reason='not this one'))\n"
        "        if item.name == 'deploy[files/1.txt]':\n"
        "            item.add_marker(pytest.mark.xfail(reason='expected', strict=False))\n"
    )
    result = pytester.runpytest_subprocess("--deploy-target=t", "-rsxX")
    result.stdout.fnmatch_lines(["*SKIPPED*not this one*", "*XPASS*files/1.txt*expected*"])
    result.stdout.no_fnmatch_line("*deploying files/2.txt*")


def test_a_plugins_object_in_a_reference_cycle_is_finalized_at_exit(
    pytester: pytest.Pytester,
) -> None:
    # a gc.freeze at exit (tried for issue 14: 0.04-0.1 s) left this file unflushed
    project(pytester)
    pytester.makeconftest(
        "class Recorder:\n"
        "    def __init__(self, path):\n"
        "        self.me, self.out = self, open(path, 'w')\n"
        "    def pytest_runtest_logreport(self, report):\n"
        "        if report.when == 'call':\n"
        "            self.out.write(report.nodeid + '\\n')\n"
        "def pytest_configure(config):\n"
        "    config.pluginmanager.register(Recorder('results.txt'), 'recorder')\n"
    )
    pytester.runpytest_subprocess("--deploy-target=t")
    assert len(pytester.path.joinpath("results.txt").read_text().splitlines()) == 13


def test_stopping_after_a_failure_tears_session_fixtures_down_in_that_steps_teardown(
    pytester: pytest.Pytester,
) -> None:
    # as pytest's protocol: when the session stops (-x), the failing item's teardown tears
    # everything down, and a fixture's teardown error is that item's error
    write_config(
        pytester,
        {
            "project": "p",
            "targets": {"t": {}},
            "groups": [{"name": "files", "order": 1, "file_patterns": ["files/*.txt"],
                        "deploy_command": "test {file} != files/1.txt"}],
        },
    )  # fmt: skip
    pytester.path.joinpath("files").mkdir()
    for i in range(1, 4):
        pytester.path.joinpath("files", f"{i}.txt").write_text("")
    pytester.makepyfile(
        test_unit=(
            "import pytest\n"
            "@pytest.fixture(scope='session')\n"
            "def client():\n"
            "    yield 'c'\n"
            "    print('closing client')\n"
            "    raise RuntimeError('client close failed')\n"
            "def test_unit(client):\n"
            "    pass\n"
        )
    )
    result = pytester.runpytest_subprocess("--deploy-target=t", "-x")
    result.assert_outcomes(passed=4, failed=1, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of t::files::deploy[[]files/1.txt[]]*"])
    result.stdout.fnmatch_lines(["*p → t: FAILURE*"])
    result.stdout.no_fnmatch_line("*Traceback (most recent call last)*")


def test_another_plugins_runtest_protocol_sees_every_step(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makeconftest(
        "def pytest_runtest_protocol(item, nextitem):\n"
        "    with open('seen.txt', 'a') as out:\n"
        "        out.write(item.nodeid + '\\n')\n"
    )
    pytester.runpytest_subprocess("--deploy-target=t")
    assert len(pytester.path.joinpath("seen.txt").read_text().splitlines()) == 13
