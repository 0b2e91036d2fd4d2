"""Issue 23 #7: the built-in executor reads the next file while the server applies this one,
and a separate store's history rows are written without an fsync each.

Real pytest processes against a real PostgreSQL target (a throw-away database per test)
with the embedded SQLite store. Reading ahead must change nothing of what runs: the text a
step applies is the text whose checksum its ledger and history rows record (what the run
read and checked), a file edited under a running deployment is never applied with the
checksum of another text, and what the reading finds wrong is reported by the file's own
step. A history row written without its own fsync is still written when its file
commits: another process sees it while the run goes on.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from deploy_plugin.plan.sections import checksum_bytes
from tests.pg import database_url
from tests.test_faults import history, make_project, query, run, table_exists

FILES = {
    "001_a.sql": "CREATE TABLE a (id int);\n",
    "002_b.sql": "CREATE TABLE b (id int);\n",
    "003_c.sql": "CREATE TABLE c (id int);\n",
}
EDITED = "CREATE TABLE edited (id int);\n"


def sha(text: str) -> str:
    return checksum_bytes(text.encode())


def editing(project: Path, hook: str, rel: str) -> None:
    """A conftest whose ``hook`` rewrites ``migrations/<rel>`` (once) when it is called
    for that file's step (or for the group)."""
    test = "step.file == target" if hook == "pytest_deploy_before_step" else "True"
    arg = "step" if hook == "pytest_deploy_before_step" else "group"
    (project / "conftest.py").write_text(
        textwrap.dedent(f"""\
            from pathlib import Path

            done = []

            def {hook}(deployment, {arg}):
                target = "migrations/{rel}"
                if {test} and not done:
                    done.append(1)
                    Path(target).write_text({EDITED!r})
            """)
    )


def ledger(dbname: str) -> dict[str, str]:
    if not table_exists(dbname, "pytest_deploy.applied"):
        return {}
    return dict(query(dbname, "SELECT file, checksum FROM pytest_deploy.applied"))


@pytest.fixture
def dbname(pg_database: str) -> str:
    return pg_database.rsplit("/", 1)[1]


def test_a_file_edited_just_before_its_step_never_runs_under_the_old_checksum(
    tmp_path: Path, dbname: str
) -> None:
    # 002 is read ahead while the server applies 001; the hook then edits it before its
    # own step. Whichever text runs, the ledger and history record that text's checksum.
    project = make_project(tmp_path, FILES)
    editing(project, "pytest_deploy_before_step", "002_b.sql")
    done = run(project, database=database_url(dbname))

    rows, recorded = ledger(dbname), history(project, None)
    assert rows["migrations/001_a.sql"] == sha(FILES["001_a.sql"]), done
    if table_exists(dbname, "edited"):  # the edited text ran: then under its own checksum
        assert rows["migrations/002_b.sql"] == sha(EDITED), done
    if done.returncode == 0:  # the text the run read and checked ran, as recorded
        assert table_exists(dbname, "b") and not table_exists(dbname, "edited"), done
        assert rows["migrations/002_b.sql"] == sha(FILES["002_b.sql"]), done
        assert recorded["migrations/002_b.sql"].checksum == sha(FILES["002_b.sql"])
        assert table_exists(dbname, "c"), done
    else:  # refused: the file changed after the run read it; nothing of it ran
        assert "migrations/002_b.sql" in done.output and "changed" in done.output, done
        assert not table_exists(dbname, "b") and not table_exists(dbname, "edited"), done
        assert "migrations/002_b.sql" not in rows, done
        assert not table_exists(dbname, "c"), done


def test_a_file_edited_after_the_run_read_it_is_refused(tmp_path: Path, dbname: str) -> None:
    # edited when the group starts, after preflight hashed it (the drift check, the plan):
    # the first file has nothing read ahead, so its step reads it and finds another text
    project = make_project(tmp_path, FILES)
    editing(project, "pytest_deploy_before_group", "001_a.sql")
    url = database_url(dbname)
    done = run(project, database=url)

    assert done.returncode == 1, done
    assert "migrations/001_a.sql" in done.output, done
    assert "changed after this run read it" in done.output, done
    assert "Traceback" not in done.output, done
    assert not table_exists(dbname, "a") and not table_exists(dbname, "edited"), done
    assert ledger(dbname) == {}, done
    assert history(project, None)["migrations/001_a.sql"].status == "failed"

    (project / "conftest.py").unlink()
    again = run(project, database=url)  # the file as it is now, under its own checksum
    assert again.returncode == 0, again
    assert table_exists(dbname, "edited") and table_exists(dbname, "c"), again
    assert ledger(dbname)["migrations/001_a.sql"] == sha(EDITED), again


def test_what_reading_ahead_refuses_is_reported_by_the_files_own_step(
    tmp_path: Path, dbname: str
) -> None:
    files = {**FILES, "002_b.sql": "CREATE TABLE b (id int);\n\nCOPY b FROM STDIN;\n"}
    project = make_project(tmp_path, files)
    done = run(project, "-v", database=database_url(dbname))

    assert done.returncode == 1, done
    assert "deploy[migrations/001_a.sql] PASSED" in done.output, done
    assert "deploy[migrations/002_b.sql] FAILED" in done.output, done
    assert "migrations/002_b.sql, line 3: COPY ... FROM STDIN" in done.output, done
    assert table_exists(dbname, "a") and not table_exists(dbname, "b"), done
    assert set(ledger(dbname)) == {"migrations/001_a.sql"}, done


def test_history_rows_are_seen_by_other_processes_as_each_file_commits(
    tmp_path: Path, dbname: str
) -> None:
    project = make_project(tmp_path, FILES)
    (project / "conftest.py").write_text(
        textwrap.dedent("""\
            import sqlite3
            from pathlib import Path

            def pytest_deploy_before_step(deployment, step):
                if step.file == "migrations/003_c.sql":  # its own connection, read-only
                    store = Path(".deploy/state.sqlite3").resolve()
                    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as conn:
                        rows = conn.execute(
                            "SELECT migration_file FROM migration_history"
                            " WHERE status = 'success' ORDER BY 1"
                        ).fetchall()
                    Path("seen.txt").write_text(" ".join(r[0] for r in rows))
            """)
    )
    done = run(project, database=database_url(dbname))

    assert done.returncode == 0, done
    seen = (project / "seen.txt").read_text().split()
    assert seen == ["migrations/001_a.sql", "migrations/002_b.sql"], done
    assert set(history(project, None)) == {f"migrations/{rel}" for rel in FILES}, done
