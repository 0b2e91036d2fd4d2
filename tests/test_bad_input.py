"""Issues 9 #11 and 21: hostile inputs get one paragraph, their documented exit code, and
nothing of the deployment runs or changes (no traceback, no INTERNALERROR)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from deploy_plugin.engine.shell import MAX_ARG_CHARS, CommandRefused, run_command
from deploy_plugin.secrets import Masker


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


# --------------------------------------------------------------------------- issue 21
# Hostile input and operator paths: each bad input is one paragraph with its documented
# exit code, and nothing of the deployment runs (the first group's `touch ran` proves it).

CLI = Path(sys.executable).with_name("pytest-deploy")


def cli(cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``pytest-deploy ARGS`` in ``cwd`` without a terminal (stdin a pipe, or /dev/null)."""
    return subprocess.run(
        [str(CLI), *args], cwd=cwd, input=stdin, stdin=None if stdin is not None else
        subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def two_groups(pytester: pytest.Pytester, second: dict[str, object], **top: object) -> None:
    """Group ``first`` touches ``ran``; ``second`` is the group under test."""
    config = {
        "project": "p",
        "targets": {"t": {}},
        "groups": [
            {"name": "first", "order": 1, "deploy_command": "touch ran"},
            {"name": "second", "order": 2, **second},
        ],
        **top,
    }
    (pytester.path / "deploy.yaml").write_text(yaml.safe_dump(config))


def _dashed_stem(pytester: pytest.Pytester) -> None:
    (pytester.path / "files").mkdir()
    (pytester.path / "files" / "-rf.txt").write_text("x")
    two_groups(pytester, {"file_patterns": ["files/*"], "deploy_command": "echo {stem}"})


def _dashed_function_name(pytester: pytest.Pytester) -> None:
    (pytester.path / "functions" / "--help").mkdir(parents=True)
    (pytester.path / "functions" / "--help" / "handler.py").write_text("x")
    two_groups(
        pytester,
        {"file_patterns": ["functions/*/handler.py"], "deploy_command": "echo {function_name}"},
    )


def _dashed_service_name(pytester: pytest.Pytester) -> None:
    (pytester.path / "services").mkdir()
    (pytester.path / "services" / "-v.service").write_text("x")
    two_groups(pytester, {"file_patterns": ["services/*"], "deploy_command": "echo {service_name}"})


def _non_utf8_name(pytester: pytest.Pytester) -> None:
    (pytester.path / "files").mkdir()
    (pytester.path / "files" / "ok.txt").write_text("x")
    with open(os.path.join(os.fsencode(pytester.path / "files"), b"f\xff.txt"), "w") as f:
        f.write("x")
    two_groups(pytester, {"file_patterns": ["files/*"], "deploy_command": "echo {name}"})


def _env_file(value: str) -> Callable[[pytest.Pytester], None]:
    def setup(pytester: pytest.Pytester) -> None:
        (pytester.path / "run.env").write_text(f"FINE=1\nBAD={value}\n")
        two_groups(pytester, {"deploy_command": "echo $BAD"})

    return setup


def _many_env_vars(pytester: pytest.Pytester) -> None:
    """100,000 variables: over ARG_MAX together (and read in linear time: it took 120 s)."""
    lines = (f"NAME_{i}=value-{i}-secret\n" for i in range(100_000))
    (pytester.path / "run.env").write_text("".join(lines))
    two_groups(pytester, {"deploy_command": "true"})


def _undefined_webhook_var(pytester: pytest.Pytester) -> None:
    two_groups(
        pytester,
        {"deploy_command": "true"},
        notify=[{"webhook": "http://127.0.0.1:9/hook/${HOOK_TOKEN}"}],
    )


def _unset_email_password(pytester: pytest.Pytester) -> None:
    email = {"url": "smtp://deploy@127.0.0.1:9", "from": "d@example.com",
             "to": ["o@example.com"], "password_env": "SMTP_PASSWORD_UNSET_21"}  # fmt: skip
    two_groups(pytester, {"deploy_command": "true"}, notify=[{"email": email}])


def _blob_env_value(pytester: pytest.Pytester) -> None:
    two_groups(pytester, {"deploy_command": "true"})
    store_env(pytester, "BLOB", "placeholder")
    with sqlite3.connect(pytester.path / ".deploy" / "state.sqlite3") as db:
        db.execute("UPDATE env_vars SET value = ? WHERE name = 'BLOB'", (b"\x00\xff",))


def _huge_json_integer(pytester: pytest.Pytester) -> None:
    text = (
        '{"project": "p", "targets": {"t": {}},\n "groups": [{"name": "first", "order": 1,'
        ' "deploy_command": "touch ran",\n "timeout_seconds": ' + "9" * 5001 + "}]}\n"
    )
    (pytester.path / "deploy.json").write_text(text)


#: (id, setup, extra pytest args, exit code, phrases of the one paragraph)
RUN_CASES = [
    ("dashed-stem", _dashed_stem, [], 1, ["files/-rf.txt", "{stem}", "starts with '-'"]),
    ("dashed-function-name", _dashed_function_name, [], 1,
     ["functions/--help/handler.py", "{function_name}", "starts with '-'"]),
    ("dashed-service-name", _dashed_service_name, [], 1,
     ["services/-v.service", "{service_name}", "starts with '-'"]),
    ("non-utf8-file-name", _non_utf8_name, [], 1, ["files/f\\xff.txt", "not UTF-8"]),
    ("env-file-nul", _env_file("a\0b"), ["--deploy-env-file=run.env"], 4,
     ["run.env, line 2", "BAD", "NUL byte"]),
    ("env-file-over-128k", _env_file("x" * MAX_ARG_CHARS), ["--deploy-env-file=run.env"], 4,
     ["run.env, line 2", "BAD", f"{MAX_ARG_CHARS:,} bytes"]),
    ("env-file-over-arg-max", _many_env_vars, ["--deploy-env-file=run.env"], 4,
     ["run.env: its 100,000 variable(s)", "ARG_MAX"]),
    ("webhook-undefined-var", _undefined_webhook_var, [], 1,
     ["notify[0].webhook", "${HOOK_TOKEN}", "no env var of target 't' defines"]),
    ("email-password-env-unset", _unset_email_password, [], 1,
     ["notify[0].email.password_env", "SMTP_PASSWORD_UNSET_21", "preflight::env"]),
    ("blob-env-value", _blob_env_value, [], 1, ["BLOB", "not text"]),
    ("json-5001-digit-integer", _huge_json_integer, [], 1,
     ["deploy.json, line 3", "5,001 digits"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("setup", "args", "code", "phrases"),
    [case[1:] for case in RUN_CASES],
    ids=[case[0] for case in RUN_CASES],
)
def test_hostile_input_is_one_paragraph_and_nothing_runs(
    pytester: pytest.Pytester,
    setup: Callable[[pytest.Pytester], None],
    args: list[str],
    code: int,
    phrases: list[str],
) -> None:
    setup(pytester)
    result = pytester.runpytest_subprocess("--deploy-target=t", *args)
    output = result.stdout.str() + result.stderr.str()
    no_traceback(output)
    assert result.ret == code, output
    for phrase in phrases:
        assert phrase in output, (phrase, output)
    assert not (pytester.path / "ran").exists(), "a step ran"


def test_a_file_name_that_looks_like_an_option_is_passed_as_a_path(pytester: pytest.Pytester):
    """{name}, {file} and {dir} of a name starting with '-' get ``./`` in front: the same
    file to every program, never an option (tar would run --use-compress-program's
    command)."""
    files = pytester.path / "files"
    files.mkdir()
    (files / "--use-compress-program=touch PWNED_opt.txt").write_text("x")
    (files / "ok.txt").write_text("y")
    (pytester.path / "-d").mkdir()
    (pytester.path / "-d" / "in.txt").write_text("z")
    config = {
        "project": "p",
        "targets": {"t": {}},
        "groups": [
            {"name": "tar", "order": 1, "file_patterns": ["files/--*"],
             "deploy_command": "cd files && tar -cf ../all.tar {name} ok.txt"},
            {"name": "ls", "order": 2, "file_patterns": ["-d/*"],
             "deploy_command": "ls -d {dir} {file} >> listed"},
        ],
    }  # fmt: skip
    (pytester.path / "deploy.yaml").write_text(yaml.safe_dump(config))
    result = pytester.runpytest_subprocess("--deploy-target=t")
    output = result.stdout.str() + result.stderr.str()
    no_traceback(output)
    assert not list(pytester.path.rglob("PWNED_opt.txt")), "tar ran the file name's command"
    assert result.ret == 0, output
    names = subprocess.run(["tar", "-tf", "all.tar"], cwd=pytester.path, capture_output=True,
                           text=True, check=True).stdout.split("\n")  # fmt: skip
    assert "./--use-compress-program=touch PWNED_opt.txt" in names
    assert (pytester.path / "listed").read_text() == "./-d\n./-d/in.txt\n"


def test_unprotecting_a_target_asks_and_without_a_terminal_needs_yes(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "deploy.yaml").write_text(
        yaml.safe_dump({"project": "pr", "groups": [
            {"name": "g", "order": 1, "deploy_command": "true"}]})
    )  # fmt: skip
    assert cli(tmp_path, "target", "add", "pr", "stg", "--protected").returncode == 0
    before = (tmp_path / ".deploy" / "state.sqlite3").read_bytes()
    done = cli(tmp_path, "target", "update", "pr", "stg", "--no-protected")
    no_traceback(done.stderr)
    assert done.returncode == 2, done.stderr
    assert "protected" in done.stderr and "pass --yes" in done.stderr, done.stderr
    assert (tmp_path / ".deploy" / "state.sqlite3").read_bytes() == before
    done = cli(tmp_path, "target", "remove", "pr", "stg")  # removing unprotects it too
    assert done.returncode == 2 and "pass --yes" in done.stderr, done.stderr
    done = cli(tmp_path, "target", "update", "pr", "stg", "--no-protected", "--yes")
    assert done.returncode == 0 and "protected=False" in done.stdout, done.stderr


def test_a_json_config_with_a_5001_digit_integer_is_one_paragraph_in_the_cli(tmp_path: Path):
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "deploy.json").write_text(
        '{"project": "p", "targets": {"t": {}},\n "groups": [{"name": "g", "order": '
        + "1" * 5001
        + ', "deploy_command": "true"}]}\n'
    )
    done = cli(tmp_path, "config", "validate")
    no_traceback(done.stderr)
    assert done.returncode == 1, done.stderr
    assert "deploy.json, line 2" in done.stderr and "5,001 digits" in done.stderr, done.stderr


def _deployed_sqlite_project(pytester: pytest.Pytester) -> None:
    (pytester.path / "migrations").mkdir()
    (pytester.path / "migrations" / "001_a.sql").write_text("CREATE TABLE a (id INTEGER);\n")
    (pytester.path / "pytest.ini").write_text("[pytest]\n")
    (pytester.path / "deploy.yaml").write_text(yaml.safe_dump({
        "project": "p",
        "targets": {"t": {"env": {"DATABASE_URL": "sqlite:///app.sqlite3"}}},
        "groups": [{"name": "m", "order": 1, "file_patterns": ["migrations/*.sql"]}],
    }))  # fmt: skip
    assert pytester.runpytest_subprocess("--deploy-target=t").ret == 0


@pytest.mark.parametrize(
    "command",
    [
        ["history", "p", "--target", "t"],
        ["history", "p", "--target", "t", "--html", "h.html"],
        ["deploy", "status", "p"],
        ["migration", "history", "p", "--target", "t"],
        ["migration", "status", "p", "--target", "t"],
    ],
    ids=["history", "history-html", "deploy-status", "migration-history", "migration-status"],
)
def test_a_stored_time_that_is_not_iso_is_one_paragraph(
    pytester: pytest.Pytester, command: list[str]
) -> None:
    _deployed_sqlite_project(pytester)
    with sqlite3.connect(pytester.path / ".deploy" / "state.sqlite3") as db:
        db.execute("UPDATE deployments SET started_at = 'yesterday'")
        db.execute("UPDATE migration_history SET applied_at = 'last week'")
    done = cli(pytester.path, *command)
    no_traceback(done.stderr)
    assert done.returncode == 1, done.stderr
    assert "not an ISO 8601 time" in done.stderr and "state.sqlite3" in done.stderr, done


def test_a_large_env_file_runs(tmp_path: Path) -> None:
    """10,000 variables: the run reads and masks with them
    without a step quadratic in their number (100,000 took over 120 s; the figures are
    printed by benchmarks/env_file.py, not asserted here; bash itself starts slowly
    with many variables: 35 s for 40,000)."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "run.env").write_text("".join(f"N{i}=v-{i}-secret\n" for i in range(10_000)))
    (tmp_path / "deploy.yaml").write_text(yaml.safe_dump({
        "project": "p", "targets": {"t": {}},
        "groups": [{"name": "g", "order": 1, "deploy_command": "echo $N9999 > out"}],
    }))  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--deploy-target=t",
         "--deploy-env-file=run.env"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "out").read_text() == "v-9999-secret\n"


def test_a_webhook_url_with_an_undefined_var_is_never_called(
    pytester: pytest.Pytester, http_server
):
    """--skip-validation skips preflight::env, so the notifier itself refuses the literal."""
    two_groups(
        pytester,
        {"deploy_command": "true"},
        notify=[{"webhook": http_server.url_for("/hook/${HOOK_TOKEN}")}],
    )
    result = pytester.runpytest_subprocess("--deploy-target=t", "--skip-validation")
    output = result.stdout.str() + result.stderr.str()
    no_traceback(output)
    assert result.ret == 0, output
    assert "uses ${HOOK_TOKEN}, which no env var of this target defines; not sent" in output
    assert http_server.requests == []
