"""Saved plans (``--deploy-plan-out`` / ``--deploy-plan``): review once, apply exactly that, once.

A saved plan is a JSON file written by a dry run. For each deployment (one project and
target) it holds what the run was about to do and everything that decided it:

* every step's node id, its command as shown (masked) and a SHA-256 of the command as it
  would run (unmasked);
* the config's SHA-256, each matched file's checksum;
* the names of the target's env vars (config, store, ``--deploy-env``, ``--deploy-env-file``)
  with an HMAC-SHA256 of each value (never the value), keyed by the project's plan key;
* the applied-migration set (file → checksum of its ``success`` row);
* the id of the store that made it, and ``macs``: for each project of the plan, an
  HMAC-SHA256 over the whole plan in canonical JSON (every key but ``macs``; sorted keys,
  no spaces, UTF-8) keyed by that project's *plan key*.

The plan key is a per-project secret kept in the store (``projects.plan_key``, drawn with
:func:`secrets.token_bytes`), never in the file. So a plan file cannot be edited (a step
added, a command's shown text changed, any key added or removed: the MAC fails), its env
hashes cannot be checked against guessed values offline, and it applies only against the
store that made it (its ``store_id`` is MAC'd and compared first).

Applying it checks the store id and the MACs (:func:`integrity_problems`), then compares
the facts with the run's own (:func:`differences`) and refuses on any difference, naming
each one. Pure: it knows no pytest and no store (the glue in :mod:`deploy_plugin.plugin.plans`
gathers the facts and the keys).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "pytest-deploy-plan"
VERSION = 2  # 2: store_id and macs (version 1 plans had neither and are refused)


class PlanFileError(Exception):
    """A plan file that cannot be read: one paragraph naming the file and the problem."""


@dataclass(frozen=True)
class PlannedStep:
    """One item of a planned deployment."""

    node_id: str
    command: str | None  # masked, as a reviewer reads it
    command_sha256: str | None  # of the unmasked command


@dataclass(frozen=True)
class DeploymentFacts:
    """What one deployment would do and what decided it (see the module docstring)."""

    project: str
    target: str
    config: str  # path relative to the rootdir
    config_sha256: str
    steps: tuple[PlannedStep, ...]
    files: Mapping[str, str] = field(default_factory=dict)  # root-relative → checksum
    env: Mapping[str, str] = field(default_factory=dict)  # name → HMAC of the value
    applied: Mapping[str, str] = field(default_factory=dict)  # file → applied checksum

    @property
    def key(self) -> tuple[str, str]:
        return (self.project, self.target)


@dataclass(frozen=True)
class SavedPlan:
    """A plan file's content; ``signed`` is the canonical text its ``macs`` cover (set by
    :func:`load`)."""

    id: str
    created_at: str
    created_by: str
    deployments: tuple[DeploymentFacts, ...]
    store_id: str = ""
    macs: Mapping[str, str] = field(default_factory=dict)  # project → MAC (hex)
    signed: bytes = b""

    @property
    def projects(self) -> list[str]:
        return sorted({d.project for d in self.deployments})


def new_plan_id() -> str:
    """A random plan id (128 bits)."""
    return secrets.token_hex(16)


def command_hash(command: str | None) -> str | None:
    return None if command is None else hashlib.sha256(command.encode()).hexdigest()


def _subkey(key: bytes, purpose: str) -> bytes:
    """One key per use of a project's plan key (env hashes, MACs), so neither gives away
    anything about the other."""
    return hmac.new(key, f"pytest-deploy plan {purpose}".encode(), hashlib.sha256).digest()


def env_hashes(key: bytes, plan_id: str, env: Mapping[str, str]) -> dict[str, str]:
    """name → HMAC-SHA256 of (plan id, name, value) keyed by the project's plan key: tells
    a changed value without holding it, and only to someone holding the store's key."""
    env_key = _subkey(key, "env")
    return {
        name: hmac.new(
            env_key, "\0".join((plan_id, name, value)).encode(), hashlib.sha256
        ).hexdigest()
        for name, value in sorted(env.items())
    }


def canonical(data: Mapping[str, Any]) -> bytes:
    """What a plan's MACs cover: every key but ``macs``, as canonical JSON."""
    body = {k: v for k, v in data.items() if k != "macs"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def mac(key: bytes, signed: bytes) -> str:
    """HMAC-SHA256 of a plan's canonical text keyed by a project's plan key."""
    return hmac.new(_subkey(key, "mac"), signed, hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------- the file


def dump(plan: SavedPlan, keys: Mapping[str, bytes]) -> str:
    """The plan as the JSON text of a plan file, with a MAC per project (``keys``: each
    project's plan key)."""
    data: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "id": plan.id,
        "store_id": plan.store_id,
        "created_at": plan.created_at,
        "created_by": plan.created_by,
        "deployments": [
            {
                "project": d.project,
                "target": d.target,
                "config": d.config,
                "config_sha256": d.config_sha256,
                "steps": [
                    {
                        "node_id": s.node_id,
                        "command": s.command,
                        "command_sha256": s.command_sha256,
                    }
                    for s in d.steps
                ],
                "files": dict(sorted(d.files.items())),
                "env": dict(sorted(d.env.items())),
                "applied": dict(sorted(d.applied.items())),
            }
            for d in plan.deployments
        ],
    }
    signed = canonical(data)
    data["macs"] = {project: mac(keys[project], signed) for project in plan.projects}
    return json.dumps(data, indent=2) + "\n"


#: No plan is this large (a step takes a few hundred bytes): more is not read.
MAX_PLAN_BYTES = 64 << 20


def load(path: str | Path) -> SavedPlan:
    """Read a plan file; PlanFileError (one paragraph) when it is not one."""
    try:
        with open(path, "rb") as handle:  # bounded: /dev/zero or a huge file is no plan
            raw = handle.read(MAX_PLAN_BYTES + 1)
    except OSError as err:
        raise PlanFileError(
            f"--deploy-plan {path}: cannot read the plan file ({err.strerror or err}). Give"
            " the file written by `pytest --deploy-target=T --dry-run --deploy-plan-out=FILE`."
        ) from None
    if len(raw) > MAX_PLAN_BYTES:
        raise PlanFileError(
            f"--deploy-plan {path}: larger than {MAX_PLAN_BYTES >> 20} MiB, so not a plan"
            " written by `--dry-run --deploy-plan-out=FILE`; nothing more of it was read."
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PlanFileError(f"--deploy-plan {path}: not a text file, so not a plan.") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise PlanFileError(
            f"--deploy-plan {path}: line {err.lineno}, column {err.colno}: not valid JSON"
            f" ({err.msg}). A plan file is written by `--dry-run --deploy-plan-out=FILE` and"
            " must not be edited; make a new one."
        ) from None
    except RecursionError:
        raise PlanFileError(
            f"--deploy-plan {path}: nested too deeply to be a plan (a plan is a few levels"
            " deep). A plan file is written by `--dry-run --deploy-plan-out=FILE`; make a new"
            " one."
        ) from None
    except ValueError as err:  # e.g. an integer of more digits than Python converts
        raise PlanFileError(
            f"--deploy-plan {path}: not valid JSON for a plan ({err}). A plan file is written"
            " by `--dry-run --deploy-plan-out=FILE` and must not be edited; make a new one."
        ) from None
    try:
        return _parse(data)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        if isinstance(err, KeyError):
            where = f" (missing key {err})"
        else:
            where = f" ({err})" if str(err) else ""
        raise PlanFileError(
            f"--deploy-plan {path}: not a pytest-deploy plan of format {FORMAT} version"
            f" {VERSION}{where}. A plan file is written by `--dry-run --deploy-plan-out=FILE`"
            " and must not be edited; make a new one."
        ) from None


def _parse(data: Any) -> SavedPlan:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"the key 'format' must be {FORMAT!r}")
    if data.get("version") != VERSION:
        raise ValueError(f"unsupported version {data.get('version')!r}")

    def text(obj: Any, key: str) -> str:
        value = obj[key]
        if not isinstance(value, str) or not value:
            raise ValueError(f"{key!r} must be a non-empty string")
        return value

    def optional(obj: Any, key: str) -> str | None:
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{key!r} must be a string or null")
        return value

    def mapping(obj: Any, key: str) -> dict[str, str]:
        value = obj[key]
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ValueError(f"{key!r} must map names to strings")
        return dict(value)

    deployments = []
    if not isinstance(data["deployments"], list) or not data["deployments"]:
        raise ValueError("'deployments' must be a non-empty list")
    for d in data["deployments"]:
        steps = tuple(
            PlannedStep(text(s, "node_id"), optional(s, "command"), optional(s, "command_sha256"))
            for s in d["steps"]
        )
        deployments.append(
            DeploymentFacts(
                project=text(d, "project"),
                target=text(d, "target"),
                config=text(d, "config"),
                config_sha256=text(d, "config_sha256"),
                steps=steps,
                files=mapping(d, "files"),
                env=mapping(d, "env"),
                applied=mapping(d, "applied"),
            )
        )
    return SavedPlan(
        id=text(data, "id"),
        created_at=text(data, "created_at"),
        created_by=text(data, "created_by"),
        deployments=tuple(deployments),
        store_id=text(data, "store_id"),
        macs=mapping(data, "macs"),
        signed=canonical(data),
    )


def integrity_problems(
    plan: SavedPlan, store_id: str | None, keys: Mapping[str, bytes | None]
) -> list[str]:
    """Why the plan is not one this store made, unchanged (empty: it is): another store's,
    or a MAC that does not match (``keys``: each project's plan key in this store)."""
    if store_id != plan.store_id:
        return [
            f"it was made against another store (store id {plan.store_id}; this run's store"
            f" is {store_id or 'missing'}), and a plan applies only against the store that"
            " made it"
        ]
    for project in plan.projects:
        key = keys.get(project)
        given = plan.macs.get(project, "")
        if key is None or not hmac.compare_digest(mac(key, plan.signed), given):
            return [
                "the file was changed after it was made: its MAC for project"
                f" {project!r} (HMAC-SHA256 keyed by a secret kept in the store, not in the"
                " file) does not match its content. Steps, commands, their shown text and"
                " every other key of a plan file are covered; none can be edited"
            ]
    return []


# --------------------------------------------------------------------------- comparing


def _changes(
    what: str, planned: Mapping[str, str], now: Mapping[str, str], verbs: tuple[str, str, str]
) -> list[str]:
    """``what X changed|was added|was removed`` for each differing key."""
    changed, added, removed = verbs
    out = []
    for name in sorted(set(planned) | set(now)):
        if name not in now:
            out.append(f"{what} {name} {removed}")
        elif name not in planned:
            out.append(f"{what} {name} {added}")
        elif planned[name] != now[name]:
            out.append(f"{what} {name} {changed}")
    return out


def differences(planned: DeploymentFacts, now: DeploymentFacts) -> list[str]:
    """Every way ``now`` differs from ``planned`` (empty: the plan applies as made)."""
    out: list[str] = []
    if planned.config_sha256 != now.config_sha256:
        out.append(
            f"the config {now.config} changed (sha256 {planned.config_sha256[:12]}… in the"
            f" plan, {now.config_sha256[:12]}… now)"
        )
    elif planned.config != now.config:
        out.append(f"the config is {now.config}, the plan's is {planned.config}")
    out += _changes("file", planned.files, now.files, ("changed", "is new", "is gone"))
    out += _changes("env var", planned.env, now.env, ("changed value", "was added", "was removed"))
    out += _changes(
        "migration history:",
        planned.applied,
        now.applied,
        ("was applied again with another checksum", "was applied since",
         "is no longer recorded as applied"),
    )  # fmt: skip
    planned_steps = {s.node_id: s for s in planned.steps}
    now_steps = {s.node_id: s for s in now.steps}
    for node_id in planned_steps:
        if node_id not in now_steps:
            out.append(f"step {node_id} of the plan is not in this run")
        elif planned_steps[node_id].command_sha256 != now_steps[node_id].command_sha256:
            out.append(f"step {node_id} has another command")
    for node_id in now_steps:
        if node_id not in planned_steps:
            out.append(f"step {node_id} is not in the plan")
    return out


def scope_differences(plan: SavedPlan, now: list[tuple[str, str]]) -> list[str]:
    """Deployments of the plan this run lacks, and deployments of this run not planned."""
    planned = [d.key for d in plan.deployments]
    out = [
        f"the plan deploys project {p!r} to target {t!r}, this run does not"
        for p, t in planned
        if (p, t) not in now
    ]
    out += [
        f"this run deploys project {p!r} to target {t!r}, which the plan does not"
        for p, t in now
        if (p, t) not in planned
    ]
    return out


def refusal(path: str, plan: SavedPlan, problems: list[str], *, verified: bool = True) -> str:
    """The one paragraph refusing a plan, naming each problem (the file's own words about
    itself only when ``verified``: an edited file may say anything)."""
    scope = ", ".join(f"{p} → {t}" for p, t in (d.key for d in plan.deployments))
    about = (
        f" (id {plan.id}, made {plan.created_at} by {plan.created_by} for {scope})"
        if verified
        else ""
    )
    return _printable(
        f"saved plan {path}{about} cannot be applied: " + "; ".join(problems) + ". Nothing"
        f" was run. {REMAKE}"
    )


#: How to make a plan, in both spellings (a refusal reaches pytest's and the CLI's users).
REMAKE = (
    "Make a new plan with a dry run that saves it (`pytest --deploy-target=T --dry-run"
    " --deploy-plan-out=FILE`, or `pytest-deploy deploy run PROJECT --target T --dry-run"
    " --plan-out FILE`), review it, and apply that."
)


def _printable(text: str) -> str:
    """``text`` with control characters (ANSI escapes, newlines) shown escaped: a plan's
    own words can never forge a terminal line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
