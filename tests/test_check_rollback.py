"""The reversibility check (``--deploy-check-rollback``): each verdict on real PostgreSQL,
and on SQLite; the CLI's ``migration check-rollback``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import psycopg
import pytest

from deploy_plugin.store import open_store
from tests.projects import write_project
from tests.test_cli import Run, cli, work  # noqa: F401 - fixtures

#: name -> (up, down)
PG_MIGRATIONS = {
    "001_post": ("CREATE TABLE post (id int, title text, body text);\n", "DROP TABLE post;\n"),
    # a column re-added at the end
    "002_drop_id": ("ALTER TABLE post DROP COLUMN id;\n", "ALTER TABLE post ADD COLUMN id int;\n"),
    # a function overload left behind
    "003_rank": (
        "CREATE OR REPLACE FUNCTION hot_rank(s numeric) RETURNS numeric"
        " LANGUAGE sql AS 'SELECT s';\n"
        "CREATE OR REPLACE FUNCTION hot_rank(s numeric, at timestamptz) RETURNS numeric"
        " LANGUAGE sql AS 'SELECT s';\n",
        "DROP FUNCTION hot_rank(numeric);\n",
    ),
    # a down that fails
    "004_x": ("CREATE TABLE x (id int);\n", "DROP TABLE x;\nDROP TABLE nope;\n"),
    # a redo that fails: the down leaves the table
    "005_z": ("CREATE TABLE z (id int);\nCREATE INDEX z_id ON z (id);\n", "DROP INDEX z_id;\n"),
    "006_w": ("CREATE TABLE w (id int);\n", "DROP TABLE w;\n"),
}


def write_migrations(root: Path, migrations: dict[str, tuple[str, str]]) -> None:
    for name, (up, down) in migrations.items():
        (root / "m" / name).mkdir(parents=True)
        (root / "m" / name / "up.sql").write_text(up)
        (root / "m" / name / "down.sql").write_text(down)


def project(pytester: pytest.Pytester, migrations: dict[str, tuple[str, str]], **target) -> None:
    write_migrations(pytester.path, migrations)
    write_project(
        pytester, {"groups": [{"name": "db", "order": 1, "file_patterns": ["m/*/up.sql"]}]}
    )
    if target:
        config = pytester.path / "deploy.yaml"
        config.write_text(config.read_text().replace("t: {}", "t: {protected: true}"))


def test_each_verdict_on_postgres(pytester: pytest.Pytester, pg_database: str) -> None:
    project(pytester, PG_MIGRATIONS)
    result = pytester.runpytest(
        "--deploy-target=t", f"--deploy-env=DATABASE_URL={pg_database}",
        f"--deploy-store={pg_database}", "--deploy-check-rollback", "-v", "-rs",
    )  # fmt: skip
    result.assert_outcomes(passed=6, failed=4, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*check-rollback[[]m/001_post/up.sql[]] PASSED*",
            "*check-rollback[[]m/002_drop_id/up.sql[]] FAILED*",
            "*check-rollback[[]m/003_rank/up.sql[]] FAILED*",
            "*check-rollback[[]m/004_x/up.sql[]] FAILED*",
            "*check-rollback[[]m/005_z/up.sql[]] FAILED*",
            "*check-rollback[[]m/006_w/up.sql[]] SKIPPED*",
        ]
    )
    text = result.stdout.str()
    assert "schema differs: after the down of m/002_drop_id/up.sql" in text
    assert "column post.id moved from position 1 to 3" in text
    assert "function hot_rank(numeric, timestamptz) left behind" in text
    assert "down fails: m/004_x/down.sql, line 2: table \"nope\" does not exist" in text
    assert "redo fails: applying m/005_z/up.sql again" in text
    assert 'relation "z" already exists' in text
    assert "not run: deploy.yaml::t::db::check-rollback[m/005_z/up.sql] failed" in text
    with open_store(pg_database, pytester.path) as store:  # type: ignore[union-attr]
        rows = {f: r.status for f, r in store.applied_migrations("p", "t").items()}
        [run] = store.deployments("p", "t")
    assert rows == {
        "m/001_post/up.sql": "success", "m/002_drop_id/up.sql": "success",
        "m/003_rank/up.sql": "success", "m/004_x/up.sql": "success",
        "m/005_z/up.sql": "failed",
    }  # fmt: skip
    assert (run.kind, run.status) == ("check_rollback", "failure")
    with psycopg.connect(pg_database) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )}  # fmt: skip
    assert tables == {"post", "x", "z"}  # applied again; 006 never ran


def test_a_faithful_down_is_reversible_and_stays_applied(
    pytester: pytest.Pytester, pg_database: str
) -> None:
    project(pytester, {k: PG_MIGRATIONS[k] for k in ("001_post", "006_w")})
    args = ["--deploy-target=t", f"--deploy-env=DATABASE_URL={pg_database}"]
    result = pytester.runpytest(*args, "--deploy-check-rollback")
    result.assert_outcomes(passed=7)  # lock, env, files, drift, downs, 2 checks
    again = pytester.runpytest(*args)  # a deployment finds them applied
    again.assert_outcomes(passed=4, skipped=1)  # the two files: one item
    checked = pytester.runpytest(*args, "--deploy-check-rollback")
    checked.assert_outcomes(passed=5, skipped=2)  # nothing pending: nothing to check


def test_sqlite_verdicts(pytester: pytest.Pytester) -> None:
    """A "schema differs" verdict blocks nothing (the migration is applied again, the next
    steps run), yet the deployment is a failure: in the store, the JSON report, the summary."""
    project(pytester, {
        "001_post": ("CREATE TABLE post (id INTEGER, title TEXT);\n", "DROP TABLE post;\n"),
        "002_drop": ("ALTER TABLE post DROP COLUMN id;\n",
                     "ALTER TABLE post ADD COLUMN id INTEGER;\n"),
    })  # fmt: skip
    result = pytester.runpytest(
        "--deploy-target=t", "--deploy-env=DATABASE_URL=sqlite:///app.db",
        "--deploy-check-rollback", "--deploy-report=report.json",
    )  # fmt: skip
    result.assert_outcomes(passed=6, failed=1)  # the one failure is the soft one
    result.stdout.fnmatch_lines(["*column post.id moved from position 1 to 2*", "*p → t: FAILURE*"])
    with sqlite3.connect(pytester.path / "app.db") as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(post)")]
    assert columns == ["title"]  # 002 applied again
    with open_store(None, pytester.path) as store:  # type: ignore[union-attr]
        [run] = store.deployments("p", "t")
    assert (run.kind, run.status) == ("check_rollback", "failure")
    (deployment,) = json.loads((pytester.path / "report.json").read_text())["deployments"]
    assert deployment["status"] == "failure"


def test_a_missing_down_and_bad_combinations(pytester: pytest.Pytester) -> None:
    project(pytester, {"001_post": PG_MIGRATIONS["001_post"]})
    (pytester.path / "m" / "001_post" / "down.sql").unlink()
    args = ["--deploy-target=t", "--deploy-env=DATABASE_URL=sqlite:///app.db"]
    result = pytester.runpytest(*args, "--deploy-check-rollback")
    result.assert_outcomes(passed=4, failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*1 migration(s) to check have no down: m/001_post*"])
    assert not (pytester.path / "app.db").exists() or not sqlite3.connect(
        pytester.path / "app.db"
    ).execute("SELECT 1 FROM sqlite_master WHERE name = 'post'").fetchone()
    both = pytester.runpytest(*args, "--deploy-check-rollback", "--deploy-rollback=1")
    assert both.ret == pytest.ExitCode.USAGE_ERROR
    assert "cannot run together" in both.stderr.str()


def test_a_protected_target_needs_yes(pytester: pytest.Pytester) -> None:
    project(pytester, {"001_post": PG_MIGRATIONS["001_post"]}, protected=True)
    args = ["--deploy-target=t", "--deploy-env=DATABASE_URL=sqlite:///app.db"]
    refused = pytester.runpytest(*args, "--deploy-check-rollback")
    refused.assert_outcomes(passed=4, failed=1, skipped=2)
    refused.stdout.fnmatch_lines(["*is protected, and the reversibility check*pass --yes*"])
    pytester.runpytest(*args, "--deploy-check-rollback", "--yes").assert_outcomes(passed=7)


def test_cli_check_rollback(cli: Run, work: Path) -> None:  # noqa: F811
    migrations = work / "shop" / "migrations"
    (migrations / "001_items.sql").write_text(
        "-- migrate:up\nCREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);\n"
        "-- migrate:down\nDROP TABLE items;\n"
    )
    (migrations / "002_seed.sql").write_text(
        "-- migrate:up\nCREATE INDEX IF NOT EXISTS items_name ON items (name);\n"
        "-- migrate:down\nSELECT 1;\n"
    )
    code, out, err = cli("migration", "check-rollback", "shop", "--target", "local")
    assert code == 1, out + err
    assert "schema differs" in out and "index items_name left behind" in out
    code, out, err = cli("migration", "check-rollback", "shop", "--target", "nope")
    assert code == 2 and "local" in err
    config = work / "shop" / "deploy.yaml"
    config.write_text(config.read_text().replace("    type: database\n", "    protected: true\n"))
    (migrations / "003_more.sql").write_text("-- migrate:up\nSELECT 1;\n-- migrate:down\n")
    code, out, _ = cli("migration", "check-rollback", "shop", "--target", "local")
    assert code == 1 and "pass --yes" in out
    code, out, err = cli("migration", "check-rollback", "shop", "--target", "local", "--yes")
    assert code == 0, out + err


def test_an_empty_down_is_flagged_when_the_schema_differs(pytester: pytest.Pytester) -> None:
    """Issue 21 #3: the reversibility check flags an empty down (it undoes nothing) of a
    migration that changed the schema, naming it as empty."""
    project(pytester, {"001_post": ("CREATE TABLE post (id INTEGER);\n", "")})
    result = pytester.runpytest(
        "--deploy-target=t", "--deploy-env=DATABASE_URL=sqlite:///app.db",
        "--deploy-check-rollback",
    )  # fmt: skip
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines(["*redo fails*Its down (m/001_post/down.sql) is empty: it undoes"
                                 " nothing*"])
