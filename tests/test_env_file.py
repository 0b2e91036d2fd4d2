"""``--deploy-env-file FILE``: secrets from a dotenv file, masked, never on a command line;
``--deploy-env`` warns that its values are visible to other users of the machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deploy_plugin.store import open_store
from tests.projects import write_project

SECRET = "file-canary-8c1e"

# the step writes its own environment and the command line of the pytest running it
# (its parent, bash -c's parent) where the test can read them
SHOW = (
    'printf "%s\\n" "A=$A" "B=$B" "C=$C" "D=$D" > seen.txt;'
    " tr '\\0' ' ' < /proc/$PPID/cmdline > argv.txt; echo token=$A"
)


def project(pytester: pytest.Pytester) -> None:
    write_project(
        pytester,
        {"groups": [{"name": "g", "order": 1, "required_env_vars": ["A"], "deploy_command": SHOW}]},
    )


def test_values_come_from_the_file_masked_and_off_the_command_line(
    pytester: pytest.Pytester,
) -> None:
    project(pytester)
    (pytester.path / "prod.env").write_text(
        "# production secrets\n"
        f"export A={SECRET}\n"
        "B='single quoted # not a comment'\n"
        'C="two\\nlines"  # a comment\n'
        "\n"
        "D=\n"
    )
    result = pytester.runpytest_subprocess(
        "--deploy-target=t", "--deploy-env-file=prod.env", "--junitxml=out.xml",
        "-o", "junit_logging=all", "--deploy-report=report.json", "-rA",
    )  # fmt: skip
    assert result.ret == 0, result.stdout.str()
    seen = (pytester.path / "seen.txt").read_text()
    assert seen == f"A={SECRET}\nB=single quoted # not a comment\nC=two\nlines\nD=\n"
    argv = (pytester.path / "argv.txt").read_text()
    assert "--deploy-env-file=prod.env" in argv and SECRET not in argv
    for text in (
        result.stdout.str() + result.stderr.str(),
        (pytester.path / "out.xml").read_text(),
        (pytester.path / "report.json").read_text(),
    ):
        assert SECRET not in text
    assert "token=***" in (pytester.path / "out.xml").read_text()
    result.stdout.fnmatch_lines(["*env A: set (from --deploy-env-file)*"])


def test_the_command_line_wins_over_the_file_which_wins_over_the_store(
    pytester: pytest.Pytester,
) -> None:
    project(pytester)
    with open_store(None, pytester.path) as store:
        store.set_env("p", "t", "A", "from-store")
        store.set_env("p", "t", "B", "from-store")
    (pytester.path / "one.env").write_text("B=from-file-one\nC=from-file-one\n")
    (pytester.path / "two.env").write_text("C=from-file-two\nD=from-file-two\n")
    result = pytester.runpytest(
        "--deploy-target=t", "--deploy-env-file=one.env", "--deploy-env-file=two.env",
        "--deploy-env=D=from-cli",
    )  # fmt: skip
    assert result.ret == 0, result.stdout.str()
    assert (pytester.path / "seen.txt").read_text().splitlines() == [
        "A=from-store", "B=from-file-one", "C=from-file-two", "D=from-cli",
    ]  # fmt: skip


def test_a_value_on_the_command_line_warns_and_names_the_file_option(
    pytester: pytest.Pytester,
) -> None:
    project(pytester)
    result = pytester.runpytest("--deploy-target=t", f"--deploy-env=A={SECRET}")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        ["*--deploy-env puts the value of A on the command line, where other users of this"
         " machine can read it*--deploy-env-file FILE instead*"]
    )  # fmt: skip
    assert SECRET not in result.stdout.str()


def test_warnings_as_errors_make_that_warning_a_usage_error(pytester: pytest.Pytester) -> None:
    """-W error turns the warning into an error: one paragraph and exit 4 before anything
    runs, as for any bad option, never an INTERNALERROR traceback."""
    project(pytester)
    result = pytester.runpytest_subprocess(
        "--deploy-target=t", f"--deploy-env=A={SECRET}", "-W", "error"
    )
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == 4, out
    assert "INTERNALERROR" not in out and "Traceback" not in out
    result.stderr.fnmatch_lines(["ERROR: pytest-deploy: --deploy-env puts the value of A*"])
    assert SECRET not in out
    assert not (pytester.path / ".deploy").exists()  # nothing ran, nothing recorded


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "--deploy-env-file bad.env: cannot read it (No such file or directory)"),
        ("A=1\nthis is not a pair\n", "--deploy-env-file bad.env, line 2: expected KEY=VALUE"),
        ("# only a name\nA\n", "--deploy-env-file bad.env, line 2: expected KEY=VALUE"),
        ("A=1\nMY-VAR=2\n", "line 2: the name before '=' is not a shell variable name"),
    ],
    ids=["missing", "not-a-pair", "no-value", "bad-name"],
)
def test_a_bad_file_is_one_paragraph_with_file_and_line(
    pytester: pytest.Pytester, content: str | None, expected: str
) -> None:
    project(pytester)
    if content is not None:
        (pytester.path / "bad.env").write_text(content)
    # a subprocess: the paragraph on stderr, as a user sees it
    result = pytester.runpytest_subprocess("--deploy-target=t", "--deploy-env-file=bad.env")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stdout.str() + result.stderr.str()
    assert expected in text and "Traceback" not in text
    assert not (pytester.path / "seen.txt").exists()
    assert not (pytester.path / ".deploy").exists()  # nothing created or recorded


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("DB_PASSWORD: hunter2-sEcReT-value\n", "line 1: expected KEY=VALUE"),
        ("DB_PASSWORD hunter2-sEcReT-value\n", "line 1: expected KEY=VALUE"),
        ('A="one\n"\nhunter2-sEcReT-value continued\n', "line 3: expected KEY=VALUE"),
        ("  hunter2-sEcReT-value\n", "line 1: expected KEY=VALUE"),
        ("A=1\nhunter2+sEcReT+value==\n", "line 2: the name before '=' is not a shell"),
    ],
    ids=["colon", "space", "continuation", "bare-value", "base64-continuation"],
)
def test_a_bad_line_never_shows_its_value(
    pytester: pytest.Pytester, content: str, expected: str
) -> None:
    """A line that is not KEY=VALUE may hold a secret: the error names its line, never
    what it holds."""
    project(pytester)
    (pytester.path / "bad.env").write_text(content)
    result = pytester.runpytest_subprocess("--deploy-target=t", "--deploy-env-file=bad.env")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stdout.str() + result.stderr.str()
    assert "hunter2" not in text and "sEcReT" not in text, text
    result.stderr.fnmatch_lines([f"*--deploy-env-file bad.env, {expected}*"])


def test_the_cli_forwards_the_file_and_not_its_values(pytester: pytest.Pytester) -> None:
    project(pytester)
    (pytester.path / "prod.env").write_text(f"A={SECRET}\n")
    run = subprocess.run(
        [str(Path(sys.executable).parent / "pytest-deploy"), "deploy", "run", "p",
         "--target", "t", "--deploy-env-file", "prod.env", "--json"],
        cwd=pytester.path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert SECRET not in run.stdout + run.stderr
    assert [d["status"] for d in json.loads(run.stdout)["deployments"]] == ["success"]
    assert (pytester.path / "seen.txt").read_text().startswith(f"A={SECRET}\n")
    argv = (pytester.path / "argv.txt").read_text()
    assert f"--deploy-env-file={pytester.path / 'prod.env'}" in argv and SECRET not in argv


def test_the_cli_refuses_a_bad_file_before_running(pytester: pytest.Pytester) -> None:
    project(pytester)
    (pytester.path / "bad.env").write_text("A=1\nnot a pair\n")
    run = subprocess.run(
        [str(Path(sys.executable).parent / "pytest-deploy"), "deploy", "run", "p",
         "--target", "t", "--deploy-env-file", "bad.env"],
        cwd=pytester.path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2
    assert "--deploy-env-file bad.env, line 2: expected KEY=VALUE" in run.stderr
    assert not (pytester.path / "seen.txt").exists()
