"""Issue 21: the exit codes are the ones README's "Exit codes" table documents, and a run
refused before anything ran never says pytest's INTERRUPTED (2)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest
import yaml

README = Path(__file__).resolve().parent.parent / "README.md"
CLI = Path(sys.executable).with_name("pytest-deploy")


def documented() -> dict[int, tuple[str, str]]:
    """README's table: exit code → (what it means for pytest, for ``pytest-deploy``)."""
    section = README.read_text().split("\n## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].isdigit():
            rows[int(cells[0])] = (cells[1], cells[2])
    return rows


def code_for(meaning: str, column: int = 0) -> int:
    (code,) = [code for code, row in documented().items() if row[column].startswith(meaning)]
    return code


def test_the_table_keeps_pytests_own_codes() -> None:
    assert code_for("every deployment succeeded") == pytest.ExitCode.OK
    assert code_for("a deployment failed") == pytest.ExitCode.TESTS_FAILED
    assert code_for("interrupted") == pytest.ExitCode.INTERRUPTED
    assert code_for("pytest's internal error") == pytest.ExitCode.INTERNAL_ERROR
    assert code_for("refused before anything ran") == pytest.ExitCode.USAGE_ERROR
    assert code_for('pytest\'s "no tests collected"') == pytest.ExitCode.NO_TESTS_COLLECTED
    assert code_for("refused, nothing changed", column=1) == 2  # argparse's, for the CLI


def write_project(root: Path) -> None:
    """Project p, target t: a tracked migration group (SQLite) whose command also touches
    ``ran``, so that anything that runs leaves a trace."""
    (root / "m").mkdir()
    (root / "m" / "001_a.sql").write_text("CREATE TABLE a (id INTEGER);\n")
    (root / "pytest.ini").write_text("[pytest]\n")
    config = {
        "project": "p",
        "targets": {"t": {"env": {"DATABASE_URL": "sqlite:///app.db"}}},
        "groups": [
            {"name": "first", "order": 1, "deploy_command": "touch ran"},
            {"name": "m", "order": 2, "file_patterns": ["m/*.sql"]},
        ],
    }
    (root / "deploy.yaml").write_text(yaml.safe_dump(config))


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--deploy-target=t", *args],
        cwd=root, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def deployment_rows(root: Path) -> list[tuple[object, ...]]:
    """The store's deployments (none when it does not exist)."""
    path = root / ".deploy" / "state.sqlite3"
    if not path.exists():
        return []
    with closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT * FROM deployments ORDER BY id").fetchall()


def _stale_plan(root: Path) -> list[str]:
    """A plan made, then the migration edited: the plan no longer applies."""
    assert run(root).returncode == 0  # the store exists: a plan is signed with its key
    (root / "ran").unlink()
    made = run(root, "--dry-run", "--deploy-plan-out=plan.json")
    assert made.returncode == 0, made.stdout + made.stderr
    (root / "m" / "002_b.sql").write_text("CREATE TABLE b (id INTEGER);\n")
    return ["--deploy-plan=plan.json"]


def _broken_plan(root: Path) -> list[str]:
    (root / "plan.json").write_text("{not json")
    return ["--deploy-plan=plan.json"]


def _args(*args: str) -> Callable[[Path], list[str]]:
    return lambda root: list(args)


#: (id, the run's arguments given the project's folder, a phrase of the one paragraph)
REFUSALS = [
    ("timeout", _args("--deploy-timeout=0"), "give a number of seconds above 0"),
    ("env-file", _args("--deploy-env-file=missing.env"), "missing.env"),
    ("plan-options", _args("--deploy-plan=a.json", "--deploy-plan-out=b.json"), "give one"),
    ("plan-file", _broken_plan, "plan.json"),
    ("plan-without-store", _args("--dry-run", "--deploy-plan-out=plan.json"), "no plan written"),
    ("stale-plan", _stale_plan, "cannot be applied"),
    ("rollback-n", _args("--deploy-rollback=0"), "N must be a whole number"),
    ("rollback-file", _args("--deploy-rollback-to=m/009_z.sql"), "not applied"),
    ("report-folder", _args("--deploy-report=."), "that is a folder"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("arguments", "phrase"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_a_refused_run_has_the_documented_code_and_runs_nothing(
    tmp_path: Path, arguments: Callable[[Path], list[str]], phrase: str
) -> None:
    write_project(tmp_path)
    args = arguments(tmp_path)
    before = deployment_rows(tmp_path)
    done = run(tmp_path, *args)
    output = done.stdout + done.stderr
    assert "Traceback" not in output and "INTERNALERROR" not in output, output
    assert done.returncode == code_for("refused before anything ran"), output
    assert phrase in output, output
    assert not (tmp_path / "ran").exists(), "a step ran"
    assert deployment_rows(tmp_path) == before, "a deployment was recorded"


def test_deploy_run_says_2_for_a_run_pytest_refused(tmp_path: Path) -> None:
    write_project(tmp_path)
    done = subprocess.run(
        [str(CLI), "deploy", "run", "p", "--target", "t", "--", "--deploy-rollback=0"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == code_for("refused, nothing changed", column=1), done.stderr
    assert "N must be a whole number" in done.stdout + done.stderr
    assert not (tmp_path / "ran").exists()
