"""Wording of validation messages: type words, per-field hints, value descriptions."""

from __future__ import annotations

from typing import Any

_TYPE_WORDS = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "array": "a list",
    "object": "a mapping",
    "boolean": "true or false",
    "null": "nothing",
}

_BOOL_HINT = "Write true or false (YAML 1.2 rules: yes, no, on and off are strings)."
_NAME_RULE = "letters, digits, '_' and '-'"
_ENV_RULE = "letters, digits and '_', not starting with a digit"

# Hints per generic field ('[]' for any index, '<name>' for a target, '<var>' for a variable).
_HINTS = {
    "": "A config is a mapping with a `groups` list at the top level.",
    "$schema": "Give the URL or path of the JSON Schema as a string, or remove it.",
    "project": "Set `project` to the project's name (printable characters, no NUL or line"
    " breaks), or remove it to use the root folder's name.",
    "project_id": "Set `project_id` to the id `pytest-deploy init` wrote (8 to 128 letters,"
    " digits, '.', '_' or '-', e.g. a UUID); a store binds the project to it, so never copy"
    " it into another project's config.",
    "root": "Set `root` to a folder relative to the config file, or remove it to use the "
    "config file's folder.",
    "groups": "List the deployment's groups under `groups`, each with at least a `name` and "
    "an `order`.",
    "groups[]": "Each group is a mapping with at least a `name` and an `order`.",
    "groups[].name": f"Name the group with {_NAME_RULE} only; the name becomes part of each "
    "step's node id.",
    "groups[].order": "Set `order` to a whole number; groups run by ascending order.",
    "groups[].file_patterns": 'List glob patterns relative to root, e.g. ["migrations/*.sql"].',
    "groups[].pre_deploy": 'List shell commands, e.g. ["psql --version"]; each runs once, '
    "in list order.",
    "groups[].post_deploy": 'List shell commands, e.g. ["echo done"]; each runs once, in '
    "list order.",
    "groups[].build_command": "Give one shell command as a string; it runs once per group.",
    "groups[].test_command": "Give one shell command as a string; it runs once per group.",
    "groups[].deploy_command": "Give one shell command as a string; it runs once per matching "
    "file when it names {file} (or another file placeholder), else once per group.",
    "groups[].required_env_vars": 'List environment variable names, e.g. ["DATABASE_URL"].',
    "groups[].required_env_vars[]": f"Use a shell variable name: {_ENV_RULE}.",
    "groups[].track_migrations": _BOOL_HINT,
    "groups[].database_url_env": "Name the environment variable holding the database URL "
    f"({_ENV_RULE}), e.g. DATABASE_URL.",
    "groups[].rollback_command": "Give one shell command as a string; it undoes the group in "
    "an atomic deployment (once per file when it names {file}).",
    "groups[].down_file": "Give a path template relative to root, e.g. "
    '"rollbacks/{stem}.sql"; it names the down file of each migration.',
    "groups[].lint": "Write warn (the default: each squawk finding in a pending migration is a "
    "warning), error (a finding fails preflight) or off, or a mapping such as {mode: warn, "
    "ignore: [prefer-bigint-over-int]}.",
    "groups[].lint.mode": "Use warn (the default), error or off.",
    "groups[].lint.ignore": "List squawk rule names to ignore in this group, each once, e.g. "
    "[prefer-bigint-over-int, require-statement-timeout] (https://squawkhq.com/docs/rules).",
    "groups[].max_parallel": "Set `max_parallel` to a whole number of at least 1.",
    "groups[].timeout_seconds": "Set `timeout_seconds` to a number of seconds greater than 0, "
    "or remove it for no timeout.",
    "groups[].lock_timeout": "Give a duration with its unit as PostgreSQL writes it: a number"
    " and ms, s, min, h or d, e.g. 500ms, 1s or 2min.",
    "groups[].statement_timeout": "Give a duration with its unit as PostgreSQL writes it: a"
    " number and ms, s, min, h or d, e.g. 30s or 5min.",
    "groups[].lock_retries": "Set `lock_retries` to a whole number from 0 to 100: how many"
    " times a migration that timed out waiting for a lock is tried again.",
    "groups[].targets": "List the target names this group runs for, or remove `targets` to run "
    "it for every target.",
    "health_check": "Give a mapping with a `url` and optionally `expected_status` and "
    "`timeout_seconds`.",
    "health_check.url": "Give the URL to poll, e.g. https://example.com/health.",
    "health_check.expected_status": "Use an HTTP status code from 100 to 599 (default 200).",
    "health_check.timeout_seconds": "Use a number of seconds greater than 0 (default 30).",
    "notify": "List notifications, each a mapping with a `webhook` (and optionally `format`) "
    "or an `email`, and optionally `on` and `timeout_seconds`.",
    "notify[]": "Each notification is a mapping with a `webhook` URL or an `email` mapping.",
    "notify[].webhook": "Give the webhook URL as a string (${VAR} is expanded).",
    "notify[].format": "Use json (the deployment report, the default) or slack (Slack's "
    "incoming-webhook text and blocks).",
    "notify[].email": "Give a mapping with `url` (smtp://USER@HOST:PORT or smtps://...), "
    "`from`, `to` (a list) and optionally `password_env` and `starttls`.",
    "notify[].email.url": "Write smtp://USER@HOST:PORT (STARTTLS when offered) or "
    "smtps://USER@HOST:PORT (TLS from the start); no password in it.",
    "notify[].email.password_env": "Name the env var holding the SMTP password "
    f"({_ENV_RULE}), e.g. SMTP_PASSWORD; store its value with `pytest-deploy env set`.",
    "notify[].email.starttls": "Write true (require STARTTLS), false (never) or leave it out "
    "(used when the server offers it).",
    "notify[].email.from": "Give the sender's address, e.g. deploy@example.com.",
    "notify[].email.to": 'List the recipients, e.g. ["ops@example.com"].',
    "notify[].on": "List when to notify: [success, failure] (the default), [success] or [failure].",
    "notify[].timeout_seconds": "Use a number of seconds greater than 0 (default 10).",
    "targets": "Map each target name to its settings, e.g. `production: {type: database}`.",
    "targets.<name>": f"Name targets with {_NAME_RULE} only and give each a mapping of "
    "`type`, `provider`, `host`, `region`, `protected`, `env`, `health_check_url` and "
    "`requires`.",
    "targets.<name>.protected": _BOOL_HINT,
    "targets.<name>.env": "Map variable names to non-secret string values; keep secrets in the "
    "store (`pytest-deploy env set`).",
    "targets.<name>.env.<var>": 'Quote the value so it is a string, e.g. PORT: "8080".',
    "targets.<name>.health_check_url": "Give the URL to poll for this target as a string.",
    "targets.<name>.requires": "Name the declared target(s) a deployment must have succeeded on"
    " first, e.g. `requires: staging` or `requires: [staging, qa]`.",
}


def _generic(parts: list[str | int]) -> str:
    out = ""
    for depth, part in enumerate(parts):
        if isinstance(part, int):
            out += "[]"
        elif parts[0] == "targets" and depth == 1:
            out += ".<name>"
        elif parts[0] == "targets" and depth == 3 and parts[2] == "env":
            out += ".<var>"
        else:
            out += f".{part}" if out else part
    return out


def _hint(parts: list[str | int]) -> str:
    generic = _generic(parts)
    while generic not in _HINTS and generic.endswith("[]"):
        generic = generic[:-2]
    if generic in _HINTS:
        return _HINTS[generic]
    return _HINTS.get(_generic(parts[:-1]), "") if parts else ""


def _short(value: str, limit: int = 60) -> str:
    return repr(value if len(value) <= limit else value[: limit - 3] + "...")


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, int):
        return f"{value} (an integer)"
    if isinstance(value, float):
        return f"{value!r} (a number)"
    if isinstance(value, str):
        return f"{_short(value)} (a string)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _sentence(*parts: str) -> str:
    return " ".join(p for p in parts if p)
