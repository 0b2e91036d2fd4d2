"""Selecting groups and items: what a run keeps, and what pytest counts."""

from __future__ import annotations

import json

import pytest

from tests.projects import write_project


def test_a_config_with_nothing_selected_is_not_deployed(pytester: pytest.Pytester, http_server):
    write_project(
        pytester, {"groups": [{"name": "mig", "order": 1, "build_command": "true"}]}, "a.yaml"
    )
    pytester.path.joinpath("a.yaml").rename(pytester.path / "a.deploy.yaml")
    write_project(
        pytester,
        {"project": "b", "groups": [{"name": "web", "order": 1, "build_command": "true"}],
         "health_check": {"url": http_server.url_for("/b-health")}},
        "b.deploy.yaml",
    )  # fmt: skip
    result = pytester.runpytest("--deploy-target=t", "--group=mig", "--deploy-report=r.json")
    result.assert_outcomes(passed=4)
    assert http_server.count() == 0
    report = json.loads((pytester.path / "r.json").read_text())
    assert [d["project"] for d in report["deployments"]] == ["p"]


def test_k_does_not_count_restored_items_as_deselected(pytester: pytest.Pytester) -> None:
    write_project(
        pytester,
        {"groups": [{"name": "a", "order": 1, "build_command": "true", "test_command": "true"}]},
    )
    result = pytester.runpytest("--deploy-target=t", "-k", "build")
    result.assert_outcomes(passed=4, deselected=1)


def test_skip_group_for_every_group_says_so(pytester: pytest.Pytester) -> None:
    """Issue 24 #4: --skip-group of every group ends with the same "no group selected"
    line as -k, not a bare "no tests ran"."""
    write_project(
        pytester,
        {"groups": [{"name": "a", "order": 1, "build_command": "true"},
                    {"name": "b", "order": 2, "build_command": "true"}]},
    )  # fmt: skip
    result = pytester.runpytest("--deploy-target=t", "--skip-group=a", "--skip-group=b")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(["*no group selected*--skip-group*(groups: a, b)*nothing was*"])


def test_k_counts_a_dropped_drift_check_as_deselected(pytester: pytest.Pytester) -> None:
    """Issue 24 #4: -k that keeps only an untracked group drops the migrations' drift check
    (restored with preflight, then dropped: no tracked group left); pytest's "selected"
    count is what runs."""
    (pytester.path / "m").mkdir()
    (pytester.path / "m" / "001.sql").write_text("SELECT 1;\n")
    write_project(
        pytester,
        {"groups": [{"name": "edge_functions", "order": 1, "build_command": "true"},
                    {"name": "migrations", "order": 2, "file_patterns": ["m/*.sql"],
                     "deploy_command": "cat {file}"}]},
    )  # fmt: skip
    result = pytester.runpytest("--deploy-target=t", "-k", "edge_functions")
    result.assert_outcomes(passed=4, deselected=2)
    result.stdout.fnmatch_lines(["*2 deselected / 4 selected*"])


# -- pytest_deselected is a notification: we only read it (issue 22) -----------------------

# Another plugin listening to pytest_deselected (a wrapper: it sees the list before and after
# every other implementation) and to the reports of what runs.
LISTENER = """
import json
import pytest

@pytest.hookimpl(wrapper=True)
def pytest_deselected(items):
    before = [item.nodeid for item in items]
    yield
    with open("deselected.jsonl", "a") as out:
        out.write(json.dumps([before, [item.nodeid for item in items]]) + "\\n")

def pytest_runtest_logreport(report):
    if report.when == "call":
        with open("ran.txt", "a") as out:
            out.write(report.nodeid + "\\n")
"""


def _listened(pytester: pytest.Pytester) -> tuple[list[list[str]], list[str]]:
    """What each pytest_deselected call announced (checked unchanged by the other
    implementations), and the node ids that ran."""
    path = pytester.path / "deselected.jsonl"
    calls = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    for before, after in calls:
        assert before == after, "a pytest_deselected implementation edited its argument"
    ran_path = pytester.path / "ran.txt"
    ran = ran_path.read_text().splitlines() if ran_path.exists() else []
    return [before for before, _ in calls], ran


@pytest.mark.parametrize("args", [("-k", "build"), ("-k", "not health_check"), ("-m", "nothing")])
def test_no_plugin_is_told_a_step_is_deselected_that_then_runs(
    pytester: pytest.Pytester, http_server, args: tuple[str, str]
) -> None:
    http_server.set_route("/health", 200)
    write_project(
        pytester,
        {"groups": [{"name": "a", "order": 1, "build_command": "true", "test_command": "true"}],
         "health_check": {"url": http_server.url_for("/health")}},
    )  # fmt: skip
    pytester.makeconftest(LISTENER)
    pytester.makepyfile(test_unit="def test_unit():\n    pass\n")
    result = pytester.runpytest("--deploy-target=t", *args)
    announced, ran = _listened(pytester)
    deselected = [nodeid for call in announced for nodeid in call]
    assert not set(deselected) & set(ran)
    counts = result.parseoutcomes()
    assert counts.get("deselected", 0) == len(deselected)
    assert counts.get("passed", 0) == len(ran)


def test_a_deselection_handed_as_a_tuple_is_read_not_edited(pytester: pytest.Pytester) -> None:
    # the hookspec types the argument Sequence[Item]: a plugin may pass a tuple
    write_project(
        pytester,
        {"groups": [{"name": "a", "order": 1, "build_command": "true", "test_command": "true"}]},
    )
    pytester.makeconftest(
        "import pytest\n"
        "@pytest.hookimpl(tryfirst=True)\n"
        "def pytest_collection_modifyitems(config, items):\n"
        "    removed = tuple(i for i in items if i.name in ('env', 'test'))\n"
        "    items[:] = [i for i in items if i not in removed]\n"
        "    config.hook.pytest_deselected(items=removed)\n"
    )
    result = pytester.runpytest("--deploy-target=t", "-v")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*preflight::env PASSED*", "*a::build PASSED*"])
    result.stdout.no_fnmatch_line("*a::test PASSED*")


@pytest.mark.parametrize("node_id", ["deploy.yaml::t::a::build", "deploy.yaml::t::a"])
def test_a_node_id_below_the_target_runs_with_the_deployments_preflight(
    pytester: pytest.Pytester, http_server, node_id: str
) -> None:
    # pytest collects only what a node id names: the target's preflight and health check
    # are not, yet the deployment takes its lock and checks before its step (DESIGN §3)
    http_server.set_route("/health", 200)
    write_project(
        pytester,
        {"groups": [{"name": "a", "order": 1, "build_command": "true", "test_command": "true"},
                    {"name": "b", "order": 2, "build_command": "true"}],
         "health_check": {"url": http_server.url_for("/health")}},
    )  # fmt: skip
    result = pytester.runpytest("--deploy-target=t", node_id, "-v")
    result.stdout.fnmatch_lines(
        [
            "*::t::preflight::lock PASSED*",
            "*::t::preflight::env PASSED*",
            "*::t::preflight::files PASSED*",
            "*::t::a::build PASSED*",
            "*::t::health_check PASSED*",
        ]
    )
    result.stdout.no_fnmatch_line("*::t::b::build*")
    assert result.ret == 0
    assert http_server.count("/health") >= 1
