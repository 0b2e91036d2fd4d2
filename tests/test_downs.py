"""Down migrations found by convention (directory pairs, suffix pairs, dbmate sections, the
``down_file`` template), and the config error for patterns that match down files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from deploy_plugin.config import load_config
from deploy_plugin.migrate.downs import Down, find_down, read_down
from deploy_plugin.plan import checksum_bytes, file_checksum, up_bytes
from tests.projects import write_project

DBMATE = (
    "-- migrate:up\n"
    "CREATE TABLE t1 (id int);\n"
    "\n"
    "-- migrate:down\n"
    "DROP TABLE t1;\n"
)

#: convention -> (file patterns, {path: text}, the migrations, group extras)
LAYOUTS: dict[str, tuple[list[str], dict[str, str], list[str], dict[str, str]]] = {
    "directory": (
        ["migrations/*/up.sql"],
        {
            "migrations/001_a/up.sql": "CREATE TABLE t1 (id int);\n",
            "migrations/001_a/down.sql": "DROP TABLE t1;\n",
            "migrations/002_b/up.sql": "CREATE TABLE t2 (id int);\n",
            "migrations/002_b/down.sql": "DROP TABLE t2;\n",
        },
        ["migrations/001_a/up.sql", "migrations/002_b/up.sql"],
        {},
    ),
    "suffix": (
        ["migrations/*.up.sql"],
        {
            "migrations/001_a.up.sql": "CREATE TABLE t1 (id int);\n",
            "migrations/001_a.down.sql": "DROP TABLE t1;\n",
            "migrations/002_b.up.sql": "CREATE TABLE t2 (id int);\n",
            "migrations/002_b.down.sql": "DROP TABLE t2;\n",
        },
        ["migrations/001_a.up.sql", "migrations/002_b.up.sql"],
        {},
    ),
    "section": (
        ["migrations/*.sql"],
        {
            "migrations/001_a.sql": DBMATE,
            "migrations/002_b.sql": DBMATE.replace("t1", "t2"),
        },
        ["migrations/001_a.sql", "migrations/002_b.sql"],
        {},
    ),
    "down_file": (
        ["migrations/*.sql"],
        {
            "migrations/001_a.sql": "CREATE TABLE t1 (id int);\n",
            "rollbacks/001_a.sql": "DROP TABLE t1;\n",
            "migrations/002_b.sql": "CREATE TABLE t2 (id int);\n",
            "rollbacks/002_b.sql": "DROP TABLE t2;\n",
        },
        ["migrations/001_a.sql", "migrations/002_b.sql"],
        {"down_file": "rollbacks/{name}"},
    ),
}


def make_layout(root: Path, convention: str, url_env: str = "DATABASE_URL") -> dict:
    patterns, files, _, extra = LAYOUTS[convention]
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return {
        "groups": [
            {"name": "db", "order": 1, "file_patterns": patterns, "database_url_env": url_env,
             **extra}
        ]
    }  # fmt: skip


# -- finding (pure, on real files) -------------------------------------------------------


@pytest.mark.parametrize("convention", sorted(LAYOUTS))
def test_each_convention_finds_the_down(tmp_path: Path, convention: str) -> None:
    config_data = make_layout(tmp_path, convention)
    write_config_file = tmp_path / "deploy.yaml"
    import yaml

    write_config_file.write_text(yaml.safe_dump({"project": "p", **config_data}))
    config = load_config(write_config_file)
    group = config.groups[0]
    first, second = LAYOUTS[convention][2]
    down = find_down(tmp_path, group, first)
    assert down is not None and down.convention == convention
    assert read_down(tmp_path, down).decode().strip().endswith("DROP TABLE t1;")
    assert find_down(tmp_path, group, second) is not None


def test_a_migration_without_a_down_has_none(tmp_path: Path) -> None:
    import yaml

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "001.sql").write_text("CREATE TABLE x (id int);\n")
    (tmp_path / "m" / "002.up.sql").write_text("CREATE TABLE y (id int);\n")
    (tmp_path / "deploy.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "db", "order": 1, "file_patterns": ["m/*.sql"]}]})
    )
    group = load_config(tmp_path / "deploy.yaml").groups[0]
    assert find_down(tmp_path, group, "m/001.sql") is None
    assert find_down(tmp_path, group, "m/002.up.sql") is None  # m/002.down.sql is missing


def test_dbmate_sections_keep_line_numbers_and_checksum_covers_the_up_only(
    tmp_path: Path,
) -> None:
    data = DBMATE.encode()
    up = up_bytes(data)
    assert up.decode().splitlines()[1] == "CREATE TABLE t1 (id int);"
    path = tmp_path / "x.sql"
    path.write_bytes(data)
    section = read_down(tmp_path, Down("x.sql", "x.sql", "section")).decode()
    assert section.splitlines()[4] == "DROP TABLE t1;"  # line 5, as in the file
    assert section.splitlines()[:3] == ["", "", ""]
    before = file_checksum(path)
    path.write_bytes(data.replace(b"DROP TABLE t1;", b"DROP TABLE IF EXISTS t1;"))
    assert file_checksum(path) == before == checksum_bytes(data)  # the down is no drift
    path.write_bytes(data.replace(b"(id int)", b"(id bigint)"))
    assert file_checksum(path) != before
    path.write_bytes(data.replace(b"\n", b"\r\n"))
    assert file_checksum(path) == before  # line endings alone are no drift


# -- the config error ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "files", "named"),
    [
        ("migrations/*.sql", ["migrations/001_a.up.sql", "migrations/001_a.down.sql"],
         "migrations/001_a.down.sql (the down of migrations/001_a.up.sql)"),
        ("migrations/**/*.sql", ["migrations/001_a/up.sql", "migrations/001_a/down.sql"],
         "migrations/001_a/down.sql (the down of migrations/001_a/up.sql)"),
    ],
)  # fmt: skip
def test_a_pattern_matching_down_files_is_a_config_error(
    pytester: pytest.Pytester, pattern: str, files: list[str], named: str
) -> None:
    for rel in files:
        (pytester.path / rel).parent.mkdir(parents=True, exist_ok=True)
        (pytester.path / rel).write_text("SELECT 1;\n")
    write_project(pytester, {"groups": [{"name": "db", "order": 1, "file_patterns": [pattern]}]})
    for args in ([], ["--deploy-target=t"]):
        result = pytester.runpytest(*args)
        result.assert_outcomes(failed=1)
        text = result.stdout.str()
        assert "deploy.yaml, line" in text and "groups[0].file_patterns" in text
        assert named in text and "match down files as migrations" in text
        assert "Traceback" not in text
    assert not (pytester.path / ".deploy").exists() or not list(
        (pytester.path / ".deploy").glob("logs/*")
    )


@pytest.mark.parametrize(
    ("down_file", "expected"),
    [
        ("rollbacks/all.sql", "names no file placeholder"),
        ("../rollbacks/{name}", "leaves root"),
        ("rollbacks/{nme}", "{nme}"),
    ],
)
def test_a_bad_down_file_template_is_a_config_error(
    pytester: pytest.Pytester, down_file: str, expected: str
) -> None:
    write_project(
        pytester,
        {"groups": [{"name": "db", "order": 1, "file_patterns": ["m/*.sql"],
                     "down_file": down_file}]},
    )  # fmt: skip
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*groups[[]0[]].down_file*{expected}*"])


def test_down_file_on_an_untracked_group_is_a_config_error(pytester: pytest.Pytester) -> None:
    write_project(
        pytester,
        {"groups": [{"name": "b", "order": 1, "build_command": "true",
                     "down_file": "r/{name}"}]},
    )  # fmt: skip
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*groups[[]0[]].down_file*does not track migrations*"])


# -- deploying: only the up runs, on SQLite and real PostgreSQL ----------------------------


def tables_sqlite(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
    return {r[0] for r in rows if not r[0].startswith("pytest_deploy")}


def tables_pg(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema='public'"
        ).fetchall()
    return {r[0] for r in rows}


@pytest.mark.parametrize("convention", sorted(LAYOUTS))
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_deploying_applies_the_ups_only(
    pytester: pytest.Pytester, request: pytest.FixtureRequest, convention: str, database: str
) -> None:
    url = (
        "sqlite:///app.db" if database == "sqlite" else request.getfixturevalue("pg_database")
    )
    write_project(pytester, make_layout(pytester.path, convention))
    result = pytester.runpytest("--deploy-target=t", f"--deploy-env=DATABASE_URL={url}")
    result.assert_outcomes(passed=6)  # lock, env, files, drift and 2 migrations
    migrations = LAYOUTS[convention][2]
    result.stdout.no_fnmatch_line("*down*")
    got = tables_sqlite(pytester.path / "app.db") if database == "sqlite" else tables_pg(url)
    assert got == {"t1", "t2"}
    assert len(migrations) == 2


def test_config_validate_reports_a_pattern_matching_down_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from deploy_plugin.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DEPLOY_STORE_URL", raising=False)
    for rel in ("migrations/001_a.up.sql", "migrations/001_a.down.sql"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("SELECT 1;\n")
    (tmp_path / "deploy.yaml").write_text(
        "project: p\ngroups:\n  - {name: db, order: 1, file_patterns: ['migrations/*.sql']}\n"
    )
    code = main(["config", "validate"])
    err = capsys.readouterr().err
    assert code == 1 and "match down files as migrations" in err, err
