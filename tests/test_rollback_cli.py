"""``pytest-deploy migration rollback``: a pytest run with --deploy-rollback=N underneath."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.test_cli import Run, cli, work  # noqa: F401 - fixtures

DOWNS = {
    "001_items.sql": "-- migrate:up\nCREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);\n"
    "-- migrate:down\nDROP TABLE items;\n",
    "002_seed.sql": "-- migrate:up\nINSERT INTO items (name) VALUES ('first');\n"
    "-- migrate:down\nDELETE FROM items WHERE name = 'first';\n",
}


def items(root: Path) -> list[str] | None:
    with sqlite3.connect(root / "shop" / "shop.sqlite3") as conn:
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'items'").fetchone()
        return [r[0] for r in conn.execute("SELECT name FROM items")] if found else None


def test_migration_rollback_runs_pytest(cli: Run, work: Path) -> None:  # noqa: F811
    for name, text in DOWNS.items():
        (work / "shop" / "migrations" / name).write_text(text)
    assert cli("migration", "apply", "shop", "--target", "local")[0] == 0
    assert items(work) == ["first"]

    code, out, err = cli("migration", "rollback", "shop", "-t", "local", "--dry-run")
    assert code == 0 and "rollback[migrations/002_seed.sql]" in out, out + err
    assert "the -- migrate:down section of migrations/002_seed.sql" in out
    assert items(work) == ["first"]

    code, out, err = cli("migration", "rollback", "shop", "-t", "local", "--json")
    assert code == 0, out + err
    [run] = json.loads(out)["deployments"]
    assert run["kind"] == "rollback" and run["status"] == "success"
    assert [s["node_id"].split("::", 2)[2] for s in run["steps"] if s["kind"] == "rollback"] == [
        "migrations::rollback[migrations/002_seed.sql]"
    ]
    assert items(work) == []
    code, out, _ = cli("migration", "status", "shop", "--target", "local")
    assert "1 applied, 1 rolled back, 0 pending" in out  # counts name each state (issue 15 #5)
    code, out, _ = cli("deploy", "status", "shop", "--json")
    assert code == 0

    code, out, err = cli("migration", "rollback", "shop", "-t", "local", "--steps", "5")
    assert code == 0 and items(work) is None, out + err
    code, out, err = cli("migration", "rollback", "shop", "-t", "local")
    assert code == 0 and "nothing to roll back" in out, out + err


def test_migration_rollback_bad_input(cli: Run, work: Path) -> None:  # noqa: F811
    code, _, err = cli("migration", "rollback", "shop", "-t", "local", "--steps", "0")
    assert code == 2 and "at least 1" in err
    code, _, err = cli("migration", "rollback", "shop")
    assert code == 2 and "local" in err  # names the known targets
    code, out, err = cli("migration", "rollback", "shop", "-t", "local")
    assert code == 0 and "nothing to roll back" in out, out + err
