"""Step logs and the report file: one log per step, paths checked before deploying."""

from __future__ import annotations

import pytest

from tests.projects import write_project


def test_every_step_has_its_own_log(pytester: pytest.Pytester) -> None:
    (pytester.path / "f").mkdir()
    for name in ("a_b.txt", "a b.txt"):
        (pytester.path / "f" / name).write_text("")
    write_project(
        pytester,
        {"groups": [
            {"name": "one", "order": 1, "build_command": "echo built one"},
            {"name": "two", "order": 2, "build_command": "echo built two",
             "file_patterns": ["f/*.txt"], "deploy_command": "echo deployed {name}"},
        ]},
    )  # fmt: skip
    pytester.runpytest("--deploy-target=t").assert_outcomes(passed=7)
    logs = {
        str(p.relative_to(p.parents[2])): p.read_text()
        for p in (pytester.path / ".deploy" / "logs").rglob("*.log")
    }
    assert sorted(v.strip() for v in logs.values()) == [
        "built one", "built two", "deployed a b.txt", "deployed a_b.txt",
    ]  # fmt: skip


def test_an_unwritable_report_path_is_refused_before_deploying(pytester: pytest.Pytester):
    write_project(pytester, {"groups": [{"name": "a", "order": 1, "build_command": "touch ran"}]})
    (pytester.path / "file").write_text("")
    result = pytester.runpytest("--deploy-target=t", "--deploy-report=file/r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--deploy-report file/r.json*not a writable folder*"])
    assert not (pytester.path / "ran").exists()
