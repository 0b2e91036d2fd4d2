"""Smoke tests of the demo deployment: they run inside it, once per target.

pytest deployments/demo --deploy-target=local        # runs them after the groups
"""

import json
import urllib.request

import pytest


@pytest.mark.deploy_after("migrations")
def test_every_migration_is_recorded(migration_history, deploy_config):
    applied = {record.file for record in migration_history.applied()}
    assert applied >= {
        "migrations/001_create_items.sql",
        "migrations/002_seed_items.sql",
        "migrations/003_add_created_by.sql",
    }


def test_service_lists_the_published_functions(deploy_env, deploy_target):
    assert deploy_target.host == "127.0.0.1"
    url = f"http://127.0.0.1:{deploy_env['DEMO_PORT']}/functions"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert json.load(response) == {"functions": ["greet", "report"]}
