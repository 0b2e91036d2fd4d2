"""Step logs and the report file: one log per step, paths checked before deploying."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.projects import write_config, write_project


def test_a_step_that_prints_nothing_leaves_no_log(pytester: pytest.Pytester) -> None:
    """Issue 14: creating a file costs more than running ``true`` on some disks (0.36 ms
    here); a step's log is made by its first output, and only a made log is named."""
    write_project(
        pytester,
        {"groups": [{"name": "g", "order": 1, "build_command": "true",
                     "deploy_command": "echo said"}]},
    )  # fmt: skip
    result = pytester.runpytest("--deploy-target=t", "-rA")
    result.assert_outcomes(passed=5)
    logs = sorted(p.name for p in (pytester.path / ".deploy" / "logs").rglob("*.log"))
    assert logs == ["deploy.log"]
    out = result.stdout.str()
    assert "deploy.log" in out and "build.log" not in out


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


# ---------------------------------------------------------------- keeping the last runs

TWO_TARGETS = {
    "project": "p",
    "targets": {"t": {}, "u": {}},
    "groups": [{"name": "g", "order": 1, "build_command": "echo run $RUN"}],
}


def deploy(pytester: pytest.Pytester, target: str, run: int, *args: str) -> None:
    result = pytester.runpytest(f"--deploy-target={target}", f"--deploy-env=RUN={run}", *args)
    result.assert_outcomes(passed=3 if "--dry-run" in args else 4)


def run_folders(pytester: pytest.Pytester) -> dict[str, str]:
    """Each run folder under .deploy/logs with its build step's log (or '')."""
    logs = pytester.path / ".deploy" / "logs"
    return {
        p.name: (p / "g" / "build.log").read_text().strip() if (p / "g").exists() else ""
        for p in sorted(logs.iterdir())
    }


def test_the_last_runs_of_each_target_are_kept(pytester: pytest.Pytester) -> None:
    write_config(pytester, TWO_TARGETS)
    pytester.makeini("[pytest]\ndeploy_keep_logs = 2\n")
    for run, target in enumerate(["t", "t", "t", "u", "t"], start=1):
        deploy(pytester, target, run)
    # t's two newest runs (the one that just ran among them); u counts on its own
    assert run_folders(pytester) == {"3-p-t": "run 3", "4-p-u": "run 4", "5-p-t": "run 5"}


def test_one_kept_run_is_the_running_one(pytester: pytest.Pytester) -> None:
    write_config(pytester, TWO_TARGETS)
    pytester.makeini("[pytest]\ndeploy_keep_logs = 1\n")
    deploy(pytester, "t", 1)
    deploy(pytester, "t", 2)
    assert run_folders(pytester) == {"2-p-t": "run 2"}


def test_zero_keeps_every_run_and_a_dry_run_removes_nothing(pytester: pytest.Pytester):
    write_config(pytester, TWO_TARGETS)
    pytester.makeini("[pytest]\ndeploy_keep_logs = 0\n")
    for run in (1, 2, 3):
        deploy(pytester, "t", run)
    assert len(run_folders(pytester)) == 3
    pytester.makeini("[pytest]\ndeploy_keep_logs = 1\n")
    deploy(pytester, "t", 4, "--dry-run")
    assert len(run_folders(pytester)) == 3
    deploy(pytester, "t", 5)
    assert run_folders(pytester) == {"5-p-t": "run 5"}


def test_fifty_runs_are_kept_by_default_and_unknown_folders_are_left(
    pytester: pytest.Pytester,
) -> None:
    write_config(pytester, TWO_TARGETS)
    deploy(pytester, "t", 1)
    logs = pytester.path / ".deploy" / "logs"
    first = logs / "1-p-t"
    marker = json.loads((first / "run.json").read_text())
    for minute in range(1, 51):  # fifty older runs of t, by their recorded start
        old = logs / f"old{51 - minute:02d}-p-t"  # names in the other order than starts
        shutil.copytree(first, old)
        started = f"2020-03-01T00:{minute:02d}:00.000000Z"
        (old / "run.json").write_text(json.dumps({**marker, "started_at": started}))
    (logs / "by-hand").mkdir()  # no run.json: not a run folder of pytest-deploy's
    deploy(pytester, "t", 2)
    kept = set(run_folders(pytester))
    assert len(kept) == 51 and {"1-p-t", "2-p-t", "by-hand"} <= kept
    # the two oldest by recorded start went
    assert not {"old50-p-t", "old49-p-t"} & kept


@pytest.mark.parametrize("value", ["many", "-1", "2.5"])
def test_a_bad_keep_logs_value_is_refused_before_deploying(
    pytester: pytest.Pytester, value: str
) -> None:
    write_config(pytester, TWO_TARGETS)
    pytester.makeini(f"[pytest]\ndeploy_keep_logs = {value}\n")
    result = pytester.runpytest("--deploy-target=t")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"*ini deploy_keep_logs = {value}*a whole number of 0 or more*0 keeps every run*or"
            " remove it."
        ]
    )
    assert "Traceback" not in result.stderr.str()
    assert not (pytester.path / ".deploy").exists()


def test_a_run_folder_that_cannot_be_removed_warns_and_is_tried_again(
    pytester: pytest.Pytester,
) -> None:
    write_config(pytester, TWO_TARGETS)
    pytester.makeini("[pytest]\ndeploy_keep_logs = 1\n")
    deploy(pytester, "t", 1)
    stuck = pytester.path / ".deploy" / "logs" / "1-p-t" / "g" / "build.log"
    if subprocess.run(["chattr", "+i", str(stuck)], capture_output=True).returncode:
        pytest.skip("chattr +i (root on ext4 or similar) is needed to make a file stay")
    try:
        result = pytester.runpytest("--deploy-target=t", "--deploy-env=RUN=2")
        result.assert_outcomes(passed=4)  # the deployment is not failed for it
        result.stdout.fnmatch_lines(
            ["*could not remove old step logs (ini deploy_keep_logs = 1)*build.log*"]
        )
        # its marker stays: still a run of t, so the next run removes it
        assert (stuck.parent.parent / "run.json").exists()
    finally:
        subprocess.run(["chattr", "-i", str(stuck)], check=True)
    deploy(pytester, "t", 3)
    assert run_folders(pytester) == {"3-p-t": "run 3"}
