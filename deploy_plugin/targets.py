"""Targets and the environment of their steps: one resolver for the plugin and the CLI.

* :func:`resolve` — a run's target from the config's declaration and the store's record
  (stored values win), or why the name is unknown;
* :func:`step_env` — the environment a step runs with (DESIGN §2): the process
  environment, overlaid by the target's declared ``env``, then its stored env vars, then
  ``--deploy-env``; with each name's source and a masker for the secret values.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from deploy_plugin.config import DeployConfig, TargetDecl
from deploy_plugin.secrets import Masker, is_secret_name, url_passwords

if TYPE_CHECKING:
    from deploy_plugin.store.base import Store


@dataclass(frozen=True)
class TargetInfo:
    """A resolved target: declared in the config, stored, or both (stored values win).

    Frozen: hooks and fixtures see it as it is; make another with ``dataclasses.replace``.
    """

    name: str
    type: str | None = None
    provider: str | None = None
    host: str | None = None
    region: str | None = None
    protected: bool = False
    health_check_url: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)  # declared, non-secret
    origin: str = "config"

    @classmethod
    def merge(cls, name: str, declared: TargetDecl | None, stored: Any | None) -> TargetInfo:
        fields: dict[str, Any] = {}
        if declared is not None:
            fields.update(
                type=declared.type, provider=declared.provider, host=declared.host,
                region=declared.region, protected=declared.protected,
                health_check_url=declared.health_check_url,
                env=MappingProxyType(dict(declared.env)),
            )  # fmt: skip
        if stored is not None:
            for attr in ("type", "provider", "host", "region", "health_check_url"):
                value = getattr(stored, attr, None)
                if value is not None:
                    fields[attr] = value
            fields["protected"] = fields.get("protected", False) or bool(
                getattr(stored, "protected", False)
            )
            fields["origin"] = "config+store" if declared is not None else "store"
        return cls(name=name, **fields)


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_vars(text: str, env: Mapping[str, str]) -> str:
    """Expand ``${VAR}`` from ``env`` (unknown names are left as written)."""
    return _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), text)


def undefined_vars(text: str, env: Mapping[str, str]) -> list[str]:
    """The ``${VAR}`` names in ``text`` that ``env`` does not define, in order, once each."""
    return list(dict.fromkeys(n for n in _VAR.findall(text) if n not in env))


def resolve(
    config: DeployConfig, name: str, store: Store | None
) -> tuple[TargetInfo | None, str | None]:
    """The target ``name`` of a config (declared or stored), or why it is unknown."""
    declared = config.targets.get(name)
    stored = store.get_target(config.project, name) if store is not None else None
    if declared is None and stored is None:
        known_stored = [t.name for t in store.list_targets(config.project)] if store else []
        known = [f"{t} (config)" for t in config.targets] + [
            f"{t} (store)" for t in known_stored if t not in config.targets
        ]
        return None, (
            f"unknown target {name!r} for project {config.project!r}"
            f" ({config.path}). Known targets: {', '.join(known) or 'none'}. Declare it"
            f" under `targets:` in the config or add it with `pytest-deploy target add"
            f" {config.project} {name}`; an unknown name never starts a new, empty history."
        )
    return TargetInfo.merge(name, declared, stored), None


@dataclass(frozen=True)
class StepEnv:
    """The environment of a deployment's steps: values, each name's source, the masker."""

    values: dict[str, str]
    sources: dict[str, str]
    masker: Masker


#: The CLI's own words that hints are made of (``pytest-deploy unlock woofs --target T``):
#: a stored value equal to one of them must not turn a hint into ``pytest-***``.
HINT_WORDS = (
    "pytest-deploy", "deploy", "target", "migration", "mark-applied", "forget-intent",
    "unlock", "history", "status", "--deploy-target", "--deploy-env", "--no-health-check",
)  # fmt: skip


def step_env(
    target: TargetInfo,
    stored: Mapping[str, str],
    cli: Mapping[str, str],
    *,
    watched: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
    masker: Masker | None = None,
    structural: Iterable[str] = (),
    env_file: Mapping[str, str] | None = None,
) -> StepEnv:
    """Build the step environment (process < config < store < --deploy-env-file <
    --deploy-env).

    Stored, ``--deploy-env-file`` and ``--deploy-env`` values are secrets; a declared
    (config) value is masked when its name looks secret (KEY, SECRET, TOKEN, PASS), else
    only the password of a URL it holds.
    Of the process's own values, those of ``watched`` names (the vars the deployment's
    groups require, and the built-in executor's URL vars) are masked whole when the name
    looks secret, else only the passwords of the URLs they hold. The secrets are added to
    ``masker`` when one is given (one that others already hold), else to a new one.
    Names are kept readable (:meth:`Masker.keep`): ``structural`` (project, targets, groups,
    files), the env var names, the target's name and :data:`HINT_WORDS`.
    """
    environ = os.environ if environ is None else environ
    values = dict(environ)
    sources = {name: "process" for name in values}
    env_file = env_file or {}
    layers = (
        ("config", target.env),
        ("store", stored),
        ("--deploy-env-file", env_file),
        ("--deploy-env", cli),
    )
    for source, layer in layers:
        for name, value in layer.items():
            values[name] = value
            sources[name] = source
    masker = masker if masker is not None else Masker()
    masker.keep(target.name, *structural, *HINT_WORDS, *stored, *env_file, *cli, *target.env)
    masker.add(*stored.values(), *env_file.values(), *cli.values())
    for name, value in target.env.items():  # config values: by the same name rule
        masker.add(*([value] if is_secret_name(name) else url_passwords(value)))
    for name in set(watched):
        if name in environ and sources.get(name) == "process":
            value = environ[name]
            masker.add(*([value] if is_secret_name(name) else url_passwords(value)))
    return StepEnv(values, sources, masker)


__all__ = ["HINT_WORDS", "StepEnv", "TargetInfo", "resolve", "step_env", "undefined_vars"]
