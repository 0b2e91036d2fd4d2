"""A project is more than a name (issue 20 §7): a store binds each project name to the
``project_id`` of the config that first deployed it, so an unrelated checkout that happens to
have the same name (a config folder called ``deploy``, no ``project:`` key) gets none of its
env vars, history, ledger or lock; ``pytest-deploy project adopt|rename`` change a binding on
purpose, with an audit row."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deploy_plugin.store import open_store

CANARY = "postgresql://owner-a:canary-a-4242@127.0.0.1:1/a"
ID_A = "0b7f4c1e-a-checkout-of-shop"
ID_B = "5d2e9a30-b-unrelated-blog"


def checkout(
    base: Path, folder: str, *, project_id: str | None, project: str | None = None
) -> Path:
    """``base/folder/deploy/deploy.yaml``: no ``project:`` key unless given, so the project
    is called ``deploy`` after its folder; its one step writes the DATABASE_URL it got."""
    root = base / folder / "deploy"
    root.mkdir(parents=True)
    data: dict = {}
    if project is not None:
        data["project"] = project
    if project_id is not None:
        data["project_id"] = project_id
    data["targets"] = {"t": {}}
    data["groups"] = [
        {"name": "db", "order": 1, "deploy_command": 'echo "got=$DATABASE_URL" > got.txt'}
    ]
    (root / "deploy.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return root


def deploy(pytester: pytest.Pytester, root: Path, store: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        str(root), f"--rootdir={root}", "--deploy-target=t", f"--deploy-store={store}", *args
    )


def got(root: Path) -> str | None:
    path = root / "got.txt"
    return path.read_text().strip() if path.exists() else None


def output(result: pytest.RunResult) -> str:
    return result.stdout.str() + result.stderr.str()


def cli(cwd: Path, store: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "pytest-deploy"), *args, "--deploy-store", store]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_a_second_checkout_with_another_id_gets_nothing_of_the_first(
    pytester: pytest.Pytester, pg_database: str
) -> None:
    a = checkout(pytester.path, "a", project_id=ID_A)
    b = checkout(pytester.path, "b", project_id=ID_B)
    with open_store(pg_database, a) as store:
        store.set_env("deploy", "t", "DATABASE_URL", CANARY)
    first = deploy(pytester, a, pg_database)
    assert first.ret == 0, output(first)
    assert got(a) == f"got={CANARY}"
    with open_store(pg_database, a) as store:
        bound = store.project_identity("deploy")
        assert bound is not None and bound.identity == ID_A
        assert [(r.action, r.old, r.new) for r in store.project_audit("deploy")] == [
            ("bind", None, ID_A)
        ]
        runs = len(store.deployments("deploy", "t"))

    second = deploy(pytester, b, pg_database)
    assert second.ret == 1
    text = output(second)
    assert got(b) is None  # its step never ran, so never saw the first's DATABASE_URL
    assert "canary-a-4242" not in text
    assert f"project 'deploy' in the store is bound to project_id {ID_A}" in text
    assert f"has project_id {ID_B}" in text and "pytest-deploy project adopt" in text
    with open_store(pg_database, a) as store:
        assert store.project_identity("deploy").identity == ID_A  # type: ignore[union-attr]
        assert len(store.deployments("deploy", "t")) == runs  # no run recorded in its history


def test_a_checkout_without_an_id_cannot_claim_a_bound_project(
    pytester: pytest.Pytester, pg_database: str
) -> None:
    a = checkout(pytester.path, "a", project_id=ID_A)
    b = checkout(pytester.path, "b", project_id=None, project="deploy")  # explicit, same name
    with open_store(pg_database, a) as store:
        store.set_env("deploy", "t", "DATABASE_URL", CANARY)
    assert deploy(pytester, a, pg_database).ret == 0
    second = deploy(pytester, b, pg_database)
    assert second.ret == 1
    assert got(b) is None
    text = output(second)
    assert f"add `project_id: {ID_A}`" in text and "canary-a-4242" not in text
    # the dry run is refused the same way and binds nothing
    assert deploy(pytester, b, pg_database, "--dry-run").ret == 1


def test_a_defaulted_name_without_an_id_gets_no_stored_env_on_a_shared_store(
    pytester: pytest.Pytester, pg_database: str
) -> None:
    """The incident: two unrelated checkouts whose configs only say ``deploy`` by their
    folder. Nothing tells them apart, so on PostgreSQL neither gets the stored values (a
    warning says how to give the project an id); the run itself goes on, so the seed's
    examples (no ``project:`` key) still deploy to a team store with ``--deploy-env``."""
    a = checkout(pytester.path, "a", project_id=None)
    b = checkout(pytester.path, "b", project_id=None)
    with open_store(pg_database, a) as store:
        store.set_env("deploy", "t", "DATABASE_URL", CANARY)
    for root in (a, b):
        result = deploy(pytester, root, pg_database)
        assert result.ret == 0, output(result)
        assert got(root) == "got="  # not the stored DATABASE_URL
        text = output(result)
        assert "names no project, so it goes by its folder's name 'deploy'" in text
        assert "gets no env var stored for project 'deploy'" in text
        assert "`project_id: " in text and "canary-a-4242" not in text
    with open_store(pg_database, a) as store:
        assert store.project_identity("deploy").identity is None  # type: ignore[union-attr]


def test_the_embedded_store_keeps_a_defaulted_name_working(pytester: pytest.Pytester) -> None:
    """The default SQLite store lives in the checkout: nobody else shares it."""
    a = checkout(pytester.path, "a", project_id=None)
    with open_store(None, a) as store:
        store.set_env("deploy", "t", "DATABASE_URL", CANARY)
    result = pytester.runpytest(str(a), f"--rootdir={a}", "--deploy-target=t")
    assert result.ret == 0, output(result)
    assert got(a) == f"got={CANARY}"


def test_an_existing_project_is_bound_on_its_next_deploy(
    pytester: pytest.Pytester, pg_database: str
) -> None:
    """A store from before identities: the first deploy whose config has an id binds it;
    a dry run binds nothing."""
    a = checkout(pytester.path, "a", project_id=ID_A, project="shop")
    with open_store(pg_database, a) as store:
        store.set_env("shop", "t", "DATABASE_URL", CANARY)
    assert deploy(pytester, a, pg_database, "--dry-run").ret == 0
    with open_store(pg_database, a) as store:
        assert store.project_identity("shop").identity is None  # type: ignore[union-attr]
    assert deploy(pytester, a, pg_database).ret == 0
    with open_store(pg_database, a) as store:
        assert store.project_identity("shop").identity == ID_A  # type: ignore[union-attr]


def test_adopt_rebinds_a_project_with_an_audit_row(
    pytester: pytest.Pytester, pg_database: str
) -> None:
    a = checkout(pytester.path, "a", project_id=ID_A)
    b = checkout(pytester.path, "b", project_id=ID_B)  # say: the same project, id made anew
    with open_store(pg_database, a) as store:
        store.set_env("deploy", "t", "DATABASE_URL", CANARY)
    assert deploy(pytester, a, pg_database).ret == 0
    assert deploy(pytester, b, pg_database).ret == 1

    no_reason = cli(b, pg_database, "project", "adopt", "deploy")
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    adopted = cli(b, pg_database, "project", "adopt", "deploy", "--reason", "re-ran init")
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    assert ID_A in adopted.stdout and ID_B in adopted.stdout

    assert deploy(pytester, b, pg_database).ret == 0
    assert got(b) == f"got={CANARY}"
    assert deploy(pytester, a, pg_database).ret == 1  # the old checkout is the stranger now
    with open_store(pg_database, a) as store:
        (adopt, bind) = store.project_audit("deploy")
    assert (adopt.action, adopt.old, adopt.new, adopt.reason) == (
        "adopt", ID_A, ID_B, "re-ran init"
    )
    assert adopt.who and bind.action == "bind"
    shown = cli(b, pg_database, "project", "show", "deploy")
    assert shown.returncode == 0 and "adopt" in shown.stdout and "re-ran init" in shown.stdout


def test_rename_moves_a_project_with_its_secrets_and_history(
    pytester: pytest.Pytester, pg_database: str
) -> None:
    a = checkout(pytester.path, "a", project_id=ID_A)
    with open_store(pg_database, a) as store:
        store.set_env("deploy", "t", "DATABASE_URL", CANARY)
        store.set_env("other", "t", "X", "y")
    assert deploy(pytester, a, pg_database).ret == 0

    taken = cli(a, pg_database, "project", "rename", "deploy", "other", "--reason", "r")
    assert taken.returncode == 2 and "already" in taken.stderr
    renamed = cli(a, pg_database, "project", "rename", "deploy", "shop", "--reason", "a real name")
    assert renamed.returncode == 0, renamed.stdout + renamed.stderr

    config = a / "deploy.yaml"
    config.write_text("project: shop\n" + config.read_text())
    (a / "got.txt").unlink()
    result = deploy(pytester, a, pg_database)
    assert result.ret == 0, output(result)
    assert got(a) == f"got={CANARY}"
    with open_store(pg_database, a) as store:
        assert store.project_identity("deploy") is None
        assert len(store.deployments("shop", "t")) == 2  # the history came along
        rename = store.project_audit("shop")[0]
    assert (rename.action, rename.old, rename.new, rename.reason) == (
        "rename", "deploy", "shop", "a real name"
    )


def test_the_cli_refuses_a_strangers_env_vars(pytester: pytest.Pytester, pg_database: str) -> None:
    a = checkout(pytester.path, "a", project_id=ID_A)
    b = checkout(pytester.path, "b", project_id=ID_B)
    with open_store(pg_database, a) as store:
        store.set_env("deploy", "t", "DATABASE_URL", CANARY)
    assert deploy(pytester, a, pg_database).ret == 0
    shown = cli(b, pg_database, "env", "get", "deploy", "DATABASE_URL", "--target", "t")
    assert shown.returncode == 2, shown.stdout + shown.stderr
    assert "canary-a-4242" not in shown.stdout + shown.stderr
    assert f"bound to project_id {ID_A}" in shown.stderr


def test_init_writes_a_project_id(tmp_path: Path) -> None:
    command = [str(Path(sys.executable).parent / "pytest-deploy"), "init"]
    for name in ("one", "two"):
        done = subprocess.run(
            [*command, str(tmp_path / name)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
    ids = [
        yaml.safe_load((tmp_path / name / "deploy.yaml").read_text())["project_id"]
        for name in ("one", "two")
    ]
    assert ids[0] != ids[1] and all(len(i) >= 32 for i in ids)


@pytest.mark.parametrize("value", ["1", "has space-in-it", "-starts-with-dash"])
def test_a_malformed_project_id_is_a_config_error(tmp_path: Path, value: str) -> None:
    from deploy_plugin.config import ConfigError, load_config

    path = tmp_path / "deploy.yaml"
    path.write_text(f"groups: [{{name: g, order: 1}}]\nproject_id: {json.dumps(value)}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert "line 2: project_id:" in text and "pytest-deploy init" in text
    assert "must not be empty" not in text
