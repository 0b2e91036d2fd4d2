"""The promotion gate (issue 23 #5): ``targets.<name>.requires`` lets a deployment run
only when the same config and the same migrations last succeeded on each required target."""

from __future__ import annotations

import hashlib
import html
import json

import pytest

from tests.history_site import cli
from tests.projects import write_config

MIGRATIONS = {
    "001_init.sql": "CREATE TABLE t1 (id int);\n",
    "002_more.sql": "CREATE TABLE t2 (id int);\n",
}


def gate_project(
    pytester: pytest.Pytester,
    requires: object = "staging",
    *,
    extra: dict | None = None,
    more: tuple[dict, ...] = (),
) -> None:
    """Project ``p``: one tracked group (and the groups ``more``), each target its own
    SQLite database."""
    (pytester.path / "m").mkdir(exist_ok=True)
    for name, text in MIGRATIONS.items():
        (pytester.path / "m" / name).write_text(text)
    targets = {
        name: {"env": {"DATABASE_URL": f"sqlite:///{name}.db"}}
        for name in ("staging", "qa", "production")
    }
    targets["production"]["requires"] = requires
    groups = [{"name": "db", "order": 1, "file_patterns": ["m/*.sql"], **(extra or {})}, *more]
    write_config(pytester, {"project": "p", "targets": targets, "groups": groups})


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> list[str]:
    """The store options of a run: the embedded SQLite store, or a PostgreSQL one."""
    if request.param == "sqlite":
        return []
    return [f"--deploy-store={request.getfixturevalue('pg_database')}"]


def deploy(pytester: pytest.Pytester, store: list[str], target: str, *args: str):
    return pytester.runpytest(f"--deploy-target={target}", *store, "-v", *args)


def config_sha(pytester: pytest.Pytester) -> str:
    return hashlib.sha256((pytester.path / "deploy.yaml").read_bytes()).hexdigest()


def paragraph(result: pytest.RunResult) -> str:
    """The gate's failure paragraph."""
    [line] = [x for x in result.stdout.lines if x.startswith("promotion gate:")]
    return line


def tables(pytester: pytest.Pytester, target: str) -> set[str]:
    import sqlite3

    path = pytester.path / f"{target}.db"
    if not path.exists():
        return set()
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows if name in ("t1", "t2", "t3")}


def test_production_runs_only_after_the_same_deployment_succeeded_on_staging(
    pytester: pytest.Pytester, store: list[str]
) -> None:
    gate_project(pytester)
    planned = deploy(pytester, store, "production", "--dry-run")
    assert planned.ret == pytest.ExitCode.TESTS_FAILED  # the plan is honest: it would fail
    planned.stdout.fnmatch_lines(["*production::preflight::gate FAILED*"])

    assert deploy(pytester, store, "staging", "--dry-run").ret == 0  # a plan opens no gate
    first = deploy(pytester, store, "production")
    assert first.ret == pytest.ExitCode.TESTS_FAILED
    first.stdout.fnmatch_lines(
        [
            "*production::preflight::gate FAILED*",
            "*production::db::deploy[[]m/001_init.sql[]] SKIPPED*not run*",
        ]
    )
    out = first.stdout.str()
    assert (
        "promotion gate: target 'production' requires 'staging', and what this run would"
        " deploy has not succeeded there: 'staging' has no successful deployment of project"
        " 'p'." in out
    ), out
    assert "Deploy it to 'staging' first (pytest --deploy-target=staging)" in out, out
    assert "Traceback" not in out
    assert tables(pytester, "production") == set()

    staged = deploy(pytester, store, "staging")
    assert staged.ret == 0, staged.stdout.str()
    assert "preflight::gate" not in staged.stdout.str()  # staging requires nothing

    promoted = deploy(pytester, store, "production", "-rA")
    assert promoted.ret == 0, promoted.stdout.str()
    promoted.stdout.fnmatch_lines(
        [
            "*production::preflight::gate PASSED*",
            f"*requires staging: ✓ same config {config_sha(pytester)[:12]} succeeded there at *",
        ]
    )
    assert tables(pytester, "production") == {"t1", "t2"}


def test_a_migration_edited_or_added_after_staging_fails_naming_the_file(
    pytester: pytest.Pytester, store: list[str]
) -> None:
    gate_project(pytester)
    assert deploy(pytester, store, "staging").ret == 0
    (pytester.path / "m" / "002_more.sql").write_text("CREATE TABLE t2 (id int, x int);\n")
    (pytester.path / "m" / "003_new.sql").write_text("CREATE TABLE t3 (id int);\n")
    result = deploy(pytester, store, "production")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    assert "1 migration(s) not applied there: m/003_new.sql" in out, out
    assert "1 migration(s) applied there with another checksum: m/002_more.sql (" in out, out
    assert "config differs" not in out  # the config is the same
    assert tables(pytester, "production") == set()

    (pytester.path / "m" / "002_more.sql").write_text(MIGRATIONS["002_more.sql"])
    result = deploy(pytester, store, "production")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    why = paragraph(result)
    assert "not applied there: m/003_new.sql" in why and "m/002_more.sql" not in why, why
    assert deploy(pytester, store, "staging").ret == 0
    assert deploy(pytester, store, "production").ret == 0
    assert tables(pytester, "production") == {"t1", "t2", "t3"}


def test_a_config_change_after_staging_fails_naming_both_shas(
    pytester: pytest.Pytester, store: list[str]
) -> None:
    gate_project(pytester)
    assert deploy(pytester, store, "staging").ret == 0
    staged_sha = config_sha(pytester)
    gate_project(pytester, extra={"post_deploy": ["echo migrated"]})
    result = deploy(pytester, store, "production")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    assert (
        f"the config differs: this run's is {config_sha(pytester)[:12]}, the last success on"
        f" 'staging' used {staged_sha[:12]} (deployment " in out
    ), out
    assert "migration(s)" not in paragraph(result), paragraph(result)
    assert tables(pytester, "production") == set()


def test_several_required_targets_each_must_have_succeeded(
    pytester: pytest.Pytester, store: list[str]
) -> None:
    gate_project(pytester, requires=["staging", "qa"])
    assert deploy(pytester, store, "staging").ret == 0
    result = deploy(pytester, store, "production")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    assert "target 'production' requires 'staging' and 'qa'" in out, out
    assert "'qa' has no successful deployment of project 'p'" in out, out
    assert "It did succeed on 'staging' (deployment " in out, out
    assert "Deploy it to 'qa' first (pytest --deploy-target=qa)" in out, out
    assert deploy(pytester, store, "qa").ret == 0
    passed = deploy(pytester, store, "production", "-rA")
    assert passed.ret == 0, passed.stdout.str()
    passed.stdout.fnmatch_lines(
        ["*requires staging: ✓ same config*", "*requires qa: ✓ same config*"]
    )


def test_one_run_of_both_targets_deploys_the_required_one_first(pytester: pytest.Pytester) -> None:
    gate_project(pytester)
    result = pytester.runpytest("--deploy-target=production", "--deploy-target=staging", "-v")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*staging::db::deploy[[]m/002_more.sql[]] PASSED*",
            "*production::preflight::gate PASSED*",
            "*production::db::deploy[[]m/002_more.sql[]] PASSED*",
        ]
    )
    assert tables(pytester, "production") == {"t1", "t2"}


def test_the_history_page_shows_each_targets_gate(pytester: pytest.Pytester) -> None:
    gate_project(pytester)
    assert deploy(pytester, [], "production", "--deploy-html=page.html").ret == 1
    page = html.unescape((pytester.path / "page.html").read_text())
    assert "production requires staging: ✗ 'staging' has no successful deployment" in page
    assert deploy(pytester, [], "staging").ret == 0
    assert deploy(pytester, [], "production", "--deploy-html=page.html").ret == 0
    page = html.unescape((pytester.path / "page.html").read_text())
    sha = config_sha(pytester)[:12]
    assert f"production requires staging: ✓ same config {sha} succeeded there at " in page, page
    (pytester.path / "m" / "003_new.sql").write_text("CREATE TABLE t3 (id int);\n")
    (pytester.path / "pytest.ini").write_text("[pytest]\n")
    made = cli(pytester.path, "history", "p", "--html", "all.html")
    assert made.returncode == 0, made.stderr
    page = html.unescape((pytester.path / "all.html").read_text())
    assert "production requires staging: ✗ 1 migration(s) not applied there: m/003_new.sql" in page
    assert "staging requires" not in page  # staging has no gate


@pytest.mark.parametrize(
    ("targets", "line", "field", "words"),
    [
        ({"staging": {}, "production": {"requires": "stagign"}}, 9,
         "targets.production.requires",
         ["'stagign' is not a target declared under `targets`", "Did you mean 'staging'?"]),
        ({"staging": {}, "production": {"requires": ["staging", "production"]}}, 11,
         "targets.production.requires[1]", ["a target cannot require itself"]),
        ({"staging": {"requires": "production"}, "production": {"requires": "staging"}}, 8,
         "targets.staging.requires",
         ["requirements form a cycle: staging requires production, which requires staging"]),
    ],
    ids=["unknown", "self", "cycle"],
)  # fmt: skip
def test_bad_requires_is_a_config_error(
    pytester: pytest.Pytester, targets: dict, line: int, field: str, words: list[str]
) -> None:
    groups = [{"name": "build", "order": 1, "build_command": "true"}]
    write_config(pytester, {"project": "p", "groups": groups, "targets": targets})
    result = pytester.runpytest("--deploy-target=production")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    assert f"deploy.yaml, line {line}: {field}: " in out, out
    for word in words:
        assert word in out, out
    assert "Traceback" not in out


def test_requires_takes_a_name_or_a_list_of_names(pytester: pytest.Pytester) -> None:
    from deploy_plugin.config import load_config

    gate_project(pytester, requires=["qa", "staging"])
    assert load_config(pytester.path / "deploy.yaml").targets["production"].requires == (
        "qa",
        "staging",
    )
    (pytester.path / "pytest.ini").write_text("[pytest]\n")
    shown = cli(pytester.path, "config", "show", "p", "--json")
    assert json.loads(shown.stdout)["targets"]["production"]["requires"] == ["qa", "staging"]
    gate_project(pytester, requires=3)
    result = pytester.runpytest("--deploy-target=production")
    result.stdout.fnmatch_lines(["*targets.production.requires: expected*"])


def test_the_gate_checks_only_what_deploy_to_applies(
    pytester: pytest.Pytester, store: list[str]
) -> None:
    gate_project(pytester)
    (pytester.path / "m" / "003_new.sql").write_text("CREATE TABLE t3 (id int);\n")
    cut = "--deploy-to=m/002_more.sql"
    assert deploy(pytester, store, "staging", cut).ret == 0
    promoted = deploy(pytester, store, "production", cut)
    assert promoted.ret == 0, promoted.stdout.str()
    promoted.stdout.fnmatch_lines(["*production::preflight::gate PASSED*"])
    assert tables(pytester, "production") == {"t1", "t2"}
    result = deploy(pytester, store, "production")  # 003 too: staging has not applied it
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "1 migration(s) not applied there: m/003_new.sql" in paragraph(result)


def test_one_run_of_both_targets_with_deploy_to(pytester: pytest.Pytester) -> None:
    gate_project(pytester)
    (pytester.path / "m" / "003_new.sql").write_text("CREATE TABLE t3 (id int);\n")
    result = pytester.runpytest(
        "--deploy-target=production", "--deploy-target=staging", "--deploy-to=002_more.sql", "-v"
    )
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*production::preflight::gate PASSED*"])
    assert tables(pytester, "staging") == tables(pytester, "production") == {"t1", "t2"}


def history_gate(pytester: pytest.Pytester) -> str:
    """Production's gate line on the history page made by the CLI."""
    (pytester.path / "pytest.ini").write_text("[pytest]\n")
    made = cli(pytester.path, "history", "p", "--html", "all.html")
    assert made.returncode == 0, made.stderr
    page = html.unescape((pytester.path / "all.html").read_text())
    [line] = [x for x in page.splitlines() if "production requires staging:" in x]
    return line


def test_the_history_page_sees_an_edited_repeatable_as_preflight_does(
    pytester: pytest.Pytester,
) -> None:
    gate_project(pytester)
    view = pytester.path / "m" / "R__view.sql"
    view.write_text("CREATE VIEW IF NOT EXISTS v AS SELECT 1 AS one;\n")
    assert deploy(pytester, [], "staging").ret == 0
    assert deploy(pytester, [], "production").ret == 0
    assert "production requires staging: ✓" in history_gate(pytester)
    view.write_text("DROP VIEW IF EXISTS v;\nCREATE VIEW v AS SELECT 2 AS two;\n")
    result = deploy(pytester, [], "production")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "m/R__view.sql (repeatable: there " in paragraph(result), paragraph(result)
    line = history_gate(pytester)
    assert "✗ 1 migration(s) not applied there: m/R__view.sql (repeatable: there " in line, line


def test_a_group_only_for_the_requiring_target_does_not_count_there(
    pytester: pytest.Pytester,
) -> None:
    seed = {"name": "prodseed", "order": 2, "file_patterns": ["prodseed/*.sql"]}
    gate_project(pytester, more=({**seed, "targets": ["production"]},))
    (pytester.path / "prodseed").mkdir()
    (pytester.path / "prodseed" / "001_seed.sql").write_text("CREATE TABLE t3 (id int);\n")
    assert deploy(pytester, [], "staging").ret == 0
    assert "production requires staging: ✓" in history_gate(pytester)
    promoted = deploy(pytester, [], "production")
    assert promoted.ret == 0, promoted.stdout.str()
    assert tables(pytester, "production") == {"t1", "t2", "t3"}


def test_a_dry_run_of_both_targets_says_what_the_real_run_does(
    pytester: pytest.Pytester,
) -> None:
    gate_project(pytester)
    assert deploy(pytester, [], "qa").ret == 0  # the store exists: a plan can be written
    both = ["--deploy-target=production", "--deploy-target=staging", "-v", "-rA"]
    planned = pytester.runpytest(*both, "--dry-run", "--deploy-plan-out=plan.json")
    assert planned.ret == 0, planned.stdout.str()
    planned.stdout.fnmatch_lines(
        [
            "*production::preflight::gate PASSED*",
            "*requires staging: ✓ checked against its deployment earlier in this run*",
        ]
    )
    assert (pytester.path / "plan.json").exists()
    assert tables(pytester, "staging") == set()
    applied = pytester.runpytest(*both, "--deploy-plan=plan.json")
    assert applied.ret == 0, applied.stdout.str()
    assert tables(pytester, "production") == {"t1", "t2"}


def test_a_dry_run_whose_required_target_would_fail_fails_the_gate(
    pytester: pytest.Pytester,
) -> None:
    check = {"name": "check", "order": 2, "build_command": "true", "targets": ["staging"]}
    gate_project(pytester, more=({**check, "required_env_vars": ["GATE_NOT_SET_ANYWHERE"]},))
    both = ["--deploy-target=production", "--deploy-target=staging", "-v"]
    planned = pytester.runpytest(*both, "--dry-run")
    real = pytester.runpytest(*both)
    for result in (planned, real):
        assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
        result.stdout.fnmatch_lines(["*production::preflight::gate FAILED*"])


def test_a_closed_gate_is_recorded_refused_never_as_the_targets_state(
    pytester: pytest.Pytester,
) -> None:
    """Nothing ran: the store records the run ``refused`` (issue 21's rule for refusals),
    so production's last state stays its last real deployment."""
    from deploy_plugin.store import open_store

    gate_project(pytester)
    assert deploy(pytester, [], "production").ret == pytest.ExitCode.TESTS_FAILED
    with open_store(None, pytester.path) as opened:
        assert [d.status for d in opened.deployments("p", "production")] == ["refused"]


#: staging's step holds until production's deployment has ended, or 3 s: under xdist, a
#: production deployed beside staging (another worker) would run its gate meanwhile.
HOLD_UNTIL_PRODUCTION_ENDED = (
    "python3 -c \"import sqlite3, time\n"
    "end = time.monotonic() + 3\n"
    "while time.monotonic() < end:\n"
    "    db = sqlite3.connect('.deploy/state.sqlite3')\n"
    "    rows = db.execute(\\\"SELECT status FROM deployments WHERE target_name = 'production'"
    " AND status != 'running'\\\").fetchall()\n"
    "    db.close()\n"
    "    if rows: break\n"
    "    time.sleep(0.05)\""
)


def test_under_xdist_a_required_target_deploys_first_on_the_same_worker(
    pytester: pytest.Pytester,
) -> None:
    """``-n 2`` with staging and production: production's deployment joins staging's unit
    of work (one worker, staging first), so its gate sees staging's success."""
    hold = {"name": "hold", "order": 2, "targets": ["staging"],
            "deploy_command": HOLD_UNTIL_PRODUCTION_ENDED}  # fmt: skip
    gate_project(pytester, more=(hold,))
    result = pytester.runpytest_subprocess(
        "--deploy-target=staging", "--deploy-target=production", "-n", "2", "-p", "xdist",
        "--deploy-report=r.json",
    )  # fmt: skip
    assert result.ret == 0, result.stdout.str()
    reports = json.loads((pytester.path / "r.json").read_text())["deployments"]
    assert {(r["target"], r["status"]) for r in reports} == {
        ("staging", "success"), ("production", "success")
    }
    assert tables(pytester, "production") == {"t1", "t2"}
