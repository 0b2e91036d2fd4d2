"""The pytest_deploy_* hooks: what they see, when they are called, what they may change."""

from __future__ import annotations

import textwrap

import pytest

from tests.projects import write_config, write_project

HOOKS_CONFTEST = """
    import dataclasses, json

    def log(*words):
        with open("hooks.log", "a") as f:
            f.write(" ".join(map(str, words)) + "\\n")

    def pytest_deploy_plan(config, deploy_config, target, plans):
        plans[:] = [p for p in plans if p.group.name != "dropped"]
        log("plan", target.name, *[p.group.name for p in plans])

    def pytest_deploy_before_group(deployment, group):
        log("before_group", group.name)

    def pytest_deploy_after_group(deployment, group, status):
        log("after_group", group.name, status)

    def pytest_deploy_before_step(deployment, step):
        log("before_step", step.name)

    def pytest_deploy_after_step(deployment, step, result):
        log("after_step", step.name, result.outcome)

    def pytest_deploy_finished(deployment, report):
        log("finished", report.project, report.target, report.status, len(report.steps))
"""


def test_hooks_see_and_change_the_plan(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(textwrap.dedent(HOOKS_CONFTEST))
    write_config(
        pytester,
        {
            "project": "p",
            "targets": {"t": {}},
            "groups": [
                {"name": "a", "order": 1, "build_command": "true", "test_command": "true"},
                {"name": "dropped", "order": 2, "build_command": "touch dropped.ran"},
            ],
        },
    )
    pytester.runpytest("--deploy-target=t").assert_outcomes(passed=5)
    assert not (pytester.path / "dropped.ran").exists()
    assert (pytester.path / "hooks.log").read_text().splitlines() == [
        "plan t a",
        "before_step lock", "after_step lock passed",
        "before_step env", "after_step env passed",
        "before_step files", "after_step files passed",
        "before_group a",
        "before_step build", "after_step build passed",
        "before_step test", "after_step test passed",
        "after_group a success",
        "finished p t success 5",
    ]  # fmt: skip


def test_group_hooks_are_not_told_about_groups_that_never_ran(pytester: pytest.Pytester):
    pytester.makeconftest(
        textwrap.dedent(
            """
            def pytest_deploy_before_group(deployment, group):
                open("hooks.log", "a").write(f"before {group.name}\\n")

            def pytest_deploy_after_group(deployment, group, status):
                open("hooks.log", "a").write(f"after {group.name} {status}\\n")
            """
        )
    )
    write_project(
        pytester,
        {"groups": [
            {"name": "first", "order": 1, "build_command": "exit 1"},
            {"name": "second", "order": 2, "build_command": "true"},
        ]},
    )  # fmt: skip
    pytester.runpytest("--deploy-target=t").assert_outcomes(passed=3, failed=1, skipped=1)
    assert (pytester.path / "hooks.log").read_text().split("\n")[:-1] == [
        "before first",
        "after first failure",
    ]
