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
