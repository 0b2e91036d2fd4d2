"""``<target>::preflight::<check>``: what is checked before anything of a deployment runs.

Checks change nothing and report every problem at once: protected-target confirmation,
the lock, required env vars, files, migration drift.
"""

from __future__ import annotations

from deploy_plugin.facts import who
from deploy_plugin.items import DeployItem, skip
from deploy_plugin.plan import check_migrations, links_note, padding_warning
from deploy_plugin.runtime import DeployFailure


class PreflightItem(DeployItem):
    """``preflight::<check>``: lock, env, files, migrations-drift."""

    kind = "preflight"

    def execute(self) -> None:
        getattr(self, "check_" + self.name.replace("-", "_"))()

    def check_protected(self) -> None:
        deployment = self.deployment
        if deployment.session.yes:
            self.notes.append("protected target: confirmed by --yes")
            return
        if deployment.confirmed:
            self.notes.append("protected target: confirmed at the terminal")
            return
        raise DeployFailure(
            f"target {deployment.target.name!r} of project {deployment.project!r} is protected"
            " and this run was not confirmed: pass --yes (or, without -n, run at a terminal"
            " and type the target's name when asked). Nothing was run."
        )

    def check_lock(self) -> None:
        refused = self.deployment.policy.preflight_failed
        if refused:
            # a refused protected target: nothing of it runs, so no lock is taken either
            skip(f"not run: {refused} failed")
        from deploy_plugin.store.base import StoreError

        deployment = self.deployment
        store = deployment.session.store()
        try:
            deployment.lock = store.acquire_lock(
                deployment.project, deployment.target.name, holder=who()
            )
        except StoreError as err:
            raise DeployFailure(str(err)) from None
        if getattr(deployment.lock, "warning", None):
            self.deploy_warning(str(deployment.lock.warning))
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
            self.deploy_warning(warning)

    def check_env(self) -> None:
        deployment = self.deployment
        if deployment.session.skip_validation:
            skip("--skip-validation: required env vars not checked")
        env = deployment.env
        missing: dict[str, list[str]] = {}
        for group in deployment.selected_groups():
            for var in group.required_env_vars:
                if not env.get(var):
                    missing.setdefault(var, []).append(group.name)
        checked = sorted({v for g in deployment.selected_groups() for v in g.required_env_vars})
        # the built-in SQL executor connects with its URL var, listed as required or not
        executor: dict[str, list[str]] = {}
        for group in deployment.selected_groups():
            if group.track_migrations and group.deploy_command is None:
                var = group.database_url_env
                if var not in group.required_env_vars:
                    executor.setdefault(var, []).append(group.name)
        for var in checked + sorted(executor):
            if var not in missing and env.get(var):
                self.notes.append(f"env {var}: set (from {deployment.env_source(var)})")
        project, target = deployment.project, deployment.target.name
        how = "set it with `pytest-deploy env set {p} {v} - --target {t}` or --deploy-env {v}=VALUE"
        parts = [
            f"{var} (needed by {', '.join(groups)}; {how.format(p=project, v=var, t=target)})"
            for var, groups in missing.items()
        ]
        parts += [
            f"{var} (the database URL of the built-in SQL executor of {', '.join(groups)};"
            f" {how.format(p=project, v=var, t=target)})"
            for var, groups in executor.items()
            if not env.get(var) and var not in missing
        ]
        problems = []
        if parts:
            problems.append(
                f"{len(parts)} required environment variable(s) missing or empty for target"
                f" {target!r}: " + "; ".join(parts)
            )
        problems += self._health_url_problems()
        if problems:
            raise DeployFailure(". ".join(problems) + ". Nothing was run.")

    def _health_url_problems(self) -> list[str]:
        """What makes the health URL this run would poll unusable (found before any step)."""
        from deploy_plugin.config import url_scheme_problem
        from deploy_plugin.targets import expand_vars, undefined_vars

        deployment = self.deployment
        url = deployment.health_url()
        polled = any(getattr(i, "kind", None) == "health_check" for i in deployment.selected)
        if url is None or not polled:
            return []
        undefined = undefined_vars(url, deployment.env)
        if undefined:
            names = ", ".join("${" + n + "}" for n in undefined)
            return [
                f"the health check URL uses {names}, which no env var of target"
                f" {deployment.target.name!r} defines: set it, or pass --no-health-check"
            ]
        problem = url_scheme_problem(expand_vars(url, deployment.env))
        if problem:
            return [f"the health check URL {problem} (or pass --no-health-check)"]
        return []

    def check_files(self) -> None:
        deployment = self.deployment
        selected = {g.name for g in deployment.selected_groups()}
        for plan in deployment.plans:
            if plan.group.name not in selected:
                continue
            for pattern in plan.unmatched_patterns:
                note = f"group {plan.group.name}: pattern {pattern!r} matches no file"
                self.notes.append(note)
            if plan.outside_links:
                self.deploy_warning(f"group {plan.group.name}: {links_note(plan.outside_links)}")
            warning = padding_warning(plan.files)
            if warning:
                self.deploy_warning(f"group {plan.group.name}: {warning}")
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
            self.deploy_warning(warning)
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
