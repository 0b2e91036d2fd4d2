"""Public fixtures: the target, its environment, the config, its migration history, the store.

A test that requests one of them is a *smoke test* of the deployment: it is
parametrized once per ``--deploy-target`` (id = target name), runs inside that
deployment (after its groups, before its health check), and is skipped with
"needs --deploy-target" when no target is given.

(PYTEST_DONT_REWRITE: loaded as a plugin; nothing here needs assertion rewriting.)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from deploy_plugin.plugin.options import TARGET_PARAM
from deploy_plugin.plugin.session import DeploySession

if TYPE_CHECKING:
    from deploy_plugin.config import DeployConfig
    from deploy_plugin.plugin.deployment import Deployment
    from deploy_plugin.store.base import MigrationRecord
    from deploy_plugin.targets import TargetInfo

DEPLOY_FIXTURES = frozenset(
    {"deploy_target", "deploy_env", "deploy_config", "migration_history", "deploy_store"}
)


class DeployEnv(Mapping[str, str]):
    """The merged environment of a deployment's steps; its repr never shows a secret."""

    def __init__(self, values: Mapping[str, str], deployment: Deployment) -> None:
        self._values = dict(values)
        self._deployment = deployment

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def source(self, name: str) -> str | None:
        """Where a var's value came from: process, config, store or --deploy-env."""
        return self._deployment.env_source(name)

    def __repr__(self) -> str:
        # deferred: +1 modules, 4 ms (secrets)
        from deploy_plugin.secrets import MASK

        shown = {
            name: (MASK if self.source(name) in ("store", "--deploy-env") else value)
            for name, value in self._values.items()
            if self.source(name) != "process"
        }
        shown = {k: self._deployment.masker.mask(v) for k, v in shown.items()}
        return f"DeployEnv({shown!r}, +{len(self._values) - len(shown)} from the process)"


class MigrationHistory:
    """Read-only view of one project's migration history on one target (read afresh)."""

    def __init__(self, deployment: Deployment) -> None:
        self._deployment = deployment

    def _records(self) -> dict[str, MigrationRecord]:
        store = self._deployment.session.store()
        if store is None:
            return {}
        records: dict[str, MigrationRecord] = store.applied_migrations(
            self._deployment.project, self._deployment.target.name
        )
        return records

    def applied(self) -> list[MigrationRecord]:
        """Every successfully applied migration, by file name."""
        return [r for _, r in sorted(self._records().items()) if r.status == "success"]

    def get(self, file: str) -> MigrationRecord | None:
        """The history row of one file (any status), if any."""
        return self._records().get(file)

    def is_applied(self, file: str) -> bool:
        record = self.get(file)
        return record is not None and record.status == "success"

    def __repr__(self) -> str:
        d = self._deployment
        return f"<MigrationHistory {d.project} on {d.target.name}>"


def uses_deploy_fixtures(item: pytest.Item) -> bool:
    """Whether a test item is a smoke test (requests a deployment fixture)."""
    names = getattr(item, "fixturenames", ())
    return any(name in DEPLOY_FIXTURES for name in names)


def deployment_for(request: pytest.FixtureRequest) -> Deployment:
    """The deployment a smoke test belongs to (see plugin.DeploySession.deployment_for)."""
    session = DeploySession.of(request.config)
    deployment = session.deployment_for(request.node)
    if deployment is None:
        name = getattr(request, "param", None) or request.node.callspec.params.get(TARGET_PARAM)
        pytest.skip(f"no deployment config for target {name!r} was collected in this run")
    deployment.start()
    return deployment


@pytest.fixture
def _deploy_target_name(request: pytest.FixtureRequest) -> str:
    if not hasattr(request, "param"):
        pytest.skip("needs --deploy-target")
    return str(request.param)


@pytest.fixture
def deploy_target(_deploy_target_name: str, request: pytest.FixtureRequest) -> TargetInfo:
    """The target being deployed: name, type, provider, host, region, protected."""
    return deployment_for(request).target


@pytest.fixture
def deploy_env(_deploy_target_name: str, request: pytest.FixtureRequest) -> DeployEnv:
    """The merged environment of the deployment's steps (secrets masked in its repr)."""
    deployment = deployment_for(request)
    return DeployEnv(deployment.env, deployment)


@pytest.fixture
def deploy_config(_deploy_target_name: str, request: pytest.FixtureRequest) -> DeployConfig:
    """The loaded config model of the deployment."""
    return deployment_for(request).config


@pytest.fixture
def migration_history(_deploy_target_name: str, request: pytest.FixtureRequest) -> MigrationHistory:
    """Read-only migration history of this project and target."""
    return MigrationHistory(deployment_for(request))


@pytest.fixture
def deploy_store(_deploy_target_name: str, request: pytest.FixtureRequest) -> Any:
    """The store (None in a dry run when no store exists yet)."""
    deployment_for(request)
    return DeploySession.of(request.config).store()
