"""The schema fingerprint, read from real PostgreSQL and SQLite catalogs, and its diff."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from deploy_plugin.migrate.fingerprint import Fingerprint, diff, fingerprint

SCHEMA = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE SEQUENCE ticket_seq START 100;
CREATE TABLE post (
    id integer PRIMARY KEY,
    title text NOT NULL DEFAULT 'untitled',
    score numeric,
    feeling mood
);
CREATE INDEX post_title ON post (title);
CREATE VIEW titles AS SELECT id, title FROM post;
CREATE FUNCTION hot_rank(score numeric) RETURNS numeric LANGUAGE sql AS 'SELECT score * 2';
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
CREATE TRIGGER post_touch BEFORE UPDATE ON post FOR EACH ROW EXECUTE FUNCTION touch();
"""

#: change -> the sentence the diff must contain
CHANGES = [
    ("ALTER TABLE post DROP COLUMN id CASCADE; ALTER TABLE post ADD COLUMN id integer",
     "column post.id moved from position 1 to 4"),
    ("CREATE FUNCTION hot_rank(score numeric, at timestamptz) RETURNS numeric LANGUAGE sql"
     " AS 'SELECT score'", "function hot_rank(numeric, timestamptz) left behind"),
    ("CREATE OR REPLACE FUNCTION hot_rank(score numeric) RETURNS numeric LANGUAGE sql"
     " AS 'SELECT score * 3'",
     "function hot_rank(numeric) body changed from SELECT score * 2 to SELECT score * 3"),
    ("ALTER TABLE post ALTER COLUMN title DROP NOT NULL", "column post.title became nullable"),
    ("ALTER TABLE post ALTER COLUMN title SET DEFAULT 'x'",
     "column post.title default changed from 'untitled'::text to 'x'::text"),
    ("ALTER TABLE post ALTER COLUMN score TYPE numeric(10,2)",
     "column post.score type changed from numeric to numeric(10,2)"),
    ("ALTER TYPE mood ADD VALUE 'meh' BEFORE 'ok'",
     "type mood labels changed from sad, ok, happy to sad, meh, ok, happy"),
    ("DROP INDEX post_title", "index post_title missing (it was there before)"),
    ("CREATE INDEX post_score ON post (score)", "index post_score left behind"),
    ("DROP VIEW titles", "view titles missing (it was there before)"),
    ("DROP TRIGGER post_touch ON post", "trigger post.post_touch missing"),
    ("ALTER SEQUENCE ticket_seq INCREMENT BY 5",
     "sequence ticket_seq increment changed from 1 to 5"),
    ("ALTER TABLE post ADD CONSTRAINT positive CHECK (score > 0)",
     "constraint post.positive left behind"),
    ("CREATE SCHEMA extra", "schema extra left behind"),
    ("CREATE EXTENSION citext", "extension citext left behind"),
]  # fmt: skip


@pytest.fixture
def pg(pg_database: str):  # noqa: ANN201 - a psycopg connection
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(SCHEMA)
        yield conn


@pytest.mark.parametrize(("change", "expected"), CHANGES, ids=[e for _, e in CHANGES])
def test_postgres_diff_names_what_differs(pg: psycopg.Connection, change: str, expected: str):
    before = fingerprint(pg, "postgresql")
    assert fingerprint(pg, "postgresql") == before  # reading changes nothing
    pg.execute(change)
    after = fingerprint(pg, "postgresql")
    assert after != before and after.digest() != before.digest()
    found = diff(before, after)
    assert any(expected in line for line in found), found


def test_postgres_leaves_out_the_store_and_the_ledger(pg: psycopg.Connection) -> None:
    before = fingerprint(pg, "postgresql")
    pg.execute("CREATE SCHEMA deploy; CREATE TABLE deploy.deployments (id int)")
    pg.execute("CREATE SCHEMA pytest_deploy; CREATE TABLE pytest_deploy.applied (f text)")
    assert diff(before, fingerprint(pg, "postgresql")) == []


def test_postgres_a_faithful_round_trip_is_equal(pg: psycopg.Connection) -> None:
    before = fingerprint(pg, "postgresql")
    pg.execute("ALTER TABLE post ADD COLUMN extra text; CREATE INDEX post_extra ON post (extra)")
    pg.execute("ALTER TABLE post DROP COLUMN extra")  # drops its index too
    assert diff(before, fingerprint(pg, "postgresql")) == []
    assert fingerprint(pg, "postgresql").digest() == before.digest()
    assert before.count() > 15


def sqlite_db(tmp_path: Path, script: str) -> sqlite3.Connection:
    """A SQLite database (autocommit) in which ``script`` ran."""
    conn = sqlite3.connect(tmp_path / "app.db", isolation_level=None)
    conn.executescript(script)
    return conn


def test_sqlite_diff(tmp_path: Path) -> None:
    conn = sqlite_db(
        tmp_path,
        "CREATE TABLE post (id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT);"
        "CREATE INDEX post_title ON post (title);"
        "CREATE TABLE pytest_deploy_applied (file TEXT);",
    )
    before = fingerprint(conn, "sqlite")
    conn.executescript(
        "DROP INDEX post_title;"
        "ALTER TABLE post DROP COLUMN title; ALTER TABLE post ADD COLUMN title TEXT;"
        "CREATE INDEX post_body ON post (body); INSERT INTO pytest_deploy_applied VALUES ('x');"
    )
    found = diff(before, fingerprint(conn, "sqlite"))
    assert "column post.title moved from position 2 to 3" in found
    assert "column post.body moved from position 3 to 2" in found
    assert "column post.title became nullable" in found
    assert "index post_body left behind" in found
    assert "index post_title missing (it was there before)" in found
    assert diff(before, before) == []
    assert isinstance(before, Fingerprint)


def test_sqlite_fingerprint_is_what_older_versions_recorded(tmp_path: Path) -> None:
    """Pinned before the columns were read in one query: a fingerprint recorded by an older
    version must keep its digest, or every project would see a false drift warning."""
    conn = sqlite_db(
        tmp_path,
        'CREATE TABLE "odd ""name""" (id INTEGER PRIMARY KEY, label TEXT NOT NULL DEFAULT \'x\');'
        " CREATE TABLE plain (a, b REAL); CREATE INDEX plain_a ON plain (a);"
        " CREATE VIEW v AS SELECT a FROM plain; CREATE TABLE pytest_deploy_applied (file TEXT);",
    )
    found = fingerprint(conn, "sqlite")
    assert found.objects == {
        "table": {'odd "name"': {}, "plain": {}},
        "column": {
            'odd "name".id': {"position": "1", "type": "INTEGER", "default": "",
                              "nullable": "true", "primary key": "1"},
            'odd "name".label': {"position": "2", "type": "TEXT", "default": "'x'",
                                 "nullable": "false", "primary key": "0"},
            "plain.a": {"position": "1", "type": "", "default": "", "nullable": "true",
                        "primary key": "0"},
            "plain.b": {"position": "2", "type": "REAL", "default": "", "nullable": "true",
                        "primary key": "0"},
        },
        "index": {"plain_a": {"definition": "CREATE INDEX plain_a ON plain (a)"}},
        "view": {"v": {"definition": "CREATE VIEW v AS SELECT a FROM plain"}},
        "trigger": {},
    }  # fmt: skip
    conn.close()
