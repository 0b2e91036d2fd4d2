"""Versioned schema of the store, one list of steps per database kind.

Each store creates and upgrades its own schema when it is opened: it reads the highest
``schema_version.version`` and applies, in one exclusive transaction, every step above
it. Steps are never destructive (no DROP, no column removal) so an older pytest-deploy
can keep reading a store that a newer one upgraded, and history is never lost.

To change the schema, append a step to *both* lists with the next version number; never
edit a released step.

The ``{s}`` token in shared SQL (see ``base.py``) is the table prefix: empty for SQLite,
``deploy.`` for PostgreSQL, whose tables live in the schema ``deploy``.
"""

from __future__ import annotations

from dataclasses import dataclass

#: PostgreSQL schema holding the store's tables.
PG_SCHEMA = "deploy"


@dataclass(frozen=True)
class SchemaStep:
    """One upgrade of the store schema: applied once, in order, inside the upgrade transaction."""

    version: int
    description: str
    statements: tuple[str, ...]


SQLITE_BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at  TEXT NOT NULL
)"""

POSTGRES_BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS deploy.schema_version (
    version     integer PRIMARY KEY,
    description text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
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

POSTGRES_STEPS: list[SchemaStep] = [
    SchemaStep(
        1,
        "projects, targets, env vars, migration history, deployments, steps, locks",
        (
            "CREATE TABLE deploy.store_meta (key text PRIMARY KEY, value text NOT NULL)",
            """CREATE TABLE deploy.projects (
                id         bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                name       text NOT NULL UNIQUE,
                created_at timestamptz NOT NULL DEFAULT now()
            )""",
            """CREATE TABLE deploy.deployment_targets (
                id               bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                project_id       bigint NOT NULL REFERENCES deploy.projects(id),
                name             text NOT NULL,
                type             text,
                provider         text,
                host             text,
                region           text,
                protected        boolean NOT NULL DEFAULT false,
                health_check_url text,
                created_at       timestamptz NOT NULL DEFAULT now(),
                updated_at       timestamptz NOT NULL DEFAULT now(),
                UNIQUE (project_id, name)
            )""",
            """CREATE TABLE deploy.env_vars (
                id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                project_id  bigint NOT NULL REFERENCES deploy.projects(id),
                target_name text NOT NULL,
                name        text NOT NULL,
                value       text NOT NULL,
                updated_at  timestamptz NOT NULL DEFAULT now(),
                UNIQUE (project_id, target_name, name)
            )""",
            """CREATE TABLE deploy.migration_history (
                id                 bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                project_id         bigint NOT NULL REFERENCES deploy.projects(id),
                target_name        text NOT NULL,
                migration_file     text NOT NULL,
                migration_checksum text NOT NULL,
                applied_at         timestamptz NOT NULL DEFAULT now(),
                applied_by         text,
                execution_time_ms  integer,
                status             text NOT NULL DEFAULT 'success'
                                   CHECK (status IN ('success', 'failed', 'rolled_back')),
                error_message      text,
                UNIQUE (project_id, target_name, migration_file)
            )""",
            """CREATE INDEX idx_migration_history_project_target
                ON deploy.migration_history (project_id, target_name)""",
            "CREATE INDEX idx_migration_history_status ON deploy.migration_history (status)",
            """CREATE TABLE deploy.deployments (
                id              bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                project_id      bigint NOT NULL REFERENCES deploy.projects(id),
                target_name     text NOT NULL,
                who             text NOT NULL,
                started_at      timestamptz NOT NULL DEFAULT now(),
                ended_at        timestamptz,
                status          text NOT NULL DEFAULT 'running',
                dry_run         boolean NOT NULL DEFAULT false,
                config_snapshot text NOT NULL,
                config_sha256   text NOT NULL
            )""",
            """CREATE INDEX idx_deployments_project_target
                ON deploy.deployments (project_id, target_name, started_at)""",
            """CREATE TABLE deploy.deployment_steps (
                id            bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                deployment_id bigint NOT NULL REFERENCES deploy.deployments(id),
                node_id       text NOT NULL,
                group_name    text,
                kind          text NOT NULL,
                file          text,
                checksum      text,
                command       text,
                outcome       text NOT NULL,
                duration_ms   integer NOT NULL,
                message       text,
                recorded_at   timestamptz NOT NULL DEFAULT now()
            )""",
            """CREATE INDEX idx_deployment_steps_deployment
                ON deploy.deployment_steps (deployment_id)""",
            # Names the holder of the advisory lock; the advisory lock itself is the truth.
            # backend_pid tells a current row from one left by a killed runner.
            """CREATE TABLE deploy.deploy_locks (
                project_id  bigint NOT NULL REFERENCES deploy.projects(id),
                target_name text NOT NULL,
                holder      text NOT NULL,
                host        text NOT NULL,
                pid         integer NOT NULL,
                started_at  timestamptz NOT NULL,
                backend_pid integer NOT NULL,
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

POSTGRES_STEPS.append(
    SchemaStep(
        2,
        "deployments name their process (host, pid); intents of shell-applied migrations",
        (
            "ALTER TABLE deploy.deployments ADD COLUMN host text",
            "ALTER TABLE deploy.deployments ADD COLUMN pid integer",
            """CREATE TABLE deploy.migration_intents (
                project_id     bigint NOT NULL REFERENCES deploy.projects(id),
                target_name    text NOT NULL,
                migration_file text NOT NULL,
                checksum       text NOT NULL,
                deployment_id  bigint,
                who            text NOT NULL,
                host           text NOT NULL,
                pid            integer NOT NULL,
                started_at     timestamptz NOT NULL,
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

POSTGRES_STEPS.append(
    SchemaStep(
        3,
        "deployments say what they were (kind); schema fingerprints for drift warnings",
        (
            "ALTER TABLE deploy.deployments ADD COLUMN kind text NOT NULL DEFAULT 'deploy'",
            """CREATE TABLE deploy.schema_fingerprints (
                project_id    bigint NOT NULL REFERENCES deploy.projects(id),
                target_name   text NOT NULL,
                group_name    text NOT NULL,
                digest        text NOT NULL,
                objects       text NOT NULL,
                deployment_id bigint,
                recorded_at   timestamptz NOT NULL,
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

POSTGRES_STEPS.append(
    SchemaStep(
        4,
        "audit of history changes made by hand: accepted checksums, baselines",
        (
            """CREATE TABLE deploy.migration_audit (
                id             bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                project_id     bigint NOT NULL REFERENCES deploy.projects(id),
                target_name    text NOT NULL,
                migration_file text NOT NULL,
                action         text NOT NULL CHECK (action IN ('accept-checksum', 'baseline')),
                old_checksum   text,
                new_checksum   text NOT NULL,
                reason         text,
                who            text NOT NULL,
                at             timestamptz NOT NULL
            )""",
            """CREATE INDEX idx_migration_audit_file
                ON deploy.migration_audit (project_id, target_name, migration_file)""",
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

POSTGRES_STEPS.append(
    SchemaStep(
        5,
        "saved plans already applied (used_plans)",
        (
            """CREATE TABLE deploy.used_plans (
                plan_id       text NOT NULL,
                project_id    bigint NOT NULL REFERENCES deploy.projects(id),
                target_name   text NOT NULL,
                who           text NOT NULL,
                used_at       timestamptz NOT NULL,
                deployment_id bigint,
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
POSTGRES_STEPS.append(
    SchemaStep(
        6,
        "deployment_steps.started_at",
        ("ALTER TABLE deploy.deployment_steps ADD COLUMN started_at timestamptz",),
    )
)

# v7 (issue 20, item 9): the process groups of the holder's running step commands, as JSON
# [[pgid, leader start time], ...], so that a run taking over a dead holder's lock ends
# them before it runs anything (deploy_plugin.engine.procgroups).
SQLITE_STEPS.append(
    SchemaStep(
        7,
        "deploy_locks.step_groups",
        ("ALTER TABLE deploy_locks ADD COLUMN step_groups TEXT NOT NULL DEFAULT '[]'",),
    )
)
POSTGRES_STEPS.append(
    SchemaStep(
        7,
        "deploy_locks.step_groups",
        ("ALTER TABLE deploy.deploy_locks ADD COLUMN step_groups text NOT NULL DEFAULT '[]'",),
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
POSTGRES_STEPS.append(
    SchemaStep(
        9,
        "audit actions mark-applied and reapply",
        (
            "ALTER TABLE deploy.migration_audit DROP CONSTRAINT migration_audit_action_check",
            "ALTER TABLE deploy.migration_audit ADD CONSTRAINT migration_audit_action_check"
            f" CHECK (action IN ({_AUDIT_ACTIONS}))",
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
POSTGRES_STEPS.append(
    SchemaStep(
        8,
        "project identity, saved-plan key, project audit",
        (
            "ALTER TABLE deploy.projects ADD COLUMN identity text",
            "ALTER TABLE deploy.projects ADD COLUMN identity_bound_at timestamptz",
            "ALTER TABLE deploy.projects ADD COLUMN identity_bound_by text",
            "ALTER TABLE deploy.projects ADD COLUMN plan_key text",
            """CREATE TABLE deploy.project_audit (
                id         bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                project_id bigint NOT NULL REFERENCES deploy.projects(id),
                action     text NOT NULL CHECK (action IN ('bind', 'adopt', 'rename')),
                old_value  text,
                new_value  text NOT NULL,
                reason     text,
                who        text NOT NULL,
                at         timestamptz NOT NULL
            )""",
        ),
    )
)


def steps_for(kind: str) -> list[SchemaStep]:
    """The schema steps of one store kind (``sqlite`` or ``postgresql``), in version order.

    Looked up at call time (not bound at import) so tests can append a step.
    """
    steps = SQLITE_STEPS if kind == "sqlite" else POSTGRES_STEPS
    return sorted(steps, key=lambda step: step.version)


def current_version(kind: str) -> int:
    """The schema version this pytest-deploy writes for one store kind."""
    steps = steps_for(kind)
    return steps[-1].version if steps else 0
