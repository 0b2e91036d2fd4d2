"""Planning: which files a group matches, which steps it has, what is pending.

Pure functions over the config model and plain data (applied checksums come in as
dicts), so planning is cheap to test and never touches a store or a process. It imports
:mod:`deploy_plugin.config` and nothing else of ours; :mod:`deploy_plugin.migrate` builds
on it, never the other way. Its modules, each importing only those above it:

* ``files``     which files a group's patterns match, in what order (repeatables,
                ``config.is_repeatable``, last);
                file placeholders; file warnings
* ``sections``  what a migration file applies (dbmate's up/down sections) and its checksum
* ``steps``     the ordered steps of one group for one target
* ``states``    the one classifier of a tracked file, and preflight's migration check
"""

from __future__ import annotations

from deploy_plugin.config import is_repeatable

from .files import (
    file_values,
    glob_regex,
    links_note,
    match_files,
    padding_warning,
    run_order,
    tracked_overlap_problem,
)
from .sections import checksum_bytes, down_bytes, file_checksum, up_bytes
from .states import AppliedMigration, HistoryRow, MigrationCheck, check_migrations, migration_state
from .steps import GroupPlan, Matched, Step, match_group, plan_group

__all__ = [
    "AppliedMigration",
    "GroupPlan",
    "HistoryRow",
    "Matched",
    "MigrationCheck",
    "Step",
    "check_migrations",
    "checksum_bytes",
    "down_bytes",
    "file_checksum",
    "file_values",
    "glob_regex",
    "is_repeatable",
    "links_note",
    "match_files",
    "match_group",
    "migration_state",
    "padding_warning",
    "plan_group",
    "run_order",
    "tracked_overlap_problem",
    "up_bytes",
]
