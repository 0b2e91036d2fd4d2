"""Repeatable migrations (issue 23 #3, Flyway's ``R__name.sql``): in a tracked group, a file
named ``R__*.sql`` runs after the group's versioned files, again whenever its checksum
changes (no drift), and is skipped when unchanged. Its ledger row carries the checksum last
applied, the store keeps every apply (``migration history`` shows each checksum), and
rollbacks leave it out. Real pytest runs on SQLite and real PostgreSQL (built-in executor),
and a psql-applied group."""

from __future__ import annotations

import io
import re
import sqlite3
import sys
from collections.abc import Iterator

import psycopg
import pytest

import tests.test_rollback as rollback_tests
from deploy_plugin.cli import main
from deploy_plugin.plan import file_checksum
from tests.projects import write_project

VIEW = "R__views.sql"
VERSIONED = {
    # 'R' sorts before 'V': the repeatable's view needs V2's table, so it must run after
    "V1__items.sql": "-- migrate:up\nCREATE TABLE items (id int);\n"
    "-- migrate:down\nDROP TABLE items;\n",
    "V2__users.sql": "-- migrate:up\nCREATE TABLE users (id int);\n"
    "-- migrate:down\nDROP TABLE users;\n",
}
VIEW_SQL = "DROP VIEW IF EXISTS counts;\nCREATE VIEW counts AS SELECT {what} AS n FROM items;\n"


class Env(rollback_tests.Env):
    """One project on one database kind (tests/test_rollback.py's), with the CLI, the
    repeatable's view and the ledger's checksums."""

    def run(self, *args: str) -> pytest.RunResult:
        return super().run("-p", "no:cacheprovider", *args)

    def write(self, name: str, text: str) -> str:
        path = self.pytester.path / "m" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        return file_checksum(path)

    def view(self) -> str:
        """The definition of the view the repeatable makes."""
        if self.database == "sqlite":
            with sqlite3.connect(self.pytester.path / "app.db") as conn:
                row = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'counts'").fetchone()
        else:
            with psycopg.connect(self.url) as pg:
                row = pg.execute("SELECT pg_get_viewdef('counts'::regclass)").fetchone()
        assert row is not None
        return str(row[0])

    def ledger(self) -> dict[str, str]:
        sql = "SELECT file, checksum FROM {}"
        if self.database == "sqlite":
            with sqlite3.connect(self.pytester.path / "app.db") as conn:
                return dict(conn.execute(sql.format("pytest_deploy_applied")).fetchall())
        with psycopg.connect(self.url) as pg:
            return dict(pg.execute(sql.format("pytest_deploy.applied")).fetchall())

    def cli(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
        capsys.readouterr()
        store = ["--deploy-store", self.url] if self.store_args else []
        code = main([*args, *store])
        out, err = capsys.readouterr()
        return code, out + err


@pytest.fixture(params=["sqlite", "postgresql"])
def env(
    request: pytest.FixtureRequest, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Env]:
    monkeypatch.delenv("DEPLOY_STORE_URL", raising=False)
    monkeypatch.chdir(pytester.path)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    if request.param == "sqlite":
        found = Env(pytester, "sqlite", "sqlite:///app.db")
    else:
        found = Env(pytester, "postgresql", request.getfixturevalue("pg_database"))
    pytester.makeini("[pytest]\n")
    write_project(pytester, {"groups": [{"name": "db", "order": 1, "file_patterns": ["m/*.sql"]}]})
    for name, sql in VERSIONED.items():
        found.write(name, sql)
    found.write(VIEW, VIEW_SQL.format(what="count(*)"))
    yield found


def test_repeatable_runs_after_the_versioned_files_and_is_skipped_unchanged(env: Env) -> None:
    first = env.run("-v")
    first.assert_outcomes(passed=7)
    first.stdout.fnmatch_lines(
        [
            "*db::deploy[[]m/V1__items.sql[]] PASSED*",
            "*db::deploy[[]m/V2__users.sql[]] PASSED*",
            "*db::deploy[[]m/R__views.sql[]] PASSED*",
        ]
    )
    assert "count" in env.view().lower()
    again = env.run("-rs")
    again.assert_outcomes(passed=4, skipped=1)  # the three applied files: one item
    again.stdout.fnmatch_lines(["*3 files already applied: m/V1__items.sql, m/V2__users.sql,*"])
    with env.store() as store:
        repeats = store.repeatable_applies("p", "t")
    assert [(r.file, r.checksum) for r in repeats] == [
        (f"m/{VIEW}", file_checksum(env.pytester.path / "m" / VIEW))
    ]


def test_an_edited_repeatable_runs_again_and_history_keeps_each_checksum(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    env.run().assert_outcomes(passed=7)
    old = file_checksum(env.pytester.path / "m" / VIEW)
    new = env.write(VIEW, VIEW_SQL.format(what="count(*) + 1"))

    code, out = env.cli(capsys, "migration", "status", "p", "--target", "t")
    assert code == 0, out  # a changed repeatable is no drift
    assert re.search(r"m/R__views\.sql +db +changed ", out), out
    assert "2 applied, 0 pending, 0 drifted, 1 changed (repeatable)" in out, out

    dry = env.run("--dry-run", "-v", "-rA")
    dry.assert_outcomes(passed=4, skipped=1)
    dry.stdout.fnmatch_lines(
        ["*db::deploy[[]m/R__views.sql[]]: apply m/R__views.sql with the built-in SQL executor"
         " (repeatable: changed)"]
    )  # fmt: skip
    assert "1 pending of 3 tracked file(s)" in dry.stdout.str()
    assert "+ 1" not in env.view()  # a dry run changes nothing

    real = env.run("-v")
    real.assert_outcomes(passed=5, skipped=1)
    real.stdout.fnmatch_lines(["*db::deploy[[]m/R__views.sql[]] PASSED*"])
    assert "+ 1" in env.view()
    assert env.ledger()[f"m/{VIEW}"] == new
    env.run().assert_outcomes(passed=4, skipped=1)  # unchanged again: skipped

    code, out = env.cli(capsys, "migration", "history", "p", "--target", "t")
    assert code == 0, out
    assert "Repeatable migrations, every apply (newest first):" in out, out
    lines = out.split("Repeatable migrations, every apply")[1].splitlines()
    shown = [line for line in lines if "m/R__views.sql" in line]
    assert len(shown) == 2 and new[:12] in shown[0] and old[:12] in shown[1], out


def test_an_edited_versioned_file_still_fails_drift(env: Env) -> None:
    env.run().assert_outcomes(passed=7)
    env.write("V1__items.sql", VERSIONED["V1__items.sql"].replace("id int", "id bigint"))
    env.write(VIEW, VIEW_SQL.format(what="2"))
    failed = env.run()
    assert failed.ret == 1
    text = failed.stdout.str()
    assert "m/V1__items.sql changed after it was applied" in text, text
    assert "R__views.sql changed" not in text, text


def test_a_rollback_leaves_repeatables_out_and_says_so(env: Env) -> None:
    env.run().assert_outcomes(passed=7)
    env.write(VIEW, "DROP VIEW IF EXISTS counts;\nCREATE VIEW counts AS SELECT 1 AS n;\n")
    env.run().assert_outcomes(passed=5, skipped=1)  # the view no longer needs the tables
    rolled = env.run("--deploy-rollback=2", "-v")
    rolled.assert_outcomes(passed=7)  # lock, env, files, drift, downs + two downs
    rolled.stdout.fnmatch_lines(
        [
            "*db::rollback[[]m/V2__users.sql[]] PASSED*",
            "*db::rollback[[]m/V1__items.sql[]] PASSED*",
            "*note: a rollback leaves repeatable migrations out (re-applied when changed,"
            " never undone): m/R__views.sql*",
        ]
    )
    assert set(env.ledger()) == {f"m/{VIEW}"}
    refused = env.run(f"--deploy-rollback-to=m/{VIEW}")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR  # one paragraph, nothing run
    assert "m/R__views.sql is a repeatable migration" in refused.stdout.str() + refused.stderr.str()


def test_reversibility_check_leaves_repeatables_out(env: Env) -> None:
    checked = env.run("--deploy-check-rollback", "-v")
    assert checked.ret == 0, checked.stdout.str()
    text = checked.stdout.str()
    assert "check_rollback[m/R__views.sql]" not in text and "check[m/R__views.sql]" not in text
    assert "repeatable" in text, text


def test_psql_applied_repeatable(pytester: pytest.Pytester, pg_database: str) -> None:
    pytester.makeini("[pytest]\n")
    group = {
        "name": "db", "order": 1, "file_patterns": ["m/*.sql"],
        "deploy_command": 'psql "$DATABASE_URL" -X -q -f {file}',
    }  # fmt: skip
    write_project(pytester, {"groups": [group]})
    env = Env(pytester, "postgresql", pg_database)
    for name, sql in VERSIONED.items():
        env.write(name, sql.split("-- migrate:down")[0].replace("-- migrate:up\n", ""))
    env.write(VIEW, VIEW_SQL.format(what="count(*)"))
    env.run().assert_outcomes(passed=7)
    env.run("-rs").assert_outcomes(passed=4, skipped=1)
    new = env.write(VIEW, VIEW_SQL.format(what="count(*) + 1"))
    with env.store() as store:  # a run died while psql applied the edit: left in doubt
        store.begin_intent("p", "t", f"m/{VIEW}", new, deployment_id=None, who="gone@vm")
    again = env.run("-v", "-W", "default")
    again.assert_outcomes(passed=5, skipped=1)
    again.stdout.fnmatch_lines(["*db::deploy[[]m/R__views.sql[]] PASSED*"])
    # the ledger's row is the earlier apply's: psql's transaction never committed
    assert "lacks it (psql's transaction never committed)" in again.stdout.str()
    assert "+ 1" in env.view()
    assert env.ledger()[f"m/{VIEW}"] == new
    with env.store() as store:
        repeats = store.repeatable_applies("p", "t")
    assert [r.checksum for r in repeats][0] == new and len(repeats) == 2


def test_an_atomic_deployment_needs_no_down_for_a_repeatable(env: Env) -> None:
    atomic = env.run("--deploy-atomic", "-v")
    atomic.assert_outcomes(passed=8, skipped=2)  # the two undo steps: nothing to undo
    atomic.stdout.fnmatch_lines(
        ["*preflight::downs PASSED*", "*db::deploy[[]m/R__views.sql[]] PASSED*"]
    )
    assert "undo[m/R__views.sql]" not in atomic.stdout.str()


def test_the_promotion_gate_wants_an_edited_repeatable_applied_on_the_required_target(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\n")
    (pytester.path / "deploy.yaml").write_text(
        "project: p\ntargets:\n  staging:\n    env: {DATABASE_URL: 'sqlite:///staging.db'}\n"
        "  production:\n    requires: staging\n"
        "    env: {DATABASE_URL: 'sqlite:///production.db'}\n"
        "groups:\n  - {name: db, order: 1, file_patterns: ['m/*.sql']}\n"
    )
    env = Env(pytester, "sqlite", "")
    for name, sql in VERSIONED.items():
        env.write(name, sql)
    env.write(VIEW, VIEW_SQL.format(what="count(*)"))

    def deploy(target: str) -> pytest.RunResult:
        return pytester.runpytest("-p", "no:cacheprovider", f"--deploy-target={target}")

    assert deploy("staging").ret == 0 and deploy("production").ret == 0
    env.write(VIEW, VIEW_SQL.format(what="count(*) + 1"))
    refused = deploy("production")
    assert refused.ret == 1
    text = " ".join(refused.stdout.str().split())
    assert "1 migration(s) not applied there: m/R__views.sql (repeatable: there" in text, text
    assert "Restore each migration edited" not in text, text
    assert deploy("staging").ret == 0 and deploy("production").ret == 0
