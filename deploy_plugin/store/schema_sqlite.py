"""The SQLite store's schema: its steps in version order (see :mod:`.schema`).

Timestamps are ISO 8601 text in UTC; booleans are INTEGER 0/1 with a CHECK.
"""

from __future__ import annotations

from .migrator import SchemaStep

SQLITE_BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at  TEXT NOT NULL
)"""

# SQLite keeps timestamps as ISO 8601 text in UTC; this default matches what Python writes
# closely enough to sort correctly, for rows written by hand with the sqlite3 shell.
_SQLITE_NOW = "(strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'))"

SQLITE_STEPS: list[SchemaStep] = [
    SchemaStep(
        1,
        "projects, targets, env vars, migration history, deployments, steps, locks",
        (
            "CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            """CREATE TABLE projects (
                id         INTEGER PRIMARY KEY,
                name       TEXT NOT NULL UNIQUE,
                created_at TEXT NOT NULL
            )""",
            """CREATE TABLE deployment_targets (
                id               INTEGER PRIMARY KEY,
                project_id       INTEGER NOT NULL REFERENCES projects(id),
                name             TEXT NOT NULL,
                type             TEXT,
                provider         TEXT,
                host             TEXT,
                region           TEXT,
                protected        INTEGER NOT NULL DEFAULT 0 CHECK (protected IN (0, 1)),
                health_check_url TEXT,
                created_at       TEXT NOT NULL,
                updated_at       TEXT NOT NULL,
                UNIQUE (project_id, name)
            )""",
            # Keyed by target *name*, so values can be stored for targets that are only
            # declared in a config, and survive removing a stored target.
            """CREATE TABLE env_vars (
                id          INTEGER PRIMARY KEY,
                project_id  INTEGER NOT NULL REFERENCES projects(id),
                target_name TEXT NOT NULL,
                name        TEXT NOT NULL,
                value       TEXT NOT NULL,
                updated_at  TEXT NOT NULL,
                UNIQUE (project_id, target_name, name)
            )""",
            # The seed's table (Phase 2, Task 2), status constrained to its three values.
            f"""CREATE TABLE migration_history (
                id                 INTEGER PRIMARY KEY,
                project_id         INTEGER NOT NULL REFERENCES projects(id),
                target_name        TEXT NOT NULL,
                migration_file     TEXT NOT NULL,
                migration_checksum TEXT NOT NULL,
                applied_at         TEXT NOT NULL DEFAULT {_SQLITE_NOW},
                applied_by         TEXT,
                execution_time_ms  INTEGER,
                status             TEXT NOT NULL DEFAULT 'success'
                                   CHECK (status IN ('success', 'failed', 'rolled_back')),
                error_message      TEXT,
                UNIQUE (project_id, target_name, migration_file)
            )""",
            """CREATE INDEX idx_migration_history_project_target
                ON migration_history (project_id, target_name)""",
            "CREATE INDEX idx_migration_history_status ON migration_history (status)",
            """CREATE TABLE deployments (
                id              INTEGER PRIMARY KEY,
                project_id      INTEGER NOT NULL REFERENCES projects(id),
                target_name     TEXT NOT NULL,
                who             TEXT NOT NULL,
                started_at      TEXT NOT NULL,
                ended_at        TEXT,
                status          TEXT NOT NULL DEFAULT 'running',
                dry_run         INTEGER NOT NULL DEFAULT 0 CHECK (dry_run IN (0, 1)),
                config_snapshot TEXT NOT NULL,
                config_sha256   TEXT NOT NULL
            )""",
            """CREATE INDEX idx_deployments_project_target
                ON deployments (project_id, target_name, started_at)""",
            """CREATE TABLE deployment_steps (
                id            INTEGER PRIMARY KEY,
                deployment_id INTEGER NOT NULL REFERENCES deployments(id),
                node_id       TEXT NOT NULL,
                group_name    TEXT,
                kind          TEXT NOT NULL,
                file          TEXT,
                checksum      TEXT,
                command       TEXT,
                outcome       TEXT NOT NULL,
                duration_ms   INTEGER NOT NULL,
                message       TEXT,
                recorded_at   TEXT NOT NULL
            )""",
            "CREATE INDEX idx_deployment_steps_deployment ON deployment_steps (deployment_id)",
            """CREATE TABLE deploy_locks (
                project_id  INTEGER NOT NULL REFERENCES projects(id),
                target_name TEXT NOT NULL,
                holder      TEXT NOT NULL,
                host        TEXT NOT NULL,
                pid         INTEGER NOT NULL,
                started_at  TEXT NOT NULL,
                PRIMARY KEY (project_id, target_name)
            )""",
        ),
    ),
]

SQLITE_STEPS.append(
    SchemaStep(
        2,
        "deployments name their process (host, pid); intents of shell-applied migrations",
        (
            "ALTER TABLE deployments ADD COLUMN host TEXT",
            "ALTER TABLE deployments ADD COLUMN pid INTEGER",
            # Written before a shell step applies a tracked file, removed with its history
            # row: one left behind means a run died while the file may have been applying.
            """CREATE TABLE migration_intents (
                project_id     INTEGER NOT NULL REFERENCES projects(id),
                target_name    TEXT NOT NULL,
                migration_file TEXT NOT NULL,
                checksum       TEXT NOT NULL,
                deployment_id  INTEGER,
                who            TEXT NOT NULL,
                host           TEXT NOT NULL,
                pid            INTEGER NOT NULL,
                started_at     TEXT NOT NULL,
                PRIMARY KEY (project_id, target_name, migration_file)
            )""",
        ),
    )
)

# Version 3 (rollback branch): a deployment run says what it was (``deploy``,
# ``rollback``, ``check_rollback``; existing rows were deployments), and the schema
# fingerprint of each tracked group's database after its last successful run.
SQLITE_STEPS.append(
    SchemaStep(
        3,
        "deployments say what they were (kind); schema fingerprints for drift warnings",
        (
            "ALTER TABLE deployments ADD COLUMN kind TEXT NOT NULL DEFAULT 'deploy'",
            """CREATE TABLE schema_fingerprints (
                project_id    INTEGER NOT NULL REFERENCES projects(id),
                target_name   TEXT NOT NULL,
                group_name    TEXT NOT NULL,
                digest        TEXT NOT NULL,
                objects       TEXT NOT NULL,
                deployment_id INTEGER,
                recorded_at   TEXT NOT NULL,
                PRIMARY KEY (project_id, target_name, group_name)
            )""",
        ),
    )
)

# Version 4 (issue 13 §2). Versions need not be contiguous: other branches take 3 and 5.
SQLITE_STEPS.append(
    SchemaStep(
        4,
        "audit of history changes made by hand: accepted checksums, baselines",
        (
            # One row per accepted edit (old and new checksum) or baselined file (no old).
            """CREATE TABLE migration_audit (
                id             INTEGER PRIMARY KEY,
                project_id     INTEGER NOT NULL REFERENCES projects(id),
                target_name    TEXT NOT NULL,
                migration_file TEXT NOT NULL,
                action         TEXT NOT NULL CHECK (action IN ('accept-checksum', 'baseline')),
                old_checksum   TEXT,
                new_checksum   TEXT NOT NULL,
                reason         TEXT,
                who            TEXT NOT NULL,
                at             TEXT NOT NULL
            )""",
            """CREATE INDEX idx_migration_audit_file
                ON migration_audit (project_id, target_name, migration_file)""",
        ),
    )
)

# v5 (saved plans): each plan id is applied once per project and target. The unique key is
# what makes two concurrent applies of one plan impossible: only one insert succeeds.
SQLITE_STEPS.append(
    SchemaStep(
        5,
        "saved plans already applied (used_plans)",
        (
            """CREATE TABLE used_plans (
                plan_id       TEXT NOT NULL,
                project_id    INTEGER NOT NULL REFERENCES projects(id),
                target_name   TEXT NOT NULL,
                who           TEXT NOT NULL,
                used_at       TEXT NOT NULL,
                deployment_id INTEGER,
                PRIMARY KEY (plan_id, project_id, target_name)
            )""",
        ),
    )
)

# v6 (issue 12): when each step began, for the history page's Gantt chart. Nullable: rows
# recorded before keep NULL and the page lays them out from their order and durations.
SQLITE_STEPS.append(
    SchemaStep(
        6,
        "deployment_steps.started_at",
        ("ALTER TABLE deployment_steps ADD COLUMN started_at TEXT",),
    )
)

# v7 (issue 20, item 9): the process groups of the holder's running step commands, as JSON
# [[pgid, leader start time], ...], so that a run taking over a dead holder's lock ends
# them before it runs anything (deploy_plugin.store.lock.end_dead_holders_groups).
SQLITE_STEPS.append(
    SchemaStep(
        7,
        "deploy_locks.step_groups",
        ("ALTER TABLE deploy_locks ADD COLUMN step_groups TEXT NOT NULL DEFAULT '[]'",),
    )
)

# v9 (issue 20): the audit also keeps `migration mark-applied` (which now writes the target's
# ledger too) and the files a run applied again because the database lacked them
# (--deploy-reapply-missing). SQLite cannot alter a CHECK: the table is rebuilt.
_AUDIT_ACTIONS = "'accept-checksum', 'baseline', 'mark-applied', 'reapply'"
SQLITE_STEPS.append(
    SchemaStep(
        9,
        "audit actions mark-applied and reapply",
        (
            f"""CREATE TABLE migration_audit_v9 (
                id             INTEGER PRIMARY KEY,
                project_id     INTEGER NOT NULL REFERENCES projects(id),
                target_name    TEXT NOT NULL,
                migration_file TEXT NOT NULL,
                action         TEXT NOT NULL CHECK (action IN ({_AUDIT_ACTIONS})),
                old_checksum   TEXT,
                new_checksum   TEXT NOT NULL,
                reason         TEXT,
                who            TEXT NOT NULL,
                at             TEXT NOT NULL
            )""",
            "INSERT INTO migration_audit_v9 SELECT * FROM migration_audit",
            "DROP TABLE migration_audit",
            "ALTER TABLE migration_audit_v9 RENAME TO migration_audit",
            """CREATE INDEX idx_migration_audit_file
                ON migration_audit (project_id, target_name, migration_file)""",
        ),
    )
)

# v8 (issue 20 §6, §7): a project is bound to the ``project_id`` of the config that first
# deployed it (``identity``; NULL for rows from before, bound on their next deploy), and has
# the secret that keys its saved plans' MACs (``plan_key``, hex, drawn on first use). Binds,
# adoptions and renames are audited in ``project_audit``. Touches only v1's ``projects``: it
# needs no other step before it.
SQLITE_STEPS.append(
    SchemaStep(
        8,
        "project identity, saved-plan key, project audit",
        (
            "ALTER TABLE projects ADD COLUMN identity TEXT",
            "ALTER TABLE projects ADD COLUMN identity_bound_at TEXT",
            "ALTER TABLE projects ADD COLUMN identity_bound_by TEXT",
            "ALTER TABLE projects ADD COLUMN plan_key TEXT",
            """CREATE TABLE project_audit (
                id         INTEGER PRIMARY KEY,
                project_id INTEGER NOT NULL REFERENCES projects(id),
                action     TEXT NOT NULL CHECK (action IN ('bind', 'adopt', 'rename')),
                old_value  TEXT,
                new_value  TEXT NOT NULL,
                reason     TEXT,
                who        TEXT NOT NULL,
                at         TEXT NOT NULL
            )""",
        ),
    )
)

# v10 (issue 23 #3): every apply of a repeatable migration (R__name.sql), one row each, with
# the checksum it applied. migration_history keeps one row per file (the last apply), so
# `migration history` reads the earlier checksums here.
SQLITE_STEPS.append(
    SchemaStep(
        10,
        "every apply of a repeatable migration (repeatable_applies)",
        (
            f"""CREATE TABLE repeatable_applies (
                id                INTEGER PRIMARY KEY,
                project_id        INTEGER NOT NULL REFERENCES projects(id),
                target_name       TEXT NOT NULL,
                migration_file    TEXT NOT NULL,
                checksum          TEXT NOT NULL,
                applied_at        TEXT NOT NULL DEFAULT {_SQLITE_NOW},
                applied_by        TEXT,
                execution_time_ms INTEGER
            )""",
            """CREATE INDEX idx_repeatable_applies_target
                ON repeatable_applies (project_id, target_name)""",
        ),
    )
)
