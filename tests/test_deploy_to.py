"""Applying up to a migration: ``--deploy-to=FILE`` (pytest) and ``pytest-deploy migration
apply … --to FILE`` (CLI), against real PostgreSQL (target and store in one database).

Groups run by order: tracked groups before FILE's group apply every pending file, FILE's
group applies up to and including FILE, tracked groups after it apply none (Flyway's
``-target``); each file after the cut is reported skipped, never dropped. Other groups
run as usual."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from deploy_plugin.store import open_store
from tests.projects import write_project
from tests.test_downs import tables_pg

FILES = {
    "db/001_a.sql": "CREATE TABLE a (id int);\n",
    "db/002_b.sql": "CREATE TABLE b (id int);\n",
    "db/003_c.sql": "CREATE TABLE c (id int);\n",
    "rep/001_a.sql": "CREATE TABLE r1 (id int);\n",
    "rep/002_r.sql": "CREATE TABLE r2 (id int);\n",
}
CONFIG = {
    "groups": [
        {"name": "schema", "order": 1, "file_patterns": ["db/*.sql"]},
        {"name": "web", "order": 2, "deploy_command": "echo published > web.txt"},
        {"name": "reports", "order": 3, "file_patterns": ["rep/*.sql"]},
    ]
}


def make_project(root: Path) -> None:
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


class Env:
    """The project in a pytester folder, deployed to a throw-away PostgreSQL database."""

    def __init__(self, pytester: pytest.Pytester, url: str) -> None:
        self.pytester, self.url = pytester, url
        make_project(pytester.path)
        write_project(pytester, CONFIG)

    def run(self, *args: str) -> pytest.RunResult:
        return self.pytester.runpytest(
            "--deploy-target=t", f"--deploy-env=DATABASE_URL={self.url}",
            f"--deploy-store={self.url}", *args,
        )  # fmt: skip

    def tables(self) -> set[str]:
        return tables_pg(self.url)

    def deployments(self) -> list[tuple[str, bool]]:
        with open_store(self.url, self.pytester.path) as store:  # type: ignore[union-attr]
            return [(d.status, d.dry_run) for d in store.deployments("p", "t")]


@pytest.fixture
def env(pytester: pytest.Pytester, pg_database: str) -> Env:
    return Env(pytester, pg_database)


def refused(result: pytest.RunResult) -> str:
    """The one paragraph of a run refused before anything ran (exit 4)."""
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    err = result.stderr.str()
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "Nothing was run." in err
    return lines[0]


def test_the_cut_applies_exactly_up_to_file(env: Env) -> None:
    result = env.run("--deploy-to=db/002_b.sql", "-rs", "-v", "--deploy-report=r.json")
    assert result.ret == 0, result.stdout.str()
    assert env.tables() == {"a", "b"}
    assert (env.pytester.path / "web.txt").exists()  # a group of no migration runs as usual
    result.stdout.fnmatch_lines(
        [
            "*schema::deploy[[]db/001_a.sql[]] PASSED*",
            "*schema::deploy[[]db/002_b.sql[]] PASSED*",
            "*schema::deploy[[]db/003_c.sql[]] SKIPPED*",
            "*web::deploy PASSED*",
            "*reports::deploy[[]rep/001_a.sql[]] SKIPPED*",
            "*reports::deploy[[]rep/002_r.sql[]] SKIPPED*",
        ]
    )
    out = result.stdout.str()
    assert "db/003_c.sql: after --deploy-to db/002_b.sql" in out
    [report] = json.loads((env.pytester.path / "r.json").read_text())["deployments"]
    skipped = {s["file"]: s["message"] for s in report["steps"] if s["outcome"] == "skipped"}
    assert set(skipped) == {"db/003_c.sql", "rep/001_a.sql", "rep/002_r.sql"}
    assert all("after --deploy-to db/002_b.sql" in m for m in skipped.values())
    assert report["status"] == "success"

    # the later files are still pending: a cut in a later group runs the earlier ones fully
    second = env.run("--deploy-to=rep/001_a.sql", "-v")
    assert second.ret == 0, second.stdout.str()
    second.stdout.fnmatch_lines(
        [
            "*schema::deploy[[]db/003_c.sql[]] PASSED*",
            "*reports::deploy[[]rep/001_a.sql[]] PASSED*",
            "*reports::deploy[[]rep/002_r.sql[]] SKIPPED*",
        ]
    )
    assert env.tables() == {"a", "b", "c", "r1"}
    third = env.run()  # without the option: everything pending
    assert third.ret == 0
    assert env.tables() == {"a", "b", "c", "r1", "r2"}


def test_a_base_name_names_a_file_when_unique(env: Env) -> None:
    result = env.run("--deploy-to=002_b.sql")
    assert result.ret == 0, result.stdout.str()
    assert env.tables() == {"a", "b"}
    ambiguous = refused(env.run("--deploy-to=001_a.sql"))
    assert "names 2 tracked files: db/001_a.sql, rep/001_a.sql" in ambiguous
    assert env.tables() == {"a", "b"}


def test_the_dry_run_shows_the_cut(env: Env) -> None:
    result = env.run("--deploy-to=db/002_b.sql", "--dry-run")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*note: --deploy-to db/002_b.sql: pending migrations up to and including it;"
            " 3 later one(s) left pending: db/003_c.sql, rep/001_a.sql, rep/002_r.sql",
            "  plan:",
            "*schema::deploy[[]db/002_b.sql[]]: apply db/002_b.sql with the built-in SQL executor",
            "*schema::deploy[[]db/003_c.sql[]]: (skipped: db/003_c.sql: after --deploy-to"
            " db/002_b.sql*",
            "*web::deploy: echo published > web.txt",
            "*reports::deploy[[]rep/002_r.sql[]]: (skipped: rep/002_r.sql: after --deploy-to*",
        ]
    )
    assert env.tables() == set()


def test_unknown_or_applied_file_is_refused_and_nothing_runs(env: Env) -> None:
    unknown = refused(env.run("--deploy-to=db/009_z.sql"))
    assert "--deploy-to=db/009_z.sql" in unknown and "db/003_c.sql" in unknown
    assert env.tables() == set()
    assert not (env.pytester.path / "web.txt").exists()

    assert env.run("--deploy-to=db/001_a.sql").ret == 0
    before = env.deployments()
    applied = refused(env.run("--deploy-to=db/001_a.sql"))
    assert "db/001_a.sql is already applied to target 't'" in applied
    assert env.deployments() == before  # no deployment recorded
    assert env.tables() == {"a"}
    mixed = refused(env.run("--deploy-to=db/002_b.sql", "--deploy-rollback=1"))
    assert "--deploy-to" in mixed and "--deploy-rollback" in mixed
    left_out = refused(env.run("--deploy-to=rep/002_r.sql", "--group=schema"))
    assert "group 'reports'" in left_out
    assert env.tables() == {"a"}


def test_a_saved_plan_keeps_its_cut(env: Env) -> None:
    assert env.run("--deploy-to=db/001_a.sql").ret == 0  # the store exists: plans can be signed
    made = env.run("--deploy-to=db/003_c.sql", "--dry-run", "--deploy-plan-out=plan.json")
    assert made.ret == 0, made.stdout.str()
    plan = json.loads((env.pytester.path / "plan.json").read_text())
    planned = [s["node_id"] for s in plan["deployments"][0]["steps"]]
    assert any("db/003_c.sql" in n for n in planned)
    assert not any("rep/" in n for n in planned)  # after the cut: not in the plan
    earlier = env.run("--deploy-plan=plan.json", "--deploy-to=db/002_b.sql")
    assert earlier.ret == pytest.ExitCode.USAGE_ERROR  # a plan's refusal: on the terminal
    assert "schema::deploy[db/003_c.sql] of the plan is not in this run" in earlier.stdout.str()
    assert env.tables() == {"a"}
    applied = env.run("--deploy-plan=plan.json", "-rs")  # the plan's steps and no other
    assert applied.ret == 0, applied.stdout.str()
    assert env.tables() == {"a", "b", "c"}


def test_an_atomic_cut_needs_downs_only_up_to_file(env: Env) -> None:
    """--deploy-atomic asks a down of each migration the run would apply: not of the ones
    after the cut (none of those has one here)."""
    first = env.pytester.path / "db/001_a.sql"
    first.write_text("-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\nDROP TABLE a;\n")
    result = env.run("--deploy-to=db/001_a.sql", "--deploy-atomic")
    assert result.ret == 0, result.stdout.str()
    assert env.tables() == {"a"}


# --------------------------------------------------------------------------- the CLI


def cli(*args: str) -> tuple[int, str, str]:
    """``pytest-deploy ARGS`` in a process: (exit code, stdout, stderr)."""
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from deploy_plugin.cli import main;"
         " sys.exit(main(sys.argv[1:]))", *args],
        capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    return done.returncode, done.stdout, done.stderr


def test_cli_migration_apply_to(
    pytester: pytest.Pytester, pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    Env(pytester, pg_database)
    (pytester.path / "pytest.ini").write_text("[pytest]\n")
    monkeypatch.chdir(pytester.path)
    monkeypatch.setenv("DEPLOY_STORE_URL", pg_database)
    base = ("migration", "apply", "p", "--target", "t", f"--deploy-env=DATABASE_URL={pg_database}")
    code, out, err = cli(*base, "--to", "db/002_b.sql", "--dry-run")
    assert code == 0, out + err
    assert "(skipped: db/003_c.sql: after --deploy-to db/002_b.sql" in out
    code, out, err = cli(*base, "--to", "db/002_b.sql")
    assert code == 0, out + err
    assert tables_pg(pg_database) == {"a", "b"}
    assert not (pytester.path / "web.txt").exists()  # apply runs the tracked groups only
    code, out, err = cli(*base, "--to", "db/002_b.sql")  # applied now
    assert code == 2 and "db/002_b.sql is already applied" in out + err
    code, out, err = cli(*base, "--to", "nope.sql")
    assert code == 2 and "--deploy-to=nope.sql" in out + err
    assert tables_pg(pg_database) == {"a", "b"}
    with psycopg.connect(pg_database) as conn:
        (count,) = conn.execute("SELECT count(*) FROM pytest_deploy.applied").fetchone() or (0,)
    assert count == 2


def test_file_is_named_by_path_from_root_or_folder_or_by_its_end(tmp_path: Path) -> None:
    """Pure: how FILE names a tracked file (no database)."""
    from deploy_plugin.plan.cut import name_file

    root = tmp_path / "shop"
    make_project(root)
    files = list(FILES)
    assert name_file("db/002_b.sql", files, root, tmp_path) == ["db/002_b.sql"]
    assert name_file("shop/db/002_b.sql", files, root, tmp_path) == ["db/002_b.sql"]  # from cwd
    assert name_file(str(root / "rep/002_r.sql"), files, root, tmp_path) == ["rep/002_r.sql"]
    assert name_file("./002_b.sql", files, root, tmp_path) == ["db/002_b.sql"]
    assert name_file("001_a.sql", files, root, tmp_path) == ["db/001_a.sql", "rep/001_a.sql"]
    assert name_file("b.sql", files, root, tmp_path) == []  # whole path parts only
    assert name_file("../shop/db/003_c.sql", files, root, root) == ["db/003_c.sql"]


def test_deploy_to_needs_a_target(pytester: pytest.Pytester) -> None:
    make_project(pytester.path)
    write_project(pytester, CONFIG)
    result = pytester.runpytest("--deploy-to=db/001_a.sql")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--deploy-to needs --deploy-target" in result.stderr.str()


# ------------------------------------------------------------ repeatables and saved plans


def view_columns(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'v'"
            " ORDER BY ordinal_position"
        ).fetchall()
    return [r[0] for r in rows]


def test_a_changed_repeatable_is_pending_to_the_cut(
    env: Env, pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repeatable whose checksum differs from the one applied is pending (cut-able, and
    counted as left pending after the cut); an unchanged one is applied."""
    view = env.pytester.path / "db/R__v.sql"
    view.write_text("CREATE OR REPLACE VIEW v AS SELECT 1 AS one;\n")
    assert env.run().ret == 0
    unchanged = refused(env.run("--deploy-to=R__v.sql"))
    assert "db/R__v.sql is already applied to target 't'" in unchanged
    assert "none is pending" in unchanged

    view.write_text("CREATE OR REPLACE VIEW v AS SELECT 1 AS one, 2 AS two;\n")
    (env.pytester.path / "db/004_d.sql").write_text("CREATE TABLE d (id int);\n")
    applied = refused(env.run("--deploy-to=db/003_c.sql"))
    assert "Name a pending file (db/004_d.sql, db/R__v.sql)" in applied
    cut = env.run("--deploy-to=004_d.sql", "-v")
    assert cut.ret == 0, cut.stdout.str()
    cut.stdout.fnmatch_lines(
        [
            "*schema::deploy[[]db/004_d.sql[]] PASSED*",
            "*schema::deploy[[]db/R__v.sql[]] SKIPPED*",
            "*note: --deploy-to db/004_d.sql: pending migrations up to and including it;"
            " 1 later one(s) left pending: db/R__v.sql",
        ]
    )
    assert "d" in env.tables() and view_columns(pg_database) == ["one"]

    (env.pytester.path / "pytest.ini").write_text("[pytest]\n")
    monkeypatch.chdir(env.pytester.path)
    monkeypatch.setenv("DEPLOY_STORE_URL", pg_database)
    base = ("migration", "apply", "p", "--target", "t", f"--deploy-env=DATABASE_URL={pg_database}")
    code, out, err = cli(*base, "--to", "R__v.sql")
    assert code == 0, out + err
    assert view_columns(pg_database) == ["one", "two"]
    code, out, err = cli(*base, "--to", "R__v.sql")  # unchanged now: applied
    assert code == 2 and "db/R__v.sql is already applied" in out + err


def test_a_saved_plan_refuses_a_later_deploy_to(env: Env) -> None:
    """A plan fixes its steps: --deploy-to naming a file the plan does not apply is refused
    (exit 4), not run with a note claiming that file."""
    assert env.run("--deploy-to=db/001_a.sql").ret == 0  # the store exists: plans can be signed
    made = env.run("--deploy-to=db/002_b.sql", "--dry-run", "--deploy-plan-out=plan.json")
    assert made.ret == 0, made.stdout.str()
    later = refused(env.run("--deploy-plan=plan.json", "--deploy-to=db/003_c.sql"))
    assert "--deploy-to=db/003_c.sql" in later and "plan.json" in later
    assert "db/003_c.sql is not in the saved plan" in later
    assert env.tables() == {"a"}
    same = env.run("--deploy-plan=plan.json", "--deploy-to=002_b.sql")  # the plan's own cut
    assert same.ret == 0, same.stdout.str()
    same.stdout.fnmatch_lines(
        ["*note: --deploy-to db/002_b.sql: pending migrations up to and including it;*"]
    )
    assert env.tables() == {"a", "b"}
