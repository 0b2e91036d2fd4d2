"""Saved plans: ``--dry-run --deploy-plan-out=FILE`` then ``--deploy-plan=FILE`` runs exactly
those steps, once, and refuses (exit 4, one paragraph naming each difference) when anything
it was made from changed."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from deploy_plugin.store import MigrationRecord, open_store
from deploy_plugin.store.records import utcnow
from tests.projects import write_project

SECRET = "plan-canary-4242"


def project(pytester: pytest.Pytester) -> Path:
    """Project ``p`` (targets t and u): a build, two tracked migrations applied by a shell
    command, a second group; every command appends what it is to ran.log."""
    (pytester.path / "migrations").mkdir()
    (pytester.path / "migrations/001_a.sql").write_text("select 1;\n")
    (pytester.path / "migrations/002_b.sql").write_text("select 2;\n")
    config = write_project(
        pytester,
        {
            "targets": {"t": {}, "u": {}},
            "groups": [
                {
                    "name": "db",
                    "order": 1,
                    "file_patterns": ["migrations/*.sql"],
                    "build_command": "echo build >> ran.log",
                    "deploy_command": "echo apply {file} >> ran.log",
                    "required_env_vars": ["TOKEN"],
                },
                {"name": "web", "order": 2, "deploy_command": "echo web >> ran.log"},
            ],
        },
    )
    with open_store(None, pytester.path) as store:
        store.set_env("p", "t", "TOKEN", SECRET)
        store.set_env("p", "u", "TOKEN", SECRET)
    return config


def make_plan(pytester: pytest.Pytester, *args: str) -> dict:
    result = pytester.runpytest(
        "--deploy-target=t", "--dry-run", "--deploy-plan-out=plan.json", *args
    )
    assert result.ret == 0, result.stdout.str()
    assert not (pytester.path / "ran.log").exists()
    result.stdout.fnmatch_lines(["*plan * written to plan.json; apply it once with: pytest*"])
    return json.loads((pytester.path / "plan.json").read_text())


def apply(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--deploy-target=t", "--deploy-plan=plan.json", *args)


def ran(pytester: pytest.Pytester) -> list[str]:
    log = pytester.path / "ran.log"
    return log.read_text().splitlines() if log.exists() else []


def deployments(pytester: pytest.Pytester) -> list[tuple]:
    db = sqlite3.connect(pytester.path / ".deploy/state.sqlite3")
    try:
        return db.execute("SELECT id, status, dry_run FROM deployments ORDER BY id").fetchall()
    finally:
        db.close()


def paragraph(result: pytest.RunResult) -> str:
    text = result.stdout.str() + result.stderr.str()
    lines = [line for line in text.splitlines() if "cannot be applied" in line]
    assert len(lines) == 1, text
    return lines[0]


def test_the_plan_file_holds_what_decides_the_run(pytester: pytest.Pytester) -> None:
    project(pytester)
    plan = make_plan(pytester)
    text = (pytester.path / "plan.json").read_text()
    assert SECRET not in text
    assert plan["format"] == "pytest-deploy-plan" and len(plan["id"]) == 32
    (deployment,) = plan["deployments"]
    assert (deployment["project"], deployment["target"]) == ("p", "t")
    assert deployment["config"] == "deploy.yaml"
    assert len(deployment["config_sha256"]) == 64
    assert set(deployment["files"]) == {"migrations/001_a.sql", "migrations/002_b.sql"}
    assert set(deployment["env"]) == {"TOKEN"}  # the target's vars, not the process's
    assert deployment["applied"] == {}
    steps = {s["node_id"]: s for s in deployment["steps"]}
    build = steps["deploy.yaml::t::db::build"]
    assert build["command"] == "echo build >> ran.log"
    assert len(build["command_sha256"]) == 64
    assert not any("preflight" in node_id for node_id in steps)


def test_applying_runs_exactly_the_planned_commands_once(pytester: pytest.Pytester) -> None:
    project(pytester)
    plan = make_plan(pytester, "--group=db")  # the web group is not in the plan
    planned = [s["command"] for s in plan["deployments"][0]["steps"]]

    result = apply(pytester)  # no --group: the plan decides what runs
    assert result.ret == 0, result.stdout.str()
    assert ran(pytester) == [c.removesuffix(" >> ran.log").removeprefix("echo ") for c in planned]
    assert ran(pytester) == [
        "build",
        "apply migrations/001_a.sql",
        "apply migrations/002_b.sql",
    ]
    with open_store(None, pytester.path) as store:
        (use,) = store.plan_uses(plan["id"])
    assert (use.project, use.target, use.deployment_id) == ("p", "t", deployments(pytester)[-1][0])

    again = apply(pytester)
    assert again.ret == pytest.ExitCode.USAGE_ERROR
    assert "its id was already used: applied to p → t by" in paragraph(again)
    assert len(ran(pytester)) == 3  # nothing ran the second time


def change_config(pytester: pytest.Pytester) -> str:
    path = pytester.path / "deploy.yaml"
    path.write_text(path.read_text().replace("echo web", "echo WEB"))
    return "the config deploy.yaml changed"


def change_file(pytester: pytest.Pytester) -> str:
    (pytester.path / "migrations/002_b.sql").write_text("select 22;\n")
    return "file migrations/002_b.sql changed"


def add_file(pytester: pytest.Pytester) -> str:
    (pytester.path / "migrations/003_c.sql").write_text("select 3;\n")
    return "file migrations/003_c.sql is new"


def change_env(pytester: pytest.Pytester) -> str:
    with open_store(None, pytester.path) as store:
        store.set_env("p", "t", "TOKEN", SECRET + "-rotated")
    return "env var TOKEN changed value"


def add_env(pytester: pytest.Pytester) -> str:
    with open_store(None, pytester.path) as store:
        store.set_env("p", "t", "EXTRA", "something")
    return "env var EXTRA was added"


def change_history(pytester: pytest.Pytester) -> str:
    record = MigrationRecord("migrations/001_a.sql", "0" * 64, utcnow(), "bob", 1, "success")
    with open_store(None, pytester.path) as store:
        store.record_migration("p", "t", record)
    return "migration history: migrations/001_a.sql was applied since"


@pytest.mark.parametrize(
    "change",
    [change_config, change_file, add_file, change_env, add_env, change_history],
    ids=lambda f: f.__name__,
)
def test_a_change_since_the_plan_is_refused_by_name(
    pytester: pytest.Pytester, change: Callable[[pytest.Pytester], str]
) -> None:
    project(pytester)
    make_plan(pytester)
    before = deployments(pytester)
    named = change(pytester)
    result = apply(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = paragraph(result)
    assert named in text and "Nothing was run" in text
    assert SECRET not in result.stdout.str() + result.stderr.str()
    assert ran(pytester) == []
    assert deployments(pytester) == before  # the store is unchanged
    with open_store(None, pytester.path) as store:
        assert store.plan_uses(json.loads((pytester.path / "plan.json").read_text())["id"]) == []


def test_every_difference_is_named_in_one_paragraph(pytester: pytest.Pytester) -> None:
    project(pytester)
    make_plan(pytester)
    named = [change_config(pytester), change_file(pytester), change_env(pytester)]
    text = paragraph(apply(pytester))
    assert all(name in text for name in named), text


def test_a_plan_for_another_target_is_refused(pytester: pytest.Pytester) -> None:
    project(pytester)
    make_plan(pytester)
    result = pytester.runpytest("--deploy-target=u", "--deploy-plan=plan.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = paragraph(result)
    assert "the plan deploys project 'p' to target 't', this run does not" in text
    assert "this run deploys project 'p' to target 'u', which the plan does not" in text
    assert ran(pytester) == []


def test_a_command_changed_by_an_option_is_refused(pytester: pytest.Pytester) -> None:
    """A step's command can change while the config and files do not: the health check's
    URL comes from --deploy-health-url. The step's command hash tells."""
    write_project(
        pytester,
        {
            "targets": {"t": {}},
            "health_check": {"url": "http://127.0.0.1:9/health"},
            "groups": [{"name": "web", "order": 1, "deploy_command": "echo web >> ran.log"}],
        },
    )
    open_store(None, pytester.path).close()  # a plan is signed with a key the store keeps
    make_plan(pytester, "--deploy-health-url=http://127.0.0.1:9/planned")
    result = apply(pytester, "--deploy-health-url=http://127.0.0.1:9/other")
    assert result.ret == 4  # refused before anything ran (README "Exit codes")
    text = paragraph(result)
    assert "step deploy.yaml::t::health_check has another command" in text, text
    assert "the config" not in text, text  # the config did not change: the command did
    assert ran(pytester) == []


def test_env_hashes_tell_no_equal_values(pytester: pytest.Pytester) -> None:
    """An env hash covers the plan's id and the variable's name with its value: two
    variables holding one value, or one value in two plans, hash differently, so plan
    files never show that two secrets are equal or that one stayed the same."""
    project(pytester)
    with open_store(None, pytester.path) as store:
        store.set_env("p", "t", "OTHER", SECRET)  # TOKEN's value
    first = make_plan(pytester)["deployments"][0]["env"]
    second = make_plan(pytester)["deployments"][0]["env"]
    assert first["TOKEN"] != first["OTHER"]
    assert first["TOKEN"] != second["TOKEN"] and first["OTHER"] != second["OTHER"]
    assert apply(pytester).ret == 0  # the second plan applies: the hashes still compare


def test_a_plan_for_another_project_is_refused(pytester: pytest.Pytester) -> None:
    for name in ("a", "b"):
        folder = pytester.mkdir(name)
        (folder / "deploy.yaml").write_text(
            f"project: {name}\ntargets: {{t: {{}}}}\n"
            "groups: [{name: g, order: 1, deploy_command: 'echo $PWD >> ../ran.log'}]\n"
        )
    open_store(None, pytester.path).close()  # a plan is signed by the store's key
    assert (
        pytester.runpytest("a", "--deploy-target=t", "--dry-run", "--deploy-plan-out=plan.json").ret
        == 0
    )
    result = pytester.runpytest("b", "--deploy-target=t", "--deploy-plan=plan.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = paragraph(result)
    assert "the plan deploys project 'a' to target 't'" in text
    assert "this run deploys project 'b'" in text
    assert ran(pytester) == []


def test_no_plan_is_written_when_the_dry_run_fails(pytester: pytest.Pytester) -> None:
    project(pytester)
    with open_store(None, pytester.path) as store:
        store.delete_env("p", "t", "TOKEN")  # preflight::env fails
    result = pytester.runpytest("--deploy-target=t", "--dry-run", "--deploy-plan-out=plan.json")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*no plan written to plan.json: the dry run of p → t failed*"])
    assert not (pytester.path / "plan.json").exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read the plan file"),
        ('{"format": "pytest-deploy-plan",\n  "id": }', "line 2, column 9: not valid JSON"),
        ('{"format": "something else"}', "not a pytest-deploy plan"),
        ('{"format": "pytest-deploy-plan", "version": 2, "id": "x"}', "missing key 'deployments'"),
        ('{"format": "pytest-deploy-plan", "version": 1, "id": "x"}', "unsupported version 1"),
    ],
    ids=["missing", "not-json", "other-format", "missing-key", "version-1-unsigned"],
)
def test_a_malformed_plan_file_is_one_paragraph(
    pytester: pytest.Pytester, content: str | None, expected: str
) -> None:
    project(pytester)
    if content is not None:
        (pytester.path / "plan.json").write_text(content)
    # a subprocess: the paragraph on stderr, as a user sees it
    result = pytester.runpytest_subprocess("--deploy-target=t", "--deploy-plan=plan.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stdout.str() + result.stderr.str()
    assert expected in text and "--deploy-plan plan.json" in text
    assert "Traceback" not in text
    assert ran(pytester) == []


@pytest.mark.parametrize(
    ("args", "expected", "code"),
    [
        (["--deploy-plan-out=plan.json"], "add --dry-run", 4),
        (["--dry-run", "--deploy-plan=plan.json"], "drop --dry-run", 4),
        (["--deploy-plan=plan.json", "--deploy-plan-out=x.json", "--dry-run"], "give one", 4),
        (["--deploy-plan=plan.json", "-n", "2"], "drop -n", 4),
        (["--dry-run", "--deploy-plan-out=migrations"], "--deploy-plan-out migrations: that is", 4),
        (["--deploy-timeout=nan"], "--deploy-timeout nan: give a number of seconds above 0", 4),
        (["--deploy-timeout=0"], "--deploy-timeout 0: give a number of seconds above 0", 4),
    ],
)
def test_option_mixes_that_mean_nothing_are_refused(
    pytester: pytest.Pytester, args: list[str], expected: str, code: int
) -> None:
    """Issue 13: bad input is one paragraph, nothing run; issue 21: exit 4, pytest's usage
    error (it was 2, pytest's INTERRUPTED), as for a path that can never be written."""
    project(pytester)
    # a subprocess: the paragraph on stderr, as a user sees it
    result = pytester.runpytest_subprocess("--deploy-target=t", *args)
    assert result.ret == code, result.stderr.str()
    result.stderr.fnmatch_lines([f"*{expected}*"])
    assert "Traceback" not in result.stderr.str()
    assert ran(pytester) == []


@pytest.mark.parametrize("store_url", ["sqlite", "postgresql"])
def test_a_plan_id_is_used_once_per_project_and_target(
    request: pytest.FixtureRequest, tmp_path: Path, store_url: str
) -> None:
    url = None if store_url == "sqlite" else request.getfixturevalue("pg_database")
    with open_store(url, tmp_path) as first, open_store(url, tmp_path) as second:
        assert first.use_plan("id1", "p", "t", who="a", deployment_id=1)
        assert not second.use_plan("id1", "p", "t", who="b", deployment_id=2)
        assert second.use_plan("id1", "p", "u", who="b", deployment_id=3)
        uses = first.plan_uses("id1")
        assert [(u.project, u.target, u.who) for u in uses] == [("p", "t", "a"), ("p", "u", "b")]
        assert first.plan_uses("other") == []


# Runs after the plugin's check, before any item: what another run could do in between.
RACE = """
import json

import pytest

from deploy_plugin.store import MigrationRecord, open_store
from deploy_plugin.store.records import utcnow


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    plan = json.load(open("plan.json"))
    with open_store(None, session.config.rootpath) as store:
        if {race!r} == "use":
            store.use_plan(plan["id"], "p", "t", who="racer", deployment_id=None)
        else:
            store.record_migration("p", "t", MigrationRecord(
                "migrations/001_a.sql", "0" * 64, utcnow(), "racer", 1, "success"))
"""


@pytest.mark.parametrize(
    ("race", "expected"),
    [
        ("use", "its id was already used for p → t (by another run)"),
        ("history", "migration history: migrations/001_a.sql was applied since"),
    ],
)
def test_what_changes_after_the_check_is_caught_under_the_lock(
    pytester: pytest.Pytester, race: str, expected: str
) -> None:
    project(pytester)
    plan = make_plan(pytester)
    pytester.makeconftest(RACE.format(race=race))
    result = apply(pytester)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*_ t::preflight::lock _*", f"*cannot be applied: {expected}*"])
    assert ran(pytester) == []  # the lock's check stops the deployment before any step
    with open_store(None, pytester.path) as store:
        assert [u.who for u in store.plan_uses(plan["id"])] == (["racer"] if race == "use" else [])


def test_a_team_store_on_postgresql_records_the_use(
    pytester: pytest.Pytester, pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOY_STORE_URL", pg_database)
    write_project(
        pytester, {"groups": [{"name": "g", "order": 1, "deploy_command": "echo g >> ran.log"}]}
    )
    with open_store(pg_database, pytester.path) as store:
        store.set_env("p", "t", "TOKEN", SECRET)
    plan = make_plan(pytester)
    assert apply(pytester).ret == 0
    assert ran(pytester) == ["g"]
    again = apply(pytester)
    assert again.ret == pytest.ExitCode.USAGE_ERROR
    assert "its id was already used" in paragraph(again)
    with open_store(pg_database, pytester.path) as store:
        assert [(u.project, u.target) for u in store.plan_uses(plan["id"])] == [("p", "t")]
    assert ran(pytester) == ["g"]


def test_a_secret_written_in_a_command_is_masked_in_the_plan(pytester: pytest.Pytester) -> None:
    write_project(
        pytester, {"groups": [{"name": "g", "order": 1, "deploy_command": f"echo {SECRET}"}]}
    )
    with open_store(None, pytester.path) as store:
        store.set_env("p", "t", "TOKEN", SECRET)
    plan = make_plan(pytester)
    (step,) = plan["deployments"][0]["steps"]
    assert step["command"] == "echo ***"
    assert SECRET not in (pytester.path / "plan.json").read_text()


def test_the_cli_makes_and_applies_a_plan(pytester: pytest.Pytester) -> None:
    import subprocess
    import sys

    project(pytester)
    (pytester.path / "pytest.ini").write_text("[pytest]\n")
    cli = [str(Path(sys.executable).parent / "pytest-deploy"), "deploy", "run", "p", "-t", "t"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*cli, *args], cwd=pytester.path, capture_output=True, text=True, timeout=120
        )

    made = run("--dry-run", "--plan-out", "plan.json")
    assert made.returncode == 0, made.stdout + made.stderr
    assert ran(pytester) == []
    applied = run("--plan", "plan.json")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert ran(pytester)[0] == "build"
    refused = run("--plan", "plan.json")
    # the run refused it before anything ran (pytest's 4): the CLI's usage code, 2
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "its id was already used" in refused.stdout
    # issue 24 #6: the refusal names the CLI's own option for a new plan too
    assert "--plan-out FILE" in " ".join(refused.stdout.split())
    (pytester.path / "broken.json").write_text("{")
    broken = run("--plan", "broken.json")
    assert broken.returncode == 2 and "--deploy-plan broken.json" in broken.stderr


# --------------------------------------------------------------------------- integrity
# Issue 20 §6: a plan file carries a MAC keyed by a per-project secret of the store that made
# it; the file never holds the key, so it cannot be edited, forged or replayed elsewhere.


def edit_plan(pytester: pytest.Pytester, change: Callable[[dict], None]) -> None:
    path = pytester.path / "plan.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2) + "\n")


def refused_as_edited(pytester: pytest.Pytester) -> str:
    result = apply(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    text = paragraph(result)
    assert "was changed after it was made" in text and "Nothing was run" in text
    assert ran(pytester) == []
    return text


def test_steps_added_to_a_plan_file_never_run(pytester: pytest.Pytester) -> None:
    """The web group was skipped at plan time; its step, added by hand with a correct
    command hash, would otherwise be selected by the plan."""
    import hashlib

    project(pytester)
    make_plan(pytester, "--group=db")
    command = "echo web >> ran.log"
    step = {
        "node_id": "deploy.yaml::t::web::deploy",
        "command": command,
        "command_sha256": hashlib.sha256(command.encode()).hexdigest(),
    }
    edit_plan(pytester, lambda data: data["deployments"][0]["steps"].append(step))
    refused_as_edited(pytester)


def test_display_text_edited_in_a_plan_file_is_refused(pytester: pytest.Pytester) -> None:
    project(pytester)
    make_plan(pytester)

    def reword(data: dict) -> None:
        data["deployments"][0]["steps"][0]["command"] = "echo nothing to see here"

    edit_plan(pytester, reword)
    refused_as_edited(pytester)


def test_a_key_added_to_a_plan_file_is_refused(pytester: pytest.Pytester) -> None:
    project(pytester)
    make_plan(pytester)
    edit_plan(pytester, lambda data: data.update(created_by="the release manager"))
    refused_as_edited(pytester)


def test_env_hashes_cannot_be_checked_offline(pytester: pytest.Pytester) -> None:
    """With the plan file alone, guessing a secret from a list is impossible: the env
    hashes are keyed by the store's secret, which the file does not hold."""
    import hashlib
    import hmac

    project(pytester)
    plan = make_plan(pytester)
    hashed = plan["deployments"][0]["env"]["TOKEN"]
    guesses = ["hunter2", "plan-canary", SECRET, "plan-canary-4243"]
    keys = [plan["id"], plan["id"][:16], plan.get("store_id", ""), ""]
    tried = {
        hmac.new(key.encode(), guess.encode(), hashlib.sha256).hexdigest()
        for key in keys
        for guess in guesses
    } | {hashlib.sha256(guess.encode()).hexdigest() for guess in guesses}
    assert hashed not in tried
    text = (pytester.path / "plan.json").read_text()
    with open_store(None, pytester.path) as store:
        key = store.plan_key("p", create=False)
    assert key is not None and len(key) >= 32
    assert key.hex() not in text and SECRET not in text


def test_a_plan_replayed_against_another_store_is_refused(pytester: pytest.Pytester) -> None:
    project(pytester)
    make_plan(pytester)
    other = f"sqlite:///{pytester.path / 'other.sqlite3'}"
    with open_store(other, pytester.path) as store:
        store.set_env("p", "t", "TOKEN", SECRET)  # the same values, another store
    result = apply(pytester, f"--deploy-store={other}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = paragraph(result)
    assert "was made against another store" in text
    assert ran(pytester) == []
    with open_store(other, pytester.path) as store:
        assert store.deployments("p") == []


def test_a_plan_replayed_against_another_postgresql_store_is_refused(
    pytester: pytest.Pytester, pg_database: str
) -> None:
    from tests.pg import temporary_database

    write_project(
        pytester, {"groups": [{"name": "g", "order": 1, "deploy_command": "echo g >> ran.log"}]}
    )
    with open_store(pg_database, pytester.path) as store:
        store.set_env("p", "t", "TOKEN", SECRET)
    make_plan(pytester, f"--deploy-store={pg_database}")
    with temporary_database() as other:
        with open_store(other, pytester.path) as store:
            store.set_env("p", "t", "TOKEN", SECRET)
        result = apply(pytester, f"--deploy-store={other}")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        assert "was made against another store" in paragraph(result)
    assert ran(pytester) == []


def test_a_plan_needs_an_existing_store(pytester: pytest.Pytester) -> None:
    """The dry run never creates a store, and without one there is no key to sign with:
    --deploy-plan-out refuses before anything runs and says how to create it."""
    write_project(
        pytester, {"groups": [{"name": "g", "order": 1, "deploy_command": "echo g >> ran.log"}]}
    )
    result = pytester.runpytest("--deploy-target=t", "--dry-run", "--deploy-plan-out=plan.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stdout.str()
    assert "no plan written to plan.json" in text and "pytest-deploy target add" in text
    assert not (pytester.path / "plan.json").exists()
    assert not (pytester.path / ".deploy").exists()


def test_a_plans_author_cannot_forge_terminal_lines(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 21 #10: the plan's created_by (the user name) is shown with its control
    characters escaped, so an ANSI escape or a newline in it forges no terminal line."""
    project(pytester)
    monkeypatch.setenv("LOGNAME", "ev\x1b[2Kil\nPASSED everything")
    monkeypatch.setenv("USER", "ev\x1b[2Kil\nPASSED everything")
    make_plan(pytester)
    apply(pytester)
    result = apply(pytester)  # used once already: refused, naming its author
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "\x1b" not in out
    assert not any(line.startswith("PASSED everything") for line in out.splitlines())


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: (p / "plan.json").write_text("[" * 100_000 + "]" * 100_000), "nested"),
        (lambda p: (p / "plan.json").write_text('{"n": ' + "7" * 5001 + "}"), "not valid JSON"),
        (lambda p: (p / "plan.json").symlink_to("/dev/zero"), "larger than"),
    ],
    ids=["nested-100000-arrays", "5001-digit-integer", "dev-zero"],
)
def test_a_hostile_plan_file_is_one_paragraph_within_bounded_memory(
    pytester: pytest.Pytester, make: Callable[[Path], None], expected: str
) -> None:
    """Issue 21 #5: a plan nested 100,000 arrays deep (RecursionError), a huge integer
    (ValueError) and /dev/zero (read without a limit: 24 GB) are each one paragraph, exit 4,
    read in bounded memory: the run gets an address-space limit of 2 GiB here."""
    import resource
    import subprocess
    import sys

    project(pytester)
    make(pytester.path)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--deploy-target=t",
         "--deploy-plan=plan.json"],
        cwd=pytester.path, capture_output=True, text=True, timeout=120, preexec_fn=limit,
    )  # fmt: skip
    text = result.stdout + result.stderr
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, text
    assert expected in text and "--deploy-plan plan.json" in text, text
    assert "Traceback" not in text and "INTERNALERROR" not in text, text
    assert ran(pytester) == []
