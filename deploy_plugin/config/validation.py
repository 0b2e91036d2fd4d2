"""Validation after the schema pass (:mod:`.schema_check`): what a schema cannot express.

Unique and reserved group names, placeholders per command, the tracked-group rules,
``down_file`` templates, glob character classes, declared targets (their ``requires``:
:mod:`.requires`), finite timeouts, URL schemes and the ``notify`` entries. Both passes
return problems as ``(line, field, text)``; :func:`_raise_first` turns them into one
:class:`ConfigError` (the first by line, the rest in ``others``).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from .commands import FILE_PLACEHOLDERS, PlaceholderError, placeholders
from .errors import ConfigError
from .hints import _short
from .lint import lint_problems
from .model import (
    RESERVED_GROUP_NAMES,
    DeployConfig,
    Group,
    HealthCheck,
    Notify,
    target_type_problem,
)
from .paths import _line_near
from .requires import requires_problems
from .timeouts import timeout_problems


def _check_commands(group: Group, prefix: str) -> Iterator[tuple[str, str]]:
    """(field, problem) for each bad placeholder in the group's commands."""
    commands: list[tuple[str, str, str]] = []
    for key in ("pre_deploy", "post_deploy"):
        for i, cmd in enumerate(getattr(group, key)):
            commands.append((f"{prefix}.{key}[{i}]", key, cmd))
    for key in ("build_command", "test_command", "deploy_command", "rollback_command"):
        cmd = getattr(group, key)
        if cmd is not None:
            commands.append((f"{prefix}.{key}", key, cmd))
    for field_path, key, cmd in commands:
        try:
            names = placeholders(cmd)
        except PlaceholderError as exc:
            yield field_path, str(exc)
            continue
        per_file = [n for n in names if n in FILE_PLACEHOLDERS]
        if per_file and key not in ("deploy_command", "rollback_command"):
            yield (
                field_path,
                (
                    f"{{{per_file[0]}}} names one file, but {key} runs once per group, not per "
                    "file. Only deploy_command runs once per matching file; here use {group}, "
                    "{project} or {target}."
                ),
            )


def _check_down_file(group: Group, at: str) -> Iterator[tuple[str, str]]:
    """(field, problem) for a ``down_file`` template that cannot name one file per migration."""
    template = group.down_file
    if template is None:
        return
    where = f"{at}.down_file"
    if not group.track_migrations:
        yield (
            where,
            f"group '{group.name}' does not track migrations, so it has no down files. Remove "
            "down_file, or list .sql migrations in file_patterns.",
        )
        return
    try:
        names = placeholders(template)
    except PlaceholderError as exc:
        yield where, str(exc)
        return
    if not any(n in FILE_PLACEHOLDERS for n in names):
        yield (
            where,
            f"{_short(template)} names no file placeholder, so every migration would share one "
            'down file. Use {stem}, {name}, {dir} or {file}, e.g. "rollbacks/{stem}.sql".',
        )
    elif template.startswith(("/", "\\")) or ".." in re.split(r"[\\/]", template):
        yield (
            where,
            f"{_short(template)} leaves root; write the down file's path relative to root, "
            "with no '..'.",
        )


def _bad_character_class(pattern: str) -> str | None:
    """The first ``[...]`` of a glob that no regex engine accepts (e.g. ``[z-a]``)."""
    for match in re.finditer(r"\[(!?\]?[^\]]*)\]", pattern):
        body = match.group(1)
        body = "^" + body[1:] if body.startswith("!") else body
        try:
            re.compile("[" + body.replace("\\", "\\\\") + "]")
        except re.error:
            return match.group(0)
    return None


def _group_problems(cfg: DeployConfig, group: Group) -> Iterator[tuple[str, str]]:
    """(field, problem) for what the schema cannot check in one group."""
    at = f"groups[{group.index}]"
    for i, pattern in enumerate(group.file_patterns):
        if pattern.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[\\/]", pattern):
            yield (
                f"{at}.file_patterns[{i}]",
                (
                    f"{_short(pattern)} is an absolute path. Write patterns relative to root "
                    f"({cfg.root}), with '/' between folders."
                ),
            )
        elif ".." in re.split(r"[\\/]", pattern):
            yield (
                f"{at}.file_patterns[{i}]",
                (
                    f"{_short(pattern)} uses '..'; patterns match only files inside root "
                    f"({cfg.root}). Move `root` up instead (it is relative to the config file)."
                ),
            )
        else:
            bad_class = _bad_character_class(pattern)
            if bad_class:
                yield (
                    f"{at}.file_patterns[{i}]",
                    (
                        f"{_short(pattern)} has an invalid character class {bad_class} "
                        "(a range must go from low to high, e.g. [0-9]). Fix the brackets, or "
                        "write [[] to match a literal '['."
                    ),
                )
    yield from _check_commands(group, at)
    if group.track_migrations and group.max_parallel > 1:
        yield (
            f"{at}.max_parallel",
            (
                f"group '{group.name}' tracks migrations, which run one at a time in file "
                "order; remove max_parallel (or set track_migrations: false if these files "
                "are not migrations)."
            ),
        )
    try:
        per_file = group.deploy_per_file
    except PlaceholderError:
        per_file = None  # the bad placeholder is reported by _check_commands
    if per_file and not group.file_patterns:
        yield (
            f"{at}.deploy_command",
            (
                f"names a file placeholder, so it runs once per matching file, but group "
                f"'{group.name}' has no file_patterns. Add file_patterns, or use only {{group}}, "
                "{project} and {target} to run it once per group."
            ),
        )
    if group.track_migrations and not group.file_patterns:
        yield (
            f"{at}.track_migrations",
            (
                f"group '{group.name}' tracks migrations but has no file_patterns. List the "
                'migration files, e.g. file_patterns: ["migrations/*.sql"], or set '
                "track_migrations: false."
            ),
        )
    elif group.track_migrations and group.deploy_command is not None and per_file is False:
        why = (
            "sets track_migrations: true"
            if "track_migrations" in cfg.data["groups"][group.index]
            else "tracks migrations (every file pattern ends in .sql)"
        )
        yield (
            f"{at}.deploy_command",
            (
                f"group '{group.name}' {why}, so its deploy_command must name a file placeholder "
                "such as {file} (it runs once per migration), or be removed to use the built-in "
                "SQL executor. Set track_migrations: false if these files are not migrations."
            ),
        )
    yield from _check_down_file(group, at)
    yield from timeout_problems(group, at)
    yield from lint_problems(group.name, group.track_migrations, group.lint, at)
    declared = sorted(cfg.targets)
    for i, name in enumerate(group.targets or ()):
        # Undeclared names are fine when the config declares no targets: the store may.
        if declared and name not in cfg.targets:
            close = difflib.get_close_matches(name, declared, n=1, cutoff=0.6)
            maybe = f" Did you mean '{close[0]}'?" if close else ""
            yield (
                f"{at}.targets[{i}]",
                (
                    f"'{name}' is not a target declared under `targets`.{maybe} "
                    f"Declared targets: {', '.join(declared)}."
                ),
            )
    if group.timeout_seconds is not None and not math.isfinite(group.timeout_seconds):
        yield f"{at}.timeout_seconds", "must be a finite number of seconds."


def _semantic_problems(cfg: DeployConfig) -> list[tuple[int | None, str | None, str]]:
    """Every problem the schema cannot see, as (line, field, problem)."""
    found: list[tuple[str, str]] = []
    if "root" in cfg.data and not cfg.root.is_dir():
        state = "is not a folder" if cfg.root.exists() else "does not exist"
        found.append(
            (
                "root",
                f"{_short(cfg.data['root'])} (resolved to {cfg.root}) {state}. Set `root` to "
                "an existing folder, relative to the config file's folder.",
            )
        )
    first_use: dict[str, int] = {}
    for group in sorted(cfg.groups, key=lambda g: g.index):
        at = f"groups[{group.index}]"
        if group.name in RESERVED_GROUP_NAMES:
            reserved = ", ".join(sorted(RESERVED_GROUP_NAMES))
            found.append(
                (
                    f"{at}.name",
                    f"'{group.name}' is reserved ({reserved} name the plugin's own items). "
                    "Choose another group name.",
                )
            )
        elif group.name in first_use:
            other = first_use[group.name]
            found.append(
                (
                    f"{at}.name",
                    f"duplicate group name '{group.name}' (already used by groups[{other}] on "
                    f"line {cfg.line_of(f'groups[{other}].name')}). Give every group its own "
                    "name; it becomes part of each step's node id.",
                )
            )
        first_use.setdefault(group.name, group.index)
        found.extend(_group_problems(cfg, group))
    timeouts: list[tuple[str, HealthCheck | Notify]] = (
        [("health_check", cfg.health_check)] if cfg.health_check else []
    )
    timeouts += [(f"notify[{i}]", note) for i, note in enumerate(cfg.notify)]
    for at, entry in timeouts:
        if not math.isfinite(entry.timeout_seconds):
            found.append((f"{at}.timeout_seconds", "must be a finite number of seconds."))
    urls = [("health_check.url", cfg.health_check.url)] if cfg.health_check else []
    urls += [
        (f"notify[{i}].webhook", note.webhook)
        for i, note in enumerate(cfg.notify)
        if note.webhook is not None
    ]
    urls += [
        (f"targets.{name}.health_check_url", decl.health_check_url)
        for name, decl in cfg.targets.items()
        if decl.health_check_url
    ]
    for name, decl in cfg.targets.items():
        type_problem = target_type_problem(decl.type) if decl.type else None
        if type_problem:
            found.append((f"targets.{name}.type", type_problem))
    found.extend(requires_problems(cfg.targets, cfg.data.get("targets") or {}))
    for at, url in urls:
        problem = url_scheme_problem(url)
        if problem:
            found.append((at, f"the URL {problem}."))
    for i, raw in enumerate(cfg.data.get("notify", ())):
        found.extend(_notify_problems(f"notify[{i}]", raw))
    return [(_line_near(cfg.lines, f), f, problem) for f, problem in found]


def url_scheme_problem(url: str) -> str | None:
    """Why ``url`` cannot be an HTTP URL (health checks, webhooks), or None.

    A URL whose scheme comes from a ``${VAR}`` is checked once expanded (by preflight).
    """
    if url.startswith("${"):
        return None
    scheme, sep, _ = url.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*", scheme):
        return "has no scheme: it must start with http:// or https://"
    if scheme.lower() not in ("http", "https"):
        return f"has the scheme {scheme!r}: it must start with http:// or https://"
    return None


_ADDRESS = re.compile(r"[^@\s<>]+@[^@\s<>]+\Z")


def _notify_problems(at: str, raw: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(field, problem) for one ``notify[]`` entry: a webhook or an email, never both."""
    if "webhook" not in raw and "email" not in raw:
        yield (
            at,
            (
                "missing required key 'webhook' (or 'email' for an email notification). Give"
                " `webhook: URL`, or `email:` with `url`, `from` and `to`."
            ),
        )
        return
    if "webhook" in raw and "email" in raw:
        yield (
            f"{at}.email",
            (
                "a notification is a webhook or an email, not both. Split it into two entries of"
                " `notify`."
            ),
        )
    if "email" not in raw:
        return
    if "format" in raw:
        yield (
            f"{at}.format",
            ("`format` (json or slack) is for webhooks; an email is plain text. Remove it."),
        )
    email = raw["email"]
    url = email["url"]
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in ("smtp", "smtps"):
        yield (
            f"{at}.email.url",
            (
                f"expected an smtp:// or smtps:// URL, got {_short(url)}. Write"
                " smtp://USER@HOST:PORT (STARTTLS) or smtps://USER@HOST:PORT (TLS from the start)."
            ),
        )
        return

    parts = urlsplit(url)
    if parts.password is not None:  # the URL itself is not shown: it holds a secret
        yield (
            f"{at}.email.url",
            (
                "holds a password; keep secrets out of the config. Remove it from the URL, store"
                " it with `pytest-deploy env set PROJECT SMTP_PASSWORD - --target T` and name"
                " that variable with `password_env: SMTP_PASSWORD`."
            ),
        )
    elif not parts.hostname and "${" not in url:
        yield f"{at}.email.url", f"{_short(url)} names no host. Write smtp://USER@HOST:PORT."
    else:
        try:
            parts.port  # noqa: B018  # raises ValueError on a bad port
        except ValueError:
            if "${" not in (parts.netloc.rsplit(":", 1)[-1]):
                yield (
                    f"{at}.email.url",
                    (
                        f"{_short(url)} has a bad port: use a number from 1 to 65535, e.g."
                        " smtp://deploy@mail.example.com:587."
                    ),
                )
    if scheme == "smtps" and "starttls" in email:
        yield (
            f"{at}.email.starttls",
            ("smtps:// is TLS from the start; starttls is for smtp:// only. Remove it."),
        )
    if "password_env" in email and not parts.username:
        yield (
            f"{at}.email.url",
            (
                f"{_short(url)} names no user, but password_env is set: write the user name the"
                " password belongs to, e.g. smtp://deploy@mail.example.com:587."
            ),
        )
    addresses = [("from", email["from"])] + [(f"to[{j}]", a) for j, a in enumerate(email["to"])]
    for key, address in addresses:
        plain = address.rsplit("<", 1)[-1].rstrip(">").strip() if "<" in address else address
        if "\n" in address or "\r" in address or not _ADDRESS.match(plain):
            yield (
                f"{at}.email.{key}",
                (
                    f"{_short(address)} is not an email address; write name@host (or"
                    ' "Name <name@host>"), one per entry.'
                ),
            )


def _raise_first(problems: list[tuple[int | None, str | None, str]], shown: str) -> None:
    ordered = sorted(problems, key=lambda p: (p[0] is None, p[0] or 0))
    errors = [ConfigError(text, path=shown, line=line, field=f) for line, f, text in ordered]
    first = errors[0]
    raise ConfigError(
        first.problem, path=shown, line=first.line, field=first.field, others=tuple(errors[1:])
    )
