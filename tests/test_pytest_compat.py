"""What deploy_plugin/plugin/pytest_compat.py relies on in pytest: fails when a release
changes it."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import yaml


def test_a_skipped_step_is_reported_at_its_group_in_the_config(pytester: pytest.Pytester):
    config = {
        "project": "p",
        "targets": {"t": {}},
        "groups": [
            {"name": "first", "order": 1, "deploy_command": "exit 1"},
            {"name": "second", "order": 2, "deploy_command": "true"},
        ],
    }
    (pytester.path / "deploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    result = pytester.runpytest("--deploy-target=t", "-rs")
    line = 1 + yaml.safe_dump(config, sort_keys=False).splitlines().index("- name: second")
    result.stdout.fnmatch_lines([f"SKIPPED [[]1[]] deploy.yaml:{line}: not run: *first*"])
    assert "pytest_compat.py" not in result.stdout.str()


def test_suite_properties_reach_the_junit_writer(pytester: pytest.Pytester) -> None:
    config = {"project": "p", "targets": {"t": {}},
              "groups": [{"name": "g", "order": 1, "deploy_command": "true"}]}  # fmt: skip
    (pytester.path / "deploy.yaml").write_text(yaml.safe_dump(config))
    pytester.runpytest("--deploy-target=t", "--junitxml=out.xml").assert_outcomes(passed=4)
    props = ET.parse(pytester.path / "out.xml").getroot().iter("property")
    assert {p.get("name"): p.get("value") for p in props}["deploy.targets"] == "t"


@pytest.mark.parametrize("family", ["xunit1", "xunit2"])
def test_a_testcase_name_reaches_the_junit_writer(pytester: pytest.Pytester, family: str):
    config = {"project": "p", "targets": {"t": {}},
              "groups": [{"name": "g", "order": 1, "deploy_command": "true"}]}  # fmt: skip
    (pytester.path / "deploy.yaml").write_text(yaml.safe_dump(config))
    pytester.runpytest(
        "--deploy-target=t", "--junitxml=out.xml", "-o", f"junit_family={family}"
    ).assert_outcomes(passed=4)
    cases = ET.parse(pytester.path / "out.xml").getroot().iter("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases][-1] == (
        "deploy.yaml.t.g",
        "04 g · deploy",
    )
