"""The history page's file: what gets written, by the CLI and by ``--deploy-html``, and
what never does (secrets; a broken deployment because of the page). The page's behaviour
in a browser is tests/test_history_page.py."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from deploy_plugin.report.html import write_history_page
from deploy_plugin.store import open_store
from tests.history_site import (
    CLI_SECRET,
    SECRET,
    cli,
    deploy,
    deploy_history,
    fill_store,
    make_shop,
)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shop project after four real deployments (local ×3, the last failing; qa ×1)."""
    root = tmp_path_factory.mktemp("history") / "shop"
    codes = [run.returncode for run in deploy_history(root)]
    assert codes == [0, 0, 0, 1]
    return root


def payload(page: Path) -> dict:
    text = page.read_text()
    found = re.search(r'<script type="application/json" id="history-data">(.*?)</script>', text)
    assert found is not None
    return json.loads(found.group(1))


def test_cli_writes_every_target(shop: Path) -> None:
    result = cli(shop, "history", "shop", "--html", "all.html")
    assert result.returncode == 0, result.stderr
    assert "Wrote all.html: 2 target(s), 4 deployment(s) in full." in result.stdout
    page = (shop / "all.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    data = payload(shop / "all.html")
    assert data["targets"] == ["local", "qa"]
    statuses = [data["strings"][run[2]] for run in data["runs"]]
    assert sorted(statuses) == ["failure", "success", "success", "success"]
    # the config is at hand: pending is computed (003_broken failed on local, is new on qa)
    row = re.search(r'<tr data-target="qa">(.*?)</tr>', page, re.S)
    assert row is not None and "unknown" not in row.group(1)


def test_page_refers_to_no_network_address(shop: Path) -> None:
    assert cli(shop, "history", "shop", "--html", "net.html").returncode == 0
    page = (shop / "net.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#)""", page)  # only in-page links
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page and "@import" not in page and "url(" not in page


def test_a_target_never_deployed_has_its_row(tmp_path: Path) -> None:
    root = make_shop(tmp_path / "shop")
    assert deploy(root, "local").returncode == 0
    assert cli(root, "target", "add", "shop", "later", "--type", "database").returncode == 0
    assert cli(root, "history", "shop", "--html", "all.html").returncode == 0
    page = (root / "all.html").read_text()
    assert payload(root / "all.html")["targets"] == ["later", "local", "qa"]
    row = re.search(r'<tr data-target="later">(.*?)</tr>', page, re.S)
    assert row is not None and "never deployed" in row.group(1)


def test_target_option_writes_one_target(shop: Path) -> None:
    result = cli(shop, "history", "shop", "--target", "qa", "--html", "qa.html", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "html": "qa.html",
        "targets": 1,
        "deployments": 1,
        "summarised": 0,
    }
    assert payload(shop / "qa.html")["targets"] == ["qa"]


def test_no_canary_secret_reaches_the_page(tmp_path: Path) -> None:
    """A stored secret and a --deploy-env one are in commands and in a failing step's
    output (the message the page shows): the page has them masked only."""
    root = make_shop(tmp_path / "shop")
    assert deploy(root, "local").returncode == 0
    config = (root / "deploy.yaml").read_text() + (
        "  - name: check\n    order: 4\n"
        '    test_command: "echo token=$SHOP_TOKEN api=$API_TOKEN; exit 1"\n'
    )
    (root / "deploy.yaml").write_text(config)
    run = deploy(root, "local", "--deploy-html=run.html")
    assert run.returncode == 1
    assert cli(root, "history", "shop", "--html", "all.html").returncode == 0
    for name in ("run.html", "all.html"):
        text = (root / name).read_text()
        assert "token=*** api=***" in text, name  # the failing step's output, masked
        assert "$SHOP_TOKEN" in text  # the commands, as written
        assert SECRET not in text and CLI_SECRET not in text, name


def test_unwritable_path_is_an_error_of_the_cli(shop: Path) -> None:
    # a folder is made when missing (as --junitxml does); under a file, none can be
    result = cli(shop, "history", "shop", "--html", "deploy.yaml/page.html")
    assert result.returncode == 1
    assert "deploy.yaml/page.html" in result.stderr
    assert "Traceback" not in result.stderr


def test_deploy_html_writes_this_run_with_its_history(tmp_path: Path) -> None:
    root = make_shop(tmp_path / "shop")
    assert deploy(root, "local").returncode == 0
    second = deploy(root, "local", "--deploy-html=deploy.yaml/run.html")
    # no folder can be made under a file: a warning, the deployment stands
    assert second.returncode == 0, second.stdout
    assert "history page deploy.yaml/run.html not written" in second.stdout
    third = deploy(root, "local", "--deploy-html=run.html")
    assert third.returncode == 0, third.stdout + third.stderr
    data = payload(root / "run.html")
    assert data["targets"] == ["local"]
    assert [run[0] for run in data["runs"]] == [1, 2, 3]
    assert data["highlight"] == [3]


def test_deploy_html_failure_keeps_the_exit_code(tmp_path: Path) -> None:
    root = make_shop(tmp_path / "shop")
    (root / "migrations" / "002_broken.sql").write_text("INSERT INTO nowhere VALUES (1);\n")
    (root / "run.html").mkdir()  # a folder where the file should go
    result = deploy(root, "local", "--deploy-html=run.html")
    assert result.returncode == 1
    assert "history page run.html not written" in result.stdout
    assert "FAILURE" in result.stdout


def test_unwritable_page_under_warnings_as_errors_keeps_the_success(tmp_path: Path) -> None:
    """-W error makes a test's warning fail it; a page written after the run must still
    only warn: the deployment succeeded, its summary shows, exit 0."""
    root = make_shop(tmp_path / "shop")
    (root / "run.html").mkdir()
    result = deploy(root, "local", "-W", "error", "--deploy-html=run.html", cli_env=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "history page run.html not written" in result.stdout
    assert "SUCCESS" in result.stdout


def test_store_read_error_is_a_warning_naming_the_path(tmp_path: Path) -> None:
    """A last step breaks the store's migration history table for real: the page cannot
    be read, the deployment's success stands."""
    root = tmp_path / "p"
    root.mkdir()
    (root / "pytest.ini").write_text("[pytest]\n")
    breaker = (
        f"{sys.executable} -c \"import sqlite3; db = sqlite3.connect('.deploy/state.sqlite3');"
        " db.execute('ALTER TABLE migration_history RENAME TO gone'); db.commit()\""
    )
    (root / "deploy.yaml").write_text(
        "project: p\ntargets:\n  t: {}\ngroups:\n  - name: g\n    order: 1\n"
        f"    post_deploy:\n      - {json.dumps(breaker)}\n"
    )
    result = deploy(root, "t", "--deploy-html=page.html")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "history page page.html not written" in result.stdout
    assert "migration" in result.stdout  # what could not be read
    assert not (root / "page.html").exists()


def test_older_runs_beyond_the_limit_are_summarised(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    store = open_store(None, tmp_path)
    fill_store(store, "big", targets=2, runs=30, steps=5)
    store.close()
    result = cli(tmp_path, "history", "big", "--html", "big.html", "--limit", "12")
    assert result.returncode == 0, result.stderr
    assert "24 deployment(s) in full, 36 older one(s) summarised (--limit)." in result.stdout
    page = (tmp_path / "big.html").read_text()
    assert page.count("18 older deployments (2026-01-01T00:00:00Z to 2026-01-01T17:00:00Z)") == 2
    # r % 7 == 3 fails: runs 3, 10 and 17 are among the 18 oldest (0 to 17)
    assert "3 failure, 15 success." in page
    assert len(payload(tmp_path / "big.html")["runs"]) == 24
    # without the project's config, pending and drifted are unknown
    assert re.search(r"<td>unknown</td>\s*<td>1</td>\s*<td>unknown</td>", page)


def test_a_postgresql_store_gives_the_same_page(tmp_path: Path, pg_database: str) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    pages = {}
    for name, url in (("sqlite", None), ("postgresql", pg_database)):
        store = open_store(url, tmp_path)
        fill_store(store, "big", targets=2, runs=15, steps=4)
        pages[name] = write_history_page(store, "big", tmp_path / f"{name}.html", limit=10)
        store.close()
    sqlite, postgresql = (payload(tmp_path / f"{n}.html") for n in ("sqlite", "postgresql"))
    assert postgresql["targets"] == sqlite["targets"] == ["target-0", "target-1"]

    def same(run: list) -> list:
        return run[1:4] + run[5:]  # not the id, not the duration (ended "now")

    assert [same(r) for r in postgresql["runs"]] == [same(r) for r in sqlite["runs"]]
    assert len(postgresql["runs"]) == 20 and len(postgresql["runs"][0][11]) == 4
    assert pages["postgresql"].targets[0].older is not None
    assert pages["postgresql"].targets[0].older.count == 5


def test_deploy_html_under_xdist_has_every_target_of_the_run(tmp_path: Path) -> None:
    """Workers deploy; the controller writes the page from their reports."""
    root = make_shop(tmp_path / "shop")
    result = deploy(root, "local", "--deploy-target=qa", "-n", "2", "--deploy-html=x.html")
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(payload(root / "x.html")["targets"]) == ["local", "qa"]
    # this run's deployments are marked (before: none, so the page opened elsewhere)
    assert sorted(payload(root / "x.html")["highlight"]) == [1, 2]


def test_a_dry_run_is_not_the_last_deployment(tmp_path: Path) -> None:
    """A dry run changed nothing: the targets table shows the last real deployment (a
    failed one here), and the timeline marks the dry run as one."""
    root = make_shop(tmp_path / "shop")
    (root / "migrations" / "002_broken.sql").write_text("INSERT INTO nowhere VALUES (1);\n")
    assert deploy(root, "local").returncode == 1
    (root / "migrations" / "002_broken.sql").unlink()
    assert deploy(root, "local", "--dry-run", "--deploy-html=dry.html").returncode == 0
    page = (root / "dry.html").read_text()
    row = re.search(r'<tr data-target="local">.*?</tr>', page, re.S)
    assert row is not None and "failure" in row.group(0) and "success" not in row.group(0)
    assert 'aria-label="Run 2: success (dry run: nothing changed)' in page
