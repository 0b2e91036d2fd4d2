"""The ``pytest11`` entry point of pytest-deploy: hookspecs, options, configuration (the
session's state and the plugin objects of its hook groups) and which files are configs.

The hooks of one session are grouped by the phase they serve, each an object registered
in :func:`pytest_configure` over the one :class:`~deploy_plugin.plugin.session.DeploySession`:
collection and order in :mod:`~deploy_plugin.plugin.selection`, the run in
:mod:`~deploy_plugin.plugin.running`, the session's end in
:mod:`~deploy_plugin.plugin.finish`. Collectors live in :mod:`~deploy_plugin.plugin.nodes`,
items in :mod:`~deploy_plugin.plugin.items`, :mod:`~deploy_plugin.plugin.steps` and
:mod:`~deploy_plugin.plugin.preflight`, option checks in
:mod:`~deploy_plugin.plugin.configure`, the ``deploy.sh`` fallback in
:mod:`~deploy_plugin.plugin.script`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import deploy_plugin.plugin.hookspecs as hookspecs
from deploy_plugin.plugin.finish import FinishHooks
from deploy_plugin.plugin.options import NEEDS_TARGET, add_options
from deploy_plugin.plugin.running import RunHooks
from deploy_plugin.plugin.selection import SelectionHooks
from deploy_plugin.plugin.session import DeploySession

# What deploys is imported by the hooks that need it, so that the plugin's own import (every
# pytest run, deployment or not) stays light (issue 14: under 60 ms).

#: File names that may be configs (DESIGN §1): tested before anything is imported for them.
_CONFIG_NAMES = ("deploy.yaml", "deploy.yml", "deploy.json")
_CONFIG_ENDINGS = (".deploy.yaml", ".deploy.yml", ".deploy.json")

pytest_plugins = ["deploy_plugin.plugin.fixtures", "deploy_plugin.plugin.listing"]


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    session = DeploySession.install(config)
    config.pluginmanager.register(SelectionHooks(session), "deploy-selection")
    run = RunHooks(session)
    if session.options.targets and not run.worker:
        # a closed stdout must not change a deployment: pytest's terminal reporter, made
        # right after this hook (the terminal plugin's pytest_configure comes later), gets
        # a stdout whose writes never fail (deploy_plugin.closed_stdout)
        # deferred: +1 modules, 1 ms (closed_stdout)
        import deploy_plugin.closed_stdout as closed_stdout

        run.stdout_guard = closed_stdout.guard_stdout(config.pluginmanager)
    config.pluginmanager.register(run, "deploy-run")
    config.pluginmanager.register(FinishHooks(session), "deploy-finish")
    config.addinivalue_line("markers", "deploy_after(group): run a smoke test after that group")
    if session.options.targets:  # notifications are about deployments: none without a target
        # deferred: +13 modules, 30 ms (engine.results, targets, secrets, …)
        import deploy_plugin.notify.notifier as notify

        if not config.pluginmanager.is_registered(notify):
            config.pluginmanager.register(notify, "deploy-notify")
    else:
        for dest, flag in NEEDS_TARGET.items():
            if config.getoption(dest):
                raise pytest.UsageError(
                    f"{flag} needs --deploy-target=NAME: without a target, configs are only"
                    " validated and nothing is deployed"
                )
        return
    # deferred: +10 modules, 21 ms (plan.files, plan.steps, plan.states, …)
    from deploy_plugin.plugin.deploy_to import options_problem

    problem = session.options.rollback_problem() or options_problem(session.options)
    if problem:
        # a bad request (issue 11: exit 4, one paragraph, nothing run): refused once
        # collection is done, like a rollback FILE that is not applied
        session.usage_problems.append(problem)
    if config.getoption("lf", False) or config.getoption("failedfirst", False):
        raise pytest.UsageError(
            "--lf/--ff reorder or drop deployment steps; deployments always run in full order"
        )
    if config.getoption("stepwise", False) or config.getoption("stepwise_skip", False):
        raise pytest.UsageError("--sw would resume a deployment mid-way; run it without --sw")
    # deferred: +12 modules, 30 ms (config.validation, plugin.xdist, config.schema_check, …)
    import deploy_plugin.plugin.configure as configure
    import deploy_plugin.plugin.guards as guards
    import deploy_plugin.plugin.xdist as distribution

    guards.check_options(config)  # --reruns, pytest-timeout's thread method

    configure.read_env_files(config, session)
    configure.check_plan_options(config, session)
    distribution.choose_dist_mode(config)
    if session.options.report:
        configure.check_writable(session.options.report)
    if config.getoption("xmlpath", None) and config.getini("junit_logging") not in (
        "system-out",
        "all",
    ):
        configure.option_warning(
            config,
            "pytest-deploy: --junitxml without ini junit_logging=system-out: the steps'"
            " commands and facts will be missing from the XML (set junit_logging ="
            " system-out)",
        )


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    name = file_path.name
    if name.endswith(_CONFIG_ENDINGS) or name in _CONFIG_NAMES:
        # deferred: config.loading and config.model (11 ms), only where a file may be a config
        from deploy_plugin.config import is_config_file

        if is_config_file(file_path):
            # deferred: +11 modules, 16 ms (plugin.nodes, config.validation, config.schema_check)
            from deploy_plugin.plugin.nodes import DeployConfigFile

            return DeployConfigFile.from_parent(parent, path=file_path)
    if file_path.name == "deploy.sh":
        # deferred: +78 modules, 137 ms (config.validation, config.loading, engine.runtime, …)
        from deploy_plugin.plugin.script import DeployScriptFile, is_fallback_script

        if is_fallback_script(file_path, parent.config.rootpath):
            return DeployScriptFile.from_parent(parent, path=file_path)
    return None


__all__ = ["DeploySession"]
