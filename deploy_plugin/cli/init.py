"""``pytest-deploy init PATH``: a commented starter config that validates."""

from __future__ import annotations

import argparse
import json
import shlex
import uuid
from pathlib import Path

from deploy_plugin.config import ConfigError, is_config_file, load_config

from .args import Commands
from .context import Context
from .output import CliError, UsageProblem, emit_json, say

CONFIG_NAME = "deploy.yaml"

STARTER = """\
# pytest-deploy config of project {project_comment}.
#   pytest --deploy-target=local --dry-run   # the plan: every command, nothing changed
#   pytest --deploy-target=local             # deploy
# Every key: `pytest-deploy config show {project_arg}`, and the JSON Schema shipped in
# deploy_plugin/config/schema.json (point your editor's YAML support at it).
project: {project_yaml}
# This project's identity, the same in every clone: a store binds the project's name to it
# on the first deploy, so another project that happens to have the same name never gets
# its env vars, history or lock. Keep it; never copy it into another project's config.
project_id: "{project_id}"

# Where a deployment goes. Declared here with non-secret values only; add more with
#   pytest-deploy target add {project_arg} staging --type database --host db.example.com
# and keep secrets in the store:
#   pytest-deploy env set {project_arg} DATABASE_URL - --target staging   (value on stdin)
targets:
  local:
    type: database
    provider: local
    host: 127.0.0.1
    env:
      DATABASE_URL: "sqlite:///local.sqlite3"   # relative to this folder
    # protected: true   # ask before deploying here (or pass --yes)

# Groups run by ascending `order`. Inside a group:
#   pre_deploy -> build_command -> test_command -> deploy_command -> post_deploy
groups:
  - name: migrations
    order: 1
    # Every pattern ends in .sql, so the group is tracked: each file is applied once by the
    # built-in executor (one transaction per file) and recorded in the migration history.
    # Number files with zero padding: 001_init.sql, 002_users.sql, ...
    file_patterns: ["migrations/*.sql"]
    required_env_vars: [DATABASE_URL]

  # - name: build
  #   order: 2
  #   file_patterns: ["src/**/*.ts"]
  #   build_command: "npm run build"
  #   test_command: "npm test"

  # - name: functions
  #   order: 3
  #   file_patterns: ["functions/*/index.ts"]
  #   # Runs once per matching file because it names a file placeholder. Placeholders:
  #   # {{file}} {{path}} {{name}} {{stem}} {{dir}} {{function_name}} {{service_name}}
  #   # {{target}} {{project}} {{group}} -- write them outside quotes.
  #   deploy_command: "echo deploying {{function_name}} to {{target}}"
  #   required_env_vars: [API_TOKEN]

# Polled after the last group until it answers as expected:
# health_check:
#   url: "http://127.0.0.1:8000/health"
#   expected_status: 200
#   timeout_seconds: 30
"""


def register(commands: Commands) -> None:
    parser = commands.add(run_init)
    parser.add_argument(
        "path", metavar="PATH", nargs="?",
        help="the project's folder (created if missing); or give --config FILE instead",
    )  # fmt: skip
    parser.add_argument("--project", help="project name (default: the folder's name)")
    parser.add_argument(
        "--from-deploy-sh",
        action="store_true",
        help="the folder's deploy.sh becomes a config of one group that runs it (the first"
        " step of moving it to groups)",
    )


def starter_config(project: str) -> str:
    """The starter config text of ``project``."""
    quoted = json.dumps(project)  # a JSON string is a valid YAML scalar
    arg = shlex.quote(project)
    return STARTER.format(
        project_yaml=quoted, project_comment=quoted, project_arg=arg, project_id=uuid.uuid4()
    )


FROM_DEPLOY_SH = """\
# Written by `pytest-deploy init --from-deploy-sh`: one group that runs deploy.sh in this
# folder, as pytest-deploy ran it without a config. Move its parts into groups of their
# own (migrations, build, deploy, ...) one at a time; README "A config" shows one, and
# every key is in pytest-deploy's deploy_plugin/config/schema.json.
project: {project_yaml}
project_id: "{project_id}"  # this project's identity in a store; never copy it elsewhere
groups:
  - name: deploy
    order: 1
    deploy_command: "bash deploy.sh"
"""


def existing_configs(folder: Path) -> list[Path]:
    """Config files directly in ``folder`` (and a ``deploy.yaml`` of any kind)."""
    if not folder.is_dir():
        return []
    found = [p for p in sorted(folder.iterdir()) if p.is_file() and is_config_file(p)]
    target = folder / CONFIG_NAME
    if target.exists() and target not in found:
        found.append(target)
    return found


def _config_path(ctx: Context) -> Path:
    """The file init writes: ``--config FILE`` (a YAML config name), else PATH/deploy.yaml."""
    args: argparse.Namespace = ctx.args
    if args.config:
        if args.path:
            raise UsageProblem(
                "Give either PATH (the folder; init writes PATH/deploy.yaml) or --config FILE "
                "(the config file to write), not both."
            )
        path: Path = (ctx.cwd / str(args.config)).absolute()
        if not (path.name in ("deploy.yaml", "deploy.yml") or path.name.endswith(
            (".deploy.yaml", ".deploy.yml")
        )):  # fmt: skip
            raise UsageProblem(
                f"--config {args.config}: init writes a YAML config named deploy.yaml or "
                f"NAME.deploy.yaml (pytest collects those); pass such a path."
            )
        return path
    if not args.path:
        raise UsageProblem("Pass the project's folder (PATH), or --config FILE to write.")
    return (ctx.cwd / str(args.path)).absolute() / CONFIG_NAME


def run_init(ctx: Context) -> int:
    """Write a commented starter config (PATH/deploy.yaml, or the --config file).

    pytest-deploy init deployments/shop --project shop
    pytest-deploy init deployments/legacy --from-deploy-sh
    """
    args: argparse.Namespace = ctx.args
    path = _config_path(ctx)
    folder = path.parent
    shown_arg = args.path or args.config
    if folder.exists() and not folder.is_dir():
        raise UsageProblem(f"{shown_arg} is a file, not a folder: pass the project's folder.")
    existing = ([path] if path.exists() else []) if args.config else existing_configs(folder)
    if existing:
        names = ", ".join(ctx.shown(p) for p in existing)
        raise UsageProblem(
            f"{ctx.shown(folder)} already holds a config ({names}); init never overwrites one. "
            f"Check it with `pytest-deploy config validate --config {ctx.shown(existing[0])}` "
            f"or edit it with `pytest-deploy config edit`."
        )
    project = args.project or folder.name
    if not project.strip():
        raise UsageProblem("The project name is empty: pass --project NAME.")
    text = starter_config(project)
    if args.from_deploy_sh:
        if not (folder / "deploy.sh").is_file():
            raise UsageProblem(
                f"--from-deploy-sh: {ctx.shown(folder)} has no deploy.sh to run. Pass the"
                " folder that holds it, or leave --from-deploy-sh out for a starter config."
            )
        text = FROM_DEPLOY_SH.format(project_yaml=json.dumps(project), project_id=uuid.uuid4())
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise CliError(
            f"Cannot write {path}: {exc.strerror or exc}. Check that you may write to {folder}."
        ) from exc
    try:
        load_config(path)  # the starter must always validate
    except ConfigError as err:  # pragma: no cover - a bug in the template
        raise CliError(f"The starter config does not validate (a bug): {err}") from err
    if args.json:
        emit_json({"path": str(path), "project": project})
    else:
        say(f"Wrote {ctx.shown(path)} (project {project!r}). Next:")
        say(f"  pytest-deploy config validate {shlex.quote(project)}")
        # a starter config declares target local; one from deploy.sh uses the store's
        target = "TARGET" if args.from_deploy_sh else "local"
        say(f"  pytest {shlex.quote(ctx.shown(path))} --deploy-target={target} --dry-run")
    return 0
