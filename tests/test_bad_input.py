"""Issue 9 #11: inputs that used to end in a traceback get one paragraph and change nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deploy_plugin.secrets import Masker
from deploy_plugin.shell import MAX_ARG_CHARS, CommandRefused, run_command


def project(pytester: pytest.Pytester, command: str = "echo hi", **group: object) -> None:
    config = {
        "project": "p",
        "targets": {"t": {}},
        "groups": [{"name": "g", "order": 1, "deploy_command": command, **group}],
    }
    (pytester.path / "deploy.yaml").write_text(yaml.safe_dump(config))


def store_env(pytester: pytest.Pytester, name: str, value: str) -> None:
    from deploy_plugin.store import open_store

    store = open_store(None, pytester.path)
    assert store is not None
    store.set_env("p", "t", name, value)
    store.close()


def no_traceback(output: str) -> None:
    assert "Traceback" not in output and "INTERNALERROR" not in output, output


@pytest.mark.parametrize(
    ("value", "phrase"),
    [("a\0b", "holds a NUL byte"), ("x" * MAX_ARG_CHARS, f"is {MAX_ARG_CHARS:,} bytes long")],
    ids=["nul", "over-128k"],
)
def test_a_stored_value_no_process_can_take_fails_the_step_in_a_paragraph(
    pytester: pytest.Pytester, value: str, phrase: str
) -> None:
    project(pytester)
    store_env(pytester, "BIG", value)
    result = pytester.runpytest_subprocess("--deploy-target=t")
    output = result.stdout.str() + result.stderr.str()
    no_traceback(output)
    assert result.ret == 1
    assert f"the environment variable BIG {phrase}" in output, output


@pytest.mark.parametrize(
    ("command", "phrase"),
    [("echo a\0b", "contains a NUL byte"), ("echo " + "x" * MAX_ARG_CHARS, "at most")],
    ids=["nul", "over-128k"],
)
def test_a_command_no_process_can_take_fails_the_step_in_a_paragraph(
    pytester: pytest.Pytester, command: str, phrase: str
) -> None:
    project(pytester, command)
    result = pytester.runpytest_subprocess("--deploy-target=t")
    output = result.stdout.str() + result.stderr.str()
    no_traceback(output)
    assert result.ret == 1 and phrase in output, output


def test_an_unwritable_log_folder_fails_the_step_in_a_paragraph(pytester: pytest.Pytester):
    project(pytester)
    (pytester.path / ".deploy").mkdir()
    (pytester.path / ".deploy" / "logs").write_text("a file where the folder should be")
    result = pytester.runpytest_subprocess("--deploy-target=t")
    output = result.stdout.str() + result.stderr.str()
    no_traceback(output)
    assert result.ret == 1 and "cannot write the step's log" in output, output


def test_a_full_disk_stops_the_log_not_the_step(tmp_path: Path) -> None:
    result = run_command(
        "echo one; echo two", cwd=tmp_path, env={"PATH": "/usr/bin:/bin"}, masker=Masker(),
        log_path=Path("/dev/full"),
    )  # fmt: skip
    assert result.ok
    assert "one\ntwo\n" in result.tail and "the log stopped: No space left" in result.tail


def test_a_missing_working_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CommandRefused, match="does not exist"):
        run_command("true", cwd=tmp_path / "gone", env={}, masker=Masker())


def test_a_report_path_that_is_a_folder_is_refused_before_deploying(pytester: pytest.Pytester):
    project(pytester, "touch ran")
    result = pytester.runpytest_subprocess("--deploy-target=t", "--deploy-report=.")
    output = result.stdout.str() + result.stderr.str()
    no_traceback(output)
    assert result.ret == pytest.ExitCode.USAGE_ERROR and "that is a folder" in output
    assert not (pytester.path / "ran").exists()


def test_env_set_refuses_a_value_over_the_kernel_limit(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "deploy.yaml").write_text(
        yaml.safe_dump({"project": "p", "targets": {"t": {}},
                        "groups": [{"name": "g", "order": 1, "deploy_command": "true"}]})
    )  # fmt: skip
    cli = Path(sys.executable).with_name("pytest-deploy")
    done = subprocess.run(
        [str(cli), "env", "set", "p", "BIG", "-", "--target", "t"],
        cwd=tmp_path, input="x" * MAX_ARG_CHARS, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "bytes per environment variable" in done.stderr
    assert "Traceback" not in done.stderr
