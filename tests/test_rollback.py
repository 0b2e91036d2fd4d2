"""Rolling back migrations: ``--deploy-rollback=N``, ``--deploy-rollback-to=FILE``, on
SQLite and real PostgreSQL (store in the target database: the history row changes in the
down's own transaction)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

import psycopg
import pytest

from deploy_plugin.store import open_store
from tests.projects import write_project
from tests.test_downs import LAYOUTS, make_layout, tables_pg, tables_sqlite


class Env:
    """One project on one database kind: run pytest, read its tables and history."""

    def __init__(self, pytester: pytest.Pytester, database: str, url: str) -> None:
        self.pytester, self.database, self.url = pytester, database, url
        # PostgreSQL: the store IS the target database (one transaction for down + row)
        self.store_args = [f"--deploy-store={url}"] if database == "postgresql" else []

    def run(self, *args: str) -> pytest.RunResult:
        return self.pytester.runpytest(
            "--deploy-target=t", f"--deploy-env=DATABASE_URL={self.url}", *self.store_args, *args
        )

    def tables(self) -> set[str]:
        if self.database == "sqlite":
            return tables_sqlite(self.pytester.path / "app.db")
        return tables_pg(self.url)

    def store(self):  # noqa: ANN201 - a Store
        store = open_store(self.store_args[0].split("=", 1)[1] if self.store_args else None,
                           self.pytester.path)  # fmt: skip
        assert store is not None
        return store

    def history(self) -> dict[str, tuple[str, str | None, int | None]]:
        with self.store() as store:
            rows = store.applied_migrations("p", "t")
        return {f: (r.status, r.applied_by, r.execution_time_ms) for f, r in rows.items()}

    def ledger(self) -> set[str]:
        if self.database == "sqlite":
            with sqlite3.connect(self.pytester.path / "app.db") as conn:
                return {r[0] for r in conn.execute("SELECT file FROM pytest_deploy_applied")}
        with psycopg.connect(self.url) as conn:
            return {r[0] for r in conn.execute("SELECT file FROM pytest_deploy.applied")}

    def kinds(self) -> list[tuple[str, str, bool]]:
        with self.store() as store:
            return [(d.kind, d.status, d.dry_run) for d in store.deployments("p", "t")]


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, pytester: pytest.Pytester) -> Env:
    if request.param == "sqlite":
        return Env(pytester, "sqlite", "sqlite:///app.db")
    return Env(pytester, "postgresql", request.getfixturevalue("pg_database"))


@pytest.mark.parametrize("convention", sorted(LAYOUTS))
def test_roll_back_then_redeploy_each_convention(env: Env, convention: str) -> None:
    write_project(env.pytester, make_layout(env.pytester.path, convention))
    first, second = LAYOUTS[convention][2]
    env.run().assert_outcomes(passed=6)
    assert env.tables() == {"t1", "t2"}

    result = env.run("--deploy-rollback=1", "-v")
    result.assert_outcomes(passed=6)  # lock, env, files, drift, downs + one rollback
    result.stdout.fnmatch_lines([f"*deploy.yaml::t::db::rollback[[]{second}[]] PASSED*"])
    assert env.tables() == {"t1"}
    history = env.history()
    status, who, ms = history[second]
    assert status == "rolled_back" and who and ms is not None
    assert history[first][0] == "success"
    assert env.ledger() == {first}  # a rolled-back file can be applied again
    assert env.kinds()[0] == ("rollback", "success", False)

    redeploy = env.run("-v")  # the rolled-back migration is pending again
    redeploy.assert_outcomes(passed=5, skipped=1)
    redeploy.stdout.fnmatch_lines([f"*db::deploy[[]{second}[]] PASSED*"])
    assert env.tables() == {"t1", "t2"}
    assert env.history()[second][0] == "success"
    assert env.kinds()[0] == ("deploy", "success", False)


def three_migrations(pytester: pytest.Pytester, third_down: str | None = "DROP TABLE t3;\n"):
    root = pytester.path
    for index, name in enumerate(["001_a", "002_b", "003_c"], start=1):
        (root / "m" / name).mkdir(parents=True)
        (root / "m" / name / "up.sql").write_text(f"CREATE TABLE t{index} (id int);\n")
        down = f"DROP TABLE t{index};\n" if index < 3 else third_down
        if down is not None:
            (root / "m" / name / "down.sql").write_text(down)
    write_project(
        pytester, {"groups": [{"name": "db", "order": 1, "file_patterns": ["m/*/up.sql"]}]}
    )


def test_newest_first_and_rollback_to(env: Env) -> None:
    three_migrations(env.pytester)
    env.run().assert_outcomes(passed=7)
    result = env.run("--deploy-rollback-to=m/001_a/up.sql", "-v")
    result.assert_outcomes(passed=7)
    result.stdout.fnmatch_lines(
        ["*db::rollback[[]m/003_c/up.sql[]] PASSED*", "*db::rollback[[]m/002_b/up.sql[]] PASSED*"]
    )
    assert env.tables() == {"t1"}
    again = env.run("--deploy-rollback=5")  # more than applied: all that is applied
    again.assert_outcomes(passed=6)
    assert env.tables() == set()
    nothing = env.run("--deploy-rollback=1", "-rs")
    nothing.assert_outcomes(skipped=1)
    assert nothing.ret == 0
    nothing.stdout.fnmatch_lines(["*nothing to roll back*"])


def test_dry_run_lists_the_downs_and_changes_nothing(env: Env) -> None:
    three_migrations(env.pytester)
    env.run().assert_outcomes(passed=7)
    result = env.run("--deploy-rollback=2", "--dry-run")
    result.assert_outcomes(passed=6)  # no lock in a dry run
    result.stdout.fnmatch_lines(
        [
            "*plan:*",
            "*rollback[[]m/003_c/up.sql[]]: roll back m/003_c/up.sql with m/003_c/down.sql*",
            "*rollback[[]m/002_b/up.sql[]]: roll back m/002_b/up.sql with m/002_b/down.sql*",
        ]
    )
    assert env.tables() == {"t1", "t2", "t3"}
    assert {s for s, _, _ in env.history().values()} == {"success"}
    assert env.kinds()[0] == ("rollback", "success", True)


def test_preflight_names_every_migration_without_a_down(env: Env) -> None:
    three_migrations(env.pytester, third_down=None)
    (env.pytester.path / "m" / "002_b" / "down.sql").unlink()
    env.run().assert_outcomes(passed=7)
    result = env.run("--deploy-rollback=3")
    result.assert_outcomes(passed=4, failed=1, skipped=3)
    result.stdout.fnmatch_lines(
        ["*2 migration(s) to roll back have no down: m/003_c/up.sql (group db);"
         " m/002_b/up.sql (group db)*Nothing was run*"]
    )  # fmt: skip
    assert env.tables() == {"t1", "t2", "t3"}  # 001_a has a down, and did not run either


def test_a_failing_down_is_rolled_back_and_stops_the_run(env: Env) -> None:
    three_migrations(
        env.pytester, third_down="DROP TABLE t2;\nSELECT * FROM missing_s3cretvalue;\n"
    )
    env.run().assert_outcomes(passed=7)
    junit = env.pytester.path / "junit.xml"
    result = env.run(
        "--deploy-rollback=2", "--deploy-env=TOKEN=s3cretvalue", f"--junitxml={junit}",
        "-o", "junit_logging=system-out", "-rs",
    )  # fmt: skip
    result.assert_outcomes(passed=5, failed=1, skipped=1)
    text = result.stdout.str()
    assert "rolling back m/003_c/up.sql failed: m/003_c/down.sql, line 2:" in text
    assert "not run: deploy.yaml::t::db::rollback[m/003_c/up.sql] failed" in result.stdout.str()
    assert "s3cretvalue" not in text and "s3cretvalue" not in junit.read_text()
    assert "missing_***" in text
    assert env.tables() == {"t1", "t2", "t3"}  # the DROP TABLE t2 before it was rolled back
    assert {s for s, _, _ in env.history().values()} == {"success"}
    assert len(env.ledger()) == 3
    assert env.kinds()[0] == ("rollback", "failure", False)


def test_bad_requests_are_usage_errors_and_run_nothing(pytester: pytest.Pytester) -> None:
    three_migrations(pytester)
    url = "sqlite:///app.db"
    pytester.runpytest("--deploy-target=t", f"--deploy-env=DATABASE_URL={url}")
    cases = [
        (["--deploy-rollback=1", "--deploy-rollback-to=m/001_a/up.sql"], "give one of them"),
        (["--deploy-rollback=0"], "N must be a whole number of at least 1"),
        (["--deploy-rollback=-2"], "N must be a whole number of at least 1"),
        (["--deploy-rollback-to=m/009_z/up.sql"], "that file is not applied to this target"),
    ]
    for args, expected in cases:
        result = pytester.runpytest("--deploy-target=t", f"--deploy-env=DATABASE_URL={url}", *args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR, args  # one paragraph, nothing run
        err = result.stderr.str()
        assert expected in err and "Nothing was run." in err and "Traceback" not in err
        assert len([line for line in err.splitlines() if line.strip()]) == 1
        assert "nothing to roll back" not in result.stdout.str(), args  # 3 are applied
    assert tables_sqlite(pytester.path / "app.db") == {"t1", "t2", "t3"}
    with open_store(None, pytester.path) as store:  # type: ignore[union-attr]
        assert [d.kind for d in store.deployments("p", "t")] == ["deploy"]
    no_target = pytester.runpytest("--deploy-rollback=1")
    assert no_target.ret == pytest.ExitCode.USAGE_ERROR
    assert "--deploy-rollback needs --deploy-target" in no_target.stderr.str()


def test_nothing_to_roll_back_says_why(pytester: pytest.Pytester) -> None:
    """An empty range says why it is empty; it never claims nothing is applied when
    migrations are (before: "no migration ... is applied" for every empty range)."""
    three_migrations(pytester)
    args = ["--deploy-target=t", "--deploy-env=DATABASE_URL=sqlite:///app.db", "-rs"]
    pytester.runpytest(*args)
    newest = pytester.runpytest(*args, "--deploy-rollback-to=m/003_c/up.sql")
    assert newest.ret == 0
    newest.stdout.fnmatch_lines(
        ["*nothing to roll back: m/003_c/up.sql is the newest applied migration*"]
    )
    assert "no migration of project" not in newest.stdout.str()
    unknown = pytester.runpytest(*args, "--deploy-rollback=1", "--group=nope")
    assert unknown.ret == pytest.ExitCode.USAGE_ERROR
    assert "nothing to roll back" not in unknown.stdout.str() + unknown.stderr.str()
    assert tables_sqlite(pytester.path / "app.db") == {"t1", "t2", "t3"}


def test_a_protected_target_needs_yes(pytester: pytest.Pytester) -> None:
    three_migrations(pytester)
    config = pytester.path / "deploy.yaml"
    config.write_text(config.read_text().replace("t: {}", "t: {protected: true}"))
    args = ["--deploy-target=t", "--deploy-env=DATABASE_URL=sqlite:///app.db", "--yes"]
    pytester.runpytest(*args).assert_outcomes(passed=8)
    refused = pytester.runpytest_subprocess(*args[:2], "--deploy-rollback=1")
    refused.assert_outcomes(passed=4, failed=1, skipped=2)
    refused.stdout.fnmatch_lines(["*is protected*pass --yes*"])
    assert tables_sqlite(pytester.path / "app.db") == {"t1", "t2", "t3"}
    pytester.runpytest(*args, "--deploy-rollback=1").assert_outcomes(passed=7)
    assert tables_sqlite(pytester.path / "app.db") == {"t1", "t2"}


def test_kill_9_during_a_down_leaves_history_and_schema_agreeing(
    pytester: pytest.Pytester, pg_database: str
) -> None:
    three_migrations(
        pytester, third_down="DROP TABLE t3;\nSELECT pg_sleep(60);\n"
    )
    env = Env(pytester, "postgresql", pg_database)
    env.run().assert_outcomes(passed=7)
    command = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--deploy-target=t",
        f"--deploy-env=DATABASE_URL={pg_database}", *env.store_args, "--deploy-rollback=1",
    ]  # fmt: skip
    proc = subprocess.Popen(command, cwd=pytester.path, stdout=subprocess.DEVNULL)
    try:
        with psycopg.connect(pg_database, autocommit=True) as conn:
            sleeping = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%'" \
                " AND pid <> pg_backend_pid()"  # fmt: skip
            deadline = time.monotonic() + 60
            while conn.execute(sleeping).fetchone()[0] == 0:  # type: ignore[index]
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
            proc.kill()
            proc.wait()
            while conn.execute(sleeping).fetchone()[0] != 0:  # the server notices (1 s check)
                assert time.monotonic() < deadline + 30
                time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert env.tables() == {"t1", "t2", "t3"}
    assert env.history()["m/003_c/up.sql"][0] == "success"
    assert "m/003_c/up.sql" in env.ledger()


def test_a_shell_group_runs_its_deploy_command_on_the_down_file(
    pytester: pytest.Pytester,
) -> None:
    root = pytester.path
    (root / "m").mkdir()
    for name in ("001_a", "002_b"):
        (root / "m" / f"{name}.up.sql").write_text(f"up {name}\n")
        (root / "m" / f"{name}.down.sql").write_text(f"down {name}\n")
    write_project(
        pytester,
        {"groups": [{"name": "db", "order": 1, "file_patterns": ["m/*.up.sql"],
                     "deploy_command": "cat {file} >> applied.log"}]},
    )  # fmt: skip
    pytester.runpytest("--deploy-target=t").assert_outcomes(passed=6)
    result = pytester.runpytest("--deploy-target=t", "--deploy-rollback=1", "-v")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*db::rollback[[]m/002_b.up.sql[]] PASSED*"])
    assert (root / "applied.log").read_text() == "up 001_a\nup 002_b\ndown 002_b\n"
    with open_store(None, root) as store:  # type: ignore[union-attr]
        rows = store.applied_migrations("p", "t")
    assert rows["m/002_b.up.sql"].status == "rolled_back"
    assert rows["m/001_a.up.sql"].status == "success"
    redeploy = pytester.runpytest("--deploy-target=t")
    redeploy.assert_outcomes(passed=5, skipped=1)
    assert (root / "applied.log").read_text().endswith("down 002_b\nup 002_b\n")


def test_group_selection_limits_the_range(pytester: pytest.Pytester) -> None:
    root = pytester.path
    for group, names in (("a", ("001", "002")), ("b", ("003",))):
        for name in names:
            folder = root / group / name
            folder.mkdir(parents=True)
            (folder / "up.sql").write_text(f"CREATE TABLE {group}{name} (id int);\n")
            (folder / "down.sql").write_text(f"DROP TABLE {group}{name};\n")
    write_project(
        pytester,
        {"groups": [{"name": "a", "order": 1, "file_patterns": ["a/*/up.sql"]},
                    {"name": "b", "order": 2, "file_patterns": ["b/*/up.sql"]}]},
    )  # fmt: skip
    args = ["--deploy-target=t", "--deploy-env=DATABASE_URL=sqlite:///app.db"]
    pytester.runpytest(*args).assert_outcomes(passed=7)
    result = pytester.runpytest(*args, "--deploy-rollback=1", "--group=a", "-v")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*t::a::rollback[[]a/002/up.sql[]] PASSED*"])  # b's is newer
    assert tables_sqlite(root / "app.db") == {"a001", "b003"}


def test_kill_9_between_the_downs_commit_and_another_stores_row(
    pytester: pytest.Pytester, pg_database: str
) -> None:
    """Store (SQLite) and target (PostgreSQL) differ: the history row cannot commit with the
    down. A run killed after the down committed must not leave the history saying
    "success" (the next deployment would skip the file whose table is gone)."""
    three_migrations(pytester, third_down="SELECT pg_sleep(5);\nDROP TABLE t3;\n")
    env = Env(pytester, "sqlite", pg_database)  # SQLite store, PostgreSQL target
    env.database = "postgresql"  # tables and ledger are read from the target
    env.run().assert_outcomes(passed=7)
    store_file = pytester.path / ".deploy" / "state.sqlite3"
    command = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--deploy-target=t",
        f"--deploy-env=DATABASE_URL={pg_database}", "--deploy-rollback=1",
    ]  # fmt: skip
    proc = subprocess.Popen(command, cwd=pytester.path, stdout=subprocess.DEVNULL)
    blocker = sqlite3.connect(store_file, isolation_level=None, timeout=30)
    try:
        with psycopg.connect(pg_database, autocommit=True) as conn:
            deadline = time.monotonic() + 60
            sleeping = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(5)%'" \
                " AND pid <> pg_backend_pid()"  # fmt: skip
            while conn.execute(sleeping).fetchone()[0] == 0:  # type: ignore[index]
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.02)
            blocker.execute("BEGIN IMMEDIATE")  # the store's writes wait from now on
            while "t3" in tables_pg(pg_database):  # the down commits
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.02)
            proc.kill()
            proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
        blocker.close()
    assert env.tables() == {"t1", "t2"} and "m/003_c/up.sql" not in env.ledger()
    assert env.history()["m/003_c/up.sql"][0] == "rolled_back"  # agrees with the schema
    redeploy = env.run()  # the next deployment applies it again
    redeploy.assert_outcomes(passed=5, skipped=1)  # 001 and 002: one item
    assert env.tables() == {"t1", "t2", "t3"}
    assert env.history()["m/003_c/up.sql"][0] == "success"


def test_the_summary_says_the_run_was_a_rollback(pytester: pytest.Pytester) -> None:
    three_migrations(pytester)
    args = ["--deploy-target=t", "--deploy-env=DATABASE_URL=sqlite:///app.db"]
    first = pytester.runpytest(*args)
    assert "(rollback)" not in first.stdout.str()
    result = pytester.runpytest(*args, "--deploy-rollback=1")
    result.stdout.fnmatch_lines(["p → t: SUCCESS (rollback) — *"])


@pytest.mark.parametrize("down", ["", "-- nothing to undo\n\n/* kept on purpose */\n"])
def test_an_empty_down_undoes_nothing_and_says_so(env: Env, down: str) -> None:
    """Issue 21 #3: one rule for every layout and driver. An empty down (no bytes, or only
    comments and white space; golang-migrate and pop ship such files on purpose) is a down
    that undoes nothing: the rollback runs through it, and its report and the warnings say
    "nothing undone: the down of FILE is empty"."""
    three_migrations(env.pytester, third_down=down)
    env.run().assert_outcomes(passed=7)
    result = env.run("--deploy-rollback=1", "-rA", "--deploy-report=r.json")
    result.assert_outcomes(passed=6)
    text = result.stdout.str()
    assert "nothing undone: the down of m/003_c/up.sql (m/003_c/down.sql) is empty" in text
    report = (env.pytester.path / "r.json").read_text()
    assert "nothing undone" in report
    assert "t3" in env.tables()  # it undid nothing, as written
    assert env.history()["m/003_c/up.sql"][0] == "rolled_back"
