"""Which items run, and in what order: the collection hooks of pytest-deploy.

pytest's ``-k``/``-m``/``--deselect`` and any plugin select among a session's items; a
deployment's preflight checks and health check are not theirs to select. They are held
back while every other ``pytest_collection_modifyitems`` runs, then given back to each
deployment that kept a step or smoke test, and announced deselected (the documented
``pytest_deselected`` call) for a deployment that kept none. Nothing here edits a hook's
argument other than the ``items`` list pytest hands ``pytest_collection_modifyitems``.

Also here: smoke tests parametrized per target, a saved plan's steps, a saved plan checked
once collected, and the question asked at the terminal before a protected target.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pytest

from deploy_plugin.plugin.options import TARGET_PARAM
from deploy_plugin.plugin.session import DeploySession

if TYPE_CHECKING:
    from deploy_plugin.plugin.deployment import Deployment


class SelectionHooks:
    """Collection hooks (registered in ``pytest_configure`` as ``deploy-selection``)."""

    def __init__(self, state: DeploySession) -> None:
        self.state = state

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """A smoke test runs once per target (id = target name)."""
        if TARGET_PARAM in metafunc.fixturenames:
            targets = self.state.options.targets
            if targets:
                metafunc.parametrize(TARGET_PARAM, targets, indirect=True, ids=targets)

    @pytest.hookimpl(wrapper=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> Any:
        """Hold each deployment's preflight and health check back from every other
        implementation; then arrange what they kept (after any reordering plugin)."""
        held = self._hold_back(items)
        result = yield
        self._arrange(config, items, held)
        return result

    def _hold_back(self, items: list[pytest.Item]) -> list[pytest.Item]:
        """Take the framing items out of ``items``; they come back in :meth:`_arrange`."""
        if not self.state.deployments:
            return []  # no deployment item was collected
        # deferred: +58 modules, 68 ms (plan.steps, engine.runtime, plan.files, …)
        from deploy_plugin.plugin.items import DeployItem
        from deploy_plugin.plugin.nodes import FRAMING

        held: list[pytest.Item] = [
            i for i in items if isinstance(i, DeployItem) and i.kind in FRAMING
        ]
        if held:
            framing = set(held)
            items[:] = [i for i in items if i not in framing]
        return held

    def _arrange(
        self, config: pytest.Config, items: list[pytest.Item], held: list[pytest.Item]
    ) -> None:
        """Give each deployment that kept an item its preflight and health check back, and
        order everything: the session's own tests first, then each deployment in run order."""
        state = self.state
        if state.usage_problems:
            state.refusal = " ".join(state.usage_problems)
            items.clear()  # nothing runs; the paragraph and exit 4 at the session's end
            return
        selection = state.options.groups + state.options.skip_groups
        unknown = [g for g in selection if g not in state.seen_groups]
        if state.options.targets and unknown and state.seen_groups:
            raise pytest.UsageError(
                f"unknown group(s) {', '.join(map(repr, unknown))} in --group/--skip-group; the"
                f" collected configs have: {', '.join(sorted(state.seen_groups))}"
            )
        if not state.deployments:
            return  # nothing to deploy (no target, or nothing of a config for it)
        # deferred: +61 modules, 103 ms (engine.runtime, engine.results, engine.process, …)
        import deploy_plugin.plugin.guards as guards
        import deploy_plugin.plugin.smoke as smoke
        from deploy_plugin.plugin.fixtures import uses_deploy_fixtures
        from deploy_plugin.plugin.items import DeployItem

        kept = set(items)
        if state.saved_plan is not None:
            self._select_planned(config, items, kept)
        smoke_tests: dict[Deployment, list[pytest.Item]] = {}
        for item in items:
            if not isinstance(item, DeployItem) and uses_deploy_fixtures(item):
                deployment = state.deployment_for(item)
                if deployment is not None:
                    smoke.place(item, deployment)
                    smoke_tests.setdefault(deployment, []).append(item)
        owned = {item for items_ in smoke_tests.values() for item in items_}
        marked = guards.mark_problems(
            config, [i for i in items if isinstance(i, DeployItem) or i in owned] + held
        )
        if marked:  # refused like a bad rollback request: exit 4, nothing run (also
            # from an xdist worker, whose refusal the controller reports: testnodedown)
            state.refusal = " ".join([*state.usage_problems, guards.marks_refusal(marked)])
            items.clear()
            return
        collected = set(held)  # framing items pytest collected (a node id may name none)
        ordered: list[pytest.Item] = []
        removed: list[pytest.Item] = []  # framing items collected that do not run: deselected
        narrowed = bool(config.getoption("keyword", "") or config.getoption("markexpr", ""))
        planned = state.saved_plan is not None  # every deployment is checked against it
        for deployment in state.deployments:
            framed = planned and any(item in collected for item in deployment.items)
            if (
                not any(item in kept for item in deployment.items)
                and deployment not in smoke_tests
                and not framed
            ):
                removed += [item for item in deployment.items if item in collected]
                continue
            # deferred: plugin.nodes and the config's validation (+13 modules), loaded only
            # where a config is collected: a project without one never imports them
            from deploy_plugin.plugin.nodes import framing_items

            own = framing_items(deployment)
            # the deployment's steps: an item carrying several (the applied files) gives them
            steps = [step for item in deployment.items if item in kept for step in _steps(item)]
            deployment.select(
                sorted(
                    [item for item in steps + own if item not in state.dropped]
                    + smoke_tests.get(deployment, []),
                    key=smoke.sort_key,
                )
            )
            if not any(g.track_migrations for g in deployment.selected_groups()):
                # no tracked group left: no drift to check
                state.dropped.update(i for i in deployment.selected if i.name == "migrations-drift")
                deployment.select([i for i in deployment.selected if i not in state.dropped])
            removed += [item for item in own if item in state.dropped and item in collected]
            if narrowed and deployment.selected_of("health_check"):
                deployment.notes.append(
                    "health check kept though -k/-m narrowed the run: -k/-m select steps, and a"
                    " deployment that runs any step ends with its health check; pass"
                    " --no-health-check to skip it"
                )
            ordered.extend(_carriers(deployment))
        if not ordered:
            # every step of every deployment deselected: pytest alone would say "no tests ran"
            for deployment in state.deployments:
                groups = ", ".join(p.group.name for p in deployment.plans)
                state.unselected.append(
                    f"no group selected: -k/-m/--group deselected every step of"
                    f" {deployment.nodeid.split('::')[0]} for target {deployment.target.name!r}"
                    f" (groups: {groups or 'none for this target'}); nothing was deployed"
                )
        if removed:
            config.hook.pytest_deselected(items=removed)
        # the session's own tests first: one that fails stops the deployments (gate)
        plain = [i for i in items if not isinstance(i, DeployItem) and i not in owned]
        items[:] = plain + ordered

    def _select_planned(
        self, config: pytest.Config, items: list[pytest.Item], kept: set[pytest.Item]
    ) -> None:
        """Applying a saved plan: the steps it names run, no other (preflight always)."""
        plan = self.state.saved_plan
        assert plan is not None
        planned = {s.node_id for d in plan.deployments for s in d.steps}
        extra = [
            item
            for deployment in self.state.deployments
            for item in deployment.items
            if item.kind != "preflight" and not any(step.nodeid in planned for step in _steps(item))
        ]
        self.state.dropped.update(extra)
        kept.difference_update(extra)
        deselected = [item for item in extra if item in items]  # a held one: in _arrange
        if deselected:
            config.hook.pytest_deselected(items=deselected)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Check a saved plan being applied; ask at the terminal before deploying to a
        protected target (unless --yes)."""
        state = self.state
        collect_only = session.config.getoption("collectonly")
        if state.saved_plan is not None and not collect_only:
            # deferred: +14 modules, 20 ms (saved_plans, plan.files, plan.steps, …)
            import deploy_plugin.plugin.plans as plan_glue

            state.plan_refusal = plan_glue.check(state)
            if state.plan_refusal:
                session.items.clear()  # nothing runs; exit 4 at the session's end
                return
        if state.options.plan_out and state.deployments and not collect_only:
            # deferred: +14 modules, 25 ms (saved_plans, plugin.plans, plan.files, …)
            import deploy_plugin.plugin.plans as plan_glue

            state.plan_refusal = plan_glue.no_store(state)  # no store: no key to sign with
            if state.plan_refusal:
                session.items.clear()
                return
        pending = [
            d
            for d in state.deployments
            if d.target.protected
            and d.selected
            and not d.dry_run
            and not state.options.yes
            and d.kind != "check_rollback"  # the check needs --yes: never typed in passing
        ]
        if pending and not collect_only:
            _confirm_at_terminal(session.config, pending)


def _steps(item: Any) -> list[Any]:
    """The deployment's steps an item runs: itself, or those it carries."""
    return item.deploy_steps()  # type: ignore[no-any-return]


def _carriers(deployment: Deployment) -> list[pytest.Item]:
    """The pytest items that run ``deployment``'s selected steps, in run order; an item
    carrying several steps takes the place (and JUnit number) of its first."""
    items: list[pytest.Item] = []
    for step in deployment.selected:
        owner = getattr(step, "owner", step)
        if owner is not step and owner.nodeid not in deployment.positions:
            deployment.positions[owner.nodeid] = deployment.positions[step.nodeid]
        if not items or items[-1] is not owner:
            items.append(owner)
    return items


def _confirm_at_terminal(config: pytest.Config, pending: list[Deployment]) -> None:
    """Ask for each protected target's name; a deployment typed right is confirmed (with no
    terminal, none is: preflight::protected fails with "pass --yes")."""
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        capman.suspend_global_capture(in_=True)
    try:
        if not os.isatty(0):
            return
        for deployment in pending:
            name = deployment.target.name
            try:
                answer = input(
                    f"\n{deployment.project} → {name} is a protected target."
                    f" Type its name ({name}) to deploy: "
                )
            except EOFError:
                answer = ""
            deployment.confirmed = answer.strip() == name
    finally:
        if capman is not None:
            capman.resume_global_capture()
