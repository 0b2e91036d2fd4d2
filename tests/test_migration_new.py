"""``pytest-deploy migration new PROJECT NAME [--group G]`` (issue 23 #6): the next file of a
tracked group's folder, numbered like its neighbours, with an empty down beside it when
they have downs. Every test runs the installed command as a process in a throw-away
project (a ``pytest.ini`` makes the folder the rootdir)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

CLI = Path(sys.executable).with_name("pytest-deploy")


def make_project(root: Path, group: dict, files: dict[str, str], *more: dict) -> Path:
    """Project ``shop`` in ``root`` (also the rootdir): tracked group ``db`` (``group``'s
    keys) and the ``files`` given (root-relative path → content)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pytest.ini").write_text("[pytest]\n")
    groups = [{"name": "db", "order": 1, **group}, *more]
    data = {"project": "shop", "targets": {"local": {}}, "groups": groups}
    (root / "deploy.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DEPLOY_STORE_URL"}
    return subprocess.run(
        [str(CLI), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def new(cwd: Path, *args: str) -> list[str]:
    """``migration new shop ARGS`` that must succeed: the paths it says it created."""
    done = run(cwd, "migration", "new", "shop", *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return [line.removeprefix("created ") for line in done.stdout.splitlines()]


def tree(root: Path, folder: str = "migrations") -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in (root / folder).rglob("*"))


def one_paragraph(err: str) -> str:
    assert err.startswith("error: ") and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    ("neighbours", "expected"),
    [
        (["0006_y.sql", "0007_add_x.sql"], "0008_add_users_email.sql"),
        (["007-add-x.sql"], "008-add_users_email.sql"),  # width 3 and '-' kept
        (["10_x.sql", "11_first.sql"], "12_add_users_email.sql"),  # not padded: not now
        (["V6__a.sql", "V7__x.sql"], "V8__add_users_email.sql"),  # Flyway
        (["V0041__x.sql"], "V0042__add_users_email.sql"),
    ],
)
def test_numbered_like_the_neighbours(tmp_path: Path, neighbours: list[str], expected: str) -> None:
    files = {f"migrations/{name}": "SELECT 1;\n" for name in neighbours}
    root = make_project(tmp_path, {"file_patterns": ["migrations/*.sql"]}, files)
    assert new(root, "Add users' email!") == [f"migrations/{expected}"]
    assert (root / "migrations" / expected).read_bytes() == b""
    assert tree(root) == sorted([*files, f"migrations/{expected}"])  # no down: none has one


@pytest.mark.parametrize(
    ("pattern", "neighbours", "would_be", "before"),
    [
        ("migrations/V*.sql", ["V1__first.sql", "V9__a.sql"], "V10__next_one.sql", "V1__first.sql"),
        ("migrations/*.sql", ["999_a.sql"], "1000_next_one.sql", "999_a.sql"),  # width used up
        ("migrations/*.sql", ["0010_a.sql", "9_b.sql"], "11_next_one.sql", "9_b.sql"),
    ],
)
def test_a_number_that_would_sort_before_its_neighbours_is_refused(
    tmp_path: Path, pattern: str, neighbours: list[str], would_be: str, before: str
) -> None:
    """Files run in name order: V10__ would run before V1__, so nothing is written."""
    files = {f"migrations/{name}": "SELECT 1;\n" for name in neighbours}
    root = make_project(tmp_path, {"file_patterns": [pattern]}, files)
    done = run(root, "migration", "new", "shop", "next one")
    assert done.returncode == 2 and done.stdout == "", done.stderr
    err = one_paragraph(done.stderr)
    assert f"migrations/{would_be}" in err and f"before migrations/{before}" in err, err
    assert "name order" in err and "by hand" in err and "nothing was written" in err, err
    assert ("V0001__" if pattern.endswith("V*.sql") else "0001_") in err, err
    assert tree(root) == sorted(files)


@pytest.mark.parametrize(
    ("group", "files", "created"),
    [
        (  # only a repeatable one: numbered from 0001 as in an empty folder
            {"file_patterns": ["migrations/*.sql"]},
            {"migrations/R__views.sql": "CREATE VIEW v AS SELECT 1;"},
            ["migrations/0001_b.sql"],
        ),
        (  # R__ files have no down: the layout alone pairs the new file with one
            {"file_patterns": ["migrations/*.sql"], "down_file": "down/{name}"},
            {"migrations/R__views.sql": "CREATE VIEW v AS SELECT 1;"},
            ["migrations/0001_b.sql", "down/0001_b.sql"],
        ),
        (  # a Flyway folder: the scheme comes from the V files
            {"file_patterns": ["migrations/*.sql"]},
            {"migrations/V3__a.sql": "SELECT 1;", "migrations/R__views.sql": ""},
            ["migrations/V4__b.sql"],
        ),
    ],
)
def test_repeatable_files_are_no_numbered_neighbours(
    tmp_path: Path, group: dict, files: dict[str, str], created: list[str]
) -> None:
    root = make_project(tmp_path, group, files)
    done = run(root, "migration", "new", "shop", "b")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"created {rel}" for rel in created]
    assert all((root / rel).read_bytes() == b"" for rel in created)
    if not any("V" in rel for rel in created):
        assert "no versioned migration in migrations/ yet" in done.stderr, done.stderr


def test_a_repeatable_files_down_section_decides_nothing(tmp_path: Path) -> None:
    root = make_project(
        tmp_path, {"file_patterns": ["migrations/*.sql"]},
        {"migrations/001_a.sql": "SELECT 1;\n", "migrations/R__v.sql": DBMATE},
    )  # fmt: skip
    assert new(root, "b") == ["migrations/002_b.sql"]
    assert (root / "migrations" / "002_b.sql").read_bytes() == b""


def test_a_file_where_the_folder_goes_is_named_as_such(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"file_patterns": ["db/migrations/*.sql"]}, {"db": "notes\n"})
    done = run(root, "migration", "new", "shop", "b")
    assert done.returncode == 1 and done.stdout == "", done.stderr
    err = one_paragraph(done.stderr)
    assert "db is a file, not a folder" in err and "already exists" not in err, err
    assert "nothing was written" in err, err
    assert (root / "db").read_text() == "notes\n"


def test_timestamp_numbering_is_now_and_after_the_last(tmp_path: Path) -> None:
    root = make_project(
        tmp_path, {"file_patterns": ["migrations/*.sql"]}, {"migrations/20240102030405_x.sql": ""}
    )
    before = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
    [created] = new(root, "add index")
    after = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
    stamp = re.fullmatch(r"migrations/(\d{14})_add_index\.sql", created)
    assert stamp and before <= stamp.group(1) <= after, created

    # a neighbour stamped in the future (a clock ahead): strictly greater, same format
    (root / created).unlink()
    (root / "migrations" / "29991231235959_ahead.sql").write_text("")
    assert new(root, "next") == ["migrations/30000101000000_next.sql"]
    later = datetime(2999, 12, 31, 23, 59, 59) + timedelta(seconds=1)
    assert later.strftime("%Y%m%d%H%M%S") == "30000101000000"


def test_an_empty_folder_starts_at_0001(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"file_patterns": ["db/migrations/*.sql"]}, {})
    (root / "db" / "migrations").mkdir(parents=True)
    done = run(root, "migration", "new", "shop", "create users")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "created db/migrations/0001_create_users.sql\n"
    assert "no migration in db/migrations/ yet" in done.stderr and "0001" in done.stderr
    assert tree(root, "db") == ["db/migrations", "db/migrations/0001_create_users.sql"]


DBMATE = "-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\nDROP TABLE a;\n"


@pytest.mark.parametrize(
    ("group", "files", "created"),
    [
        (  # golang-migrate: NAME.up.sql + NAME.down.sql
            {"file_patterns": ["migrations/*.up.sql"]},
            {"migrations/0001_a.up.sql": "SELECT 1;", "migrations/0001_a.down.sql": ""},
            ["migrations/0002_b.up.sql", "migrations/0002_b.down.sql"],
        ),
        (  # Diesel: one folder per migration, up.sql + down.sql
            {"file_patterns": ["migrations/*/up.sql"]},
            {"migrations/0001_a/up.sql": "SELECT 1;", "migrations/0001_a/down.sql": ""},
            ["migrations/0002_b/up.sql", "migrations/0002_b/down.sql"],
        ),
        (  # the group's down_file template: a down/ folder
            {"file_patterns": ["migrations/*.sql"], "down_file": "down/{name}"},
            {"migrations/0001_a.sql": "SELECT 1;", "down/0001_a.sql": "SELECT 2;"},
            ["migrations/0002_b.sql", "down/0002_b.sql"],
        ),
    ],
)
def test_an_empty_down_beside_it_when_the_neighbours_have_downs(
    tmp_path: Path, group: dict, files: dict[str, str], created: list[str]
) -> None:
    root = make_project(tmp_path, group, files)
    assert new(root, "b") == created
    assert all((root / rel).read_bytes() == b"" for rel in created)


def test_dbmate_sections_get_both_markers(tmp_path: Path) -> None:
    root = make_project(
        tmp_path, {"file_patterns": ["migrations/*.sql"]}, {"migrations/001_a.sql": DBMATE}
    )
    assert new(root, "b") == ["migrations/002_b.sql"]
    text = (root / "migrations" / "002_b.sql").read_text()
    assert text == "-- migrate:up\n\n\n-- migrate:down\n\n"


def test_no_down_when_the_neighbours_have_none(tmp_path: Path) -> None:
    root = make_project(
        tmp_path, {"file_patterns": ["migrations/*.up.sql"]}, {"migrations/0001_a.up.sql": ""}
    )
    assert new(root, "b") == ["migrations/0002_b.up.sql"]
    assert tree(root) == ["migrations/0001_a.up.sql", "migrations/0002_b.up.sql"]


def test_the_group_must_be_named_when_several_track_migrations(tmp_path: Path) -> None:
    other = {"name": "audit", "order": 2, "file_patterns": ["audit/*.sql"]}
    build = {"name": "build", "order": 3, "build_command": "true"}
    root = make_project(
        tmp_path, {"file_patterns": ["migrations/*.sql"]},
        {"migrations/01_a.sql": "", "audit/0005_b.sql": ""}, other, build,
    )  # fmt: skip
    done = run(root, "migration", "new", "shop", "x")
    assert done.returncode == 2 and done.stdout == ""
    assert "several tracked migration groups: db, audit" in one_paragraph(done.stderr)
    assert "--group" in done.stderr
    done = run(root, "migration", "new", "shop", "x", "--group", "build")
    assert done.returncode == 2
    assert "no tracked migration group named 'build'" in one_paragraph(done.stderr)
    assert "Tracked groups: db, audit" in done.stderr
    assert new(root, "x", "--group", "audit") == ["audit/0006_x.sql"]
    assert tree(root) == ["migrations/01_a.sql"]


@pytest.mark.parametrize(
    "patterns", [["migrations/**/*.sql"], ["migrations/*.sql", "more/*.sql"], ["m*/*.sql"]]
)
def test_a_pattern_that_is_not_one_folder_and_a_glob_is_refused(
    tmp_path: Path, patterns: list[str]
) -> None:
    root = make_project(tmp_path, {"file_patterns": patterns}, {"migrations/01_a.sql": ""})
    done = run(root, "migration", "new", "shop", "x")
    assert done.returncode == 2, done.stderr
    err = one_paragraph(done.stderr)
    assert "groups[0].file_patterns" in err and "by hand" in err
    assert tree(root) == ["migrations/01_a.sql"]


def test_an_empty_name_is_refused(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"file_patterns": ["migrations/*.sql"]}, {})
    done = run(root, "migration", "new", "shop", " ?!-- ")
    assert done.returncode == 2
    assert "letters or digits" in one_paragraph(done.stderr)
    assert not (root / "migrations").exists()


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    # the down's name is taken: neither file is written
    root = make_project(
        tmp_path, {"file_patterns": ["migrations/*.up.sql"]},
        {"migrations/0001_a.up.sql": "", "migrations/0001_a.down.sql": "",
         "migrations/0002_b.down.sql": "keep me"},
    )  # fmt: skip
    done = run(root, "migration", "new", "shop", "b")
    assert done.returncode == 1 and done.stdout == ""
    assert "migrations/0002_b.down.sql already exists" in one_paragraph(done.stderr)
    assert (root / "migrations" / "0002_b.down.sql").read_text() == "keep me"
    assert not (root / "migrations" / "0002_b.up.sql").exists()

    # a dangling link out of the root is no file the group matches, but its name is taken
    plain = make_project(
        tmp_path / "plain", {"file_patterns": ["migrations/*.sql"]}, {"migrations/01_a.sql": ""}
    )
    (plain / "migrations" / "02_b.sql").symlink_to(tmp_path / "elsewhere.sql")
    done = run(plain, "migration", "new", "shop", "b")
    assert done.returncode == 1 and "02_b.sql already exists" in one_paragraph(done.stderr)
    assert not (tmp_path / "elsewhere.sql").exists()  # not written through the link


SHOP = {
    "file_patterns": ["migrations/*.sql"],
    "required_env_vars": ["DATABASE_URL"],
}


def test_the_new_file_is_pending_in_the_next_dry_run(tmp_path: Path) -> None:
    """From the rootdir above the project: paths are shown relative to the current folder,
    and the dry run of the next deployment lists the new file as pending."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    shop = make_project(
        tmp_path / "shop", SHOP, {"migrations/0001_items.sql": "CREATE TABLE items (id int);\n"}
    )
    (shop / "pytest.ini").unlink()
    config = yaml.safe_load((shop / "deploy.yaml").read_text())
    config["targets"]["local"] = {"env": {"DATABASE_URL": "sqlite:///shop.sqlite3"}}
    (shop / "deploy.yaml").write_text(yaml.safe_dump(config))
    deploy = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--deploy-target=local"]
    done = subprocess.run(deploy, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr

    assert new(tmp_path, "add price") == ["shop/migrations/0002_add_price.sql"]
    (shop / "migrations" / "0002_add_price.sql").write_text("ALTER TABLE items ADD price int;\n")

    done = subprocess.run(
        [*deploy, "--dry-run", "-v"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    plan = done.stdout.split("plan:", 1)[1]
    assert "db::deploy[migrations/0002_add_price.sql]: apply migrations/0002_add_price.sql" in plan
    assert (
        "db::deploy[migrations/0001_items.sql]: (skipped: migrations/0001_items.sql: applied"
        in plan
    )
    status = run(tmp_path, "migration", "status", "shop", "--target", "local")
    assert re.search(r"migrations/0002_add_price\.sql\s+db\s+pending", status.stdout), status


def test_a_file_made_meanwhile_is_not_replaced_and_nothing_is_left(tmp_path: Path) -> None:
    """The race the look-before cannot see: O_EXCL refuses, and what the call made goes."""
    from deploy_plugin.migrate.new_file import NewMigration, write_new

    (tmp_path / "down").mkdir()
    (tmp_path / "down" / "02_b.sql").write_text("theirs")
    new = NewMigration((("migrations/02_b.sql", b""), ("down/02_b.sql", b"")), "down_file", True)
    with pytest.raises(FileExistsError):
        write_new(tmp_path, new)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["down"]  # migrations/ removed too
    assert (tmp_path / "down" / "02_b.sql").read_text() == "theirs"
