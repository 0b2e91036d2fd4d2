"""``groups[].lint``: squawk on the migrations a run would apply (issue 23), at preflight, in
dry runs too; warn, error or off; squawk's ignore comments and the group's ignore list; the
findings in the terminal, the JSON report, JUnit facts and the history page."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.projects import write_project

TABLE = "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);\n"
# line 2: an index built without CONCURRENTLY blocks writes to users while it builds
INDEX = "-- find users by email\nCREATE INDEX users_email ON users (email);\n"
RULE = "require-concurrent-index-creation"


def project(
    pytester: pytest.Pytester,
    url: str,
    files: dict[str, str],
    lint: Any = None,
    **keys: Any,
) -> list[str]:
    """Group db tracking m/*.sql (``files``) on ``url``; the args of a run of target t (the
    URL from a file: a --deploy-env value warns)."""
    (pytester.path / "m").mkdir(exist_ok=True)
    for name, text in files.items():
        (pytester.path / "m" / name).write_text(text)
    group: dict[str, Any] = {"name": "db", "order": 1, "file_patterns": ["m/*.sql"]}
    if lint is not None:
        group["lint"] = lint
    group |= keys
    write_project(pytester, {"groups": [group]})
    (pytester.path / "db.env").write_text(f"DATABASE_URL={url}\n")
    return ["--deploy-target=t", "--deploy-env-file=db.env", "-p", "no:cacheprovider"]


def has_table(url: str, name: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
    return bool(row and row[0])


def report(pytester: pytest.Pytester, name: str = "r.json") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((pytester.path / name).read_text())["deployments"][0]
    return data


def rules(data: dict[str, Any]) -> list[tuple[str, int, str]]:
    return [(f["file"], f["line"], f["rule"]) for f in data["lint"]]


def test_a_pending_index_without_concurrently_warns_in_the_dry_run(
    pytester: pytest.Pytester, pg_database: str
) -> None:
    args = project(pytester, pg_database, {"001_users.sql": TABLE, "002_index.sql": INDEX})
    result = pytester.runpytest(*args, "--dry-run", "--deploy-report=r.json")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines([
        f"*DeployWarning: lint: m/002_index.sql:2 {RULE}: During normal index creation, table"
        " updates are blocked, but reads are still allowed. Fix: Use `concurrently` to avoid"
        " blocking writes.",
    ])  # fmt: skip
    # the dry run's summary lists them beside its plan
    result.stdout.fnmatch_lines([
        "*lint (squawk): * finding(s) in the pending migrations",
        f"    m/002_index.sql:2 {RULE}: *",
        "  plan:",
    ])  # fmt: skip
    assert ("m/002_index.sql", 2, RULE) in rules(report(pytester))
    assert not has_table(pg_database, "users")  # a dry run changes nothing


def test_lint_error_fails_preflight_and_nothing_runs(
    pytester: pytest.Pytester, pg_database: str
) -> None:
    files = {"001_users.sql": TABLE, "002_index.sql": INDEX}
    args = project(pytester, pg_database, files, lint={"mode": "error"})
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=3, failed=1, skipped=2)
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "*_ t::preflight::migrations-drift _*",
        "lint: squawk found * problem(s) in the migration(s) this run would apply, and group(s)"
        " db have lint: error, so nothing was run. Fix each file as its finding says; where a"
        " statement is intended, put `-- squawk-ignore RULE` on the line before it, or add the"
        f" rule to the group's lint.ignore. Findings: *m/002_index.sql:2 {RULE}: *",
    ])  # fmt: skip
    assert not has_table(pg_database, "users")  # 001 is clean, yet nothing ran


def test_an_applied_file_is_never_linted_again(pytester: pytest.Pytester, pg_database: str) -> None:
    args = project(pytester, pg_database, {"001_users.sql": TABLE, "002_index.sql": INDEX})
    first = pytester.runpytest(*args, "--deploy-report=r.json")
    first.assert_outcomes(passed=6)
    assert ("m/002_index.sql", 2, RULE) in rules(report(pytester))
    again = pytester.runpytest(*args, "--deploy-report=r.json")
    # the applied files are one item now (plugin/applied.py): one skip for both
    again.assert_outcomes(passed=4, skipped=1)
    assert report(pytester)["lint"] == [] and "lint:" not in again.stdout.str()
    # a store that never heard of them: the database's ledger still says they are applied
    fresh = pytester.runpytest(*args, "--dry-run", "--deploy-store=sqlite:///fresh.sqlite3",
                               "--deploy-report=r.json")  # fmt: skip
    fresh.assert_outcomes(passed=3, skipped=2)
    assert report(pytester)["lint"] == [] and "lint:" not in fresh.stdout.str()
    # a new file with the same statement: only it is linted
    (pytester.path / "m" / "003_index.sql").write_text(INDEX.replace("users_email", "u_e2"))
    third = pytester.runpytest(*args, "--deploy-report=r.json")
    third.assert_outcomes(passed=5, skipped=1)
    assert {file for file, _, _ in rules(report(pytester))} == {"m/003_index.sql"}


def test_a_squawk_ignore_comment_in_the_file_silences_its_rule(
    pytester: pytest.Pytester, pg_database: str
) -> None:
    ignored = f"-- squawk-ignore {RULE}\nCREATE INDEX users_email ON users (email);\n"
    args = project(pytester, pg_database, {"001_users.sql": TABLE, "002_index.sql": ignored})
    pytester.runpytest(*args, "--dry-run", "--deploy-report=r.json").assert_outcomes(passed=5)
    found = rules(report(pytester))
    assert ("m/002_index.sql", 2, "require-lock-timeout") in found  # linted all the same
    assert RULE not in {rule for _, _, rule in found}


def test_the_groups_ignore_list_silences_rules(pytester: pytest.Pytester, pg_database: str) -> None:
    lint = {
        "mode": "error",
        "ignore": [RULE, "require-lock-timeout", "require-statement-timeout"],
    }
    files = {"001_users.sql": TABLE, "002_index.sql": INDEX}
    args = project(pytester, pg_database, files, lint=lint)
    result = pytester.runpytest(*args, "--deploy-report=r.json", "-rA")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["lint: 0 finding(s) in 2 pending file(s) of group(s)"
                                 " db (3 more of rules the groups ignore)"])  # fmt: skip
    assert report(pytester)["lint"] == [] and has_table(pg_database, "users")


def test_the_groups_timeouts_satisfy_squawks_timeout_rules(
    pytester: pytest.Pytester, pg_database: str
) -> None:
    """lock_timeout and statement_timeout are set in each migration's own transaction by
    pytest-deploy: squawk's require-lock-timeout / require-statement-timeout are met."""
    files = {"001_users.sql": TABLE, "002_index.sql": INDEX}
    args = project(pytester, pg_database, files, lint={"mode": "error", "ignore": [RULE]},
                   lock_timeout="2s", statement_timeout="1min")  # fmt: skip
    result = pytester.runpytest(*args, "--deploy-report=r.json", "-rA")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["lint: 0 finding(s) in 2 pending file(s) of group(s) db"
                                 " (1 more of rules the groups ignore; 2 met by the groups'"
                                 " lock_timeout/statement_timeout)"])  # fmt: skip
    assert report(pytester)["lint"] == [] and has_table(pg_database, "users")


def test_a_group_with_only_a_lock_timeout_still_hears_of_statement_timeout(
    pytester: pytest.Pytester, pg_database: str
) -> None:
    args = project(pytester, pg_database, {"001_users.sql": TABLE, "002_index.sql": INDEX},
                   lock_timeout="2s")  # fmt: skip
    result = pytester.runpytest(*args, "--dry-run", "--deploy-report=r.json")
    result.assert_outcomes(passed=5)
    found = {rule for _, _, rule in rules(report(pytester))}
    assert "require-statement-timeout" in found and "require-lock-timeout" not in found


def test_an_ignored_rule_squawk_does_not_know_is_named(
    pytester: pytest.Pytester, pg_database: str
) -> None:
    lint = {"ignore": ["require-concurent-index-creation"]}  # a typo
    args = project(pytester, pg_database, {"001_users.sql": TABLE}, lint=lint)
    result = pytester.runpytest(*args, "--dry-run")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines([
        "*DeployWarning: lint: group db's lint.ignore names 'require-concurent-index-creation',"
        " which squawk does not know: correct the rule's name (its rules:"
        " https://squawkhq.com/docs/rules)",
    ])  # fmt: skip


def test_findings_are_in_the_json_report_and_junit_facts(
    pytester: pytest.Pytester, pg_database: str
) -> None:
    args = project(pytester, pg_database, {"001_users.sql": TABLE, "002_index.sql": INDEX})
    args.append("--dry-run")
    xunit1 = ["--deploy-report=r.json", "--junitxml=j.xml", "-o", "junit_family=xunit1"]
    pytester.runpytest(*args, *xunit1, "-o", "junit_logging=all").assert_outcomes(passed=5)
    finding = next(f for f in report(pytester)["lint"] if f["rule"] == RULE)
    assert finding == {
        "group": "db", "file": "m/002_index.sql", "line": 2, "column": 1, "rule": RULE,
        "level": "warning",
        "message": "During normal index creation, table updates are blocked, but reads are"
        " still allowed.",
        "fix": "Use `concurrently` to avoid blocking writes.",
    }  # fmt: skip
    case = next(
        c for c in ET.parse(pytester.path / "j.xml").iter("testcase")
        if c.get("name", "").endswith("preflight · migrations-drift")
    )  # fmt: skip
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["lint"].startswith("3 finding(s) in 2 pending file(s) of group(s) db")
    listed = [v for k, v in props.items() if k.startswith("lint[")]
    assert any(v.startswith(f"m/002_index.sql:2 {RULE}: ") for v in listed)
    # pytest's default xunit2 (no testcase properties): the same facts in <system-out>,
    # and an xdist worker's report reaches the controller's JSON report with them
    xunit2 = ["--deploy-report=x.json", "--junitxml=x.xml", "-o", "junit_logging=system-out"]
    xunit2 += ["-p", "xdist", "-n", "1"]
    pytester.runpytest(*args, *xunit2).assert_outcomes(passed=5)
    assert rules(report(pytester, "x.json")) == rules(report(pytester))
    out = "".join(e.text or "" for e in ET.parse(pytester.path / "x.xml").iter("system-out"))
    assert re.search(rf"^lint\[\d\]: m/002_index.sql:2 {RULE}: ", out, re.M)


def test_a_file_run_outside_a_transaction_is_linted_as_such(
    pytester: pytest.Pytester, pg_database: str
) -> None:
    """The built-in executor runs a file in one transaction, so an index on a table made in
    it blocks nobody; a -- deploy:no-transaction file commits the table first."""
    both = TABLE + "CREATE INDEX users_email ON users (email);\n"
    files = {"001_both.sql": both, "002_both.sql": "-- deploy:no-transaction\n" + both.replace(
        "users", "people")}  # fmt: skip
    args = project(pytester, pg_database, files)
    pytester.runpytest(*args, "--dry-run", "--deploy-report=r.json").assert_outcomes(passed=5)
    flagged = {file for file, _, rule in rules(report(pytester)) if rule == RULE}
    assert flagged == {"m/002_both.sql"}


@pytest.fixture
def recording_squawk(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A squawk stand-in named by DEPLOY_SQUAWK: it records each call and finds nothing."""
    calls = pytester.path / "squawk-calls.txt"
    stand_in = pytester.path / "bin" / "squawk"
    stand_in.parent.mkdir()
    stand_in.write_text(f'#!/bin/sh\necho "$@" >> {calls}\necho "[]"\n')
    stand_in.chmod(0o755)
    monkeypatch.setenv("DEPLOY_SQUAWK", str(stand_in))
    return calls


def test_lint_off_runs_no_squawk(pytester: pytest.Pytester, pg_database: str,
                                 recording_squawk: Path) -> None:  # fmt: skip
    args = project(pytester, pg_database, {"002_index.sql": INDEX}, lint="off")
    pytester.runpytest(*args, "--dry-run").assert_outcomes(passed=4)
    assert not recording_squawk.exists()
    # the default (warn) runs it, once, on the pending file
    project(pytester, pg_database, {})
    pytester.runpytest(*args, "--dry-run").assert_outcomes(passed=4)
    assert recording_squawk.read_text().split("\n")[:-1] == [
        "--reporter json --assume-in-transaction -- m/002_index.sql"
    ]


def test_squawk_missing_is_a_warning_or_with_error_a_failure(
    pytester: pytest.Pytester, pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOY_SQUAWK", str(pytester.path / "no-squawk"))
    files = {"001_users.sql": TABLE}
    args = project(pytester, pg_database, files)
    warned = pytester.runpytest(*args, "--dry-run")
    warned.assert_outcomes(passed=4)
    warned.stdout.fnmatch_lines([
        f"*DeployWarning: lint: squawk was not found: DEPLOY_SQUAWK={pytester.path}/no-squawk"
        " names no executable, so the 1 pending migration(s) of group(s) db were not linted:"
        " install it with `pip install squawk-cli` (pytest-deploy depends on it), point"
        " DEPLOY_SQUAWK at a squawk binary, or set lint: off for these groups",
    ])  # fmt: skip
    project(pytester, pg_database, files, lint="error")
    failed = pytester.runpytest(*args)
    failed.assert_outcomes(passed=3, failed=1, skipped=1)
    failed.stdout.fnmatch_lines(["lint: squawk was not found: *`pip install squawk-cli`*"
                                 " Nothing was run."])  # fmt: skip
    assert not has_table(pg_database, "users")


def test_a_sqlite_database_is_not_linted_unless_asked(pytester: pytest.Pytester) -> None:
    files = {"001_users.sql": TABLE, "002_index.sql": INDEX}
    args = project(pytester, "sqlite:///app.db", files)
    quiet = pytester.runpytest(*args, "--dry-run", "--deploy-report=r.json", "-rA")
    quiet.assert_outcomes(passed=5)
    assert report(pytester)["lint"] == []
    quiet.stdout.fnmatch_lines([
        "lint: group db not linted: its database is SQLite and squawk knows PostgreSQL (set"
        " lint: warn to lint it anyway)",
    ])  # fmt: skip
    project(pytester, "sqlite:///app.db", files, lint="warn")
    pytester.runpytest(*args, "--dry-run", "--deploy-report=r.json").assert_outcomes(passed=5)
    assert ("m/002_index.sql", 2, RULE) in rules(report(pytester))


@pytest.mark.parametrize(
    ("lint", "expected"),
    [
        ("warning", "groups[0].lint: expected one of 'warn', 'error', 'off', got 'warning' (a"
                    " string). Write warn (the default: *"),
        ({"mode": "error", "ignore": "require-lock-timeout"},
         "groups[0].lint.ignore: expected a list, got 'require-lock-timeout' (a string). *"),
        ({"mod": "error"}, "groups[0].lint: unknown key 'mod'. Did you mean 'mode'? *"),
    ],
)  # fmt: skip
def test_a_bad_lint_key_is_one_paragraph(pytester: pytest.Pytester, lint: Any, expected: str):
    project(pytester, "sqlite:///app.db", {"001_users.sql": TABLE}, lint=lint)
    result = pytester.runpytest("--deploy-target=t")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"deploy.yaml, line *: {expected}".replace("[", "[[]")])


def test_lint_on_a_group_without_migrations_is_a_config_error(pytester: pytest.Pytester):
    write_project(pytester, {"groups": [{"name": "b", "order": 1, "build_command": "true",
                                         "lint": "warn"}]})  # fmt: skip
    result = pytester.runpytest("--deploy-target=t")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "deploy.yaml, line *: groups[[]0].lint: group 'b' does not track migrations, so it has no"
        " pending migrations to lint. Remove lint, or list .sql migrations in file_patterns"
        " (or set track_migrations: true).",
    ])  # fmt: skip


def test_the_history_page_lists_a_runs_findings(
    pytester: pytest.Pytester, pg_database: str
) -> None:
    files = {"001_users.sql": TABLE, "002_index.sql": INDEX}
    args = project(pytester, pg_database, files, lint={"mode": "error", "ignore": [
        "require-lock-timeout", "require-statement-timeout"]})  # fmt: skip
    pytester.runpytest(*args).assert_outcomes(passed=3, failed=1, skipped=2)
    project(pytester, pg_database, files, lint={"ignore": ["require-lock-timeout"]})
    pytester.runpytest(*args, "--deploy-html=h.html").assert_outcomes(passed=6)
    text = (pytester.path / "h.html").read_text()
    found = re.search(r'<script type="application/json" id="history-data">(.*?)</script>', text)
    assert found is not None
    data = json.loads(found.group(1))
    lint = {run[0]: [data["strings"][i] for i in run[13]] for run in data["runs"]}
    assert [text.split(":", 2)[:2] for text in lint[1]] == [["m/002_index.sql", f"2 {RULE}"]]
    assert sorted(t.split(" ")[1].rstrip(":") for t in lint[2]) == [
        RULE,
        "require-statement-timeout",
    ]


def test_the_page_shows_the_findings_on_the_runs_entry(
    pytester: pytest.Pytester, pg_database: str
) -> None:
    from tests.history_site import browser_session

    args = project(pytester, pg_database, {"001_users.sql": TABLE, "002_index.sql": INDEX})
    pytester.runpytest(*args, "--deploy-html=h.html").assert_outcomes(passed=6)
    for browser in browser_session():
        page = browser.new_page()
        page.goto((pytester.path / "h.html").resolve().as_uri())
        items = page.locator("#detail #lint-findings li")
        texts = [items.nth(i).inner_text() for i in range(items.count())]
        page.close()
    assert any(t.startswith(f"m/002_index.sql:2 {RULE}: ") for t in texts), texts
