"""What a newcomer tripped on (issue 15): each test here failed before its fix."""

from __future__ import annotations

import json

import pytest
import yaml

from deploy_plugin.store import open_store
from tests.projects import write_config

SECRET = "secret-canary-5150"


def _woofs_like(pytester: pytest.Pytester, **group: object) -> None:
    config = {
        "project": "woofs",
        "targets": {"production": {}},
        "groups": [{"name": "migrations", "order": 1, "deploy_command": "echo $NODE_ENV", **group}],
    }
    write_config(pytester, config)


# -- 1. hints stay readable: only values are masked ---------------------------------------


def test_a_value_equal_to_the_target_name_does_not_mask_hints(
    pytester: pytest.Pytester,
) -> None:
    from deploy_plugin.store import open_store

    _woofs_like(pytester, required_env_vars=["SUPABASE_URL"])
    store = open_store(None, pytester.path)
    store.set_env("woofs", "production", "NODE_ENV", "production")  # the seed's walk-through
    store.set_env("woofs", "production", "API_KEY", SECRET)
    store.close()
    result = pytester.runpytest("--deploy-target=production")
    out = result.stdout.str()
    assert result.ret == 1
    assert "--target production" in out, out
    assert "for target 'production'" in out, out
    assert "'***'" not in out and "--target ***" not in out, out
    assert SECRET not in out


def test_a_secret_inside_a_structural_word_does_not_garble_it(
    pytester: pytest.Pytester,
) -> None:
    """A stored value "prod" must not turn the target "production" into "***uction"."""
    from deploy_plugin.store import open_store

    _woofs_like(pytester, deploy_command=f"echo token={SECRET}; echo prod-only; exit 1")
    store = open_store(None, pytester.path)
    store.set_env("woofs", "production", "SHORT", "prod")
    store.set_env("woofs", "production", "API_KEY", SECRET)
    store.close()
    result = pytester.runpytest("--deploy-target=production", "-rA")
    out = result.stdout.str()
    assert "***uction" not in out, out
    assert "production::migrations" in out, out
    assert "token=***" in out and "***-only" in out and SECRET not in out


def test_a_secret_that_contains_a_structural_word_is_masked_whole(
    pytester: pytest.Pytester,
) -> None:
    from deploy_plugin.store import open_store

    secret = "production-key-77"
    _woofs_like(pytester, deploy_command="echo value=$API_KEY")
    store = open_store(None, pytester.path)
    store.set_env("woofs", "production", "API_KEY", secret)
    store.close()
    result = pytester.runpytest("--deploy-target=production", "-rA")
    out = result.stdout.str()
    assert "value=***" in out and secret not in out and "-key-77" not in out, out


def test_the_lock_hint_names_the_target(pytester: pytest.Pytester) -> None:
    from deploy_plugin.store import open_store

    _woofs_like(pytester)
    store = open_store(None, pytester.path)
    store.set_env("woofs", "production", "NODE_ENV", "production")
    lock = store.acquire_lock("woofs", "production", holder="someone-else")
    try:
        result = pytester.runpytest("--deploy-target=production")
    finally:
        lock.release()
        store.close()
    out = result.stdout.str()
    assert "unlock woofs --target production" in out, out


def test_masker_keeps_structural_words() -> None:
    from deploy_plugin.secrets import Masker

    masker = Masker(["production", "prod", "production-key-77", "abcd"])
    masker.keep("production", "woofs")
    assert masker.mask("target production") == "target production"
    assert masker.mask("prod-only production-key-77 abcd") == "***-only *** ***"
    masker.add("woofs")  # a value equal to a kept word is not a secret
    assert masker.mask("woofs") == "woofs"


del yaml


# -- 2. --config from another folder reads the project's store ---------------------------


def test_cli_with_config_from_another_folder_uses_the_projects_store(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    import subprocess
    import sys

    from deploy_plugin.cli import main

    monkeypatch.delenv("DEPLOY_STORE_URL", raising=False)
    project = tmp_path / "woofs"
    (project / "migrations").mkdir(parents=True)
    (project / "migrations" / "001.sql").write_text("CREATE TABLE t (id INTEGER);\n")
    (project / "woofs.deploy.json").write_text(json.dumps({
        "project": "woofs",
        "targets": {"production": {"env": {"DATABASE_URL": "sqlite:///db.sqlite3"}}},
        "groups": [{"name": "migrations", "order": 1, "file_patterns": ["migrations/*.sql"]}],
    }))  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--deploy-target=production"],
        cwd=project, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = str(project / "woofs.deploy.json")
    capsys.readouterr()
    code = main(["history", "woofs", "--config", config])
    out, err = capsys.readouterr()
    assert code == 0 and "success" in out, out + err
    store = str(project / ".deploy" / "state.sqlite3")
    assert store in err, err  # the command names the store it read
    code = main(["migration", "status", "woofs", "--target", "production", "--config", config])
    out, err = capsys.readouterr()
    assert code == 0 and "migrations/001.sql" in out and "applied" in out, out + err
    code = main(["history", "woofs", "--config", config, "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and json.loads(out) and store in err
    assert not (elsewhere / ".deploy").exists()


# -- 3. what preflight and validation can find, they find before anything runs ------------


def test_preflight_finds_the_builtin_executors_database_url_and_the_health_url(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("UNDEFINED_X", raising=False)
    (pytester.path / "migrations").mkdir()
    (pytester.path / "migrations" / "001.sql").write_text("CREATE TABLE t (id INTEGER);\n")
    write_config(pytester, {
        "project": "p",
        "targets": {"t": {}},
        "groups": [
            {"name": "build", "order": 1, "deploy_command": "touch built"},
            {"name": "migrations", "order": 2, "file_patterns": ["migrations/*.sql"]},
        ],
        "health_check": {"url": "http://127.0.0.1:1/${UNDEFINED_X}/health"},
    })  # fmt: skip
    result = pytester.runpytest("--deploy-target=t")
    out = result.stdout.str()
    assert result.ret == 1
    assert not (pytester.path / "built").exists(), "a group ran before preflight's failure"
    assert "DATABASE_URL" in out and "built-in" in out, out
    assert "UNDEFINED_X" in out and "health" in out, out
    assert ". The health check URL uses ${UNDEFINED_X}" in out, out  # a sentence of its own
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == 1, out  # one preflight check names every problem


def test_a_health_url_with_another_scheme_is_a_config_error(pytester: pytest.Pytester) -> None:
    write_config(pytester, {
        "project": "p",
        "targets": {"t": {"health_check_url": "postgres://127.0.0.1/x"}},
        "groups": [{"name": "build", "order": 1, "deploy_command": "touch built"}],
        "health_check": {"url": "ftp://127.0.0.1/health"},
    })  # fmt: skip
    result = pytester.runpytest("--deploy-target=t")
    out = result.stdout.str() + result.stderr.str()
    assert result.ret != 0 and not (pytester.path / "built").exists()
    assert "health_check.url" in out and "'ftp'" in out and "http:// or https://" in out, out
    assert "targets.t.health_check_url" in out and "'postgres'" in out, out


def test_schema_and_other_problems_are_reported_in_one_run(pytester: pytest.Pytester) -> None:
    """A misspelt key (the schema pass) and a bad health URL scheme (a check the schema
    cannot express) in one config: both in one run (before: the scheme only once the
    typo was fixed)."""
    write_config(pytester, {
        "project": "p",
        "targets": {"t": {}},
        "groups": [{"name": "build", "order": 1, "buld_command": "touch built"}],
        "health_check": {"url": "file:///etc/health"},
    })  # fmt: skip
    result = pytester.runpytest("--deploy-target=t")
    out = result.stdout.str() + result.stderr.str()
    assert result.ret != 0 and not (pytester.path / "built").exists()
    assert "buld_command" in out and "build_command" in out, out  # did you mean
    assert "health_check.url" in out and "'file'" in out, out


def test_a_stored_health_url_with_another_scheme_fails_preflight(
    pytester: pytest.Pytester,
) -> None:
    from deploy_plugin.store import open_store

    write_config(pytester, {
        "project": "p",
        "groups": [{"name": "build", "order": 1, "deploy_command": "touch built"}],
        "health_check": {"url": "http://127.0.0.1:1/health"},
    })  # fmt: skip
    store = open_store(None, pytester.path)
    store.add_target("p", "t", health_check_url="file:///etc/passwd")
    store.close()
    result = pytester.runpytest("--deploy-target=t")
    out = result.stdout.str()
    assert result.ret == 1 and not (pytester.path / "built").exists()
    assert "'file'" in out and "http:// or https://" in out, out


# -- 4. a tracked file applied by psql is one transaction ----------------------------------


def test_a_psql_file_failing_on_its_second_statement_leaves_nothing(
    pytester: pytest.Pytester, pg_database: str
) -> None:
    import psycopg

    (pytester.path / "migrations").mkdir()
    migration = pytester.path / "migrations" / "001.sql"
    migration.write_text("CREATE TABLE first_one (id int);\nSELECT 1/0;\n")
    write_config(pytester, {
        "project": "p",
        "targets": {"t": {"env": {"DATABASE_URL": pg_database}}},
        "groups": [{
            "name": "migrations", "order": 1, "file_patterns": ["migrations/*.sql"],
            "deploy_command": 'psql "$DATABASE_URL" -q -f {file}',
        }],
    })  # fmt: skip
    result = pytester.runpytest("--deploy-target=t")
    assert result.ret == 1
    assert "one transaction" in result.stdout.str(), result.stdout.str()
    with psycopg.connect(pg_database) as conn:
        assert conn.execute("SELECT to_regclass('first_one')").fetchone() == (None,)
    migration.write_text("CREATE TABLE first_one (id int);\nSELECT 1;\n")
    result = pytester.runpytest("--deploy-target=t")
    assert result.ret == 0, result.stdout.str()


def test_a_no_transaction_file_under_psql_says_what_stays_applied(
    pytester: pytest.Pytester, pg_database: str
) -> None:
    (pytester.path / "migrations").mkdir()
    (pytester.path / "migrations" / "001.sql").write_text(
        "-- deploy:no-transaction\nCREATE TABLE first_one (id int);\nSELECT 1/0;\n"
    )
    write_config(pytester, {
        "project": "p",
        "targets": {"t": {"env": {"DATABASE_URL": pg_database}}},
        "groups": [{
            "name": "migrations", "order": 1, "file_patterns": ["migrations/*.sql"],
            "deploy_command": 'psql "$DATABASE_URL" -q -f {file}',
        }],
    })  # fmt: skip
    result = pytester.runpytest("--deploy-target=t")
    assert result.ret == 1
    assert "may be committed" in result.stdout.str(), result.stdout.str()
    # the command's last output ends its sentence before what follows (it ran on)
    result.stdout.fnmatch_lines(["*Last output: *by zero. The file did not run in one*"])


# -- 5. migration status: the counts name every state shown ------------------------------


def test_migration_status_counts_name_every_state(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    from datetime import datetime, timezone

    from deploy_plugin.cli import main
    from deploy_plugin.plan import file_checksum
    from deploy_plugin.store import MigrationRecord, open_store

    monkeypatch.delenv("DEPLOY_STORE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "migrations").mkdir()
    for name in ("001.sql", "002.sql", "003.sql", "004.sql"):
        (tmp_path / "migrations" / name).write_text(f"-- {name}\n")
    (tmp_path / "deploy.yaml").write_text(
        "project: shop\ntargets: {local: {}}\ngroups:\n"
        "  - {name: migrations, order: 1, file_patterns: ['migrations/*.sql']}\n"
    )
    store = open_store(None, tmp_path)
    now = datetime.now(timezone.utc)
    for name, status in (("001.sql", "success"), ("002.sql", "success"), ("003.sql", "failed")):
        path = tmp_path / "migrations" / name
        store.record_migration("shop", "local", MigrationRecord(
            file=f"migrations/{name}", checksum=file_checksum(path), status=status,
            applied_at=now, applied_by="me", execution_time_ms=1,
        ))  # fmt: skip
    store.close()
    capsys.readouterr()
    main(["migration", "status", "shop", "--target", "local"])
    out = capsys.readouterr().out
    footer = out.strip().splitlines()[-1]
    assert footer.startswith("2 applied, 1 failed, 1 pending, 0 drifted"), footer
    main(["migration", "status", "shop", "--target", "local", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert (data["applied"], data["failed"], data["pending"], data["drifted"]) == (2, 1, 1, 0)


# -- 6. each skip reason names its file ---------------------------------------------------


def test_applied_skips_name_their_file(pytester: pytest.Pytester) -> None:
    (pytester.path / "migrations").mkdir()
    for name in ("001.sql", "002.sql", "003.sql"):
        (pytester.path / "migrations" / name).write_text(f"CREATE TABLE t{name[:3]} (id int);\n")
    write_config(pytester, {
        "project": "p",
        "targets": {"t": {"env": {"DATABASE_URL": "sqlite:///db.sqlite3"}}},
        "groups": [{"name": "migrations", "order": 1, "file_patterns": ["migrations/*.sql"]}],
    })  # fmt: skip
    assert pytester.runpytest("--deploy-target=t").ret == 0
    result = pytester.runpytest("--deploy-target=t", "-rs")
    # one item carries the group's applied files (deploy_plugin/plugin/applied.py): its
    # line names each
    result.stdout.fnmatch_lines(
        [
            "SKIPPED [[]1[]] deploy.yaml:*: 3 files already applied: migrations/001.sql,"
            " migrations/002.sql, migrations/003.sql *"
        ]
    )


# -- 7. selection: say why the health check runs; say when no group is selected ------------


def _two_groups_with_health(pytester: pytest.Pytester, http_server) -> None:
    http_server.set_route("/health", 200)
    write_config(pytester, {
        "project": "p",
        "targets": {"t": {}},
        "groups": [
            {"name": "migrations", "order": 1, "deploy_command": "touch m"},
            {"name": "build", "order": 2, "deploy_command": "touch b"},
        ],
        "health_check": {"url": http_server.url_for("/health")},
    })  # fmt: skip


@pytest.mark.parametrize("expression", ["not health_check", "migrations"])
def test_a_restored_health_check_is_explained(
    pytester: pytest.Pytester, http_server, expression: str
) -> None:
    _two_groups_with_health(pytester, http_server)
    result = pytester.runpytest("--deploy-target=t", "-k", expression)
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        "*health check kept though -k/-m narrowed the run*--no-health-check*",
    ])  # fmt: skip


def test_no_note_when_the_health_check_was_selected(pytester: pytest.Pytester, http_server) -> None:
    _two_groups_with_health(pytester, http_server)
    result = pytester.runpytest("--deploy-target=t")
    assert result.ret == 0 and "health check kept" not in result.stdout.str()


def test_deselecting_every_group_says_so(pytester: pytest.Pytester, http_server) -> None:
    _two_groups_with_health(pytester, http_server)
    result = pytester.runpytest("--deploy-target=t", "-k", "nothing_matches_this")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines([
        "*no group selected*deploy.yaml*t*groups: migrations, build*",
    ])  # fmt: skip


# -- 8. a failing test of the same session stops the deployment before it starts ----------


@pytest.mark.parametrize("test_file", ["test_a_unit.py", "test_z_unit.py"])
def test_a_failing_test_in_the_session_gates_the_deployment(
    pytester: pytest.Pytester, test_file: str
) -> None:
    write_config(pytester, {
        "project": "p",
        "targets": {"t": {}},
        "groups": [{"name": "build", "order": 1, "deploy_command": "touch deployed"}],
    })  # fmt: skip
    pytester.makepyfile(**{test_file[:-3]: "def test_ok():\n    pass\n\n"
                           "def test_broken():\n    assert 1 == 2\n"})  # fmt: skip
    result = pytester.runpytest("--deploy-target=t", "-rs", "--deploy-report=report.json")
    assert result.ret == 1
    assert not (pytester.path / "deployed").exists(), "a failing test did not gate the deploy"
    result.stdout.fnmatch_lines([f"*not run: {test_file}::test_broken failed*"])
    # a deployment stopped before it started did not succeed: summary, report and store
    result.stdout.fnmatch_lines(["p → t: FAILURE*"])
    report = json.loads((pytester.path / "report.json").read_text())
    assert [d["status"] for d in report["deployments"]] == ["failure"]
    with open_store(None, pytester.path) as store:  # type: ignore[union-attr]
        assert [d.status for d in store.deployments("p", "t")] == ["failure"]


def test_passing_tests_in_the_session_run_first_then_the_deployment(
    pytester: pytest.Pytester,
) -> None:
    write_config(pytester, {
        "project": "p",
        "targets": {"t": {}},
        "groups": [{"name": "build", "order": 1, "deploy_command": "touch deployed"}],
    })  # fmt: skip
    pytester.makepyfile(test_z_unit="import os\n\ndef test_ok():\n"
                        "    assert not os.path.exists('deployed')\n")  # fmt: skip
    result = pytester.runpytest("--deploy-target=t")
    assert result.ret == 0 and (pytester.path / "deployed").exists()


# -- 9. smaller things ---------------------------------------------------------------------


def test_a_warning_points_at_the_config_not_the_plugin(pytester: pytest.Pytester) -> None:
    (pytester.path / "migrations").mkdir()
    for name in ("1_a.sql", "02_b.sql"):  # mixed widths: preflight warns
        (pytester.path / "migrations" / name).write_text("SELECT 1;\n")
    write_config(pytester, {
        "project": "p",
        "targets": {"t": {"env": {"DATABASE_URL": "sqlite:///db.sqlite3"}}},
        "groups": [{"name": "migrations", "order": 1, "file_patterns": ["migrations/*.sql"]}],
    })  # fmt: skip
    result = pytester.runpytest("--deploy-target=t", "-W", "always")
    out = result.stdout.str()
    assert "DeployWarning" in out, out
    assert "preflight.py" not in out and "deploy_plugin" not in out, out
    result.stdout.fnmatch_lines(["*deploy.yaml:*: DeployWarning: group migrations:*"])


def test_failure_sections_print_no_empty_fields(pytester: pytest.Pytester) -> None:
    write_config(pytester, {
        "project": "p",
        "targets": {"t": {}},
        "groups": [{"name": "build", "order": 1, "deploy_command": "exit 3",
                    "required_env_vars": ["NOT_SET_ANYWHERE_X"]}],
    })  # fmt: skip
    result = pytester.runpytest("--deploy-target=t")
    lines = result.stdout.str().splitlines()
    empty = [line for line in lines if line.rstrip().endswith(":") and line.split(":")[0]
             in ("group", "file", "checksum", "command")]  # fmt: skip
    assert not empty, empty


def test_duplicate_order_values_warn_naming_both_groups(pytester: pytest.Pytester) -> None:
    write_config(pytester, {
        "project": "p",
        "targets": {"t": {}},
        "groups": [
            {"name": "api", "order": 2, "deploy_command": "true"},
            {"name": "web", "order": 2, "deploy_command": "true"},
        ],
    })  # fmt: skip
    result = pytester.runpytest("--deploy-target=t", "-W", "always")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*deploy.yaml:*groups api and web have the same order (2)*"])


def test_pyproject_license_is_an_spdx_string() -> None:
    from pathlib import Path

    import tomllib

    data = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    assert isinstance(data["project"]["license"], str)  # a table is deprecated (PEP 639)
    assert any(r.startswith("setuptools>=77") for r in data["build-system"]["requires"])


def test_the_readme_names_no_file_that_is_not_in_the_repository() -> None:
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert "DESIGN notes" not in readme


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from deploy_plugin.cli import main

    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_an_unknown_target_type_is_refused_with_a_suggestion(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DEPLOY_STORE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deploy.yaml").write_text(
        "project: shop\ngroups:\n  - {name: build, order: 1, deploy_command: 'true'}\n"
    )
    code, _, err = _cli(capsys, "target", "add", "shop", "prod", "--type", "databse")
    assert code == 2 and "did you mean 'database'" in err and "edge_function" in err, err
    assert not (tmp_path / ".deploy").exists()
    code, _, _ = _cli(capsys, "target", "add", "shop", "prod", "--type", "database")
    assert code == 0
    code, _, err = _cli(capsys, "target", "update", "shop", "prod", "--type", "sevice")
    assert code == 2 and "did you mean 'service'" in err, err


def test_an_unknown_declared_target_type_is_a_config_error(pytester: pytest.Pytester) -> None:
    write_config(pytester, {
        "project": "p",
        "targets": {"t": {"type": "databse"}},
        "groups": [{"name": "build", "order": 1, "deploy_command": "true"}],
    })  # fmt: skip
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*targets.t.type*did you mean 'database'*"])


def test_init_quotes_its_next_commands_and_takes_config(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import shlex

    monkeypatch.delenv("DEPLOY_STORE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    code, out, err = _cli(capsys, "init", "my proj", "--project", "bad name!")
    assert code == 0, err
    commands = [line.strip() for line in out.splitlines() if line.startswith("  ")]
    assert commands and all(shlex.split(c) for c in commands)
    assert "pytest-deploy config validate 'bad name!'" in commands[0], commands
    assert "'my proj/deploy.yaml'" in commands[1], commands
    code, out, err = _cli(capsys, "init", "--config", "svc/api.deploy.yaml")
    assert code == 0, err
    assert (tmp_path / "svc" / "api.deploy.yaml").is_file()
    code, out, err = _cli(capsys, "init", "--config", "svc/notes.txt")
    assert code == 2 and "deploy.yaml" in err, err


def test_command_not_found_message_has_no_stray_full_stop(pytester: pytest.Pytester) -> None:
    write_config(pytester, {
        "project": "p",
        "targets": {"t": {}},
        "groups": [{"name": "build", "order": 1, "deploy_command": "no-such-command-x1"}],
    })  # fmt: skip
    result = pytester.runpytest("--deploy-target=t")
    out = result.stdout.str()
    assert "on PATH?" in out and "on PATH?." not in out, out


# -- 10. a link that leaves the project is named, not silently empty ----------------------


def test_a_symlinked_folder_outside_the_project_is_named(pytester: pytest.Pytester) -> None:
    import os

    outside = pytester.path.parent / f"{pytester.path.name}-shared"
    (outside / "migrations").mkdir(parents=True, exist_ok=True)
    (outside / "migrations" / "001.sql").write_text("SELECT 1;\n")
    project = pytester.mkdir("project")
    os.symlink(outside / "migrations", project / "migrations")
    (project / "deploy.yaml").write_text(
        "project: p\ntargets: {t: {env: {DATABASE_URL: 'sqlite:///db.sqlite3'}}}\n"
        "groups:\n  - {name: migrations, order: 1, file_patterns: ['migrations/*.sql']}\n"
    )
    result = pytester.runpytest("project", "--deploy-target=t", "-rs", "-W", "always")
    out = result.stdout.str()
    assert "migrations" in out and "link" in out and "not followed" in out, out
    assert str(outside / "migrations") in out, out


# -- found while checking the issue: one file in two tracked groups ------------------------


def test_a_clash_between_later_groups_is_found_too(pytester: pytest.Pytester) -> None:
    """a (prod) and b, c (staging) all match m/*.sql: b and c clash on staging (before,
    each file was compared with its first group only)."""
    (pytester.path / "m").mkdir()
    (pytester.path / "m" / "001.sql").write_text("CREATE TABLE t1 (id int);\n")
    groups = [
        {"name": name, "order": i, "file_patterns": ["m/*.sql"], "targets": [target],
         "database_url_env": f"{name.upper()}_URL"}
        for i, (name, target) in enumerate([("a", "prod"), ("b", "staging"), ("c", "staging")])
    ]  # fmt: skip
    write_config(pytester, {"project": "p", "targets": {"prod": {}, "staging": {}},
                            "groups": groups})  # fmt: skip
    result = pytester.runpytest("--deploy-target=staging")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*m/001.sql is matched by tracked groups 'b' and 'c'*"])


def test_a_schema_error_is_not_echoed_per_character(pytester: pytest.Pytester) -> None:
    """A string where a list belongs is the schema's one problem: the checks run beside it
    must not report each of its characters (a model built from it has a tuple of them)."""
    write_config(pytester, {
        "project": "p",
        "targets": {"production": {}},
        "groups": [{"name": "build", "order": 1, "build_command": "true",
                    "targets": "production", "file_patterns": "migrations/*.sql"}],
    })  # fmt: skip
    result = pytester.runpytest("--deploy-target=production")
    out = result.stdout.str() + result.stderr.str()
    assert result.ret != 0
    assert "is not a target declared" not in out and "absolute path" not in out, out
    assert "more problem" not in out, out
    assert "groups[0].targets" in out and "groups[0].file_patterns" in out, out


def test_a_file_in_two_tracked_groups_is_a_config_error(pytester: pytest.Pytester) -> None:
    """History knows a migration by its file: the second group took it as applied and its
    database never got it. Groups with disjoint targets may share files."""
    (pytester.path / "m").mkdir()
    (pytester.path / "m" / "001.sql").write_text("CREATE TABLE t1 (id int);\n")
    groups = [
        {"name": "main", "order": 1, "file_patterns": ["m/*.sql"]},
        {"name": "replica", "order": 2, "file_patterns": ["m/*.sql"],
         "database_url_env": "REPLICA_URL"},
    ]  # fmt: skip
    write_config(pytester, {"project": "p", "targets": {"t": {}, "u": {}}, "groups": groups})
    env = ["--deploy-env=DATABASE_URL=sqlite:///a.db", "--deploy-env=REPLICA_URL=sqlite:///b.db"]
    result = pytester.runpytest("--deploy-target=t", *env)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["*m/001.sql is matched by tracked groups 'main' and 'replica', which run for a same"
         " target*"]
    )  # fmt: skip
    assert not (pytester.path / "a.db").exists() and not (pytester.path / "b.db").exists()
    groups[0]["targets"], groups[1]["targets"] = ["t"], ["u"]
    write_config(pytester, {"project": "p", "targets": {"t": {}, "u": {}}, "groups": groups})
    assert pytester.runpytest("--deploy-target=t", *env).ret == 0
    assert pytester.runpytest("--deploy-target=u", *env).ret == 0
    assert (pytester.path / "a.db").exists() and (pytester.path / "b.db").exists()


STORE_HOME_CONFIG = """\
project: one
targets: {t: {}}
groups:
  - name: a
    order: 1
    required_env_vars: [TOKEN_Z]
    build_command: 'test "$TOKEN_Z" = secret-value-77'
"""


def _clean_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DEPLOY_"))}


@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing-beside-config"])
def test_the_embedded_store_is_one_place_whatever_the_current_folder(
    tmp_path, existing: bool
) -> None:
    """Issue 24 #2: `env set` in the config's folder and `pytest deploy` from the repository
    root use one store: the project's (a folder with .git above the config), or one that
    already exists nearer the config (stores made before keep working)."""
    import subprocess
    import sys
    from pathlib import Path

    from deploy_plugin.store import open_store

    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "deploy").mkdir()
    (repo / "deploy" / "deploy.yaml").write_text(STORE_HOME_CONFIG)
    if existing:  # where the CLI of before put it when run in the config's folder
        store = open_store(None, repo / "deploy")
        assert store is not None
        store.close()
    home = repo / "deploy" if existing else repo
    cli = Path(sys.executable).with_name("pytest-deploy")
    done = subprocess.run(
        [str(cli), "env", "set", "one", "TOKEN_Z", "-", "-t", "t"], cwd=repo / "deploy",
        input="secret-value-77", capture_output=True, text=True, timeout=60, env=_clean_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert str(home / ".deploy" / "state.sqlite3") in done.stdout + done.stderr
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "deploy", "--deploy-target=t"],
        cwd=repo, capture_output=True, text=True, timeout=120, env=_clean_env(),
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    other = repo / "deploy" if not existing else repo
    assert not (other / ".deploy" / "state.sqlite3").exists()


def test_store_home_prefers_an_existing_store_above_a_nested_package(tmp_path) -> None:
    """An existing store above a nested package's own pyproject.toml is still the store
    (markers never hide one); a pyproject.toml without pytest's section is no top."""
    from deploy_plugin.store import default_store_path, open_store, store_home

    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    config = repo / "services" / "api" / "deploy" / "deploy.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(STORE_HOME_CONFIG)
    (repo / "services" / "api" / "pyproject.toml").write_text("[project]\nname = 'api'\n")
    assert store_home(config, tmp_path) == repo  # the repository, not the package
    (repo / "services" / "api" / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    assert store_home(config, tmp_path) == repo / "services" / "api"
    store = open_store(None, repo)
    assert store is not None and default_store_path(repo).is_file()
    store.close()
    assert store_home(config, tmp_path) == repo  # the existing store wins


def test_the_cli_uses_the_named_projects_store(tmp_path, monkeypatch) -> None:
    """From a folder above two repositories, `env set a ...` writes project a's store
    (a/.deploy), where pytest run in a/ reads it, never a third store in the folder above."""
    import io
    import sys

    from deploy_plugin.cli import main
    from deploy_plugin.store import default_store_path

    for name in ("a", "b"):
        (tmp_path / name / ".git").mkdir(parents=True)
        (tmp_path / name / "deploy.yaml").write_text(STORE_HOME_CONFIG.replace("one", name))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DEPLOY_STORE_URL", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO("value-for-a"))
    assert main(["env", "set", "a", "FOO", "-", "--target", "t"]) == 0
    assert default_store_path(tmp_path / "a").is_file()
    assert not default_store_path(tmp_path).exists()
