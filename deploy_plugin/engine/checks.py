"""Preflight: what is checked before anything of a deployment runs, as plain functions.

Checks change nothing and report every problem at once. Each takes the deployment and a
:class:`Findings` (its notes and warnings, in order), returns why it was skipped (or
None), and raises :class:`~deploy_plugin.engine.errors.DeployFailure` with one paragraph
for what stops the deployment. Here: the protected target's confirmation, the lock, the
required env vars (and the health check's and notifications' URLs), the files; the
migrations' checks are in :mod:`deploy_plugin.engine.migration_checks`. The plugin's
``<target>::preflight::<check>`` items run them (:mod:`deploy_plugin.plugin.preflight`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from deploy_plugin.config import url_scheme_problem
from deploy_plugin.config.commands import option_like
from deploy_plugin.engine.errors import DeployFailure
from deploy_plugin.engine.runtime import Deployment
from deploy_plugin.engine.signals import interrupts_deferred
from deploy_plugin.facts import who
from deploy_plugin.plan import file_values, links_note, padding_warning
from deploy_plugin.targets import expand_vars, undefined_vars


@dataclass
class Findings:
    """What a check found besides its verdict, in the order found: notes for its report
    section, warnings to show (each also noted, as ``warning: <text>``, by whoever shows it);
    and a passed check's word for the reports (``remark``: its step's message) and facts of
    its own (``facts``: JUnit properties beside the step's)."""

    entries: list[tuple[bool, str]] = field(default_factory=list)  # (a warning?, text)
    remark: str | None = None
    facts: dict[str, str] = field(default_factory=dict)

    def note(self, text: str) -> None:
        self.entries.append((False, text))

    def warn(self, text: str) -> None:
        self.entries.append((True, text))


def check_protected(deployment: Deployment, found: Findings) -> str | None:
    """A protected target runs only when confirmed (--yes, or at the terminal)."""
    notes: list[str] = []
    try:
        confirm_protected(deployment, notes)
    except DeployFailure:
        deployment.refused = "the protected target was not confirmed"
        raise
    finally:
        for note in notes:
            found.note(note)
    return None


def confirm_protected(deployment: Deployment, notes: list[str]) -> None:
    """DeployFailure unless this run of a protected target is confirmed; says how in
    ``notes``."""
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


def check_lock(deployment: Deployment, found: Findings) -> str | None:
    """Take the deployment's lock (see :func:`take_lock`); a refused protected target
    takes none."""
    refused = deployment.policy.preflight_failed
    if refused:
        return f"not run: {refused} failed"  # nothing of it runs, so no lock is taken either
    try:
        take_lock(deployment, found)
    except DeployFailure:
        if deployment.lock is None:
            deployment.refused = "the lock was not taken"
        raise
    return None


def take_lock(deployment: Deployment, found: Findings) -> None:
    """Take the deployment's lock and record runs left "running" by dead processes as
    interrupted (holding the lock, no other real run can be live)."""
    # deferred: +24 modules, 28 ms (store.records, store.projects, platform, …)
    from deploy_plugin.store.base import StoreError

    store = deployment.session.store()  # its StoreError stops everything, preflight too
    assert store is not None, "a real run opens (or creates) its store"
    try:
        with interrupts_deferred():  # a signal right after the commit: the lock is kept first
            deployment.lock = store.acquire_lock(
                deployment.project, deployment.target.name, holder=who()
            )
    except StoreError as err:
        raise DeployFailure(str(err)) from None
    if getattr(deployment.lock, "warning", None):
        found.warn(str(deployment.lock.warning))
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
        found.warn(
            f"deployment {id_} (host {host or 'unknown'}, pid {pid or 'unknown'}) was still"
            " recorded as running though its process is gone; recorded as interrupted"
        )


def check_env(deployment: Deployment, found: Findings) -> str | None:
    """Every required env var set (and the built-in executor's URL var), the health
    check's and notifications' URLs complete."""
    if deployment.session.options.skip_validation:
        return "--skip-validation: required env vars not checked"
    env = deployment.env
    groups = deployment.selected_groups()
    missing: dict[str, list[str]] = {}
    for group in groups:
        for var in group.required_env_vars:
            if not env.get(var):
                missing.setdefault(var, []).append(group.name)
    checked = sorted({v for g in groups for v in g.required_env_vars})
    # the built-in SQL executor connects with its URL var, listed as required or not
    executor: dict[str, list[str]] = {}
    for group in groups:
        if group.track_migrations and group.deploy_command is None:
            var = group.database_url_env
            if var not in group.required_env_vars:
                executor.setdefault(var, []).append(group.name)
    for var in checked + sorted(executor):
        if var not in missing and env.get(var):
            found.note(f"env {var}: set (from {deployment.env_source(var)})")
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
    problems += _health_url_problems(deployment)
    problems += _notify_problems(deployment)
    if problems:  # sentences: each starts with a capital letter
        raise DeployFailure(
            ". ".join(p[:1].upper() + p[1:] for p in problems) + ". Nothing was run."
        )
    return None


def _health_url_problems(deployment: Deployment) -> list[str]:
    """What makes the health URL this run would poll unusable (found before any step)."""
    url = deployment.health_url()
    polled = any(step.kind == "health_check" for step in deployment.steps)
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


def _notify_problems(deployment: Deployment) -> list[str]:
    """``${VAR}``s of the notify URLs that no env var defines, and an email's
    ``password_env`` that none does: found here, before any step, not by a POST to the
    literal ``${VAR}`` or an email never sent after the deployment (a dry run notifies
    nobody)."""
    if deployment.dry_run:
        return []
    problems = []
    project, target = deployment.project, deployment.target.name
    for index, notify in enumerate(deployment.config.notify):
        field_, url = f"notify[{index}].webhook", notify.webhook
        if notify.email is not None:
            field_, url = f"notify[{index}].email.url", notify.email.url
        undefined = undefined_vars(url or "", deployment.env)
        if undefined:
            names = ", ".join("${" + n + "}" for n in undefined)
            problems.append(
                f"the {field_} URL uses {names}, which no env var of target {target!r} defines,"
                " so the notification could not be sent: set it with `pytest-deploy env set"
                f" {project} {undefined[0]} - --target {target}` or --deploy-env"
                f" {undefined[0]}=VALUE"
            )
        secret = notify.email.password_env if notify.email is not None else None
        if secret and not deployment.env.get(secret):
            problems.append(
                f"the notify[{index}].email.password_env names {secret} (the SMTP"
                f" password), which no env var of target {target!r} defines (or it is"
                " empty), so the email could not be sent: set it with `pytest-deploy env"
                f" set {project} {secret} - --target {target}` (the value on stdin), or put"
                f" {secret}=VALUE in a file readable only by you and pass"
                " --deploy-env-file FILE"
            )
    return problems


def check_files(deployment: Deployment, found: Findings) -> str | None:
    """Each selected group's files: what matched, what a command could not be given."""
    selected = {g.name for g in deployment.selected_groups()}
    if deployment.atomic:
        stays = [
            g.name
            for g in deployment.selected_groups()
            if not g.track_migrations and g.rollback_command is None
        ]
        if stays:  # say before anything runs what a failure cannot undo
            found.warn(
                f"atomic deployment: group(s) {', '.join(stays)} have no rollback_command:"
                " a failure undoes the migrations this run applies and the groups that"
                " have one, but what these did stays deployed"
            )
    for plan in deployment.plans:
        if plan.group.name not in selected:
            continue
        for pattern in plan.unmatched_patterns:
            found.note(f"group {plan.group.name}: pattern {pattern!r} matches no file")
        if plan.outside_links:
            found.warn(f"group {plan.group.name}: {links_note(plan.outside_links)}")
        warning = padding_warning(plan.files)
        if warning:
            found.warn(f"group {plan.group.name}: {warning}")
        found.note(f"group {plan.group.name}: {len(plan.files)} file(s)")
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
    return None


def _option_like_values(deployment: Deployment, selected: set[str]) -> list[str]:
    """Each placeholder value of a selected group's commands that starts with ``-`` and is
    not a path (``{stem}``, ``{function_name}``, ``{service_name}``, ``{target}``,
    ``{project}``, ``{group}``): quoting cannot stop a program reading it as an option."""
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
