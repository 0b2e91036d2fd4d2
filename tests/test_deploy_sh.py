"""A folder with a ``deploy.sh`` and no config is one deployment, ``DIR/deploy.sh::T::deploy``,
running ``bash deploy.sh`` there with the target's env vars; a config, when present, wins."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deploy_plugin.store import open_store

SECRET = "script-canary-77aa"
SCRIPT = 'echo "in $(basename "$PWD") stored=$TOKEN cli=$CLI file=$FILEVAR"; echo ran >> ran.log\n'


def shop(pytester: pytest.Pytester, script: str = SCRIPT) -> Path:
    folder = pytester.mkdir("shop")
    (folder / "deploy.sh").write_text(script)
    with open_store(None, pytester.path) as store:
        store.add_target("shop", "prod")
        store.set_env("shop", "prod", "TOKEN", SECRET)
    return folder


def runs(pytester: pytest.Pytester) -> list[tuple]:
    db = sqlite3.connect(pytester.path / ".deploy/state.sqlite3")
    try:
        return db.execute(
            "SELECT p.name, d.target_name, d.status, d.dry_run FROM deployments d"
            " JOIN projects p ON p.id = d.project_id ORDER BY d.id"
        ).fetchall()
    finally:
        db.close()


def test_the_script_is_one_recorded_deployment(pytester: pytest.Pytester) -> None:
    folder = shop(pytester)
    (pytester.path / "more.env").write_text("FILEVAR=from-file-9911\n")
    result = pytester.runpytest(
        "shop", "--deploy-target=prod", "--deploy-env=CLI=cli-value-1234",
        "--deploy-env-file=more.env", "--junitxml=out.xml", "-o", "junit_logging=all", "-rA",
    )  # fmt: skip
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["in shop stored=*** cli=*** file=***"])
    result.stdout.fnmatch_lines(["PASSED shop/deploy.sh::prod::deploy"])
    assert result.parseoutcomes()["passed"] == 1  # one item: no preflight, no health check
    assert (folder / "ran.log").read_text() == "ran\n"  # run in the script's folder
    xml = (pytester.path / "out.xml").read_text()
    assert 'classname="shop.deploy.sh.prod" name="01 deploy"' in xml
    assert "command: bash deploy.sh" in xml
    for text in (result.stdout.str(), xml):
        assert SECRET not in text and "cli-value-1234" not in text and "from-file-9911" not in text
    assert runs(pytester) == [("shop", "prod", "success", 0)]
    logs = list((pytester.path / ".deploy/logs").rglob("*.log"))
    assert len(logs) == 1 and "stored=***" in logs[0].read_text()


def test_a_failing_script_fails_its_deployment(pytester: pytest.Pytester) -> None:
    shop(pytester, 'echo "token $TOKEN"; exit 3\n')
    result = pytester.runpytest("shop", "--deploy-target=prod")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*deploy command of group deploy `bash deploy.sh` failed*"])
    assert SECRET not in result.stdout.str()
    assert runs(pytester) == [("shop", "prod", "failure", 0)]


def test_the_dry_run_shows_the_script_and_runs_nothing(pytester: pytest.Pytester) -> None:
    folder = shop(pytester)
    result = pytester.runpytest("shop", "--deploy-target=prod", "--dry-run")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*plan:", "*shop/deploy.sh::prod::deploy: bash deploy.sh"])
    assert not (folder / "ran.log").exists()


def test_deploy_timeout_stops_the_script(pytester: pytest.Pytester) -> None:
    shop(pytester, "echo started; exec sleep 60\n")
    result = pytester.runpytest("shop", "--deploy-target=prod", "--deploy-timeout=0.5")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*timed out after 0.5*"])


def test_the_lock_is_taken(pytester: pytest.Pytester) -> None:
    folder = shop(pytester)
    with open_store(None, pytester.path) as store:
        lock = store.acquire_lock("shop", "prod", holder="alice")
        try:
            result = pytester.runpytest("shop", "--deploy-target=prod")
        finally:
            lock.release()
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*alice*"])
    assert not (folder / "ran.log").exists()


def test_a_config_wins_over_the_script(pytester: pytest.Pytester) -> None:
    folder = shop(pytester)
    (folder / "deploy.yaml").write_text(
        yaml.safe_dump(
            {
                "targets": {"prod": {}},
                "groups": [
                    {"name": "g", "order": 1, "deploy_command": "echo config >> config.log"}
                ],
            }  # fmt: skip
        )
    )
    result = pytester.runpytest("shop", "--deploy-target=prod", "-rA")
    assert result.ret == 0, result.stdout.str()
    assert "deploy.sh" not in result.stdout.str()
    assert (folder / "config.log").exists() and not (folder / "ran.log").exists()


def test_a_script_inside_a_config_projects_tree_is_not_a_project(
    pytester: pytest.Pytester,
) -> None:
    """app/deploy.yaml runs scripts/deploy.sh: that script is part of the app, not a
    second deployment (which ran it twice, or failed the app's run on an unknown target)."""
    app = pytester.mkdir("app")
    (app / "scripts").mkdir()
    (app / "scripts" / "deploy.sh").write_text("echo ran >> ran.log\n")
    (app / "deploy.yaml").write_text(
        yaml.safe_dump({"project": "app", "targets": {"prod": {}}, "groups": [
            {"name": "g", "order": 1, "deploy_command": "bash scripts/deploy.sh"}]})
    )  # fmt: skip
    result = pytester.runpytest("app", "--deploy-target=prod", "-rA")
    assert result.ret == 0, result.stdout.str()
    assert "scripts/deploy.sh::" not in result.stdout.str()
    assert (app / "ran.log").read_text() == "ran\n"  # once, by the config's group
    assert not (app / "scripts" / "ran.log").exists()


def test_the_cli_from_a_subfolder_agrees_with_pytest(pytester: pytest.Pytester) -> None:
    """From tools/legacy under a config's folder, the CLI must not take tools/legacy's
    deploy.sh for a project that pytest would not collect (it looked up to the current
    folder only, pytest up to the rootdir)."""
    pytester.makeini("[pytest]\n")
    (pytester.path / "deploy.yaml").write_text(
        yaml.safe_dump({"project": "app", "targets": {"prod": {}}, "groups": [
            {"name": "g", "order": 1, "deploy_command": "bash tools/legacy/deploy.sh"}]})
    )  # fmt: skip
    legacy = pytester.mkdir("tools") / "legacy"
    legacy.mkdir()
    (legacy / "deploy.sh").write_text("echo ran\n")
    exe = Path(sys.executable).with_name("pytest-deploy")
    result = subprocess.run([str(exe), "config", "validate", "--json"], cwd=legacy,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert "legacy" not in result.stdout, result.stdout + result.stderr


def test_a_broken_config_beside_the_script_is_reported_not_skipped(
    pytester: pytest.Pytester,
) -> None:
    """A deploy.yaml of ours with a typo (``group:``) is still a config: its error is
    reported and the script does not run in its place."""
    folder = shop(pytester)
    (folder / "deploy.yaml").write_text(
        yaml.safe_dump({"project": "shop", "targets": {"prod": {}},
                        "group": [{"name": "g", "order": 1, "deploy_command": "true"}]})
    )  # fmt: skip
    result = pytester.runpytest("shop", "--deploy-target=prod")
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["*deploy.yaml*group*"])
    assert not (folder / "ran.log").exists()


def test_without_a_target_the_script_is_not_collected(pytester: pytest.Pytester) -> None:
    shop(pytester)
    result = pytester.runpytest("shop")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_an_unknown_target_is_named(pytester: pytest.Pytester) -> None:
    folder = shop(pytester)
    result = pytester.runpytest("shop", "--deploy-target=staging")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*unknown target 'staging' for project 'shop'*prod (store)*"])
    assert not (folder / "ran.log").exists()


def test_a_saved_plan_applies_to_the_script(pytester: pytest.Pytester) -> None:
    folder = shop(pytester)
    args = ("shop", "--deploy-target=prod")
    assert pytester.runpytest(*args, "--dry-run", "--deploy-plan-out=plan.json").ret == 0
    (folder / "deploy.sh").write_text(SCRIPT + "echo extra\n")
    refused = pytester.runpytest(*args, "--deploy-plan=plan.json")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stdout.fnmatch_lines(["*the config shop/deploy.sh changed*"])
    assert not (folder / "ran.log").exists()


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "pytest-deploy"), *args],
        cwd=cwd, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_cli_deploys_the_script_and_init_turns_it_into_a_config(
    pytester: pytest.Pytester,
) -> None:
    folder = shop(pytester)
    (pytester.path / "pytest.ini").write_text("[pytest]\n")
    run = cli(pytester.path, "deploy", "run", "shop", "--target", "prod", "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    (deployment,) = json.loads(run.stdout)["deployments"]
    assert [s["node_id"] for s in deployment["steps"]] == ["shop/deploy.sh::prod::deploy"]
    assert (folder / "ran.log").read_text() == "ran\n"

    init = cli(pytester.path, "init", "shop", "--from-deploy-sh")
    assert init.returncode == 0, init.stdout + init.stderr
    config = yaml.safe_load((folder / "deploy.yaml").read_text())
    assert len(config.pop("project_id")) == 36  # its identity in a store (a UUID)
    assert config == {
        "project": "shop",
        "groups": [{"name": "deploy", "order": 1, "deploy_command": "bash deploy.sh"}],
    }
    again = cli(pytester.path, "deploy", "run", "shop", "--target", "prod", "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    (deployment,) = json.loads(again.stdout)["deployments"]
    assert [s["node_id"] for s in deployment["steps"]][
        -1
    ] == "shop/deploy.yaml::prod::deploy::deploy"
    assert (folder / "ran.log").read_text() == "ran\nran\n"

    refused = cli(pytester.path, "init", "elsewhere", "--from-deploy-sh")
    assert refused.returncode == 2
    assert "has no deploy.sh" in refused.stderr


def test_deploy_timeout_applies_to_groups_without_their_own(pytester: pytest.Pytester) -> None:
    (pytester.path / "deploy.yaml").write_text(
        yaml.safe_dump(
            {
                "project": "p",
                "targets": {"t": {}},
                "groups": [
                    {
                        "name": "own",
                        "order": 1,
                        "timeout_seconds": 30,
                        "deploy_command": "sleep 1 && echo own >> ran.log",
                    },
                    {"name": "none", "order": 2, "deploy_command": "exec sleep 60"},
                ],
            }  # fmt: skip
        )
    )
    result = pytester.runpytest("--deploy-target=t", "--deploy-timeout=0.5")
    assert result.ret == 1
    assert (pytester.path / "ran.log").read_text() == "own\n"  # its 30 s, not 0.5 s
    result.stdout.fnmatch_lines(["*_ t::none::deploy _*", "*timed out after 0.5*"])
    # bad input: a usage error, one paragraph on stderr
    bad = pytester.runpytest_subprocess("--deploy-target=t", "--deploy-timeout=0")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--deploy-timeout 0: give a number of seconds above 0*"])


@pytest.mark.parametrize("request_", ["--deploy-rollback=1", "--deploy-check-rollback"])
def test_a_rollback_request_never_runs_the_script(pytester: pytest.Pytester, request_: str):
    """A deploy.sh has no migrations to roll back or check: the request is refused in one
    paragraph (exit 4, pytest's usage error) and the script never runs."""
    folder = shop(pytester)
    result = pytester.runpytest("shop", "--deploy-target=prod", request_)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stderr.fnmatch_lines(["*shop/deploy.sh: a deploy.sh has no tracked migrations*"])
    assert not (folder / "ran.log").exists()
    assert runs(pytester) == []
