"""``<target>::preflight::<check>``: what is checked before anything of a deployment runs.

Checks change nothing and report every problem at once: protected-target confirmation,
the lock, required env vars, files, migration drift.
"""

from __future__ import annotations

import shlex
from typing import Any

from deploy_plugin.engine.runtime import Deployment
from deploy_plugin.facts import who
from deploy_plugin.plan import check_migrations, links_note, padding_warning
from deploy_plugin.plugin.items import DeployItem, skip
from deploy_plugin.plugin.messages import DeployFailure


class PreflightItem(DeployItem):
    """``preflight::<check>``: lock, env, files, migrations-drift."""

    kind = "preflight"

    def execute(self) -> None:
        getattr(self, "check_" + self.name.replace("-", "_"))()

    def check_protected(self) -> None:
        try:
            confirm_protected(self.deployment, self.notes)
        except DeployFailure:
            self.deployment.refused = "the protected target was not confirmed"
            raise

    def check_lock(self) -> None:
        refused = self.deployment.policy.preflight_failed
        if refused:
            # a refused protected target: nothing of it runs, so no lock is taken either
            skip(f"not run: {refused} failed")
        try:
            take_lock(self.deployment, self)
        except DeployFailure:
            if self.deployment.lock is None:
                self.deployment.refused = "the lock was not taken"
            raise

    def check_env(self) -> None:
        deployment = self.deployment
        if deployment.session.options.skip_validation:
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
        how = (
            "set it with `pytest-deploy env set {p} {v} - --target {t}` (the value on stdin),"
            " or put {v}=VALUE in a file readable only by you and pass --deploy-env-file FILE"
        )
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
        problems += self._notify_problems()
        if problems:  # sentences: each starts with a capital letter
            raise DeployFailure(
                ". ".join(p[:1].upper() + p[1:] for p in problems) + ". Nothing was run."
            )

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

    def _notify_problems(self) -> list[str]:
        """``${VAR}``s of the notify URLs that no env var defines: found here, before any
        step, not by a POST to the literal ``${VAR}`` after the deployment (a dry run
        notifies nobody)."""
        from deploy_plugin.targets import undefined_vars

        deployment = self.deployment
        if deployment.dry_run:
            return []
        problems = []
        project, target = deployment.project, deployment.target.name
        for index, notify in enumerate(deployment.config.notify):
            field, url = f"notify[{index}].webhook", notify.webhook
            if notify.email is not None:
                field, url = f"notify[{index}].email.url", notify.email.url
            undefined = undefined_vars(url or "", deployment.env)
            if undefined:
                names = ", ".join("${" + n + "}" for n in undefined)
                problems.append(
                    f"the {field} URL uses {names}, which no env var of target {target!r} defines,"
                    " so the notification could not be sent: set it with `pytest-deploy env set"
                    f" {project} {undefined[0]} - --target {target}` or --deploy-env"
                    f" {undefined[0]}=VALUE"
                )
        return problems

    def check_files(self) -> None:
        deployment = self.deployment
        selected = {g.name for g in deployment.selected_groups()}
        if deployment.atomic:
            stays = [
                g.name
                for g in deployment.selected_groups()
                if not g.track_migrations and g.rollback_command is None
            ]
            if stays:  # say before anything runs what a failure cannot undo
                self.deploy_warning(
                    f"atomic deployment: group(s) {', '.join(stays)} have no rollback_command:"
                    " a failure undoes the migrations this run applies and the groups that"
                    " have one, but what these did stays deployed"
                )
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
        problems = [
            *(
                f"group {plan.group.name}: {shown} (its name is not UTF-8, so no command,"
                " log or report can name it; rename it)"
                for plan in deployment.plans
                if plan.group.name in selected
                for shown in plan.undecodable
            ),
            *_option_like_values(deployment, selected),
        ]
        if problems:
            raise DeployFailure(
                f"{len(problems)} value(s) cannot be passed to their commands: "
                + "; ".join(problems)
                + ". Nothing was run."
            )

    def check_migrations_drift(self) -> None:
        deployment = self.deployment
        selected = {g.name for g in deployment.selected_groups()}
        tracked = [
            rel
            for plan in deployment.plans
            if plan.group.track_migrations and plan.group.name in selected
            for rel in plan.files
        ]
        # the database decides: each built-in group's ledger, read-only, before comparing
        notes, warnings = deployment.read_ledgers(deployment.selected_groups())
        self.notes.extend(notes)
        for warning in warnings:
            self.deploy_warning(warning)
        self._check_intents()
        checksums = {rel: deployment.checksum(rel) for rel in tracked}
        applied = deployment.applied_for_plan()
        result = check_migrations(tracked, checksums, applied)
        for warning in result.warnings:
            self.deploy_warning(warning)
        self.notes.append(f"{len(result.pending)} pending of {len(tracked)} tracked file(s)")
        self._check_schema_drift()
        if result.drift:
            project, target = deployment.project, deployment.target.name
            commands = " ".join(
                f"`pytest-deploy migration accept-checksum {shlex.quote(project)}"
                f" {shlex.quote(rel)} --target {target} --reason TEXT`"
                for rel in tracked
                if rel in applied
                and applied[rel].status == "success"
                and applied[rel].checksum != checksums[rel]
            )
            raise DeployFailure(
                "applied migration(s) changed since they were applied: "
                + "; ".join(result.drift)
                + ". Restore the applied content (add a new migration for the change), or,"
                " when the edit is intended and the database already matches it, accept it"
                f" (an audit row keeps who, when and why): {commands}."
            )

    def check_downs(self) -> None:
        """A rollback (or reversibility check, or atomic deployment): every migration it
        will undo (check: every pending one; atomic: every one it would apply) has a down,
        else nothing runs."""
        deployment = self.deployment
        problems = [
            f"{rel} (no tracked group matches it any more, so its down is unknown)"
            for rel in deployment.rollback_orphans
        ]
        applied = deployment.applied()

        def pending(item: Any) -> bool:
            return getattr(applied.get(item.file), "status", None) != "success"

        steps = [
            i
            for i in deployment.selected_of("rollback", "check_rollback", "undo")
            if i.kind == "rollback" or (hasattr(i, "down") and pending(i))
        ]
        for item in steps:
            if item.down is None:
                problems.append(f"{item.file} (group {item.group_name})")
            elif item.down.section:
                group = deployment.config.group(item.group_name)
                if group is not None and group.deploy_command is not None:
                    self.notes.append(
                        f"{item.file}: its -- migrate:down section runs with the built-in"
                        " SQL executor (a deploy_command takes whole files)"
                    )
        if problems:
            what = {
                "rollback": "to roll back",
                "check_rollback": "to check",
            }.get(deployment.kind, "this atomic deployment would apply")
            why = (
                " An atomic deployment undoes what it applied after a failure, so each needs"
                " one (or deploy without --deploy-atomic / atomic: true)."
                if deployment.kind == "deploy"
                else ""
            )
            raise DeployFailure(
                f"{len(problems)} migration(s) {what} have no down: "
                + "; ".join(problems)
                + "."
                + why
                + " Add a down next to each (<dir>/down.sql for <dir>/up.sql, NAME.down.sql"
                " for NAME.up.sql, or a -- migrate:down section), or set the group's down_file"
                " template. Nothing was run."
            )
        for item in steps:
            self.notes.append(f"{item.file}: down {item.down.file} ({item.down.convention})")

    def _check_schema_drift(self) -> None:
        """Warn (fail with --deploy-strict-schema) when a tracked database's schema changed
        since the fingerprint recorded after the last successful run."""
        from deploy_plugin.engine import schema_drift
        from deploy_plugin.store.base import StoreError

        deployment = self.deployment
        try:
            store = deployment.session.store()
            changes = schema_drift.drift(deployment, store) if store else []
        except StoreError as err:
            raise DeployFailure(str(err)) from None
        if changes and deployment.session.options.strict_schema:
            raise DeployFailure(
                deployment.masker.mask("; ".join(changes))
                + ". --deploy-strict-schema: nothing was run. Find out who changed it; put the"
                " change in a migration, or undo it, then run again."
            )
        for change in changes:
            self.deploy_warning(deployment.masker.mask(change))
            self.notes.append(f"warning: {deployment.masker.mask(change)}")

    def _check_intents(self) -> None:
        """Fail on a shell-applied migration left "applying" by a run that died."""
        from deploy_plugin.store.base import StoreError
        from deploy_plugin.store.records import alive_here, format_time

        deployment = self.deployment
        try:
            store = deployment.session.store()
            intents = store.intents(deployment.project, deployment.target.name) if store else []
        except StoreError as err:
            raise DeployFailure(str(err)) from None
        problems = []
        project, target = deployment.project, deployment.target.name
        for intent in intents:
            if deployment.dry_run and alive_here(intent.host, intent.pid):
                self.notes.append(f"{intent.file}: being applied by pid {intent.pid} now")
                continue
            if self._resolve_intent(intent):
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

    def _resolve_intent(self, intent: Any) -> bool:
        """Settle a psql-applied file left in doubt from its database's ledger, whose row
        psql committed with the file or not at all; False when the database cannot tell
        (another client, no readable ledger)."""
        from deploy_plugin.engine.ledgers import guarded

        deployment = self.deployment
        group = next(
            (
                p.group
                for p in deployment.plans
                if intent.file in p.files and p.group.track_migrations
            ),
            None,
        )
        if group is None or not deployment.database.known(group):
            return False
        if not guarded(group, deployment.config.root, intent.file):
            return False  # no ledger row went with it: the database cannot tell
        row = deployment.database.row(group, intent.file)
        where = deployment.database.reads[group.name].where
        died = (
            f"{intent.file}: deployment {intent.deployment_id} ({intent.who}, pid {intent.pid})"
            " ended while psql applied it"
        )
        if row is not None and row.checksum != deployment.checksum(intent.file):
            return False  # the file changed since: drift, settled by hand
        if deployment.dry_run:
            self.notes.append(
                f"{died}; the ledger of {where} "
                + (
                    "has it: a real run records it as applied"
                    if row
                    else "lacks it: it would be applied"
                )
            )
            return True
        if row is not None:
            deployment.recover_history(group, intent.file)  # also removes the intent
            self.deploy_warning(
                f"{died}; the ledger of {where} has it (psql committed it with the file):"
                " recorded as applied, not run again"
            )
        else:
            store = deployment.session.store()
            store.forget_intent(deployment.project, deployment.target.name, intent.file)
            self.deploy_warning(
                f"{died}; the ledger of {where} lacks it (psql's transaction never committed):"
                " it is applied by this run"
            )
        return True


def _option_like_values(deployment: Deployment, selected: set[str]) -> list[str]:
    """Each placeholder value of a selected group's commands that starts with ``-`` and is
    not a path (``{stem}``, ``{function_name}``, ``{service_name}``, ``{target}``,
    ``{project}``, ``{group}``): quoting cannot stop a program reading it as an option."""
    from deploy_plugin.config.commands import option_like
    from deploy_plugin.plan import file_values

    config = deployment.config
    problems: list[str] = []
    for plan in deployment.plans:
        group = plan.group
        if group.name not in selected:
            continue
        common = {"target": deployment.target.name, "project": config.project}
        common["group"] = group.name
        templates = [*group.pre_deploy, *group.post_deploy]
        templates += [c for c in (group.build_command, group.test_command) if c]
        per_file = [group.deploy_command] if group.deploy_command else []
        if deployment.atomic and group.rollback_command:
            per_file.append(group.rollback_command)
        for template in templates + per_file:
            for name in option_like(template, common):
                problems.append(
                    f"{{{name}}} of group {group.name} is {common[name]!r}, which starts with"
                    " '-' (rename it)"
                )
        root_dashed = config.root.name.startswith("-")  # {function_name} of a top file
        for rel in plan.files:
            if "/-" not in "/" + rel and not root_dashed:
                continue  # no part of the path starts with '-': no value of it does
            values = {**common, **file_values(config.root, rel)}
            for template in per_file:
                for name in option_like(template, values):
                    if name not in common:
                        problems.append(
                            f"{rel} gives {{{name}}} of group {group.name} the value"
                            f" {values[name]!r}, which starts with '-': quoting does not stop"
                            " a program reading it as an option (rename the file, or use"
                            " {file}, {name}, {dir} or {path}, which pass it as ./-...)"
                        )
    return list(dict.fromkeys(problems))


def confirm_protected(deployment: Deployment, notes: list[str]) -> None:
    """A protected target runs only when confirmed (--yes, or at the terminal)."""
    if deployment.session.options.yes:
        notes.append("protected target: confirmed by --yes")
        return
    if deployment.kind == "check_rollback":
        raise DeployFailure(
            f"target {deployment.target.name!r} of project {deployment.project!r} is"
            " protected, and the reversibility check applies each pending migration, runs"
            " its down and applies it again there. It is meant for a throw-away or CI"
            " database; pass --yes if this one is. Nothing was run."
        )
    if deployment.confirmed:
        notes.append("protected target: confirmed at the terminal")
        return
    raise DeployFailure(
        f"target {deployment.target.name!r} of project {deployment.project!r} is protected"
        " and this run was not confirmed: pass --yes (or, without -n, run at a terminal"
        " and type the target's name when asked). Nothing was run."
    )


def take_lock(deployment: Deployment, item: DeployItem) -> None:
    """Take the deployment's lock, record runs left "running" by dead processes as
    interrupted, and claim the saved plan being applied (if any), under the lock; the
    warnings and notes go to ``item``."""
    from deploy_plugin.store.base import StoreError

    store = deployment.session.store()
    try:
        deployment.lock = store.acquire_lock(
            deployment.project, deployment.target.name, holder=who()
        )
    except StoreError as err:
        raise DeployFailure(str(err)) from None
    if getattr(deployment.lock, "warning", None):
        item.deploy_warning(str(deployment.lock.warning))
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
        item.deploy_warning(warning)
    from deploy_plugin.plugin import plans as plan_glue

    try:
        note = plan_glue.claim(deployment)  # a saved plan: checked again, used once
    except StoreError as err:
        raise DeployFailure(str(err)) from None
    if note:
        item.notes.append(note)
