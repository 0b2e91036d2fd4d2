"""The built-in migration executor against real PostgreSQL and SQLite databases."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest

from deploy_plugin.migrate.executor import (
    ELAPSED_MS,
    Bookkeeping,
    ConnectError,
    MigrationError,
    SqlExecutor,
    no_transaction,
)
from deploy_plugin.plan import file_checksum as checksum
from deploy_plugin.secrets import redact_url


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def wait_for(what: str, probe: Callable[[], object], timeout: float = 20.0) -> object:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)
    return value


def exists(db: psycopg.Connection, table: str) -> bool:
    return db.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is not None


# -- PostgreSQL --------------------------------------------------------------------------


def test_pg_applies_a_migration_as_one_string(pg, db, tmp_path):
    path = write(
        tmp_path,
        "001_init.sql",
        "CREATE TABLE pets (name text, note text);\n"
        "INSERT INTO pets VALUES ('Rex', '100% good; très bon');\n",
    )
    elapsed = pg.apply(path, "migrations/001_init.sql")
    assert isinstance(elapsed, int) and elapsed >= 0
    assert pg.kind == "postgresql" and isinstance(pg.connection, psycopg.Connection)
    assert db.execute("SELECT name, note FROM pets").fetchall() == [("Rex", "100% good; très bon")]
    settings = "SELECT current_setting('application_name'), current_setting(%s)"
    assert pg.connection.execute(settings, ("client_connection_check_interval",)).fetchone() == (
        "pytest-deploy",
        "1s",
    )


ERROR_ON_LINE_9 = """\
-- a header comment

CREATE TABLE first_t (id int PRIMARY KEY);
INSERT INTO first_t VALUES (1);

/* the next statement fails:
   it comes third */

INSERT INTO first_t
  VALUES (2);
{third}
"""


def test_pg_error_in_third_statement_rolls_back_and_names_the_line(pg, db, tmp_path):
    text = ERROR_ON_LINE_9.replace(
        "INSERT INTO first_t\n  VALUES (2);", "INSERT INTO no_such_table\n  VALUES (2);"
    ).replace("{third}", "")
    path = write(tmp_path, "002_bad.sql", text)
    with pytest.raises(MigrationError) as info:
        pg.apply(path, "migrations/002_bad.sql")
    err = info.value
    assert (err.file, err.line, err.sqlstate) == ("migrations/002_bad.sql", 9, "42P01")
    assert str(err) == (
        'migrations/002_bad.sql, line 9: relation "no_such_table" does not exist (SQLSTATE 42P01)'
    )
    assert not exists(db, "first_t")  # the first two statements were rolled back
    # the connection stays usable for the next file
    pg.apply(write(tmp_path, "003.sql", "CREATE TABLE after_t (x int);"), "003.sql")
    assert exists(db, "after_t")


def test_pg_error_without_position_is_placed_on_the_failing_statement(pg, db, tmp_path):
    # A unique violation has no statement position: the line comes from counting statements.
    text = ERROR_ON_LINE_9.replace("(2)", "(1)").replace(
        "{third}", "INSERT INTO first_t VALUES (3);"
    )
    path = write(tmp_path, "002_dup.sql", text)
    with pytest.raises(MigrationError) as info:
        pg.apply(path, "002_dup.sql")
    assert (info.value.line, info.value.sqlstate) == (9, "23505")
    assert 'duplicate key value violates unique constraint "first_t_pkey"' in str(info.value)
    assert "DETAIL: Key (id)=(1) already exists." in str(info.value)
    assert not exists(db, "first_t")


def test_pg_syntax_error_anywhere_applies_nothing(pg, db, tmp_path):
    path = write(tmp_path, "s.sql", "CREATE TABLE syn_t (x int);\nSELECT 1;\nSELEC oops;\n")
    with pytest.raises(MigrationError) as info:
        pg.apply(path, "s.sql")
    assert (info.value.line, info.value.sqlstate) == (3, "42601")
    assert 'syntax error at or near "SELEC"' in info.value.message
    assert not exists(db, "syn_t")


def test_pg_books_commit_with_the_migration(pg, db, tmp_path):
    db.execute("CREATE TABLE history (file text, ms int)")
    books = Bookkeeping(records=[("INSERT INTO history VALUES ({}, {})", ("001.sql", ELAPSED_MS))])
    elapsed = pg.apply(
        write(tmp_path, "001.sql", "CREATE TABLE hist_t (x int);"), "001.sql", books=books
    )
    assert exists(db, "hist_t")
    ((file, ms),) = db.execute("SELECT file, ms FROM history").fetchall()
    assert file == "001.sql" and 0 <= ms <= elapsed + 1  # the server's own time for the file


def test_pg_books_values_reach_the_server_exactly(pg, db, tmp_path):
    # bookkeeping values are quoted by psycopg (a file name or user is not SQL); the
    # template is read as psycopg's sql.SQL.format reads it ({{ }} are braces)
    db.execute("CREATE TABLE odd (a text, b text, c text, d int, e timestamptz, f text)")
    when = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    values = ("it's; DROP TABLE odd; --", "back\\slash ünï {}", None, 7, when)
    books = Bookkeeping(records=[("INSERT INTO odd VALUES ({}, {}, {}, {}, {}, '{{x}}')", values)])
    pg.apply(write(tmp_path, "001.sql", "SELECT 1;"), "001.sql", books=books)
    assert db.execute("SELECT * FROM odd").fetchall() == [(*values, "{x}")]


def test_pg_books_failing_rolls_back_both(pg, db, tmp_path):
    db.execute("CREATE TABLE history (file text)")
    books = Bookkeeping(
        records=[
            ("INSERT INTO history VALUES ({})", ("001.sql",)),
            ("INSERT INTO no_such_history VALUES ({})", ("001.sql",)),
        ]
    )
    with pytest.raises(MigrationError) as info:
        pg.apply(write(tmp_path, "001.sql", "CREATE TABLE hist_t (x int);"), "001.sql", books=books)
    assert "recording the migration" in str(info.value)
    assert not exists(db, "hist_t")
    assert db.execute("SELECT count(*) FROM history").fetchone() == (0,)


def test_pg_guard_refusing_runs_nothing_of_the_file(pg, db, tmp_path):
    from deploy_plugin.migrate.executor import AlreadyApplied

    db.execute("CREATE TABLE ledger (file text PRIMARY KEY)")
    db.execute("INSERT INTO ledger VALUES ('001.sql')")
    books = Bookkeeping(guard=("INSERT INTO ledger VALUES ({})", ("001.sql",)))
    with pytest.raises(AlreadyApplied):
        pg.apply(
            write(tmp_path, "001.sql", "CREATE TABLE twice_t (x int);"), "001.sql", books=books
        )
    assert not exists(db, "twice_t")


FUNCTIONS = """\
CREATE TABLE fn_t (x int);
CREATE FUNCTION add_one(i int) RETURNS int LANGUAGE plpgsql AS $body$
BEGIN
  INSERT INTO fn_t VALUES (i);  -- a semicolon inside the body
  RETURN i + 1;
END;
$body$;
CREATE FUNCTION fail() RETURNS void LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'boom; from fail'; END $$;
SELECT add_one(41);
"""


def test_pg_dollar_quoted_bodies_in_one_string(pg, db, tmp_path):
    pg.apply(write(tmp_path, "fn.sql", FUNCTIONS), "fn.sql")
    assert db.execute("SELECT add_one(1)").fetchone() == (2,)
    assert db.execute("SELECT x FROM fn_t ORDER BY x").fetchall() == [(1,), (41,)]
    # A RAISE has no position: the line is the one of the SELECT calling it (line 3).
    bad = write(tmp_path, "bad.sql", "CREATE TABLE fn_u (x int);\n\nSELECT 1; SELECT fail();\n")
    with pytest.raises(MigrationError) as info:
        pg.apply(bad, "bad.sql")
    assert (info.value.line, info.value.sqlstate) == (3, "P0001")
    assert "boom; from fail" in info.value.message


def test_pg_no_transaction_file_runs_statement_by_statement(pg, db, tmp_path):
    text = (
        "-- an index built without locking writes\n\n-- deploy:no-transaction\n"
        + FUNCTIONS
        + "CREATE INDEX CONCURRENTLY fn_t_x ON fn_t (x);\n"
    )
    assert no_transaction(text)
    db.execute("CREATE TABLE history (file text)")
    pg.apply(
        write(tmp_path, "idx.sql", text),
        "idx.sql",
        books=Bookkeeping(records=[("INSERT INTO history VALUES ('idx.sql')", ())]),
    )
    assert exists(db, "fn_t_x") and db.execute("SELECT add_one(1)").fetchone() == (2,)
    assert db.execute("SELECT file FROM history").fetchall() == [("idx.sql",)]


def test_pg_no_transaction_failure_keeps_earlier_statements(pg, db, tmp_path):
    # the error position points into the statement's second line
    text = "-- deploy:no-transaction\nCREATE TABLE kept_t (x int);\n\nSELECT x\n  FROM nope;\n"
    with pytest.raises(MigrationError) as info:
        pg.apply(write(tmp_path, "nt.sql", text), "nt.sql")
    assert (info.value.line, info.value.sqlstate) == (5, "42P01")
    assert "statements before this one stay applied" in str(info.value)
    assert exists(db, "kept_t")


def test_pg_session_settings_do_not_leak_into_the_next_file(pg, db, tmp_path):
    # pg_dump output empties search_path for the session; the next file must not inherit it.
    pg.apply(
        write(tmp_path, "1.sql", "SELECT pg_catalog.set_config('search_path', '', false);\n"),
        "1.sql",
    )
    pg.apply(write(tmp_path, "2.sql", "CREATE TABLE leak_t (x int);\n"), "2.sql")
    assert exists(db, "leak_t")  # created in the URL's schema


def test_pg_file_with_its_own_begin_commit_applies(pg, db, tmp_path):
    db.execute("CREATE TABLE history (file text)")
    text = "BEGIN;\nCREATE TABLE own_tx (x int);\nCOMMIT;\n"
    pg.apply(
        write(tmp_path, "own.sql", text),
        "own.sql",
        books=Bookkeeping(records=[("INSERT INTO history VALUES ('own.sql')", ())]),
    )
    assert exists(db, "own_tx")
    assert db.execute("SELECT file FROM history").fetchall() == [("own.sql",)]


def test_pg_deferred_constraint_fails_at_commit(pg, db, tmp_path):
    text = (
        "CREATE TABLE parent (id int PRIMARY KEY);\n"
        "CREATE TABLE child (pid int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);\n"
        "INSERT INTO child VALUES (7);\n"
    )
    with pytest.raises(MigrationError) as info:
        pg.apply(write(tmp_path, "d.sql", text), "d.sql")
    assert (info.value.line, info.value.sqlstate) == (None, "23503")
    assert str(info.value).startswith("d.sql: at COMMIT: insert or update on table")
    assert not exists(db, "parent")


def test_pg_copy_from_stdin_is_refused_and_the_executor_recovers(pg, db, tmp_path):
    text = "CREATE TABLE copy_t (x int);\nCOPY copy_t FROM STDIN;\n"
    with pytest.raises(MigrationError) as info:
        pg.apply(write(tmp_path, "c.sql", text), "c.sql")
    assert info.value.line == 2 and "psql" in info.value.message
    pg.apply(write(tmp_path, "ok.sql", "CREATE TABLE copy_ok (x int);"), "ok.sql")
    assert exists(db, "copy_ok") and not exists(db, "copy_t")


def test_pg_connect_failure_names_the_url_without_password():
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://deployer:s3cret-pw@127.0.0.1:{port}/app"
    with pytest.raises(ConnectError) as info:
        SqlExecutor(url, source="DATABASE_URL")
    message = str(info.value)
    assert "s3cret-pw" not in message and "\n" not in message
    assert message.startswith(
        f"cannot connect to postgresql://deployer:***@127.0.0.1:{port}/app (from DATABASE_URL): "
    )
    assert "Connection refused" in message


def test_pg_kill_9_mid_migration_rolls_back(pg_url, db, tmp_path):
    path = write(tmp_path, "slow.sql", "CREATE TABLE killed_t (x int);\nSELECT pg_sleep(30);\n")
    code = (
        "import sys; from pathlib import Path; "
        "from deploy_plugin.migrate.executor import SqlExecutor; "
        "SqlExecutor(sys.argv[1]).apply(Path(sys.argv[2]), 'slow.sql')"
    )
    runner = subprocess.Popen([sys.executable, "-c", code, pg_url, str(path)])
    try:
        sleeping = (
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'pytest-deploy' AND wait_event = 'PgSleep'"
        )

        def backend() -> object:
            assert runner.poll() is None, "the runner exited before pg_sleep started"
            return db.execute(sleeping).fetchone()

        (pid,) = wait_for("pg_sleep to run", backend)
        runner.kill()
        runner.wait()
        # client_connection_check_interval makes the backend notice its client is gone
        # long before pg_sleep(30) would end.
        gone = "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = %s)"
        wait_for("the backend to end", lambda: db.execute(gone, (pid,)).fetchone()[0])
        assert not exists(db, "killed_t")
        db.execute("CREATE TABLE killed_t (x int)")  # and no lock is left behind
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()


# -- SQLite ------------------------------------------------------------------------------


@pytest.fixture
def lite(tmp_path) -> Iterator[SqlExecutor]:
    with SqlExecutor("sqlite:///db.sqlite3", base=tmp_path) as executor:
        yield executor


def lite_tables(tmp_path: Path) -> set[str]:
    with sqlite3.connect(tmp_path / "db.sqlite3") as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


TRIGGERS = """\
-- triggers have semicolons inside BEGIN ... END
CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);
CREATE TABLE audit (item_id INTEGER, note TEXT);
CREATE TRIGGER items_ai AFTER INSERT ON items
BEGIN
  INSERT INTO audit VALUES (new.id, 'added; really');
  INSERT INTO audit VALUES (new.id, 'second');
END;
INSERT INTO items (name) VALUES ('a;b'); INSERT INTO items (name) VALUES ('c')
"""


def test_sqlite_splits_triggers_and_applies(lite, tmp_path):
    assert lite.kind == "sqlite" and isinstance(lite.connection, sqlite3.Connection)
    assert lite.apply(write(tmp_path, "t.sql", TRIGGERS), "t.sql") >= 0
    with sqlite3.connect(tmp_path / "db.sqlite3") as conn:
        assert conn.execute("SELECT name FROM items ORDER BY id").fetchall() == [("a;b",), ("c",)]
        assert conn.execute("SELECT count(*) FROM audit").fetchone() == (4,)


def test_sqlite_error_in_third_statement_rolls_back(lite, tmp_path):
    text = ERROR_ON_LINE_9.replace(
        "INSERT INTO first_t\n  VALUES (2);", "INSERT INTO no_such_table\n  VALUES (2);"
    ).replace("{third}", "")
    with pytest.raises(MigrationError) as info:
        lite.apply(write(tmp_path, "bad.sql", text), "bad.sql")
    assert info.value.line == 9 and info.value.sqlstate is None
    assert str(info.value).startswith("bad.sql, line 9: no such table: no_such_table")
    assert "first_t" not in lite_tables(tmp_path)


def test_sqlite_books_commit_or_roll_back_with_the_migration(lite, tmp_path):
    lite.connection.execute("CREATE TABLE history (file TEXT, ms INTEGER)")
    record = ("INSERT INTO history VALUES ({}, {})", ("1.sql", ELAPSED_MS))
    lite.apply(
        write(tmp_path, "1.sql", "CREATE TABLE one (x);"),
        "1.sql",
        books=Bookkeeping(records=[record]),
    )
    broken = ("INSERT INTO history_gone VALUES ({})", ("2.sql",))
    with pytest.raises(MigrationError):
        lite.apply(
            write(tmp_path, "2.sql", "CREATE TABLE two (x);"),
            "2.sql",
            books=Bookkeeping(records=[record, broken]),
        )
    assert {"one", "history"} <= lite_tables(tmp_path) and "two" not in lite_tables(tmp_path)
    with sqlite3.connect(tmp_path / "db.sqlite3") as conn:
        assert conn.execute("SELECT file FROM history").fetchall() == [("1.sql",)]


def test_sqlite_no_transaction_allows_vacuum(lite, tmp_path):
    text = "-- deploy:no-transaction\nCREATE TABLE v (x);\nVACUUM;\n"
    lite.apply(write(tmp_path, "v.sql", text), "v.sql")
    assert "v" in lite_tables(tmp_path)


def test_sqlite_urls(tmp_path):
    with SqlExecutor(f"sqlite:///{tmp_path}/abs.db") as executor:  # sqlite:////abs/path
        executor.apply(write(tmp_path, "a.sql", "CREATE TABLE a (x);"), "a.sql")
    assert (tmp_path / "abs.db").is_file()
    with pytest.raises(ConnectError, match="Check that the folder exists"):
        SqlExecutor("sqlite:///missing/dir/x.db", base=tmp_path)
    with pytest.raises(ConnectError, match="unsupported URL scheme 'mysql'"):
        SqlExecutor("mysql://root:pw@127.0.0.1/x")


# -- helpers -----------------------------------------------------------------------------


def test_checksum_ignores_crlf_only(tmp_path):
    lf = tmp_path / "lf.sql"
    crlf = tmp_path / "crlf.sql"
    lf.write_bytes(b"CREATE TABLE a (x int);\nSELECT 1;\n")
    crlf.write_bytes(b"CREATE TABLE a (x int);\r\nSELECT 1;\r\n")
    assert checksum(lf) == checksum(crlf)
    assert len(checksum(lf)) == 64
    crlf.write_bytes(b"CREATE TABLE a (x int);\r\nSELECT 2;\r\n")
    assert checksum(lf) != checksum(crlf)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-- deploy:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (x);", True),
        ("\ufeff-- Create the index\n\n--   DEPLOY:no-transaction  \nSELECT 1;", True),
        ("SELECT 1;\n-- deploy:no-transaction\n", False),
        ("-- deploy:no-transactions\nSELECT 1;", False),
        ("", False),
    ],
)
def test_no_transaction_marker(text, expected):
    assert no_transaction(text) is expected


def test_redact_url():
    assert redact_url("postgresql://u:pw@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact_url("postgresql://h/db?password=pw&x=1") == "postgresql://h/db?password=***&x=1"
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"


# -- issue 9: NUL bytes, a file's own COMMIT/ROLLBACK, unreadable files -------------------


@pytest.mark.parametrize("kind", ["pg", "lite"])
def test_nul_byte_is_refused_with_its_line_and_nothing_applied(kind, request, tmp_path):
    executor = request.getfixturevalue(kind)
    text = "CREATE TABLE nul_a (x int);\nCREATE TABLE nul_b (x int);\0\nCREATE TABLE nul_c (y);\n"
    with pytest.raises(MigrationError) as info:
        executor.apply(write(tmp_path, "n.sql", text), "n.sql")
    assert info.value.line == 2 and "NUL byte" in str(info.value)
    tables = (
        {r[0] for r in executor.connection.execute("SELECT tablename FROM pg_tables")}
        if kind == "pg"
        else lite_tables(tmp_path)
    )
    assert not {"nul_a", "nul_b", "nul_c"} & tables


@pytest.mark.parametrize("kind", ["pg", "lite"])
@pytest.mark.parametrize("word", ["COMMIT", "ROLLBACK"])
def test_own_commit_or_rollback_mid_file_is_refused_before_anything_runs(
    kind, word, request, tmp_path
):
    executor = request.getfixturevalue(kind)
    name = f"own_{word.lower()}_{kind}"
    text = f"CREATE TABLE {name}_a (x int);\n{word};\nCREATE TABLE {name}_b (x int);\n"
    with pytest.raises(MigrationError) as info:
        executor.apply(write(tmp_path, "o.sql", text), "o.sql")
    assert info.value.line == 2 and f"own {word}" in str(info.value)
    assert "-- deploy:no-transaction" in str(info.value)
    tables = (
        {r[0] for r in executor.connection.execute("SELECT tablename FROM pg_tables")}
        if kind == "pg"
        else lite_tables(tmp_path)
    )
    assert not {f"{name}_a", f"{name}_b"} & tables


def test_rollback_to_savepoint_stays_allowed(pg, db, tmp_path):
    text = (
        "CREATE TABLE sp_t (x int);\nSAVEPOINT s;\nINSERT INTO sp_t VALUES (1);\n"
        "ROLLBACK TO SAVEPOINT s;\nINSERT INTO sp_t VALUES (2);\n"
    )
    pg.apply(write(tmp_path, "sp.sql", text), "sp.sql")
    assert db.execute("SELECT x FROM sp_t").fetchall() == [(2,)]


def test_sqlite_file_wrapped_in_begin_commit_applies_atomically(lite, tmp_path):
    lite.connection.execute("CREATE TABLE history (file TEXT)")
    text = "BEGIN;\nCREATE TABLE wrapped (x);\nCOMMIT;\n"
    lite.apply(
        write(tmp_path, "w.sql", text),
        "w.sql",
        books=Bookkeeping(records=[("INSERT INTO history VALUES ('w.sql')", ())]),
    )
    assert "wrapped" in lite_tables(tmp_path)
    bad = "BEGIN TRANSACTION;\nCREATE TABLE wrapped2 (x);\nSELECT nope FROM nowhere;\nEND;\n"
    with pytest.raises(MigrationError) as info:
        lite.apply(write(tmp_path, "w2.sql", bad), "w2.sql")
    assert info.value.line == 3 and "wrapped2" not in lite_tables(tmp_path)


def test_unreadable_file_is_a_migration_error(lite, tmp_path):
    with pytest.raises(MigrationError) as info:
        lite.apply(tmp_path / "missing.sql", "missing.sql")
    assert "cannot read the file" in str(info.value)
