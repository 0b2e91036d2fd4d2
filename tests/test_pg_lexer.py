"""Issue 20 (items 3 and 4): a migration's SQL is read as PostgreSQL reads it.

Statements, their lines and a file's own transaction control come from PostgreSQL's own
lexer (libpg_query, through pglast), so a string ending in a backslash, a nested block
comment, an ``E''`` string, a dollar quote or a ``BEGIN ATOMIC`` body cannot hide a COMMIT
from the executor or make it refuse one that is not there. ``COPY ... TO STDOUT`` /
``FROM STDIN`` need a client that streams rows; the built-in executor refuses them before
anything reaches the server. Everything runs against the real test server; what was
committed is read back from the database.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from deploy_plugin.migrate.executor import Bookkeeping, MigrationError, SqlExecutor
from tests.projects import write_project


def tables(db: psycopg.Connection) -> set[str]:
    """The tables of the test's schema that are committed."""
    rows = db.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    return {name for (name,) in rows}


def apply(pg: SqlExecutor, tmp_path: Path, text: str, name: str = "m.sql", **kw: object) -> int:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return pg.apply(path, f"migrations/{name}", **kw)  # type: ignore[arg-type]


# -- a file's own transaction control -----------------------------------------------------

# (text, the refused word, its line): the statement before the refused one hides it from
# a generic SQL splitter, or looks like transaction control and is not
REFUSED = {
    "backslash-ending string": ("SELECT '\\';\nCOMMIT;\nSELECT 'later';\n", "COMMIT", 3),
    "E string with an escaped quote": (
        "SELECT E'\\' ; COMMIT; ';\n\nEND;\n",
        "END",
        4,
    ),
    "dollar quotes": (
        "CREATE FUNCTION lex_f() RETURNS void LANGUAGE plpgsql AS $fn$\n"
        "BEGIN PERFORM 'x $$ ; COMMIT; $$'; END $fn$;\n"
        "ROLLBACK;\n",
        "ROLLBACK",
        4,
    ),
    "BEGIN ATOMIC body": (
        "CREATE FUNCTION lex_g(i int) RETURNS text LANGUAGE sql\nBEGIN ATOMIC\n"
        "  SELECT CASE WHEN i > 0 THEN 'p' ELSE 'n' END;\nEND;\n"
        "/* a comment\n   over lines */ ABORT;\n",
        "ABORT",
        7,
    ),
    "nested comment before it": ("/* a /* b */ ; */\n-- x\n\ncommit /* c */ ;\n", "COMMIT", 5),
}


@pytest.mark.parametrize("case", REFUSED)
def test_own_transaction_control_is_refused_with_its_line_and_nothing_applied(
    case: str, pg: SqlExecutor, db: psycopg.Connection, tmp_path: Path
) -> None:
    body, word, line = REFUSED[case]
    db.execute("CREATE TABLE history (file text)")
    text = f"CREATE TABLE lex_before (x int);\n{body}CREATE TABLE lex_after (x int);\n"
    books = Bookkeeping(records=[("INSERT INTO history VALUES ('m.sql')", ())])
    with pytest.raises(MigrationError) as info:
        apply(pg, tmp_path, text, books=books)
    assert (info.value.file, info.value.line) == ("migrations/m.sql", line)
    assert f"the file's own {word} would end the migration's transaction" in str(info.value)
    assert str(info.value).endswith("Nothing was applied")
    assert tables(db) == {"history"}
    assert db.execute("SELECT count(*) FROM history").fetchone() == (0,)
    apply(pg, tmp_path, "CREATE TABLE lex_next (x int);\n", "next.sql")  # the executor goes on
    assert tables(db) == {"history", "lex_next"}


WRAPPED = "START TRANSACTION;\nCREATE TABLE lex_t (x text DEFAULT '\\');\nEND;\n-- that's all\n"
ACCEPTED = {
    "nested block comment": "/* a /* b */ COMMIT; */\nCREATE TABLE lex_t (x int);\n",
    "comment and string text": "-- COMMIT;\nCREATE TABLE lex_t (x text DEFAULT 'END;');\n",
    "BEGIN ATOMIC with CASE ... END": (
        "CREATE FUNCTION lex_h(i int) RETURNS text LANGUAGE sql\nBEGIN ATOMIC\n"
        "  SELECT CASE WHEN i > 0 THEN 'p' ELSE 'n' END;\n  SELECT 'end';\nEND;\n"
        "CREATE TABLE lex_t (x text DEFAULT lex_h(1));\n"
    ),
    "ROLLBACK WORK TO SAVEPOINT": (
        "CREATE TABLE lex_t (x int);\nSAVEPOINT s;\nINSERT INTO lex_t VALUES (1);\n"
        "ROLLBACK WORK TO SAVEPOINT s;\nROLLBACK TRANSACTION TO s;\n"
    ),
    "whole-file wrapper around a backslash-ending string": WRAPPED,
}


@pytest.mark.parametrize("case", ACCEPTED)
def test_what_only_looks_like_transaction_control_applies_in_one_transaction(
    case: str, pg: SqlExecutor, db: psycopg.Connection, tmp_path: Path
) -> None:
    db.execute("CREATE TABLE history (file text)")
    books = Bookkeeping(records=[("INSERT INTO history VALUES ('m.sql')", ())])
    apply(pg, tmp_path, ACCEPTED[case], books=books)
    assert tables(db) == {"history", "lex_t"}
    assert db.execute("SELECT file FROM history").fetchall() == [("m.sql",)]
    assert pg.notices == []  # no "there is already a transaction in progress" either


def test_a_dropped_wrapper_keeps_the_file_and_its_books_in_one_transaction(
    pg: SqlExecutor, db: psycopg.Connection, tmp_path: Path
) -> None:
    # the file's END is dropped, not run: a failing record rolls the file back with it
    books = Bookkeeping(records=[("INSERT INTO no_such_history VALUES ('m.sql')", ())])
    with pytest.raises(MigrationError) as info:
        apply(pg, tmp_path, WRAPPED, books=books)
    assert "recording the migration" in str(info.value)
    assert tables(db) == set()


def test_a_syntax_error_is_the_servers_with_its_line(
    pg: SqlExecutor, db: psycopg.Connection, tmp_path: Path
) -> None:
    # PostgreSQL's parser (or already its lexer: an unterminated string or comment) rejects
    # these files: the server reports the error with its line and nothing is applied; the
    # lexer's split, as psql's, keeps a BEGIN ATOMIC body whole (its END is not refused)
    for text, line in [
        ("CREATE TABLE lex_t (x int);\nSELECT 1;\nSELEC oops;\n", 3),
        (
            "CREATE TABLE lex_t (x int);\nCREATE FUNCTION lex_f() RETURNS int LANGUAGE sql\n"
            "BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; SELECT 2; END;\nSELECT 1 +;\n",
            4,
        ),
        ("CREATE TABLE lex_t (x int);\n\nSELECT 'open;\nCOMMIT;\n", 3),
        ("CREATE TABLE lex_t (x int);\n/* open /* nested */\nCOMMIT;\n", 2),
    ]:
        with pytest.raises(MigrationError) as info:
            apply(pg, tmp_path, text)
        assert (info.value.line, info.value.sqlstate) == (line, "42601"), text
        assert tables(db) == set()


# -- COPY ... TO STDOUT / FROM STDIN ------------------------------------------------------

COPIES = {
    "TO STDOUT": ("COPY (SELECT x FROM lex_c) TO STDOUT WITH (FORMAT csv);\n", "TO STDOUT"),
    "FROM STDIN": ("copy lex_c (x)\n  from\n  stdin;\n", "FROM STDIN"),
    "after a backslash string": ("SELECT '\\'; COPY lex_c TO stdout;\n", "TO STDOUT"),
}


@pytest.mark.parametrize("marker", ["", "-- deploy:no-transaction\n"])
@pytest.mark.parametrize("case", COPIES)
def test_copy_to_the_client_is_refused_before_anything_is_sent(
    case: str, marker: str, pg: SqlExecutor, db: psycopg.Connection, tmp_path: Path
) -> None:
    copy, words = COPIES[case]
    db.execute("CREATE TABLE history (file text)")
    text = (
        f"{marker}CREATE TABLE lex_c (x int);\nINSERT INTO lex_c VALUES (1);\n\n{copy}"
        "CREATE TABLE lex_after (x int);\n"
    )
    books = Bookkeeping(records=[("INSERT INTO history VALUES ('m.sql')", ())])
    with pytest.raises(MigrationError) as info:
        apply(pg, tmp_path, text, books=books)
    message = str(info.value)
    assert info.value.line == 4 + bool(marker), message
    assert message.startswith(f"migrations/m.sql, line {4 + bool(marker)}: COPY ... {words} ")
    assert "Nothing was applied" in message and "\n" not in message
    assert "deploy_command" in message and "INSERT" in message
    assert tables(db) == {"history"}  # not even the statements before the COPY
    assert db.execute("SELECT count(*) FROM history").fetchone() == (0,)
    apply(pg, tmp_path, "CREATE TABLE lex_next (x int);\n", "next.sql")
    assert tables(db) == {"history", "lex_next"}


def test_server_side_copy_and_stdin_as_a_name_are_not_refused(
    pg: SqlExecutor, db: psycopg.Connection, tmp_path: Path
) -> None:
    text = (
        "CREATE TABLE stdin (stdout int);\nINSERT INTO stdin VALUES (1);\n"
        "COPY stdin (stdout) TO '/dev/null';\nCOPY (SELECT stdout FROM stdin) TO '/dev/null';\n"
    )
    apply(pg, tmp_path, text)
    assert tables(db) == {"stdin"}


# -- through a deployment: the target's ledger and a re-run --------------------------------


def ledger(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        if conn.execute("SELECT to_regclass('pytest_deploy.applied')").fetchone()[0] is None:
            return []
        return [f for (f,) in conn.execute("SELECT file FROM pytest_deploy.applied ORDER BY 1")]


def public_tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {name for (name,) in rows}


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        (
            "CREATE TABLE half (x int);\nSELECT '\\';\nCOMMIT;\n"
            "CREATE TABLE rest (x text DEFAULT 'r');\n",
            "migrations/002.sql, line 3: the file's own COMMIT would end",
        ),
        (
            "CREATE TABLE half (x int);\nCOPY (SELECT 1) TO STDOUT;\nCREATE TABLE rest (x int);\n",
            "migrations/002.sql, line 2: COPY ... TO STDOUT ",
        ),
    ],
    ids=["backslash-string-then-commit", "copy-to-stdout"],
)
def test_a_deployment_refuses_it_and_neither_the_ledger_nor_a_rerun_claims_it(
    pytester: pytest.Pytester, pg_database: str, second: str, expected: str
) -> None:
    (pytester.path / "migrations").mkdir()
    (pytester.path / "migrations" / "001.sql").write_text("CREATE TABLE first (x int);\n")
    (pytester.path / "migrations" / "002.sql").write_text(second)
    groups = [{"name": "db", "order": 1, "file_patterns": ["migrations/*.sql"]}]
    write_project(pytester, {"groups": groups})
    args = ["--deploy-target=t", f"--deploy-env=DATABASE_URL={pg_database}"]
    for _ in range(2):  # a re-run refuses it again: it never "succeeds"
        result = pytester.runpytest(*args, "-p", "no:cacheprovider")
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        assert result.parseoutcomes()["failed"] == 1
        assert expected in result.stdout.str()
        assert ledger(pg_database) == ["migrations/001.sql"]
        assert public_tables(pg_database) == {"first"}
