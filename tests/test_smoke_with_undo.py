"""Plain pytest tests (smoke tests) collected beside a rollback, an atomic deployment or
a reversibility check: they have no deployment kind, and the undo machinery must not
trip over them (the shipped demo has one)."""

from __future__ import annotations

import pytest

from tests.test_atomic import atomic_project
from tests.test_downs import tables_sqlite

SMOKE = "def test_smoke(deploy_target):\n    assert deploy_target.name == 't'\n"
DB = "--deploy-env=DATABASE_URL=sqlite:///app.db"


def no_traceback(result: pytest.RunResult) -> str:
    out = result.stdout.str() + result.stderr.str()
    assert "AttributeError" not in out and "Traceback" not in out, out
    return out


def test_a_failing_atomic_deployment_is_undone_beside_a_smoke_test(
    pytester: pytest.Pytester,
) -> None:
    atomic_project(pytester)
    pytester.makepyfile(test_smoke=SMOKE)
    result = pytester.runpytest("--deploy-target=t", DB, "-v")
    no_traceback(result)
    result.stdout.fnmatch_lines(["*t::db::undo[[]m/001.up.sql[]] PASSED*"])
    assert tables_sqlite(pytester.path / "app.db") == set()
    dry = pytester.runpytest("--deploy-target=t", DB, "--dry-run")
    no_traceback(dry)
    assert dry.ret == 0


def test_rollback_and_check_beside_a_smoke_test(pytester: pytest.Pytester) -> None:
    atomic_project(pytester, fail=False)
    pytester.makepyfile(test_smoke=SMOKE)
    check = pytester.runpytest("--deploy-target=t", DB, "--deploy-check-rollback")
    no_traceback(check)
    assert check.ret == 0
    assert pytester.runpytest("--deploy-target=t", DB).ret == 0
    assert tables_sqlite(pytester.path / "app.db") == {"t1", "t2"}
    back = pytester.runpytest("--deploy-target=t", DB, "--deploy-rollback=2")
    no_traceback(back)
    assert back.ret == 0
    assert tables_sqlite(pytester.path / "app.db") == set()
