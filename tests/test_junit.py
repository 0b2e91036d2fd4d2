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
    build = by_id["deploy.yaml.t.ok::04 ok · build"]
    out = build.find("system-out").text
    assert "target: t" in out and "group: ok" in out and "kind: build" in out
    assert "command: echo built" in out and "dry_run: false" in out and "built" in out
    assert build.find("properties") is None  # xunit2 forbids testcase properties

    failure = by_id["deploy.yaml.t.bad::06 bad · build"].find("failure")
    assert failure.get("message").startswith(
        "build command of group bad `echo about to fail; exit 4` failed: exit status 4."
    )
    assert "Traceback" not in failure.text and "def runtest" not in failure.text

    skipped = by_id["deploy.yaml.t.later::07 later · build"].find("skipped")
    assert "not run: deploy.yaml::t::bad::build failed" in skipped.get("message")
    empty = by_id["deploy.yaml.t.empty::05 empty · deploy"].find("skipped")
    assert "nothing/*.txt" in empty.get("message")

    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["deploy.targets"] == "t" and props["deploy.dry_run"] == "false"


def test_xunit1_puts_the_facts_in_testcase_properties(pytester: pytest.Pytester) -> None:
    root = run(pytester, "-o", "junit_family=xunit1", "-o", "junit_logging=system-out")
    build = cases(root)["deploy.yaml.t.ok::04 ok · build"]
    props = {p.get("name"): p.get("value") for p in build.find("properties")}
    assert props["group"] == "ok" and props["kind"] == "build"
    assert props["command"] == "echo built" and props["outcome"] == "passed"


def test_junitxml_without_system_out_logging_warns(pytester: pytest.Pytester) -> None:
    (pytester.path / "deploy.yaml").write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    result = pytester.runpytest("--deploy-target=t", "--junitxml=deploy.xml")
    result.stdout.fnmatch_lines(["*--junitxml without ini junit_logging=system-out*"])


# ------------------------------------------------- testcase names for dashboards and viewers
# Jenkins and GitLab show classname + name; junit2html sorts a class's cases by name and
# xunit-viewer shows the name alone: so the name carries the run position and the group.


def names(root: ET.Element) -> list[tuple[str, str]]:
    return [(c.get("classname") or "", c.get("name") or "") for c in root.iter("testcase")]


def test_testcase_names_carry_the_run_position_and_the_group(pytester: pytest.Pytester):
    root = run(pytester, "-o", "junit_logging=system-out")
    assert names(root) == [
        ("deploy.yaml.t.preflight", "01 preflight · lock"),
        ("deploy.yaml.t.preflight", "02 preflight · env"),
        ("deploy.yaml.t.preflight", "03 preflight · files"),
        ("deploy.yaml.t.ok", "04 ok · build"),  # classname: still the node id's path
        ("deploy.yaml.t.empty", "05 empty · deploy"),
        ("deploy.yaml.t.bad", "06 bad · build"),
        ("deploy.yaml.t.later", "07 later · build"),
    ]


def test_names_sort_in_run_order_past_nine_steps_and_node_ids_stay(
    pytester: pytest.Pytester, http_server
) -> None:
    (pytester.path / "f").mkdir()
    for name in ("a.txt", "b.txt"):
        (pytester.path / "f" / name).write_text("")
    config = {
        "project": "p",
        "targets": {"t": {}},
        "groups": [
            {"name": "g", "order": 1, "pre_deploy": [f"echo {i}" for i in range(11)],
             "file_patterns": ["f/*.txt"], "deploy_command": "echo {file}",
             "post_deploy": ["echo done"]},
        ],
        "health_check": {"url": http_server.url_for("/health"), "timeout_seconds": 5},
    }  # fmt: skip
    (pytester.path / "deploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    result = pytester.runpytest(
        "--deploy-target=t", "--junitxml=deploy.xml", "-o", "junit_logging=system-out", "-v"
    )
    result.assert_outcomes(passed=18)
    listed = [n for _, n in names(ET.parse(pytester.path / "deploy.xml").getroot())]
    assert listed == sorted(listed)  # what junit2html does keeps the run order
    assert listed[3:5] == ["04 g · pre_deploy[0]", "05 g · pre_deploy[1]"]
    assert listed[13:] == [
        "14 g · pre_deploy[10]", "15 g · deploy[f/a.txt]", "16 g · deploy[f/b.txt]",
        "17 g · post_deploy[0]", "18 health_check",
    ]  # fmt: skip
    # the node ids (terminal, -k, --deselect) are unchanged
    result.stdout.fnmatch_lines(["deploy.yaml::t::g::pre_deploy[[]10[]] PASSED*"])
    result.stdout.fnmatch_lines(["deploy.yaml::t::health_check PASSED*"])


def test_names_reach_the_xml_from_xdist_workers(pytester: pytest.Pytester) -> None:
    (pytester.path / "deploy.yaml").write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    result = pytester.runpytest_subprocess(
        "--deploy-target=t", "--junitxml=deploy.xml", "-n", "2", "-p", "xdist"
    )
    result.assert_outcomes(passed=4, failed=1, skipped=2)
    listed = [n for _, n in names(ET.parse(pytester.path / "deploy.xml").getroot())]
    assert sorted(listed) == [
        "01 preflight · lock", "02 preflight · env", "03 preflight · files", "04 ok · build",
        "05 empty · deploy", "06 bad · build", "07 later · build",
    ]  # fmt: skip


def test_several_targets_and_smoke_tests_read_apart(pytester: pytest.Pytester) -> None:
    """Two targets in one run: the same step of each has its own name (before: "01
    preflight · lock" twice); a smoke test takes its place with the group "smoke" (before:
    its bare name, sorted after every step)."""
    config = {
        "project": "p",
        "targets": {"a": {}, "b": {}},
        "groups": [{"name": "ok", "order": 1, "build_command": "echo built"}],
    }
    (pytester.path / "deploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    pytester.makepyfile(test_smoke="def test_up(deploy_target):\n    pass\n")
    result = pytester.runpytest("--deploy-target=a", "--deploy-target=b", "--junitxml=deploy.xml")
    result.assert_outcomes(passed=10)
    listed = [n for _, n in names(ET.parse(pytester.path / "deploy.xml").getroot())]
    assert sorted(listed) == [
        "p → a · 01 preflight · lock", "p → a · 02 preflight · env",
        "p → a · 03 preflight · files", "p → a · 04 ok · build", "p → a · 05 smoke · test_up[a]",
        "p → b · 01 preflight · lock", "p → b · 02 preflight · env",
        "p → b · 03 preflight · files", "p → b · 04 ok · build", "p → b · 05 smoke · test_up[b]",
    ]  # fmt: skip
