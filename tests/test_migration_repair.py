"""``migration accept-checksum`` and ``migration baseline`` (issue 13 §2): Flyway's repair for
one file and its baseline, through real pytest runs, the real CLI and real databases.

Bad input exits 2 with one paragraph and leaves the store byte-for-byte unchanged.
"""

from __future__ import annotations

import io
import json
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from deploy_plugin.cli import main
from deploy_plugin.plan import file_checksum
from deploy_plugin.store import open_store

SHOP = """\
project: shop
targets:
  local:
    env:
      DATABASE_URL: "sqlite:///shop.sqlite3"
  guarded:
    protected: true
    env:
      DATABASE_URL: "sqlite:///guarded.sqlite3"
groups:
  - name: migrations
    order: 1
    file_patterns: ["migrations/*.sql"]
"""
FILES = {
    "001_items.sql": "CREATE TABLE items (name TEXT);\n",
    "002_seed.sql": "INSERT INTO items (name) VALUES ('first');\n",
    "003_index.sql": "CREATE INDEX items_name ON items (name);\n",
}
ITEMS = "migrations/001_items.sql"

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def shop(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shop project as pytester's folder (also the CLI's rootdir and current folder)."""
    pytester.makeini("[pytest]\n")
    (pytester.path / "migrations").mkdir()
    (pytester.path / "deploy.yaml").write_text(SHOP)
    for name, sql in FILES.items():
        (pytester.path / "migrations" / name).write_text(sql)
    monkeypatch.delenv("DEPLOY_STORE_URL", raising=False)
    return pytester.path


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """``cli("migration", "baseline", ...)`` → (exit code, stdout, stderr), in-process."""

    def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        capsys.readouterr()
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin or ""))
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def store_bytes(root: Path) -> bytes | None:
    path = root / ".deploy" / "state.sqlite3"
    return path.read_bytes() if path.exists() else None


def deploy(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--deploy-target=local", "-p", "no:cacheprovider", *args)


def edit(root: Path, rel: str = ITEMS) -> str:
    path = root / rel
    path.write_text(path.read_text() + "-- a comment added after it was applied\n")
    return file_checksum(path)


def test_drift_failure_names_the_accept_checksum_command(
    pytester: pytest.Pytester, shop: Path
) -> None:
    deploy(pytester).assert_outcomes(passed=7)
    edit(shop)
    result = deploy(pytester)
    assert result.ret == 1
    text = result.stdout.str()
    assert (
        "pytest-deploy migration accept-checksum shop migrations/001_items.sql --target local"
        " --reason TEXT" in text
    ), text
    assert "once that command exists" not in text


def accept(cli: Run, *extra: str, file: str = ITEMS, target: str = "local") -> tuple[int, str, str]:
    return cli("migration", "accept-checksum", "shop", file, "--target", target, *extra)


def ledger_rows(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT file, checksum FROM pytest_deploy_applied"))


def lose_history_row(project: Path, file: str) -> None:
    """Delete ``file``'s row from the project's store (a run died before writing it)."""
    conn = sqlite3.connect(project / ".deploy" / "state.sqlite3")
    try:
        with conn:
            deleted = conn.execute("DELETE FROM migration_history WHERE migration_file = ?", [file])
        assert deleted.rowcount == 1
    finally:
        conn.close()


def test_accept_checksum_records_history_ledger_and_audit(
    pytester: pytest.Pytester, shop: Path, cli: Run
) -> None:
    deploy(pytester).assert_outcomes(passed=7)
    old = file_checksum(shop / ITEMS)
    new = edit(shop)
    code, out, err = accept(cli, "--reason", "a comment only; the schema is the same")
    assert code == 0, err
    assert f"checksum {old[:12]} → {new[:12]}" in out and "ledger row was updated" in out
    store = open_store(None, shop)
    assert store is not None
    assert store.applied_migrations("shop", "local")[ITEMS].checksum == new
    (audit,) = store.migration_audit("shop", "local")
    assert (audit.file, audit.action, audit.old_checksum, audit.new_checksum) == (
        ITEMS, "accept-checksum", old, new,
    )  # fmt: skip
    assert audit.reason == "a comment only; the schema is the same" and "@" in audit.who
    store.close()
    # the target database's ledger agrees with the history
    assert ledger_rows(shop / "shop.sqlite3")[ITEMS] == new
    # shown by `migration show` and `migration history`, for people and machines
    code, out, _ = cli("migration", "show", "shop", ITEMS, "-t", "local")
    assert code == 0 and "accept-checksum at" in out and f"({old[:12]} → {new[:12]})" in out
    assert "a comment only; the schema is the same" in out
    code, out, _ = cli("migration", "show", "shop", ITEMS, "-t", "local", "--json")
    assert json.loads(out)["audit"][0]["old_checksum"] == old
    code, out, _ = cli("migration", "history", "shop", "-t", "local")
    assert code == 0 and "Changed by hand" in out and "accept-checksum" in out
    code, out, _ = cli("migration", "history", "shop", "-t", "local", "--json")
    by_file = {row["file"]: row["audit"] for row in json.loads(out)}
    assert [a["new_checksum"] for a in by_file[ITEMS]] == [new]
    assert by_file["migrations/002_seed.sql"] == []
    # the next deployment passes, running nothing again
    result = deploy(pytester)
    result.assert_outcomes(passed=4, skipped=1)  # the applied files: one item
    assert store_status(cli) == (3, 0, 0)


def store_status(cli: Run) -> tuple[int, int, int]:
    code, out, _ = cli("migration", "status", "shop", "-t", "local", "--json")
    data = json.loads(out)
    return data["applied"], data["pending"], data["drifted"]


def test_an_accepted_checksum_survives_recovery_from_the_ledger(
    pytester: pytest.Pytester, shop: Path, cli: Run
) -> None:
    """The ledger's checksum is what a history row recovered from it carries: had the
    command left the old one there, a lost history row would bring the drift back."""
    deploy(pytester).assert_outcomes(passed=7)
    new = edit(shop)
    assert accept(cli, "--reason", "comment")[0] == 0
    lose_history_row(shop, ITEMS)
    result = deploy(pytester)
    result.assert_outcomes(passed=4, skipped=2)  # recovered from the ledger, not run again
    assert "records it applied" in result.stdout.str()
    store = open_store(None, shop)
    assert store is not None
    assert store.applied_migrations("shop", "local")[ITEMS].checksum == new
    store.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--target", "local"), "needs --reason TEXT"),
        (("--target", "local", "--reason", "   "), "needs --reason TEXT"),
        (("--target", "nowhere", "--reason", "r"), "Unknown target 'nowhere'"),
        (("--reason", "r"), "pass --target NAME"),
    ],
)
def test_accept_checksum_bad_input_changes_nothing(
    pytester: pytest.Pytester, shop: Path, cli: Run, args: tuple[str, ...], message: str
) -> None:
    deploy(pytester).assert_outcomes(passed=7)
    edit(shop)
    before, ledger = store_bytes(shop), ledger_rows(shop / "shop.sqlite3")
    code, _, err = cli("migration", "accept-checksum", "shop", ITEMS, *args)
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert store_bytes(shop) == before and ledger_rows(shop / "shop.sqlite3") == ledger


@pytest.mark.parametrize(
    ("file", "message"),
    [
        ("migrations/002_seed.sql", "there is no edit to accept"),  # applied, unchanged
        ("migrations/404.sql", "No such migration file"),
        ("deploy.yaml", "not a tracked migration"),
    ],
)
def test_accept_checksum_refuses_a_file_not_drifted(
    pytester: pytest.Pytester, shop: Path, cli: Run, file: str, message: str
) -> None:
    deploy(pytester).assert_outcomes(passed=7)
    edit(shop)
    before = store_bytes(shop)
    code, _, err = accept(cli, "--reason", "r", file=file)
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert store_bytes(shop) == before


def test_accept_checksum_refuses_a_file_not_applied(
    pytester: pytest.Pytester, shop: Path, cli: Run
) -> None:
    deploy(pytester).assert_outcomes(passed=7)
    before = store_bytes(shop)
    code, _, err = accept(cli, "--reason", "r", "--yes", target="guarded")
    assert code == 2 and "is pending on shop → guarded, not applied" in err, err
    assert "migration mark-applied shop migrations/001_items.sql" in err
    assert store_bytes(shop) == before


def test_accept_checksum_needs_the_database_url_of_a_ledger_group(
    pytester: pytest.Pytester, shop: Path, cli: Run
) -> None:
    assert cli("target", "add", "shop", "bare")[0] == 0  # a stored target without env
    store = open_store(None, shop)
    assert store is not None
    from deploy_plugin.store.base import MigrationRecord, utcnow

    store.record_migration("shop", "bare", MigrationRecord(ITEMS, "0" * 64, utcnow(), "x"))
    store.close()
    before = store_bytes(shop)
    code, _, err = accept(cli, "--reason", "r", target="bare")
    assert code == 2 and "$DATABASE_URL is not set for target 'bare'" in err, err
    assert "pytest-deploy env set shop DATABASE_URL - --target bare" in err
    assert store_bytes(shop) == before


def test_accept_checksum_takes_the_lock_and_asks_for_a_protected_target(
    pytester: pytest.Pytester, shop: Path, cli: Run
) -> None:
    pytester.runpytest("--deploy-target=guarded", "--yes").assert_outcomes(passed=8)
    new = edit(shop)
    store = open_store(None, shop)
    assert store is not None
    lock = store.acquire_lock("shop", "guarded", holder="someone-deploying")
    code, _, err = accept(cli, "--reason", "r", "--yes", target="guarded")
    assert code == 1 and "someone-deploying" in err, err
    lock.release()
    assert store.migration_audit("shop", "guarded") == []
    code, _, err = accept(cli, "--reason", "r", target="guarded")
    assert code == 2 and "pass --yes" in err, err
    assert store.migration_audit("shop", "guarded") == []
    assert ledger_rows(shop / "guarded.sqlite3")[ITEMS] != new
    code, _, err = accept(cli, "--reason", "r", "--yes", target="guarded")
    assert code == 0, err
    assert store.applied_migrations("shop", "guarded")[ITEMS].checksum == new
    assert ledger_rows(shop / "guarded.sqlite3")[ITEMS] == new
    store.close()


def test_accept_checksum_on_postgresql_target_and_store(
    pytester: pytest.Pytester, shop: Path, cli: Run, pg_database: str
) -> None:
    """Store and target in one PostgreSQL database: the ledger (pytest_deploy.applied) and
    the history (deploy.migration_history) both get the new checksum."""
    (shop / "deploy.yaml").write_text(SHOP.replace("sqlite:///shop.sqlite3", pg_database))
    store_opt = f"--deploy-store={pg_database}"
    deploy(pytester, store_opt).assert_outcomes(passed=7)
    new = edit(shop)
    assert deploy(pytester, store_opt).ret == 1  # drift
    code, out, err = accept(cli, "--reason", "comment", "--deploy-store", pg_database)
    assert code == 0 and "ledger row was updated" in out, err
    with psycopg.connect(pg_database) as conn:
        ledger = conn.execute(
            "SELECT checksum FROM pytest_deploy.applied WHERE file = %s", (ITEMS,)
        ).fetchone()
        history = conn.execute(
            "SELECT migration_checksum FROM deploy.migration_history WHERE migration_file = %s",
            (ITEMS,),
        ).fetchone()
        audit = conn.execute("SELECT action, new_checksum FROM deploy.migration_audit").fetchall()
    assert ledger == (new,) and history == (new,) and audit == [("accept-checksum", new)]
    deploy(pytester, store_opt).assert_outcomes(passed=4, skipped=1)


# -- baseline -----------------------------------------------------------------------------


def baseline(cli: Run, *extra: str, target: str = "local") -> tuple[int, str, str]:
    return cli("migration", "baseline", "shop", "--target", target, *extra)


def test_baseline_adopts_an_existing_database(
    pytester: pytest.Pytester, shop: Path, cli: Run
) -> None:
    # a database that already has the schema of 001 and 002, made without pytest-deploy
    with sqlite3.connect(shop / "shop.sqlite3") as conn:
        conn.executescript(FILES["001_items.sql"] + FILES["002_seed.sql"])
    code, out, err = baseline(cli, "--to", "migrations/002_seed.sql", "--reason", "adopted")
    assert code == 0, err
    assert "2 file(s) up to migrations/002_seed.sql recorded as applied (not run)" in out
    store = open_store(None, shop)
    assert store is not None
    applied = store.applied_migrations("shop", "local")
    assert sorted(applied) == [ITEMS, "migrations/002_seed.sql"]
    assert applied[ITEMS].checksum == file_checksum(shop / ITEMS)
    audit = store.migration_audit("shop", "local")
    assert sorted((a.file, a.action, a.old_checksum, a.reason) for a in audit) == [
        (ITEMS, "baseline", None, "adopted"),
        ("migrations/002_seed.sql", "baseline", None, "adopted"),
    ]
    store.close()
    # the next deployment runs only 003 (001 again would fail: the table exists)
    deploy(pytester).assert_outcomes(passed=5, skipped=1)
    with sqlite3.connect(shop / "shop.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (1,)
    code, out, _ = cli("migration", "history", "shop", "-t", "local")
    assert out.count("baseline") == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "needs --to FILE"),
        (("--to", "deploy.yaml"), "not a tracked migration"),
        (("--to", "migrations/404.sql"), "No such migration file"),
    ],
)
def test_baseline_bad_input_changes_nothing(
    shop: Path, cli: Run, args: tuple[str, ...], message: str
) -> None:
    assert cli("env", "set", "shop", "TOKEN", "value", "-t", "local")[0] == 0  # a store
    before = store_bytes(shop)
    code, _, err = baseline(cli, *args)
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert store_bytes(shop) == before
    code, _, err = cli("migration", "baseline", "shop", "--to", ITEMS, "-t", "nowhere")
    assert code == 2 and "Unknown target 'nowhere'" in err
    assert store_bytes(shop) == before


def test_baseline_refuses_files_that_have_a_row(shop: Path, cli: Run) -> None:
    seed = "migrations/002_seed.sql"
    assert cli("migration", "mark-applied", "shop", seed, "-t", "local")[0] == 0
    before = store_bytes(shop)
    code, _, err = baseline(cli, "--to", "migrations/003_index.sql")
    assert code == 2 and "1 of the 3 file(s) already have a history row" in err, err
    assert seed in err and ITEMS not in err.split("history row:")[1]
    assert store_bytes(shop) == before


def test_baseline_asks_for_a_protected_target(shop: Path, cli: Run) -> None:
    code, _, err = baseline(cli, "--to", ITEMS, target="guarded")
    assert code == 2 and "pass --yes" in err
    assert baseline(cli, "--to", ITEMS, "--yes", target="guarded")[0] == 0
    store = open_store(None, shop)
    assert store is not None
    assert list(store.applied_migrations("shop", "guarded")) == [ITEMS]
    assert len(store.migration_audit("shop", "guarded")) == 1  # the refused try left none
    store.close()


def test_baseline_follows_the_run_order_of_groups(pytester: pytest.Pytester, cli: Run) -> None:
    """Groups run by `order`, not by where they are written; baseline takes that order."""
    pytester.makeini("[pytest]\n")
    for folder in ("a", "b"):
        (pytester.path / folder).mkdir()
        for n in ("001", "002"):
            (pytester.path / folder / f"{n}.sql").write_text(f"SELECT {n};\n")
    (pytester.path / "deploy.yaml").write_text(
        "project: shop\ntargets: {local: {}}\ngroups:\n"
        "  - {name: later, order: 2, file_patterns: ['b/*.sql']}\n"
        "  - {name: first, order: 1, file_patterns: ['a/*.sql']}\n"
    )
    code, out, err = baseline(cli, "--to", "a/002.sql", "--json")
    assert code == 0, err
    assert json.loads(out)["files"] == ["a/001.sql", "a/002.sql"]
    code, out, err = baseline(cli, "--to", "b/001.sql")
    assert code == 2 and "a/001.sql" in err  # already baselined: named, nothing changed


def test_accept_checksum_never_creates_a_missing_sqlite_database(
    shop: Path, cli: Run
) -> None:
    store = open_store(None, shop, create=True)
    assert store is not None
    from deploy_plugin.store.base import MigrationRecord, utcnow

    store.record_migration("shop", "local", MigrationRecord(ITEMS, "0" * 64, utcnow(), "x"))
    store.close()
    code, out, err = accept(cli, "--reason", "the database was rebuilt by hand")
    assert code == 0, err
    assert "does not exist (so it has no ledger)" in out
    assert not (shop / "shop.sqlite3").exists()
    code, _, err = cli("migration", "status", "shop", "-t", "local")
    assert code == 0 and "drifted" not in err


def test_migration_status_names_accept_checksum_for_drift(
    pytester: pytest.Pytester, shop: Path, cli: Run
) -> None:
    deploy(pytester).assert_outcomes(passed=7)
    edit(shop)
    code, _, err = cli("migration", "status", "shop", "-t", "local")
    assert code == 1
    assert "pytest-deploy migration accept-checksum shop FILE --target local --reason TEXT" in err


def test_baseline_waits_for_no_running_deployment(shop: Path, cli: Run) -> None:
    store = open_store(None, shop, create=True)
    assert store is not None
    lock = store.acquire_lock("shop", "local", holder="someone-deploying")
    code, _, err = baseline(cli, "--to", ITEMS)
    assert code == 1 and "someone-deploying" in err, err
    assert store.applied_migrations("shop", "local") == {}
    assert store.migration_audit("shop", "local") == []
    lock.release()
    store.close()


def test_mark_applied_writes_the_ledger_and_an_audit_row(
    pytester: pytest.Pytester, shop: Path, cli: Run
) -> None:
    """Issue 20: the database decides, so mark-applied records the file in the target
    database's ledger as well as in the history, with who, when and why (issue 21 §10)."""
    with sqlite3.connect(shop / "shop.sqlite3") as conn:
        conn.executescript(FILES["001_items.sql"])
    code, out, err = cli(
        "migration", "mark-applied", "shop", ITEMS, "-t", "local", "--reason", "restored dump"
    )
    assert code == 0, err
    assert "in the target database's ledger" in out
    with sqlite3.connect(shop / "shop.sqlite3") as conn:
        rows = conn.execute("SELECT file, checksum FROM pytest_deploy_applied").fetchall()
    assert rows == [(ITEMS, file_checksum(shop / ITEMS))]
    store = open_store(None, shop)
    assert store is not None
    (audit,) = store.migration_audit("shop", "local")
    assert (audit.file, audit.action, audit.reason) == (ITEMS, "mark-applied", "restored dump")
    store.close()
    code, out, _ = cli("migration", "history", "shop", "-t", "local")
    assert "mark-applied" in out and "restored dump" in out
    deploy(pytester).assert_outcomes(passed=6, skipped=1)  # 001 not run again


def test_a_lost_ledger_stops_the_run_until_mark_applied(
    pytester: pytest.Pytester, shop: Path, cli: Run
) -> None:
    """The store records three files applied; the database keeps their tables but lost its
    ledger table: the run stops naming them; mark-applied records them in the ledger."""
    deploy(pytester).assert_outcomes(passed=7)
    with sqlite3.connect(shop / "shop.sqlite3") as conn:
        conn.execute("DROP TABLE pytest_deploy_applied")
    stopped = deploy(pytester)
    stopped.assert_outcomes(passed=3, failed=1, skipped=1)
    out = stopped.stdout.str()
    assert "lacks 3 migration(s)" in out and "--deploy-reapply-missing" in out
    for name in FILES:
        code, _, err = cli("migration", "mark-applied", "shop", f"migrations/{name}", "-t",
                           "local", "--reason", "ledger lost")  # fmt: skip
        assert code == 0, err
    deploy(pytester).assert_outcomes(passed=4, skipped=1)
    with sqlite3.connect(shop / "shop.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (1,)  # 002 ran once


def test_mark_applied_that_cannot_write_the_ledger_says_so(
    pytester: pytest.Pytester, cli: Run
) -> None:
    """The history has the file, the target's ledger lost it, and this CLI has no database
    URL (a CI secret handed to pytest only): mark-applied cannot do the repair the
    preflight asked for, so it says so (exit 2, nothing changed) instead of "already
    applied; nothing changed" with exit 0."""
    pytester.makeini("[pytest]\n")
    (pytester.path / "migrations").mkdir()
    (pytester.path / "migrations" / "001_items.sql").write_text(FILES["001_items.sql"])
    (pytester.path / "deploy.yaml").write_text(
        "project: shop\ntargets: {local: {}}\ngroups:\n"
        "  - {name: migrations, order: 1, file_patterns: ['migrations/*.sql']}\n"
    )
    deploy(pytester, "--deploy-env=DATABASE_URL=sqlite:///shop.sqlite3").assert_outcomes(passed=5)
    with sqlite3.connect(pytester.path / "shop.sqlite3") as conn:
        conn.execute("DROP TABLE pytest_deploy_applied")
    before = store_bytes(pytester.path)
    code, _, err = cli("migration", "mark-applied", "shop", ITEMS, "-t", "local")
    assert code == 2, err
    assert "cannot write" in err and "DATABASE_URL" in err and "Nothing changed" in err
    assert store_bytes(pytester.path) == before
