"""``<target>::preflight::<check>``: what is checked before anything of a deployment runs.

Checks change nothing and report every problem at once: protected-target confirmation,
the lock, required env vars, files, migration drift.
"""

from __future__ import annotations

import warnings

from deploy_plugin.facts import who
from deploy_plugin.items import DeployItem, DeployWarning, skip
from deploy_plugin.plan import check_migrations, padding_warning
from deploy_plugin.runtime import DeployFailure, Deployment


class PreflightItem(DeployItem):
    """``preflight::<check>``: lock, env, files, migrations-drift."""

    kind = "preflight"

    def execute(self) -> None:
        getattr(self, "check_" + self.name.replace("-", "_"))()

    def check_protected(self) -> None:
        confirm_protected(self.deployment, self.notes)

    def check_lock(self) -> None:
        refused = self.deployment.policy.preflight_failed
        if refused:
            # a refused protected target: nothing of it runs, so no lock is taken either
            skip(f"not run: {refused} failed")
        take_lock(self.deployment, self.notes)

    def check_env(self) -> None:
        deployment = self.deployment
        if deployment.session.skip_validation:
            skip("--skip-validation: required env vars not checked")
        missing: dict[str, list[str]] = {}
        for group in deployment.selected_groups():
            for var in group.required_env_vars:
                if not deployment.env.get(var):
                    missing.setdefault(var, []).append(group.name)
        checked = sorted({v for g in deployment.selected_groups() for v in g.required_env_vars})
        for var in checked:
            if var not in missing:
                self.notes.append(f"env {var}: set (from {deployment.env_source(var)})")
        if not missing:
            return
        project, target = deployment.project, deployment.target.name
        parts = [
            f"{var} (needed by {', '.join(groups)}; set it with `pytest-deploy env set"
            f" {project} {var} - --target {target}` or --deploy-env {var}=VALUE)"
            for var, groups in missing.items()
        ]
        raise DeployFailure(
            f"{len(missing)} required environment variable(s) missing or empty for target"
            f" {target!r}: " + "; ".join(parts) + ". Nothing was run."
        )

    def check_files(self) -> None:
        deployment = self.deployment
        selected = {g.name for g in deployment.selected_groups()}
        for plan in deployment.plans:
            if plan.group.name not in selected:
                continue
            for pattern in plan.unmatched_patterns:
                note = f"group {plan.group.name}: pattern {pattern!r} matches no file"
                self.notes.append(note)
            warning = padding_warning(plan.files)
            if warning:
                warnings.warn(DeployWarning(f"group {plan.group.name}: {warning}"), stacklevel=1)
                self.notes.append(f"warning: {warning}")
            self.notes.append(f"group {plan.group.name}: {len(plan.files)} file(s)")

    def check_migrations_drift(self) -> None:
        deployment = self.deployment
        selected = {g.name for g in deployment.selected_groups()}
        tracked = [
            rel
            for plan in deployment.plans
            if plan.group.track_migrations and plan.group.name in selected
            for rel in plan.files
        ]
        self._check_intents()
        checksums = {rel: deployment.checksum(rel) for rel in tracked}
        result = check_migrations(tracked, checksums, deployment.applied_for_plan())
        for warning in result.warnings:
            warnings.warn(DeployWarning(warning), stacklevel=1)
            self.notes.append(f"warning: {warning}")
        self.notes.append(f"{len(result.pending)} pending of {len(tracked)} tracked file(s)")
        if result.drift:
            raise DeployFailure(
                "applied migration(s) changed since they were applied: "
                + "; ".join(result.drift)
                + ". Restore the applied content (add a new migration for the change), or"
                " accept the edit with `pytest-deploy migration accept-checksum FILE --target"
                f" {deployment.target.name}` once that command exists."
            )


    def _check_intents(self) -> None:
        """Fail on a shell-applied migration left "applying" by a run that died."""
        from deploy_plugin.store.base import StoreError
        from deploy_plugin.store.records import alive_here, format_time

        deployment = self.deployment
        try:
            store = deployment.session.store()
            intents = (
                store.intents(deployment.project, deployment.target.name) if store else []
            )
        except StoreError as err:
            raise DeployFailure(str(err)) from None
        problems = []
        project, target = deployment.project, deployment.target.name
        for intent in intents:
            if deployment.dry_run and alive_here(intent.host, intent.pid):
                self.notes.append(f"{intent.file}: being applied by pid {intent.pid} now")
                continue
            problems.append(
                f"{intent.file} was being applied by a shell step of deployment"
                f" {intent.deployment_id} ({intent.who}, host {intent.host}, pid {intent.pid},"
                f" started {format_time(intent.started_at)}), which ended before recording whether"
                " it went through. Check the target database, then either record it with"
                f" `pytest-deploy migration mark-applied {project} {intent.file} --target"
                f" {target}` if it was applied, or forget the attempt with `pytest-deploy"
                f" migration forget-intent {project} {intent.file} --target {target}` and"
                " run again to apply it"
            )
        if problems:
            raise DeployFailure(
                "a migration is in doubt: " + "; ".join(problems) + ". Nothing was run."
            )


def confirm_protected(deployment: Deployment, notes: list[str]) -> None:
    """A protected target runs only when confirmed (--yes, or at the terminal)."""
    if deployment.session.yes:
        notes.append("protected target: confirmed by --yes")
        return
    if deployment.confirmed:
        notes.append("protected target: confirmed at the terminal")
        return
    raise DeployFailure(
        f"target {deployment.target.name!r} of project {deployment.project!r} is protected"
        " and this run was not confirmed: pass --yes (or, without -n, run at a terminal"
        " and type the target's name when asked). Nothing was run."
    )


def take_lock(deployment: Deployment, notes: list[str]) -> None:
    """Take the deployment's lock, record runs left "running" by dead processes as
    interrupted, and claim the saved plan being applied (if any), under the lock."""
    from deploy_plugin.store.base import StoreError

    store = deployment.session.store()
    try:
        deployment.lock = store.acquire_lock(
            deployment.project, deployment.target.name, holder=who()
        )
    except StoreError as err:
        raise DeployFailure(str(err)) from None
    if getattr(deployment.lock, "warning", None):
        warnings.warn(DeployWarning(deployment.lock.warning), stacklevel=1)
        notes.append(f"warning: {deployment.lock.warning}")
    # holding the lock, no other real run can be live: rows still "running" are dead
    try:
        dead = store.interrupt_dead_runs(
            deployment.project,
            deployment.target.name,
            current=deployment.deployment_id,
            lock_held=True,
        )
    except StoreError as err:
        raise DeployFailure(str(err)) from None
    for id_, host, pid in dead:
        warning = (
            f"deployment {id_} (host {host or 'unknown'}, pid {pid or 'unknown'}) was still"
            " recorded as running though its process is gone; recorded as interrupted"
        )
        warnings.warn(DeployWarning(warning), stacklevel=1)
        notes.append(f"warning: {warning}")
    from deploy_plugin import plan_glue

    try:
        note = plan_glue.claim(deployment)  # a saved plan: checked again, used once
    except StoreError as err:
        raise DeployFailure(str(err)) from None
    if note:
        notes.append(note)
