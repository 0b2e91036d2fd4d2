"""Loading a config: read, parse, validate, build the model; and which files are configs."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .lint import lint_of
from .model import DeployConfig, EmailNotify, Group, HealthCheck, Notify, TargetDecl
from .parsing import _display, _parse, _read
from .schema_check import _schema_problems
from .validation import _raise_first, _semantic_problems

# PyYAML is imported where a YAML file is parsed: a JSON config never needs it (its import
# is 21 ms of CPU). Every run reads, parses and validates the config from its file: no
# parse is kept between runs (DESIGN §5: what runs is what was read).

CONFIG_SUFFIXES = (".yaml", ".yml", ".json")


def _build(
    path: Path, text: str, raw: bytes, data: dict[str, Any], lines: dict[str, int]
) -> DeployConfig:
    root = (path.parent / data["root"]).resolve() if "root" in data else path.parent.resolve()
    groups = []
    for index, g in enumerate(data["groups"]):
        patterns = tuple(g.get("file_patterns", ()))
        default_tracked = bool(patterns) and all(p.endswith(".sql") for p in patterns)
        timeout = g.get("timeout_seconds")
        groups.append(
            Group(
                name=g["name"],
                order=int(g["order"]),
                index=index,
                file_patterns=patterns,
                pre_deploy=tuple(g.get("pre_deploy", ())),
                build_command=g.get("build_command"),
                test_command=g.get("test_command"),
                deploy_command=g.get("deploy_command"),
                post_deploy=tuple(g.get("post_deploy", ())),
                required_env_vars=tuple(g.get("required_env_vars", ())),
                track_migrations=g.get("track_migrations", default_tracked),
                database_url_env=g.get("database_url_env", "DATABASE_URL"),
                max_parallel=int(g.get("max_parallel", 1)),
                timeout_seconds=None if timeout is None else float(timeout),
                targets=tuple(g["targets"]) if "targets" in g else None,
                line=lines.get(f"groups[{index}]"),
                down_file=g.get("down_file"),
                rollback_command=g.get("rollback_command"),
                lock_timeout=g.get("lock_timeout"),
                statement_timeout=g.get("statement_timeout"),
                lock_retries=int(g.get("lock_retries", 0)),
                lint=lint_of(g.get("lint")),
            )
        )
    health = data.get("health_check")
    notify = tuple(
        Notify(
            webhook=n.get("webhook"),
            on=tuple(n.get("on", ("success", "failure"))),
            timeout_seconds=float(n.get("timeout_seconds", 10.0)),
            format=n.get("format", "json"),
            email=None
            if "email" not in n
            else EmailNotify(
                url=n["email"]["url"],
                sender=n["email"]["from"],
                to=tuple(n["email"]["to"]),
                password_env=n["email"].get("password_env"),
                starttls=n["email"].get("starttls"),
            ),
        )
        for n in data.get("notify", ())
    )
    targets = {
        name: TargetDecl(
            name=name,
            type=t.get("type"),
            provider=t.get("provider"),
            host=t.get("host"),
            region=t.get("region"),
            protected=t.get("protected", False),
            env=dict(t.get("env", {})),
            health_check_url=t.get("health_check_url"),
            requires=_names(t.get("requires")),
        )
        for name, t in ((n, t or {}) for n, t in data.get("targets", {}).items())
    }
    return DeployConfig(
        path=path,
        root=root,
        project=data.get("project") or root.name,
        groups=tuple(sorted(groups, key=lambda g: (g.order, g.index))),
        health_check=None
        if health is None
        else HealthCheck(
            url=health["url"],
            expected_status=int(health.get("expected_status", 200)),
            timeout_seconds=float(health.get("timeout_seconds", 30.0)),
        ),
        notify=notify,
        targets=targets,
        source_text=text,
        sha256=hashlib.sha256(raw).hexdigest(),
        data=data,
        lines=lines,
        atomic=bool(data.get("atomic", False)),
        project_id=data.get("project_id"),
        project_named=bool(data.get("project")),
    )


def _names(value: str | list[str] | None) -> tuple[str, ...]:
    """``requires``: one target name or a list of them."""
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def load_config(path: str | os.PathLike[str]) -> DeployConfig:
    """Load and validate a config file (YAML by default, JSON for ``.json``).

    Raises :class:`ConfigError` for every kind of bad input, including a missing or
    unreadable file and a bad encoding; nothing else escapes for bad input.

    The file is read, parsed and put through both validation passes on every call; the
    model (its ``sha256`` and ``source_text`` included) comes from those bytes alone.
    """
    abs_path = Path(os.path.abspath(os.fspath(path)))
    shown = _display(abs_path)
    raw = _read(abs_path, shown)
    text, data, lines = _parse(raw, abs_path, shown)
    problems = _schema_problems(data, lines)
    if problems:
        also = _also_semantic(lambda: _build(abs_path, text, raw, data, lines), problems)
        _raise_first(problems + also, shown)
    config = _build(abs_path, text, raw, data, lines)
    problems = _semantic_problems(config)
    if problems:
        _raise_first(problems, shown)
    return config


def _also_semantic(
    build: Callable[[], DeployConfig], schema_problems: list[tuple[int | None, str | None, str]]
) -> list[tuple[int | None, str | None, str]]:
    """The checks a schema cannot express, on a config that failed the schema pass, so
    that one run reports every problem (a misspelt key and a bad URL scheme together):
    only when a model can still be built from it, and none for a field the schema pass
    named already or a part of one (a string where a list belongs is built as a tuple of
    characters: their "problems" are not the user's)."""
    try:
        found = _semantic_problems(build())
    except Exception:  # noqa: BLE001 - too broken to check further: the schema's problems stand
        return []
    named = [field for _, field, _ in schema_problems if field]

    def under_named(field: str | None) -> bool:  # that field, or a part of it ([0], .x)
        return field is not None and any(
            field == n or field.startswith((n + "[", n + ".")) for n in named
        )

    return [p for p in found if not under_named(p[1])]


#: What makes a ``deploy.yaml|yml|json`` ours: a top-level ``groups`` key, or both
#: ``project`` and ``targets`` (a config of ours whose ``groups`` key is misspelt is still
#: ours, and reports the typo; another tool's file with a ``project`` key alone is not).
def _ours(keys: set[str]) -> bool:
    return "groups" in keys or {"project", "targets"} <= keys


def _text_key(kind: str, key: str) -> re.Pattern[str]:
    if kind == "json":
        return re.compile(rf'"{key}"\s*:')
    return re.compile(rf"""^(?:{key}|"{key}"|'{key}')[ \t]*:""", re.MULTILINE)


_TEXT_KEYS = {
    kind: {key: _text_key(kind, key) for key in ("groups", "project", "targets")}
    for kind in ("json", "yaml")
}


def is_config_file(path: Path) -> bool:
    """Whether pytest should collect ``path`` as a config (DESIGN §1).

    ``*.deploy.yaml|yml|json`` always; ``deploy.yaml|yml|json`` only when it has a
    top-level ``groups`` key, or both ``project`` and ``targets`` (another tool's
    ``deploy.yaml``, a Kubernetes manifest say, has neither); when it cannot be parsed, a
    textual check decides, so a broken config still gets collected and reports its error.
    Reads the file each time (nothing is remembered between runs).
    """
    path = Path(path)
    name = path.name
    if any(name.endswith(f".deploy{suffix}") for suffix in CONFIG_SUFFIXES):
        return True
    if name not in {f"deploy{suffix}" for suffix in CONFIG_SUFFIXES}:
        return False
    try:
        raw = path.read_bytes()
    except OSError:
        return False
    if name.endswith(".json"):
        try:
            data = json.loads(raw.decode(json.detect_encoding(raw)))
            return isinstance(data, dict) and _ours(set(data))
        except (ValueError, RecursionError):
            return _ours_by_text(raw, "json")
    # deferred: +24 modules, 13 ms (yaml.reader, yaml.resolver, datetime, …)
    import yaml  # only for a YAML file: a JSON project never imports PyYAML
    from yaml.nodes import MappingNode, ScalarNode

    # deferred: +25 modules, 15 ms (yaml.reader, config.yaml_parser, yaml.resolver, …)
    from .yaml_parser import _Loader

    try:
        node = _Loader(raw.decode("utf-8-sig")).get_single_node()
        return isinstance(node, MappingNode) and _ours(
            {k.value for k, _ in node.value if isinstance(k, ScalarNode)}
        )
    except (ValueError, yaml.YAMLError, RecursionError):
        return _ours_by_text(raw, "yaml")


def _ours_by_text(raw: bytes, kind: str) -> bool:
    """:func:`_ours` by a textual check, for a file that cannot be parsed."""
    text = raw.decode("utf-8", errors="replace")
    return _ours({key for key, regex in _TEXT_KEYS[kind].items() if regex.search(text)})
