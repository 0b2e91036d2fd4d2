"""max_parallel groups: per-file steps side by side, each its own item."""

from __future__ import annotations

import pytest

from tests.projects import BARRIER, intervals, max_overlap, write_config, write_project


def parallel_config(pytester: pytest.Pytester, command: str, n: int = 8, max_parallel: int = 4):
    (pytester.path / "steps").mkdir()
    for i in range(n):
        (pytester.path / "steps" / f"s{i}.step").write_text("")
    write_config(
        pytester,
        {
            "project": "p",
            "targets": {"t": {"env": {"N": str(max_parallel)}}},
            "groups": [
                {"name": "par", "order": 1, "file_patterns": ["steps/*.step"],
                 "max_parallel": max_parallel, "deploy_command": command},
                {"name": "after", "order": 2, "build_command": "echo after >> after.log"},
            ],
        },
    )  # fmt: skip


def test_max_parallel_runs_per_file_steps_side_by_side(pytester: pytest.Pytester) -> None:
    start = 'echo {stem} "$(date +%s.%N)" >> intervals.log && '
    parallel_config(pytester, start + BARRIER)
    result = pytester.runpytest("--deploy-target=t", "-v", "--junitxml=out.xml")
    result.assert_outcomes(passed=3 + 8 + 1)
    spans = intervals(pytester.path / "intervals.log")
    assert len(spans) == 8
    # the barrier let nobody finish before 4 had started; never more than 4 at once
    assert max_overlap(spans) == 4
    xml = (pytester.path / "out.xml").read_text()
    assert xml.count('classname="deploy.yaml.t.par"') == 8


def test_a_failed_parallel_step_stops_new_ones(pytester: pytest.Pytester) -> None:
    # s0 fails once s1 has started (so both workers surely run: on a busy machine the
    # second one may otherwise not have taken s1 yet); s1 waits for s0's failure then
    # succeeds; nothing else may start except what the two workers had already taken.
    command = (
        'if [ {stem} = s0 ]; then for i in $(seq 400); do [ -e s1.started ] && break;'
        " sleep 0.05; done; touch s0.failed; exit 7; fi; "
        'if [ {stem} = s1 ]; then touch s1.started; for i in $(seq 400); do'
        " [ -e s0.failed ] && break; sleep 0.05; done; fi; touch ran-{stem}"
    )  # fmt: skip
    parallel_config(pytester, command, max_parallel=2)
    result = pytester.runpytest("--deploy-target=t", "-rs")
    ran = sorted(p.name for p in pytester.path.glob("ran-*"))
    assert "ran-s1" in ran and len(ran) <= 2
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == 1
    assert outcomes["skipped"] == 8 - 1 - len(ran) + 1  # not-run siblings + the later group
    result.stdout.fnmatch_lines(
        ["*not run: deploy.yaml::t::par::deploy[[]steps/s0.step[]] failed*"]
    )
    assert not (pytester.path / "after.log").exists()


def test_a_tracked_group_cannot_run_in_parallel(pytester: pytest.Pytester) -> None:
    write_project(
        pytester,
        {"groups": [{"name": "m", "order": 1, "file_patterns": ["m/*.sql"], "max_parallel": 4}]},
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*groups[[]0[]].max_parallel*one at a time*"])
