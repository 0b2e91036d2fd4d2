"""``pytest-deploy config show|validate|edit``."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from typing import Any

from deploy_plugin.config import ConfigError, DeployConfig, load_config

from .args import Commands
from .context import Context
from .discovery import ConfigEntry
from .output import CliError, UsageProblem, emit_json, note, print_table, say


def register(commands: Commands) -> None:
    """Show, validate or edit a project's deployment config.

    pytest-deploy config validate woofs
    """
    family = commands.family("config", register.__doc__)
    show = family.add(run_show, "project")
    show.add_argument("--raw", action="store_true", help="print the file as written")
    family.add(run_validate, "project?")
    family.add(run_edit, "project")


def summary(config: DeployConfig, shown: str) -> dict[str, Any]:
    """A config as JSON: where it is, its groups, targets and health check."""
    return {
        "project": config.project,
        "path": shown,
        "root": str(config.root),
        "sha256": config.sha256,
        "groups": [
            {
                "name": g.name,
                "order": g.order,
                "file_patterns": list(g.file_patterns),
                "track_migrations": g.track_migrations,
                "required_env_vars": list(g.required_env_vars),
                "targets": list(g.targets) if g.targets is not None else None,
            }
            for g in config.groups
        ],
        "targets": {
            name: {
                "type": t.type,
                "provider": t.provider,
                "host": t.host,
                "region": t.region,
                "protected": t.protected,
                "health_check_url": t.health_check_url,
                "env": sorted(t.env),
                "requires": list(t.requires),
            }
            for name, t in config.targets.items()
        },  # fmt: skip
        "health_check": (
            None
            if config.health_check is None
            else {
                "url": config.health_check.url,
                "expected_status": config.health_check.expected_status,
                "timeout_seconds": config.health_check.timeout_seconds,
            }
        ),
    }


def run_show(ctx: Context) -> int:
    """Show a project's config: groups, targets, health check (--raw: the file).

    pytest-deploy config show woofs
    pytest-deploy config show woofs --raw
    """
    project = ctx.project(ctx.args.project)
    config = project.require_config()
    shown = ctx.shown(config.path)
    if ctx.args.raw:
        sys.stdout.write(config.source_text)
        return 0
    data = summary(config, shown)
    if ctx.args.json:
        emit_json(data)
        return 0
    say(f"project {config.project} — {shown} (root {ctx.shown(config.root)})")
    say()
    rows = [
        [g["order"], g["name"], ", ".join(g["file_patterns"]), g["track_migrations"],
         ", ".join(g["required_env_vars"]), ", ".join(g["targets"] or []) or "all"]
        for g in data["groups"]
    ]  # fmt: skip
    print_table(["order", "group", "file patterns", "tracked", "required env", "targets"], rows, "")
    say()
    targets = [
        [name, t["type"], t["provider"], t["host"], t["region"], t["protected"],
         ", ".join(t["env"]), ", ".join(t["requires"])]
        for name, t in data["targets"].items()
    ]  # fmt: skip
    columns = "declared target,type,provider,host,region,protected,env names,requires"
    print_table(
        columns.split(","),
        targets,
        "no declared targets (see `pytest-deploy target list`)",
    )
    health = data["health_check"]
    say()
    say(
        f"health check: {health['url']} expecting {health['expected_status']} within "
        f"{health['timeout_seconds']:g} s"
        if health
        else "health check: none"
    )
    return 0


def _problems(err: ConfigError) -> list[str]:
    """Every problem of a config error, one paragraph each."""
    first = ConfigError(err.problem, path=err.path, line=err.line, field=err.field)
    return [str(first), *(str(other) for other in err.others)]


def run_validate(ctx: Context) -> int:
    """Validate one project's config, or every config pytest collects here.

    pytest-deploy config validate woofs
    pytest-deploy config validate
    """
    if ctx.args.project:
        entries: list[ConfigEntry] = []
        project = ctx.project(ctx.args.project)
        if project.entry is not None:
            entries = [project.entry]
    else:
        entries = ctx.entries()
        if not entries:
            raise UsageProblem(
                f"No config file pytest collects in {ctx.cwd} (deploy.yaml|yml|json with a "
                f"top-level `groups` key, or *.deploy.yaml|yml|json). Create one with "
                f"`pytest-deploy init PATH`."
            )
    results: list[dict[str, Any]] = []
    for entry in entries:
        shown = ctx.shown(entry.path)
        if entry.config is not None:
            results.append({"path": shown, "project": entry.project, "valid": True, "errors": []})
        else:
            assert entry.error is not None
            errors = _problems(entry.error)
            results.append(
                {"path": shown, "project": entry.project, "valid": False, "errors": errors}
            )
    if ctx.args.json:
        emit_json(results)
    else:
        for result in results:
            if result["valid"]:
                say(f"{result['path']}: valid (project {result['project']})")
            else:
                for error in result["errors"]:
                    print(error, file=sys.stderr)
    return 0 if all(r["valid"] for r in results) else 1


def editor_command() -> list[str]:
    """The user's editor as argv: $VISUAL, else $EDITOR, else vi."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    try:
        return shlex.split(editor)
    except ValueError as err:
        raise CliError(
            f"Cannot read the editor command {editor!r} ({err}). Set $EDITOR (or $VISUAL) to "
            "an editor command with balanced quotes, e.g. EDITOR=nano."
        ) from None


def run_edit(ctx: Context) -> int:
    """Open a project's config in $VISUAL / $EDITOR, then validate it again.

    Edit a copy beside the config, as visudo does: the config is replaced only by a copy
    that validates; an invalid edit is offered again at a terminal, else the config stays
    as it was and the edited copy is kept (named) so nothing typed is lost.

    EDITOR=nano pytest-deploy config edit woofs
    """
    project = ctx.project(ctx.args.project)
    if project.entry is None:
        project.require_config()  # raises: store-only projects have no file to edit
    assert project.entry is not None
    path = project.entry.path
    # same folder (a relative root means the same), a name no collector takes
    copy = path.with_name(f".{path.stem}.edit-{os.getpid()}{path.suffix}")
    copy.write_bytes(path.read_bytes())
    os.chmod(copy, path.stat().st_mode & 0o7777)
    while True:
        command = [*editor_command(), str(copy)]
        try:
            completed = subprocess.run(command, check=False)
        except OSError as exc:
            copy.unlink(missing_ok=True)
            raise CliError(
                f"Cannot start the editor {command[0]!r}: {exc.strerror or exc}. Set $EDITOR "
                f"(or $VISUAL) to an editor on your PATH, e.g. EDITOR=nano."
            ) from exc
        if completed.returncode != 0:
            copy.unlink(missing_ok=True)
            raise CliError(
                f"The editor {command[0]!r} exited with status {completed.returncode}; "
                f"{ctx.shown(path)} was left as it was."
            )
        try:
            config = load_config(copy)
        except ConfigError as err:
            for problem in _problems(err):
                print(problem.replace(copy.name, path.name), file=sys.stderr)
            if sys.stdin and sys.stdin.isatty():
                answer = input("The config does not validate. Edit it again? [Y/n] ")
                if answer.strip().lower() in ("", "y", "yes"):
                    continue
            print(
                f"{ctx.shown(path)} was left as it was (valid); your edit is kept in"
                f" {ctx.shown(copy)}: fix it there and move it over the config, or delete it.",
                file=sys.stderr,
            )
            return 1
        os.replace(copy, path)
        if config.project != project.name:
            note(f"note: the config's project is now {config.project!r} (was {project.name!r})")
        say(f"{ctx.shown(path)}: valid (project {config.project})")
        return 0
