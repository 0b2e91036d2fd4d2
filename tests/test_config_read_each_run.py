"""What runs is what was read (DESIGN §5; issue 20 item 5): the config is read and
validated from its file every run. Nothing of it is kept in pytest's cache
(``.pytest_cache``), so an edited or shared cache cannot choose what a deployment runs, and
a value written in the config (a URL's password) is not copied there.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from tests.projects import write_config

CLEAN = "echo clean >> ran.txt"
POISON = "touch PWNED"
PASSWORD = "cache-canary-4d1e"


def project(pytester: pytest.Pytester) -> Path:
    """A config whose one step appends to ran.txt, with a URL password in a target's env."""
    return write_config(
        pytester,
        {
            "project": "p",
            "targets": {"t": {"env": {"SERVICE_URL": f"https://svc:{PASSWORD}@127.0.0.1/x"}}},
            "groups": [{"name": "g", "order": 1, "deploy_command": CLEAN}],
        },
    )


def cache_files(root: Path) -> dict[Path, str]:
    """Every file under pytest's cache folder, by path, with its text."""
    folder = root / ".pytest_cache"
    return {p: p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file()}


def test_a_tampered_pytest_cache_does_not_change_what_runs(pytester: pytest.Pytester) -> None:
    """Run once (pytest's cache on, as in a project), then rewrite the cache so that the
    config's command reads ``touch PWNED`` wherever it appears, and plant such a parse under
    the key the removed parsed-config cache read (file SHA-256, parser, schema digest, pass
    version): the second run still runs the file's command and records the file's bytes."""
    path = project(pytester)
    assert pytester.runpytest_subprocess("--deploy-target=t").ret == 0
    for file, text in cache_files(pytester.path).items():
        if CLEAN in text:
            file.write_text(text.replace(CLEAN, POISON))
    from deploy_plugin.config import SCHEMA_PATH

    old_key = ":".join(
        [
            hashlib.sha256(path.read_bytes()).hexdigest(),
            "yaml",
            hashlib.sha256(SCHEMA_PATH.read_bytes()).hexdigest()[:16],
            "2",
        ]
    )
    planted = pytester.path / ".pytest_cache" / "v" / "deploy" / "parsed-configs"
    planted.parent.mkdir(parents=True, exist_ok=True)
    poisoned = {
        "project": "p",
        "targets": {"t": {}},
        "groups": [{"name": "g", "order": 1, "deploy_command": POISON}],
    }
    planted.write_text(json.dumps({old_key: [poisoned, {"groups[0]": 3}]}))

    result = pytester.runpytest_subprocess("--deploy-target=t")

    assert result.ret == 0
    assert not (pytester.path / "PWNED").exists()
    assert (pytester.path / "ran.txt").read_text() == "clean\nclean\n"
    with sqlite3.connect(pytester.path / ".deploy" / "state.sqlite3") as db:
        snapshot, sha = db.execute(
            "SELECT config_snapshot, config_sha256 FROM deployments ORDER BY id DESC LIMIT 1"
        ).fetchone()
        commands = [c for (c,) in db.execute("SELECT command FROM deployment_steps") if c]
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest()
    assert CLEAN in snapshot and POISON not in snapshot
    assert commands == [CLEAN, CLEAN]


@pytest.mark.parametrize("args", [(), ("--deploy-target=t",)], ids=["validate", "deploy"])
def test_nothing_of_the_config_is_written_to_pytests_cache(
    pytester: pytest.Pytester, args: tuple[str, ...]
) -> None:
    """pytest's cache is on and written (its own keys), but holds no key of ours and none
    of the config's values: not its command, not the URL password."""
    project(pytester)
    assert pytester.runpytest_subprocess(*args).ret == 0
    files = cache_files(pytester.path)
    assert files  # pytest's own keys (cache/nodeids ...): the cache was on
    assert not (pytester.path / ".pytest_cache" / "v" / "deploy").exists()
    for file, text in files.items():
        assert PASSWORD not in text, file
        assert CLEAN not in text, file
