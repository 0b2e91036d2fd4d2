"""Steps: the ordered work of one group for one target, each a future pytest item."""

from __future__ import annotations

from dataclasses import dataclass, field

from deploy_plugin.config import DeployConfig, Group, render_command

from .files import file_values, match_files, run_order


@dataclass(frozen=True)
class Step:
    """One unit of work of a group; becomes one pytest item named ``name``."""

    name: str
    group: Group
    kind: str
    command: str | None  # placeholders substituted; None for the built-in SQL executor
    file: str | None = None  # root-relative, '/'-separated
    tracked: bool = False  # a migration whose history is kept


@dataclass(frozen=True)
class GroupPlan:
    """The steps of one group, in run order, and the files its patterns matched."""

    group: Group
    steps: tuple[Step, ...]
    files: tuple[str, ...]
    unmatched_patterns: tuple[str, ...] = field(default=())
    outside_links: tuple[str, ...] = field(default=())  # "REL -> REAL": not followed
    undecodable: tuple[str, ...] = field(default=())  # names not UTF-8, \xNN-escaped: refused


def _common_values(config: DeployConfig, group: Group, target: str) -> dict[str, str]:
    return {"target": target, "project": config.project, "group": group.name}


@dataclass(frozen=True)
class Matched:
    """What one group's file patterns matched under its config's root (``match_files``)."""

    files: tuple[str, ...]
    unmatched: tuple[str, ...]
    outside: tuple[str, ...]  # "REL -> REAL": links not followed
    undecodable: tuple[str, ...] = ()  # names that are not UTF-8, shown \xNN-escaped


def match_group(config: DeployConfig, group: Group) -> Matched:
    """The files of ``group`` (none when it has no patterns); the same for every target,
    so a collector matches them once per config."""
    if not group.file_patterns:
        return Matched((), (), ())
    outside: list[str] = []
    undecodable: list[str] = []
    files, unmatched = match_files(
        config.root, group.file_patterns, outside=outside, undecodable=undecodable
    )
    return Matched(tuple(files), tuple(unmatched), tuple(outside), tuple(undecodable))


def plan_group(
    config: DeployConfig, group: Group, target: str, matched: Matched | None = None
) -> GroupPlan:
    """The ordered steps of one group for one target (``matched``: its files when the
    caller has matched them already)."""
    values = _common_values(config, group, target)
    if matched is None:
        matched = match_group(config, group)
    files = tuple(run_order(matched.files)) if group.track_migrations else matched.files
    steps: list[Step] = []

    def add(name: str, kind: str, template: str | None, file: str | None = None) -> None:
        command = None
        if template is not None:
            extra = file_values(config.root, file) if file is not None else {}
            command = render_command(template, {**values, **extra})
        tracked = group.track_migrations and kind == "deploy" and file is not None
        steps.append(Step(name, group, kind, command, file, tracked))

    for i, hook in enumerate(group.pre_deploy):
        add(f"pre_deploy[{i}]", "pre_deploy", hook)
    if group.build_command:
        add("build", "build", group.build_command)
    if group.test_command:
        add("test", "test", group.test_command)
    if group.track_migrations or group.deploy_per_file:
        for rel in files:
            add(f"deploy[{rel}]", "deploy", group.deploy_command, rel)
        if not files:
            # an empty match is reported as a skipped step, never a silent pass
            steps.append(Step("deploy", group, "deploy", None, None, False))
    elif group.deploy_command:
        add("deploy", "deploy", group.deploy_command)
    for i, hook in enumerate(group.post_deploy):
        add(f"post_deploy[{i}]", "post_deploy", hook)
    return GroupPlan(
        group, tuple(steps), files, matched.unmatched, matched.outside, matched.undecodable
    )
