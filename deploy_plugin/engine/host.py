"""What a deployment asks of the run it is part of: :class:`RunHost`.

The engine knows no pytest: pytest-deploy's session (:mod:`deploy_plugin.plugin.session`)
implements this protocol, giving the options it was asked for, the store, the environment
from the command line and env files, and the one callback that reaches pytest's hooks
(:meth:`RunHost.deployment_finished`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from deploy_plugin.engine.results import DeploymentReport
    from deploy_plugin.engine.views import DeploymentView
    from deploy_plugin.store.base import Store


class RunOptions(Protocol):
    """The options a deployment reads (pytest-deploy's ``DeployOptions``)."""

    @property
    def dry_run(self) -> bool: ...

    @property
    def atomic(self) -> bool: ...  # --deploy-atomic

    @property
    def continue_on_failure(self) -> bool: ...

    @property
    def health_url(self) -> str | None: ...  # --deploy-health-url

    @property
    def skip_validation(self) -> bool: ...

    @property
    def yes(self) -> bool: ...  # a protected target confirmed

    @property
    def html(self) -> str | None: ...  # --deploy-html

    @property
    def timeout(self) -> float | None: ...  # --deploy-timeout: a step command's default

    @property
    def keep_logs(self) -> int: ...

    @property
    def strict_schema(self) -> bool: ...

    @property
    def reapply_missing(self) -> bool: ...


class RunHost(Protocol):
    """The run (one pytest session) a deployment belongs to."""

    @property
    def options(self) -> RunOptions: ...

    @property
    def rootdir(self) -> Path: ...

    @property
    def cli_env(self) -> Mapping[str, str]: ...  # --deploy-env

    @property
    def file_env(self) -> Mapping[str, str]: ...  # --deploy-env-file

    @property
    def failed_tests(self) -> Sequence[str]:
        """Node ids of the run's own tests that failed so far: a deployment that has not
        started yet does not start (it is "gated")."""

    def store(self) -> Store | None:
        """The store, opened once (StoreError); None in a dry run without one."""

    def open_store_or_none(self) -> Store | None:
        """The store if it is already open and healthy; never opens or raises."""

    def deployment_finished(self, deployment: DeploymentView, report: DeploymentReport) -> None:
        """A deployment ended (its run recorded, its lock released): tell the extensions."""
