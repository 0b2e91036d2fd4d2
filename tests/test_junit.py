"""JUnit XML of a deployment: valid against the schema pytest's own tests use."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema
import yaml

SCHEMA = Path(__file__).parent / "data" / "junit-10.xsd"

CONFIG = {
    "project": "p",
    "targets": {"t": {}},
    "groups": [
        {"name": "ok", "order": 1, "build_command": "echo built"},
        {"name": "empty", "order": 2, "file_patterns": ["nothing/*.txt"],
         "deploy_command": "echo {file}"},
        {"name": "bad", "order": 3, "build_command": "echo about to fail; exit 4"},
        {"name": "later", "order": 4, "build_command": "echo never"},
    ],
}  # fmt: skip


def run(pytester: pytest.Pytester, *args: str) -> ET.Element:
    (pytester.path / "deploy.yaml").write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    result = pytester.runpytest("--deploy-target=t", "--junitxml=deploy.xml", *args)
    result.assert_outcomes(passed=4, failed=1, skipped=2)
    return ET.parse(pytester.path / "deploy.xml").getroot()


def cases(root: ET.Element) -> dict[str, ET.Element]:
    return {f"{c.get('classname')}::{c.get('name')}": c for c in root.iter("testcase")}


def test_default_family_validates_and_carries_the_facts(pytester: pytest.Pytester) -> None:
    root = run(pytester, "-o", "junit_logging=system-out")
    xmlschema.XMLSchema(SCHEMA).validate(str(pytester.path / "deploy.xml"))
    by_id = cases(root)
    build = by_id["deploy.yaml.t.ok::build"]
    out = build.find("system-out").text
    assert "target: t" in out and "group: ok" in out and "kind: build" in out
    assert "command: echo built" in out and "dry_run: false" in out and "built" in out
    assert build.find("properties") is None  # xunit2 forbids testcase properties

    failure = by_id["deploy.yaml.t.bad::build"].find("failure")
    assert failure.get("message").startswith(
        "build command of group bad `echo about to fail; exit 4` failed: exit status 4."
    )
    assert "Traceback" not in failure.text and "def runtest" not in failure.text

    skipped = by_id["deploy.yaml.t.later::build"].find("skipped")
    assert "not run: deploy.yaml::t::bad::build failed" in skipped.get("message")
    empty = by_id["deploy.yaml.t.empty::deploy"].find("skipped")
    assert "nothing/*.txt" in empty.get("message")

    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["deploy.targets"] == "t" and props["deploy.dry_run"] == "false"


def test_xunit1_puts_the_facts_in_testcase_properties(pytester: pytest.Pytester) -> None:
    root = run(pytester, "-o", "junit_family=xunit1", "-o", "junit_logging=system-out")
    build = cases(root)["deploy.yaml.t.ok::build"]
    props = {p.get("name"): p.get("value") for p in build.find("properties")}
    assert props["group"] == "ok" and props["kind"] == "build"
    assert props["command"] == "echo built" and props["outcome"] == "passed"


def test_junitxml_without_system_out_logging_warns(pytester: pytest.Pytester) -> None:
    (pytester.path / "deploy.yaml").write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    result = pytester.runpytest("--deploy-target=t", "--junitxml=deploy.xml")
    result.stdout.fnmatch_lines(["*--junitxml without ini junit_logging=system-out*"])
