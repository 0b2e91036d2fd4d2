"""The ``pytest-deploy`` command, in-process through ``main([...])``.

Each test works in its own folder (a ``pytest.ini`` makes it the rootdir, so the default
SQLite store is ``.deploy/state.sqlite3`` there). Bad input must exit 2 with one paragraph
on stderr and leave the store byte-for-byte unchanged. Everything contacted is on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest

from deploy_plugin.cli import build_parser, main
from deploy_plugin.cli.context import Context
from deploy_plugin.config import load_config
from deploy_plugin.store import open_store
from tests.httpserver import closed_port

SHOP = """\
project: shop
targets:
  local:
    type: database
    provider: local
    host: 127.0.0.1
    env:
      DATABASE_URL: "sqlite:///shop.sqlite3"
      APP_ENV: local
groups:
  - name: migrations
    order: 1
    file_patterns: ["migrations/*.sql"]
    required_env_vars: [DATABASE_URL]
  - name: build
    order: 2
    build_command: "echo building {project} for {target}"
    required_env_vars: [APP_ENV]
"""
MIGRATIONS = {
    "001_items.sql": "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);\n",
    "002_seed.sql": "INSERT INTO items (name) VALUES ('first');\n",
}

ITEMS = "migrations/001_items.sql"

Run = Callable[..., tuple[int, str, str]]


def make_shop(folder: Path) -> Path:
    """A small project: SQLite migrations (built-in executor) and an echo build."""
    (folder / "migrations").mkdir(parents=True)
    (folder / "deploy.yaml").write_text(SHOP)
    for name, sql in MIGRATIONS.items():
        (folder / "migrations" / name).write_text(sql)
    return folder


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A rootdir holding the shop project, as the current folder."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    make_shop(tmp_path / "shop")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DEPLOY_STORE_URL", raising=False)
    monkeypatch.delenv("VISUAL", raising=False)
    return tmp_path


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """``cli("target", "list", "shop", stdin=None)`` → (exit code, stdout, stderr)."""

    def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        capsys.readouterr()
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin or ""))
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def store_path(root: Path) -> Path:
    return root / ".deploy" / "state.sqlite3"


def snapshot(root: Path) -> bytes | None:
    path = store_path(root)
    return path.read_bytes() if path.exists() else None


# -- parser --------------------------------------------------------------------------------


def leaf_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not actions:
        return [prefix]
    found = []
    for name, sub in actions[0].choices.items():
        found += leaf_commands(sub, (*prefix, name))
    return found


def test_every_command_has_help_with_an_example(cli: Run) -> None:
    leaves = leaf_commands(build_parser())
    # init, 3 config, 5 target, 4 env, 12 migration (accept-checksum, baseline, rollback,
    # check-rollback, new), 2 deploy, history, unlock, 3 project (show, adopt, rename)
    assert len(leaves) == 32, leaves
    for leaf in leaves:
        code, out, _ = cli(*leaf, "--help")
        assert code == 0, leaf
        example = out.split("\nexample:\n", 1)[1]
        assert "pytest-deploy " + " ".join(leaf) in example, (leaf, out)


def test_usage_errors_exit_2(cli: Run, work: Path) -> None:
    assert cli()[0] == 2
    assert cli("frobnicate")[0] == 2
    code, _, err = cli("target", "add", "shop")
    assert code == 2 and "TARGET" in err
    code, _, err = cli("env", "set", "shop", "A", "b", "--target", "local", "--", "-x")
    assert code == 2 and "Only `deploy run` takes pytest options" in err
    assert snapshot(work) is None


# -- rootdir and store URL -----------------------------------------------------------------


def pytest_rootdir(folder: Path) -> Path:
    """The rootdir ``pytest`` reports in ``folder`` (its header line)."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-p", "no:cacheprovider"],
        cwd=folder, capture_output=True, text=True, check=False,
    )  # fmt: skip
    line = next(x for x in done.stdout.splitlines() if x.startswith("rootdir: "))
    return Path(line.removeprefix("rootdir: ").split(",")[0])


def where(folder: Path, **given: str | None) -> Context:
    args = argparse.Namespace(deploy_store=None, rootdir=None, config=None)
    vars(args).update(given)
    return Context(args, folder)


@pytest.mark.parametrize(
    ("name", "text", "found"),
    [
        ("pytest.ini", "", True),
        ("pyproject.toml", "[tool.pytest.ini_options]\ndeploy_store = 'sqlite:///x.db'\n", True),
        ("tox.ini", "[pytest]\ndeploy_store = sqlite:///x.db\n", True),
        ("tox.ini", "[tox]\nenvlist = py3\n", False),
        ("setup.cfg", "[tool:pytest]\ndeploy_store = sqlite:///x.db\n", True),
        ("setup.cfg", "[metadata]\nname = x\n", False),
        ("setup.py", "", False),
    ],
)
def test_rootdir_is_pytests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str, found: bool
) -> None:
    """The CLI's rootdir is the one pytest finds (it asks pytest), and the ini's
    deploy_store is read from pytest's ini file."""
    monkeypatch.delenv("DEPLOY_STORE_URL", raising=False)
    (tmp_path / name).write_text(text)
    below = tmp_path / "a" / "b"
    below.mkdir(parents=True)
    ctx = where(below)
    assert ctx.rootdir == pytest_rootdir(below)
    assert ctx.store_url == ("sqlite:///x.db" if found and text else None)


def test_store_url_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tox.ini").write_text("[pytest]\ndeploy_store = sqlite:///from-ini.db\n")
    monkeypatch.delenv("DEPLOY_STORE_URL", raising=False)
    assert where(tmp_path).store_url == "sqlite:///from-ini.db"
    monkeypatch.setenv("DEPLOY_STORE_URL", "sqlite:///from-env.db")
    assert where(tmp_path).store_url == "sqlite:///from-env.db"
    option = "sqlite:///from-option.db"
    assert where(tmp_path, deploy_store=option).store_url == option
    other = tmp_path / "elsewhere"
    other.mkdir()
    assert where(tmp_path, rootdir=str(other)).rootdir == other


def test_ini_store_is_used(cli: Run, work: Path) -> None:
    (work / "pytest.ini").write_text("[pytest]\ndeploy_store = sqlite:///custom/store.db\n")
    assert cli("target", "add", "shop", "staging")[0] == 0
    assert (work / "custom" / "store.db").exists()
    assert not (work / ".deploy").exists()


# -- init and config -----------------------------------------------------------------------


def test_init_writes_a_starter_config_that_validates(cli: Run, work: Path) -> None:
    code, out, _ = cli("init", "new/api")
    assert code == 0, out
    config = load_config(work / "new" / "api" / "deploy.yaml")
    assert config.project == "api" and [g.name for g in config.groups] == ["migrations"]
    text = (work / "new" / "api" / "deploy.yaml").read_text()
    assert text.count("\n#") > 10  # commented
    assert cli("config", "validate", "api")[0] == 0
    code, _, _ = cli("init", "named", "--project", "billing", "--json")
    assert load_config(work / "named" / "deploy.yaml").project == "billing"


def test_init_refuses_a_folder_with_a_config(cli: Run, work: Path) -> None:
    before = (work / "shop" / "deploy.yaml").read_bytes()
    code, _, err = cli("init", "shop")
    assert code == 2 and "already holds a config" in err and "shop/deploy.yaml" in err
    assert (work / "shop" / "deploy.yaml").read_bytes() == before
    (work / "other").mkdir()
    (work / "other" / "api.deploy.json").write_text('{"groups": []}')
    code, _, err = cli("init", "other")
    assert code == 2 and "api.deploy.json" in err
    assert not (work / "other" / "deploy.yaml").exists()


def test_config_show_and_validate(cli: Run, work: Path) -> None:
    code, out, _ = cli("config", "show", "shop")
    assert code == 0 and "migrations" in out and "declared target" in out.lower()
    code, out, _ = cli("config", "show", "shop", "--json")
    data = json.loads(out)
    assert data["project"] == "shop" and data["targets"]["local"]["env"] == [
        "APP_ENV",
        "DATABASE_URL",
    ]
    code, out, _ = cli("config", "show", "shop", "--raw")
    assert out == SHOP
    (work / "broken").mkdir()
    (work / "broken" / "deploy.yaml").write_text("project: broken\ngroups:\n  - name: x\n")
    code, out, err = cli("config", "validate")
    assert code == 1 and "shop/deploy.yaml: valid" in out
    assert "broken/deploy.yaml, line 3" in err and "order" in err and "Traceback" not in err
    assert cli("config", "validate", "broken")[0] == 1
    assert cli("config", "validate", "shop")[0] == 0
    code, _, err = cli("config", "show", "broken")
    assert code == 1 and "line 3" in err
    # store-only commands still work for a project whose config does not load
    code, _, err = cli("target", "add", "broken", "staging")
    assert code == 0 and "broken/deploy.yaml does not load" in err


def test_config_edit_revalidates(
    cli: Run, work: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nsed -i "$EDIT" "$1"\n')
    editor.chmod(0o755)
    monkeypatch.setenv("EDITOR", str(editor))
    monkeypatch.setenv("EDIT", "s/order: 2/order: 7/")
    code, out, _ = cli("config", "edit", "shop")
    assert code == 0 and "valid" in out
    assert load_config(work / "shop" / "deploy.yaml").group("build").order == 7
    monkeypatch.setenv("EDIT", "s/order: 7/order: seven/")
    code, _, err = cli("config", "edit", "shop")
    assert code == 1 and "order" in err and "line" in err
    # issue 24 #6: as visudo, the invalid edit never replaces the config; it is kept aside
    assert "shop/deploy.yaml, line" in err and ".edit-" not in err.split("was left")[0]
    assert load_config(work / "shop" / "deploy.yaml").group("build").order == 7
    (kept,) = (work / "shop").glob(".deploy.edit-*.yaml")
    assert "order: seven" in kept.read_text() and str(kept.name) in err
    monkeypatch.setenv("EDITOR", str(tmp_path / "no-such-editor"))
    code, _, err = cli("config", "edit", "shop")
    assert code == 1 and "Cannot start the editor" in err


# -- projects ------------------------------------------------------------------------------


def test_project_resolution(cli: Run, work: Path) -> None:
    code, _, err = cli("migration", "list", "shoop")
    assert code == 2 and "Unknown project 'shoop'" in err and "shop (shop/deploy.yaml)" in err
    # a second config of the same project is ambiguous until --config picks one
    make_shop(work / "copy")
    code, _, err = cli("migration", "list", "shop")
    assert code == 2 and "copy/deploy.yaml" in err and "--config" in err
    code, out, _ = cli("migration", "list", "shop", "--config", "copy/deploy.yaml")
    assert code == 0 and "migrations/001_items.sql" in out
    code, _, err = cli("migration", "list", "other", "--config", "copy/deploy.yaml")
    assert code == 2 and "is the config of project 'shop'" in err
    # hidden folders, .venv and node_modules are not searched
    for hidden in (".hidden", ".venv", "node_modules"):
        make_shop(work / hidden / "x")
    (work / "copy" / "deploy.yaml").unlink()
    assert cli("migration", "list", "shop")[0] == 0


def test_store_only_projects(cli: Run, work: Path) -> None:
    store = open_store(None, work)
    store.add_target("legacy", "prod", host="127.0.0.1:1")
    store.close()
    code, out, _ = cli("target", "list", "legacy")
    assert code == 0 and "prod" in out and "store" in out
    code, _, err = cli("migration", "status", "legacy", "--target", "prod")
    assert code == 2 and "known only to the store" not in err and "legacy" in err
    code, _, err = cli("target", "list", "nothing")
    assert code == 2 and "legacy (store only)" in err and "shop (shop/deploy.yaml)" in err


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_store_counts_what_a_target_keeps(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from deploy_plugin.store import MigrationRecord

    url = request.getfixturevalue("pg_database") if kind == "postgresql" else None
    with open_store(url, tmp_path) as store:
        store.add_target("shop", "live")
        store.set_env("shop", "gone", "A", "1")
        store.set_env("shop", "gone", "B", "2")
        record = MigrationRecord("m/1.sql", "abc", datetime.now(timezone.utc))
        store.record_migration("shop", "old", record)
        store.start_deployment("shop", "old", who="t", config_snapshot="", config_sha256="",
                               dry_run=False)  # fmt: skip
        store.set_env("other", "elsewhere", "A", "1")
        assert store.targets_in_use("shop") == ["gone", "old"]
        assert store.target_usage("shop", "old") == {
            "env_vars": 0, "migrations": 1, "deployments": 1,
        }  # fmt: skip
        assert store.target_usage("shop", "gone")["env_vars"] == 2
        assert store.target_usage("nobody", "x") == {
            "env_vars": 0, "migrations": 0, "deployments": 0,
        }  # fmt: skip


# -- targets -------------------------------------------------------------------------------


def test_target_add_list_update_remove(cli: Run, work: Path) -> None:
    code, out, _ = cli("target", "list", "shop")
    assert code == 0 and "local" in out and "config" in out
    assert not (work / ".deploy").exists()  # reading never creates the store
    args = ["--type", "database", "--provider", "supabase", "--host", "db.example.com"]
    code, out, _ = cli("target", "add", "shop", "production", *args, "--region", "eu")
    assert code == 0 and "Added target 'production'" in out
    assert stat.S_IMODE(store_path(work).stat().st_mode) == 0o600
    assert cli("target", "add", "shop", "local", "--host", "10.0.0.1")[0] == 0
    code, out, _ = cli("target", "list", "shop", "--json")
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["production"]["origin"] == "store" and rows["production"]["region"] == "eu"
    assert rows["local"]["origin"] == "config+store" and rows["local"]["host"] == "10.0.0.1"
    code, out, _ = cli("target", "update", "shop", "production", "--host", "db2", "--protected")
    assert code == 0
    code, out, _ = cli("target", "list", "shop")
    line = next(li for li in out.splitlines() if li.startswith("production"))
    assert "db2" in line and "yes" in line
    unprotect = ["--no-protected", "--region", "", "--yes"]  # no terminal here: --yes
    assert cli("target", "update", "shop", "production", *unprotect)[0] == 0
    info = open_store(None, work).get_target("shop", "production")
    assert (info.protected, info.region, info.host) == (False, None, "db2")
    code, out, _ = cli("target", "remove", "shop", "production")  # no history: no question
    assert code == 0 and "Removed target 'production'" in out
    assert [t.name for t in open_store(None, work).list_targets("shop")] == ["local"]


BAD_TARGET_INPUT = [
    (["target", "add", "shop", "local"], "already stored"),
    (["target", "add", "shop", "prod env"], "no spaces"),
    (["target", "add", "shopp", "prod"], "Unknown project 'shopp'"),
    (["target", "update", "shop", "local"], "Nothing to update"),
    (["target", "update", "shop", "staging", "--host", "x"], "No stored target 'staging'"),
    (["target", "remove", "shop", "staging"], "No stored target 'staging'"),
    (["target", "test", "shop", "nowhere"], "Unknown target 'nowhere'"),
]


@pytest.mark.parametrize(("args", "message"), BAD_TARGET_INPUT)
def test_bad_target_input_changes_nothing(
    cli: Run, work: Path, args: list[str], message: str
) -> None:
    assert cli("target", "add", "shop", "local", "--host", "127.0.0.1")[0] == 0
    before = snapshot(work)
    code, out, err = cli(*args)
    assert code == 2, (out, err)
    assert message in err and err.startswith("error: ") and err.count("\n") == 1
    assert snapshot(work) == before


def test_config_only_target_cannot_be_updated_or_removed(cli: Run, work: Path) -> None:
    for args in (["update", "shop", "local", "--host", "x"], ["remove", "shop", "local"]):
        code, _, err = cli("target", *args)
        assert code == 2 and "declared in the config" in err
    assert snapshot(work) is None


def test_removing_a_target_with_history_asks_and_keeps_history(cli: Run, work: Path) -> None:
    assert cli("target", "add", "shop", "staging")[0] == 0
    assert cli("migration", "mark-applied", "shop", ITEMS, "-t", "staging")[0] == 0
    before = snapshot(work)
    code, _, err = cli("target", "remove", "shop", "staging")  # stdin is not a terminal
    assert code == 2 and "1 migration history row(s)" in err and "--yes" in err
    assert snapshot(work) == before
    code, out, _ = cli("target", "remove", "shop", "staging", "--yes")
    assert code == 0 and "kept 1 migration history row(s)" in out
    store = open_store(None, work)
    assert [r.file for r in store.migration_history("shop", "staging")] == [
        "migrations/001_items.sql"
    ]
    code, out, _ = cli("target", "list", "shop")
    assert "history only" in out
    code, out, _ = cli("migration", "history", "shop", "--target", "staging")
    assert code == 0 and "migrations/001_items.sql" in out


# -- target test ---------------------------------------------------------------------------


def test_target_test_database_sqlite(cli: Run, work: Path) -> None:
    code, _, err = cli("target", "test", "shop", "local")
    assert code == 1 and "no such file" in err and "shop.sqlite3" in err
    assert not (work / "shop" / "shop.sqlite3").exists()  # a test never creates it
    import sqlite3

    sqlite3.connect(work / "shop" / "shop.sqlite3").close()
    code, out, _ = cli("target", "test", "shop", "local")
    assert code == 0 and "ok — SELECT 1 on SQLite file" in out and " ms" in out


def test_target_test_database_postgres(cli: Run, work: Path, pg_database: str) -> None:
    assert cli("target", "add", "shop", "pg", "--type", "database")[0] == 0
    code, _, err = cli("target", "test", "shop", "pg")
    assert code == 1 and "DATABASE_URL is not set for target 'pg'" in err
    assert cli("env", "set", "shop", "DATABASE_URL", pg_database, "-t", "pg")[0] == 0
    code, out, _ = cli("target", "test", "shop", "pg", "--json")
    result = json.loads(out)
    assert code == 0 and result["ok"] and result["latency_ms"] >= 0
    missing = pg_database.rsplit("/", 1)[0] + "/no_such_database_here"
    assert cli("env", "set", "shop", "DATABASE_URL", missing, "-t", "pg")[0] == 0
    code, _, err = cli("target", "test", "shop", "pg")
    assert code == 1 and "no_such_database_here" in err and "does not exist" in err


def test_target_test_http_and_tcp(cli: Run, work: Path, http_server) -> None:
    http_server.set_route("/broken", 503)
    port = closed_port()
    cases = {
        "web": (http_server.url_for("/health"), 0, "HTTP 200"),
        "down": (http_server.url_for("/broken"), 1, "HTTP 503"),
        "tcp": (f"127.0.0.1:{http_server.port}", 0, "TCP connect"),
        "closed": (f"127.0.0.1:{port}", 1, "Connection refused"),
        "closedweb": (f"http://127.0.0.1:{port}/", 1, "Connection refused"),
    }
    for name, (host, _, _) in cases.items():
        assert cli("target", "add", "shop", name, "--type", "service", "--host", host)[0] == 0
    for name, (_, expected, text) in cases.items():
        code, out, err = cli("target", "test", "shop", name)
        assert code == expected and text in out + err, (name, out, err)
    assert http_server.count("/health") == 1 and http_server.count("/broken") == 1
    assert cli("target", "add", "shop", "bare", "--type", "service")[0] == 0
    code, _, err = cli("target", "test", "shop", "bare")
    assert code == 1 and "no host" in err


# -- env vars ------------------------------------------------------------------------------


def test_env_set_get_list_delete(cli: Run, work: Path) -> None:
    secret = "postgresql://app:s3cr3t-canary@127.0.0.1:5432/shop"
    code, out, err = cli("env", "set", "shop", "DATABASE_URL", "-", "-t", "local", stdin=secret)
    assert code == 0 and secret not in out + err
    assert cli("env", "set", "shop", "API_TOKEN", "tok-canary-123", "--target", "local")[0] == 0
    code, out, _ = cli("env", "get", "shop", "DATABASE_URL", "--target", "local")
    assert (code, out) == (0, secret + "\n")
    code, out, _ = cli("env", "get", "shop", "APP_ENV", "--target", "local", "--json")
    assert json.loads(out) == {"name": "APP_ENV", "value": "local", "source": "config"}
    code, out, err = cli("env", "list", "shop", "--target", "local")
    assert code == 0 and "s3cr3t" not in out + err and "tok-canary" not in out + err
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "store (overrides config)" in lines["DATABASE_URL"]
    assert "config" in lines["APP_ENV"] and "store" in lines["API_TOKEN"]
    code, out, _ = cli("env", "list", "shop", "--target", "local", "--json")
    assert "s3cr3t" not in out and {r["name"] for r in json.loads(out)} == {
        "API_TOKEN", "APP_ENV", "DATABASE_URL",
    }  # fmt: skip
    assert cli("env", "delete", "shop", "API_TOKEN", "--target", "local")[0] == 0
    code, _, err = cli("env", "get", "shop", "API_TOKEN", "--target", "local")
    assert code == 2 and "Known: APP_ENV, DATABASE_URL" in err
    assert stat.S_IMODE(store_path(work).stat().st_mode) == 0o600


def test_env_set_warns_about_weak_values(cli: Run, work: Path) -> None:
    code, out, err = cli("env", "set", "shop", "MODE", "dev", "-t", "local")
    assert code == 0 and "under 4 characters" in err
    code, _, err = cli("env", "set", "shop", "WHERE", "local", "-t", "local")
    assert code == 0 and "equals the name of a project, target or group" in err
    code, _, err = cli("env", "set", "shop", "STEP", "migrations", "-t", "local")
    assert "equals the name" in err
    code, _, err = cli("env", "set", "shop", "OTHER", "a-long-value", "-t", "local")
    assert "warning" not in err  # only the store it wrote is named (issue 15 #2)
    assert err == f"store: {work / '.deploy' / 'state.sqlite3'}\n"


BAD_ENV_INPUT = [
    (["env", "set", "shop", "2FAST", "value", "-t", "local"], "not starting with a digit"),
    (["env", "set", "shop", "MY-VAR", "value", "-t", "local"], "shell identifier"),
    (["env", "set", "shop", "TOKEN", "", "-t", "local"], "is empty"),
    (["env", "set", "shop", "TOKEN", "-", "-t", "local"], "is empty"),
    (["env", "set", "shop", "TOKEN", "value"], "pass --target NAME. Known targets: local"),
    (["env", "set", "shop", "TOKEN", "value", "-t", "prod env"], "no spaces"),
    (["env", "set", "shop", "TOKEN", "value", "-t", "prod"], "Unknown target 'prod'"),
    (["env", "set", "nope", "TOKEN", "value", "-t", "local"], "Known projects: shop"),
    (["env", "get", "shop", "MISSING", "-t", "local"], "Unknown env var 'MISSING'"),
    (["env", "delete", "shop", "MISSING", "-t", "local"], "Known: SECRET_KEY"),
    (["env", "delete", "shop", "APP_ENV", "-t", "local"], "declared in the config"),
    (["env", "list", "shop"], "pass --target NAME"),
]


@pytest.mark.parametrize(("args", "message"), BAD_ENV_INPUT)
def test_bad_env_input_changes_nothing(cli: Run, work: Path, args: list[str], message: str) -> None:
    assert cli("env", "set", "shop", "SECRET_KEY", "k-canary-42", "-t", "local")[0] == 0
    before = snapshot(work)
    code, out, err = cli(*args)
    assert code == 2, (out, err)
    assert message in err and err.startswith("error: ") and err.count("\n") == 1
    assert "Traceback" not in err and "k-canary-42" not in out + err
    assert snapshot(work) == before


def test_bad_input_never_creates_the_store(cli: Run, work: Path) -> None:
    for args, _ in BAD_ENV_INPUT[:8] + BAD_TARGET_INPUT[1:3]:
        assert cli(*args)[0] == 2
    assert not (work / ".deploy").exists()


def test_bad_input_leaves_postgres_store_unchanged(
    cli: Run, work: Path, pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOY_STORE_URL", pg_database)
    assert cli("target", "add", "shop", "production", "--type", "database")[0] == 0
    assert cli("env", "set", "shop", "TOKEN", "t-canary-1", "-t", "production")[0] == 0

    def rows() -> list:
        with psycopg.connect(pg_database) as conn:
            return [
                conn.execute(f"SELECT * FROM deploy.{table} ORDER BY 1").fetchall()
                for table in ("projects", "deployment_targets", "env_vars", "migration_history")
            ]

    before = rows()
    for args, _ in BAD_ENV_INPUT[:8] + BAD_TARGET_INPUT[1:3]:
        assert cli(*args)[0] == 2, args
    code, _, err = cli("migration", "mark-applied", "shop", "migrations/404.sql", "-t", "local")
    assert code == 2 and "No such migration file" in err
    assert rows() == before
    code, out, _ = cli("env", "list", "shop", "-t", "production")
    assert "TOKEN" in out and "t-canary-1" not in out


def test_store_errors_are_one_paragraph(cli: Run, work: Path) -> None:
    code, _, err = cli("target", "list", "shop", "--deploy-store", "mysql://u:pw@127.0.0.1/x")
    assert code == 1 and "not supported" in err and "pw" not in err and "Traceback" not in err
    store_path(work).parent.mkdir()
    store_path(work).write_bytes(b"this is not a database" * 100)
    code, _, err = cli("env", "set", "shop", "TOKEN", "value", "-t", "local")
    assert code == 1 and "not a usable SQLite database" in err and err.count("\n") == 1


# -- migrations ----------------------------------------------------------------------------


def test_migration_status_mark_applied_and_drift(cli: Run, work: Path) -> None:
    code, out, _ = cli("migration", "status", "shop", "--target", "local")
    assert code == 0 and "0 applied, 2 pending, 0 drifted" in out
    assert not (work / ".deploy").exists()
    # FILE relative to the current folder works as well as relative to the config's root
    code, out, _ = cli("migration", "mark-applied", "shop", f"shop/{ITEMS}", "-t", "local")
    assert code == 0 and "Marked migrations/001_items.sql as applied" in out
    before = snapshot(work)
    code, out, _ = cli("migration", "mark-applied", "shop", ITEMS, "-t", "local")
    assert code == 0 and "already applied" in out and snapshot(work) == before
    code, out, _ = cli("migration", "status", "shop", "--target", "local", "--json")
    status = json.loads(out)
    assert (status["applied"], status["pending"], status["drifted"]) == (1, 1, 0)
    (work / "shop" / "migrations" / "001_items.sql").write_text("CREATE TABLE changed (x int);")
    code, out, err = cli("migration", "status", "shop", "--target", "local")
    assert code == 1 and "1 drifted" in out and "drifted: migrations/001_items.sql" in err
    code, _, err = cli("migration", "mark-applied", "shop", ITEMS, "-t", "local")
    assert code == 2 and "has changed since" in err and snapshot(work) == before
    (work / "shop" / "migrations" / "001_items.sql").unlink()
    code, out, err = cli("migration", "status", "shop", "--target", "local")
    assert code == 0 and "missing" in out and "no longer exists" in err


@pytest.mark.parametrize(
    ("file", "message"),
    [
        ("migrations/003_missing.sql", "No such migration file"),
        ("deploy.yaml", "not a tracked migration"),
        ("../pytest.ini", "No such migration file"),
    ],
)
def test_mark_applied_bad_file_changes_nothing(
    cli: Run, work: Path, file: str, message: str
) -> None:
    assert cli("env", "set", "shop", "TOKEN", "value", "-t", "local")[0] == 0
    before = snapshot(work)
    code, _, err = cli("migration", "mark-applied", "shop", file, "--target", "local")
    assert code == 2 and message in err and "migrations/001_items.sql" in err
    assert snapshot(work) == before


def test_migration_list_show_history(cli: Run, work: Path) -> None:
    code, out, _ = cli("migration", "list", "shop")
    assert code == 0 and out.count("migrations/00") == 2
    code, out, _ = cli("migration", "show", "shop", "migrations/002_seed.sql", "-t", "local")
    assert code == 0 and "local: pending" in out and MIGRATIONS["002_seed.sql"] in out
    for name in MIGRATIONS:
        cli("migration", "mark-applied", "shop", f"migrations/{name}", "-t", "local")
    code, out, _ = cli("migration", "history", "shop", "-t", "local", "--limit", "1", "--json")
    assert [row["file"] for row in json.loads(out)] == ["migrations/002_seed.sql"]
    code, out, _ = cli("migration", "list", "shop", "-t", "local", "--json")
    assert {row["state"] for row in json.loads(out)} == {"applied"}
    assert cli("migration", "history", "shop", "-t", "local", "--limit", "0")[0] == 2


def test_migration_apply_runs_pytest(cli: Run, work: Path) -> None:
    code, out, err = cli("migration", "apply", "shop", "--target", "local", "--dry-run")
    assert code == 0 and "dry run" in out, out + err
    assert not (work / "shop" / "shop.sqlite3").exists()
    code, out, err = cli("migration", "apply", "shop", "--target", "local", "--json")
    assert code == 0, out + err
    [deployment] = json.loads(out)["deployments"]
    kinds = {(s["kind"], s["group"]) for s in deployment["steps"]}
    assert ("build", "build") not in kinds and ("deploy", "migrations") in kinds
    assert "passed" in err  # pytest's output goes to stderr with --json
    code, out, _ = cli("migration", "status", "shop", "--target", "local")
    assert "2 applied, 0 pending" in out
    code, out, _ = cli("target", "test", "shop", "local")
    assert code == 0


# -- deployments ---------------------------------------------------------------------------


def test_deploy_run_status_history(cli: Run, work: Path) -> None:
    code, _, err = cli("deploy", "run", "shop", "--target", "local", "--group", "biuld")
    assert code == 2 and "Its groups: migrations, build" in err
    code, out, err = cli("deploy", "run", "shop", "--target", "local", "--json", "--", "-q")
    assert code == 0, out + err
    [deployment] = json.loads(out)["deployments"]
    assert deployment["status"] == "success" and deployment["dry_run"] is False
    build = next(s for s in deployment["steps"] if s["kind"] == "build")
    assert build["command"] == "echo building shop for local"
    (work / "shop" / "migrations" / "003_bad.sql").write_text("INSERT INTO nowhere VALUES (1);\n")
    code, out, _ = cli("deploy", "run", "shop", "--target", "local", "--no-health-check")
    assert code == 1 and "003_bad.sql" in out
    code, out, _ = cli("deploy", "status", "shop")
    line = next(li for li in out.splitlines() if li.startswith("local"))
    assert "failure" in line
    code, out, _ = cli("history", "shop", "--json")
    runs = json.loads(out)
    assert [r["status"] for r in runs] == ["failure", "success"]
    assert any(s["outcome"] == "failed" for s in runs[0]["steps"])
    code, out, _ = cli("history", "shop", "--target", "local", "--limit", "1", "--steps")
    assert code == 0 and "failure" in out and "003_bad.sql" in out


HOLD = """
import os, sys
from pathlib import Path
from deploy_plugin.store import open_store
store = open_store(None, Path(sys.argv[1]))
store.acquire_lock("shop", "local", holder="crashed-runner")
os._exit(0)
"""


def test_unlock(cli: Run, work: Path) -> None:
    code, out, _ = cli("unlock", "shop", "--target", "local")
    assert code == 0 and "No deployment lock" in out
    subprocess.run([sys.executable, "-c", HOLD, str(work)], check=True, timeout=60)
    code, out, _ = cli("deploy", "status", "shop", "--json")
    [row] = json.loads(out)["targets"]
    assert row["lock"]["holder"] == "crashed-runner"
    code, out, _ = cli("unlock", "shop", "--target", "local")
    assert code == 0 and "crashed-runner" in out
    # a live holder on this host: only with --yes
    store = open_store(None, work)
    lock = store.acquire_lock("shop", "local", holder="me")
    before = snapshot(work)
    code, _, err = cli("unlock", "shop", "--target", "local")
    assert code == 2 and "still running" in err and snapshot(work) == before
    assert cli("unlock", "shop", "--target", "local", "--yes")[0] == 0
    assert store.lock_info("shop", "local") is None
    lock.release()
    store.close()


# -- the console script --------------------------------------------------------------------


def test_console_script(work: Path) -> None:
    script = Path(sys.executable).with_name("pytest-deploy")
    env = {k: v for k, v in os.environ.items() if k != "DEPLOY_STORE_URL"}

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), *args], cwd=work, env=env, input=stdin, capture_output=True,
            text=True, timeout=60,
        )  # fmt: skip

    done = run("env", "set", "shop", "TOKEN", "-", "--target", "local", stdin="from-stdin\n")
    assert done.returncode == 0, done.stderr
    done = run("env", "get", "shop", "TOKEN", "--target", "local")
    assert done.stdout == "from-stdin\n"
    done = run("env", "set", "shop", "BAD NAME", "x", "--target", "local")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: Invalid env var name 'BAD NAME'")
    done = run("--help")
    assert done.returncode == 0 and "examples" in done.stdout
    done = run("target", "list", "shop", "--json")
    assert [t["name"] for t in json.loads(done.stdout)] == ["local"]


def test_starter_config_deploys(cli: Run, work: Path) -> None:
    """init, one migration, then a real deployment of the starter config."""
    assert cli("init", "fresh")[0] == 0
    (work / "fresh" / "migrations").mkdir()
    (work / "fresh" / "migrations" / "001_init.sql").write_text(
        textwrap.dedent("""\
            CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
            INSERT INTO notes (body) VALUES ('hello');
        """)
    )
    code, out, err = cli("deploy", "run", "fresh", "--target", "local")
    assert code == 0, out + err
    code, out, _ = cli("migration", "status", "fresh", "--target", "local")
    assert "1 applied, 0 pending" in out


# -- found in review (each failed before its fix) --------------------------------------------


def test_target_test_masks_stored_values(cli: Run, work: Path, http_server) -> None:
    url = http_server.url_for("/health") + "?token=${API_TOKEN}"
    assert cli("target", "add", "shop", "tok", "--type", "service", "--health-url", url)[0] == 0
    assert cli("env", "set", "shop", "API_TOKEN", "tokCanary999", "-t", "tok")[0] == 0
    for extra in ((), ("--json",)):
        code, out, err = cli("target", "test", "shop", "tok", *extra)
        assert code == 0 and "tokCanary999" not in out + err and "token=***" in out + err
    assert http_server.requests_to("/health")[0].path.endswith("token=tokCanary999")


def test_target_test_never_goes_through_a_proxy(
    cli: Run, work: Path, http_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/"
    assert cli("target", "add", "shop", "dead", "--type", "service", "--host", dead)[0] == 0
    monkeypatch.setenv("HTTP_PROXY", http_server.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    code, out, err = cli("target", "test", "shop", "dead")
    assert code == 1 and "Connection refused" in err and http_server.count() == 0


def test_a_database_url_of_another_scheme_is_not_shown(cli: Run, work: Path) -> None:
    assert cli("target", "add", "shop", "odd", "--type", "database")[0] == 0
    value = "host=127.0.0.1 password=pwCanary77 dbname=x"
    assert cli("env", "set", "shop", "DATABASE_URL", value, "-t", "odd")[0] == 0
    code, out, err = cli("target", "test", "shop", "odd")
    assert code == 1 and "unsupported database URL" in err and "pwCanary77" not in out + err


def test_env_values_that_no_step_could_receive_are_refused(
    cli: Run, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("env", "set", "shop", "NUL", "-", "-t", "local", stdin="ab\0cdefg")[0] == 2
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\xff\xfebad\n")))
    code = main(["env", "set", "shop", "BYTES", "-", "-t", "local"])
    assert code == 2
    assert not store_path(work).exists()


def test_a_bad_editor_command_is_one_message(
    cli: Run, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDITOR", '"unterminated')
    code, _, err = cli("config", "edit", "shop")
    assert code == 1 and "balanced quotes" in err and "Traceback" not in err


def test_a_removed_target_keeps_reachable_env_vars(cli: Run, work: Path) -> None:
    assert cli("target", "add", "shop", "old", "--type", "service")[0] == 0
    assert cli("env", "set", "shop", "KEY", "value-kept", "-t", "old")[0] == 0
    assert cli("target", "remove", "shop", "old", "--yes")[0] == 0
    code, out, _ = cli("env", "list", "shop", "-t", "old")
    assert code == 0 and "KEY" in out
    assert cli("env", "delete", "shop", "KEY", "-t", "old")[0] == 0


def test_configs_under_build_are_not_projects(cli: Run, work: Path) -> None:
    make_shop(work / "build" / "shop")
    code, out, _ = cli("migration", "status", "shop", "-t", "local")
    assert code == 0 and "pending" in out


def test_an_existing_store_file_is_made_private(cli: Run, work: Path) -> None:
    (work / "x.db").write_bytes(b"")
    (work / "x.db").chmod(0o644)
    store = f"sqlite:///{work}/x.db"
    assert (
        cli("env", "set", "shop", "K", "secret-value", "-t", "local", "--deploy-store", store)[0]
        == 0
    )
    assert stat.S_IMODE((work / "x.db").stat().st_mode) == 0o600


def test_a_mistyped_store_database_is_named(cli: Run, work: Path, pg_database: str) -> None:
    missing = pg_database.rsplit("/", 1)[0] + "/no_such_store_db"
    code, _, err = cli("env", "list", "shop", "-t", "local", "--deploy-store", missing)
    assert code == 1 and 'database "no_such_store_db" does not exist' in err


# -- issue 9 #11: mark-applied respects the lock and a protected target ----------------------


def test_mark_applied_waits_for_no_one_and_asks_for_a_protected_target(
    cli: Run, work: Path
) -> None:
    from deploy_plugin.store import open_store

    store = open_store(None, work)
    assert store is not None
    lock = store.acquire_lock("shop", "local", holder="someone-deploying")
    code, _, err = cli("migration", "mark-applied", "shop", ITEMS, "-t", "local")
    assert code == 1 and "someone-deploying" in err, err  # refused: a deployment runs
    assert store.applied_migrations("shop", "local") == {}
    lock.release()
    assert cli("target", "add", "shop", "guarded", "--protected")[0] == 0
    code, _, err = cli("migration", "mark-applied", "shop", ITEMS, "-t", "guarded")
    assert code == 2 and "pass --yes" in err, err
    assert store.applied_migrations("shop", "guarded") == {}
    code, out, err = cli("migration", "mark-applied", "shop", ITEMS, "-t", "guarded", "--yes")
    assert code == 0, err
    assert list(store.applied_migrations("shop", "guarded")) == [ITEMS]
    store.close()


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 24 #6: `pytest-deploy --version` prints the installed version, exit 0."""
    from importlib.metadata import version

    from deploy_plugin.cli import main

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"pytest-deploy {version('pytest-deploy')}"
