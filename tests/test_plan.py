"""Unit tests of the pure planner (deploy_plugin/plan.py): globs, files, warnings, drift.

Table-driven: each row is a pattern, a tree of files and what must match. These rows are
what fails when ``**`` stops matching zero folders, wildcards start matching hidden
names, the keep-inside-root check goes, or a padding / out-of-order warning is dropped.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deploy_plugin.plan import (
    AppliedMigration,
    check_migrations,
    file_checksum,
    file_values,
    glob_regex,
    match_files,
    padding_warning,
)

GLOBS = [
    # (pattern, path, matches)
    ("migrations/*.sql", "migrations/001.sql", True),
    ("migrations/*.sql", "migrations/sub/001.sql", False),  # * never crosses /
    ("migrations/**/*.sql", "migrations/001.sql", True),  # ** spans zero folders
    ("migrations/**/*.sql", "migrations/a/b/001.sql", True),  # ... and any depth
    ("**/*.sql", "001.sql", True),
    ("**", "a/b/c.txt", True),
    ("migrations/*.sql", "migrations/.hidden.sql", False),  # wildcards skip hidden names
    ("migrations/**/*.sql", "migrations/.git/x.sql", False),  # ... and hidden folders
    ("migrations/.*.sql", "migrations/.hidden.sql", True),  # unless the pattern names them
    ("fns/?/index.ts", "fns/a/index.ts", True),
    ("fns/?/index.ts", "fns/ab/index.ts", False),
    ("m/[0-9]*.sql", "m/7_x.sql", True),
    ("m/[!0-9]*.sql", "m/7_x.sql", False),
    ("m/[!0-9]*.sql", "m/x.sql", True),
    ("./m/*.sql", "m/1.sql", True),
]


@pytest.mark.parametrize(("pattern", "path", "matches"), GLOBS)
def test_glob_regex(pattern: str, path: str, matches: bool) -> None:
    assert bool(glob_regex(pattern).match(path)) is matches


def tree(root: Path, *paths: str) -> Path:
    for rel in paths:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    return root


FILES = [
    # (patterns, files in the tree, expected matches)
    (["migrations/*.sql"], ["migrations/2.sql", "migrations/1.sql", "migrations/x.txt"],
     ["migrations/1.sql", "migrations/2.sql"]),
    (["migrations/**/*.sql"], ["migrations/1.sql", "migrations/a/2.sql", "migrations/.h/3.sql"],
     ["migrations/1.sql", "migrations/a/2.sql"]),
    (["a/*.sql", "a/1*.sql"], ["a/1.sql", "a/2.sql"], ["a/1.sql", "a/2.sql"]),  # merged once
    (["m/*.sql"], ["m/10_b.sql", "m/9_a.sql"], ["m/10_b.sql", "m/9_a.sql"]),  # code points
    (["nothing/*.sql"], ["m/1.sql"], []),
]


@pytest.mark.parametrize(("patterns", "files", "expected"), FILES)
def test_match_files(tmp_path: Path, patterns: list[str], files: list[str], expected: list[str]):
    found, unmatched = match_files(tree(tmp_path, *files), patterns)
    assert found == expected
    assert unmatched == ([] if expected else patterns)


def test_files_reached_through_a_link_out_of_root_are_not_matched(tmp_path: Path) -> None:
    outside = tree(tmp_path / "outside", "secret.sql")
    root = tree(tmp_path / "root", "migrations/1.sql")
    os.symlink(outside / "secret.sql", root / "migrations" / "2.sql")
    os.symlink(outside, root / "migrations" / "linked")
    found, _ = match_files(root, ["migrations/**/*.sql"])
    assert found == ["migrations/1.sql"]


def test_a_link_inside_root_is_followed(tmp_path: Path) -> None:
    root = tree(tmp_path / "root", "real/1.sql")
    os.symlink(root / "real", root / "alias")
    assert match_files(root, ["alias/*.sql"])[0] == ["alias/1.sql"]


def test_links_are_judged_by_where_they_lead(tmp_path: Path) -> None:
    """Pinned before match_files stopped resolving every file: a linked file inside root
    matches, a base folder linked to root itself matches, a root reached through a link
    matches, an outside base folder matches nothing and is named."""
    outside = tree(tmp_path / "outside", "o.sql")
    root = tree(tmp_path / "root", "real/1.sql", "real/deep/2.sql")
    os.symlink(root / "real" / "1.sql", root / "real" / "one.sql")
    os.symlink(root, root / "self")
    os.symlink(outside, root / "away")
    assert match_files(root, ["real/**/*.sql"])[0] == [
        "real/1.sql", "real/deep/2.sql", "real/one.sql"
    ]
    assert match_files(root, ["self/real/*.sql"])[0] == ["self/real/1.sql", "self/real/one.sql"]
    os.symlink(root, tmp_path / "via")
    assert match_files(tmp_path / "via", ["real/*.sql"])[0] == ["real/1.sql", "real/one.sql"]
    left: list[str] = []
    assert match_files(root, ["away/*.sql"], outside=left) == ([], ["away/*.sql"])
    assert left == [f"away -> {os.path.realpath(outside)}"]


PADDING = [
    (["m/001_a.sql", "m/002_b.sql"], None),
    (["m/9_a.sql", "m/10_b.sql"], "m"),  # mixed widths in one folder
    (["a/9_a.sql", "b/10_b.sql"], None),  # different folders never mix
    (["m/a.sql", "m/b.sql"], None),
]


@pytest.mark.parametrize(("files", "folder"), PADDING)
def test_padding_warning(files: list[str], folder: str | None) -> None:
    warning = padding_warning(files)
    if folder is None:
        assert warning is None
    else:
        assert warning is not None and f"in {folder} mix number widths" in warning


def applied(checksum: str, status: str = "success") -> AppliedMigration:
    return AppliedMigration(checksum, status, "2026-11-30T10:00:00Z", "ci@host")


def test_check_migrations_drift_pending_and_warnings() -> None:
    files = ["m/001.sql", "m/002.sql", "m/003.sql"]
    checksums = {"m/001.sql": "aa", "m/002.sql": "bb", "m/003.sql": "cc"}
    history = {
        "m/001.sql": applied("aa"),
        "m/003.sql": applied("zz"),  # edited after it was applied
        "m/000.sql": applied("00"),  # applied, then deleted
        "m/002.sql": applied("bb", "failed"),  # a failed row is not applied
    }
    check = check_migrations(files, checksums, history)
    assert check.pending == ("m/002.sql",)
    (drift,) = check.drift
    assert drift.startswith("m/003.sql changed after it was applied") and "zz" in drift
    assert any("m/000.sql was applied" in w and "no longer exists" in w for w in check.warnings)
    # 002 is pending but 003 (newer) is applied: it would run out of order
    assert any(w.startswith("pending m/002.sql sorts before m/003.sql") for w in check.warnings)


def test_nothing_out_of_order_when_pending_files_come_last() -> None:
    check = check_migrations(["m/1.sql", "m/2.sql"], {"m/1.sql": "a", "m/2.sql": "b"},
                             {"m/1.sql": applied("a")})  # fmt: skip
    assert check.pending == ("m/2.sql",) and check.warnings == () and check.drift == ()


def test_checksum_ignores_crlf_only(tmp_path: Path) -> None:
    (tmp_path / "lf.sql").write_bytes(b"SELECT 1;\nSELECT 2;\n")
    (tmp_path / "crlf.sql").write_bytes(b"SELECT 1;\r\nSELECT 2;\r\n")
    (tmp_path / "other.sql").write_bytes(b"SELECT 1;\nSELECT 3;\n")
    assert file_checksum(tmp_path / "lf.sql") == file_checksum(tmp_path / "crlf.sql")
    assert file_checksum(tmp_path / "lf.sql") != file_checksum(tmp_path / "other.sql")


@pytest.mark.parametrize(
    ("rel", "values"),
    [
        ("supabase/functions/notify/index.ts",
         {"file": "supabase/functions/notify/index.ts", "name": "index.ts", "stem": "index",
          "dir": "supabase/functions/notify", "function_name": "notify", "service_name": "index"}),
        ("api.service", {"dir": ".", "function_name": "root", "service_name": "api"}),
    ],
)  # fmt: skip
def test_file_values(tmp_path: Path, rel: str, values: dict[str, str]) -> None:
    root = tmp_path / "root"
    got = file_values(root, rel)
    assert {k: got[k] for k in values} == values
    assert got["path"] == str(root / rel)
