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
