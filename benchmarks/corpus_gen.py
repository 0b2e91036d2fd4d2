"""A deterministic corpus of realistic PostgreSQL migrations, for ``corpus.py``.

``generate(n, seed)`` returns ``n`` (file name, SQL text) pairs that read like a product's
history: enums and their new values, tables with foreign keys, defaults, checks, identity
and generated columns, plain/partial/expression/GIN indexes, views and materialized views,
plpgsql functions whose ``$$`` bodies hold semicolons, triggers, DO blocks, data loaded
with ``INSERT ... SELECT generate_series`` and backfilled with ``UPDATE``, columns added,
renamed and dropped, comments, and a few files of several dozen statements. The same
``(n, seed)`` always gives the same files; every file applies in its own transaction.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

NOUNS = (
    "account customer product order invoice payment shipment warehouse supplier coupon "
    "subscription plan ticket project task comment tag review category refund device "
    "session address region campaign"
).split()
LABELS = (
    "draft pending active paused archived cancelled failed settled queued blocked "
    "approved rejected expired shipped returned"
).split()

PLURAL = {"address": "addresses", "category": "categories", "region": "regions"}


def singular(table: str) -> str:
    """``categories_2`` -> ``category_2``: the name of a column pointing at that table."""
    base, _, k = table.partition("_")
    for one, many in PLURAL.items():
        if base == many:
            base = one
            break
    else:
        base = base.removesuffix("s")
    return f"{base}_{k}" if k else base


@dataclass
class Table:
    name: str
    columns: dict[str, str]  # name -> type, in creation order
    parent: Table | None = None  # the table its FK column points at
    fk: str | None = None
    enum: str | None = None  # the enum type of its ``status`` column
    rows: int = 0
    pinned: set[str] = field(default_factory=set)  # used by a view/index/function: keep
    added: list[str] = field(default_factory=list)  # added later, free to rename/drop
    has_trigger: bool = False


class Corpus:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.tables: list[Table] = []
        self.enums: dict[str, list[str]] = {}
        self.views: list[str] = []
        self.matviews: list[str] = []
        self.functions: list[str] = []
        self.names: set[str] = set()

    # ------------------------------------------------------------------ helpers
    def fresh(self, base: str) -> str:
        name, k = base, 2
        while name in self.names:
            name, k = f"{base}_{k}", k + 1
        self.names.add(name)
        return name

    def pick(self, pred: Callable[[Table], bool] = lambda t: True) -> Table | None:
        found = [t for t in self.tables if pred(t)]
        return self.rng.choice(found) if found else None

    # ------------------------------------------------------------------ kinds
    def enum(self) -> tuple[str, str]:
        name = self.fresh(f"{self.rng.choice(NOUNS)}_status")
        labels = self.rng.sample(LABELS, self.rng.randint(3, 5))
        self.enums[name] = labels
        body = ", ".join(f"'{x}'" for x in labels)
        return f"create_{name}", f"CREATE TYPE {name} AS ENUM ({body});\n"

    def enum_value(self) -> tuple[str, str] | None:
        choices = [(e, [x for x in LABELS if x not in ls]) for e, ls in self.enums.items()]
        choices = [(e, free) for e, free in choices if free]
        if not choices:
            return None
        name, free = self.rng.choice(choices)
        label = self.rng.choice(free)
        where = self.rng.choice(["", f" BEFORE '{self.enums[name][0]}'"])
        self.enums[name].insert(0, label) if where else self.enums[name].append(label)
        sql = f"ALTER TYPE {name} ADD VALUE IF NOT EXISTS '{label}'{where};\n"
        return f"{name}_add_{label}", sql

    def table_sql(self, noun: str) -> tuple[Table, list[str]]:
        rng = self.rng
        t = Table(self.fresh(PLURAL.get(noun, noun + "s")), {})
        cols = ["    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY"]
        t.columns["id"] = "bigint"
        cols.append("    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200)")
        t.columns["name"] = "text"
        if rng.random() < 0.5:
            cols.append("    public_id uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE")
            t.columns["public_id"] = "uuid"
        parent = self.pick() if self.tables and rng.random() < 0.75 else None
        if parent:
            t.parent, t.fk = parent, f"{singular(parent.name)}_id"
            action = rng.choice(["ON DELETE CASCADE", "ON DELETE SET NULL", "ON DELETE RESTRICT"])
            cols.append(f"    {t.fk} bigint REFERENCES {parent.name} (id) {action}")
            t.columns[t.fk] = "bigint"
        if self.enums and rng.random() < 0.6:
            t.enum = rng.choice(sorted(self.enums))
            first = self.enums[t.enum][-1]
            cols.append(f"    status {t.enum} NOT NULL DEFAULT '{first}'")
            t.columns["status"] = t.enum
        cols.append("    amount_cents integer NOT NULL DEFAULT 0 CHECK (amount_cents >= 0)")
        cols.append("    quantity integer NOT NULL DEFAULT 1")
        t.columns.update(amount_cents="integer", quantity="integer")
        if rng.random() < 0.5:
            cols.append(
                "    total_cents bigint GENERATED ALWAYS AS (amount_cents::bigint * quantity)"
                " STORED"
            )
            t.columns["total_cents"] = "bigint"
            t.pinned |= {"amount_cents", "quantity"}
        cols.append("    attrs jsonb NOT NULL DEFAULT '{}'::jsonb")
        cols.append("    created_at timestamptz NOT NULL DEFAULT now()")
        cols.append("    updated_at timestamptz NOT NULL DEFAULT now()")
        t.columns.update(attrs="jsonb", created_at="timestamptz", updated_at="timestamptz")
        cols.append(f"    CONSTRAINT {t.name}_quantity_positive CHECK (quantity > 0)")
        stmts = [f"CREATE TABLE {t.name} (\n" + ",\n".join(cols) + "\n);"]
        if t.fk:
            stmts.append(f"CREATE INDEX {t.name}_{t.fk}_idx ON {t.name} ({t.fk});")
            t.pinned.add(t.fk)
        stmts.append(f"COMMENT ON TABLE {t.name} IS 'The {noun}s of the product ({t.name}).';")
        self.tables.append(t)
        return t, stmts

    def table(self) -> tuple[str, str]:
        noun = self.rng.choice(NOUNS)
        t, stmts = self.table_sql(noun)
        if self.rng.random() < 0.4:
            stmts.append(f"CREATE INDEX {t.name}_created_at_idx ON {t.name} (created_at DESC);")
        return f"create_{t.name}", "\n".join(stmts) + "\n"

    def module(self) -> tuple[str, str]:
        """A big file: several tables with their indexes, comments on every column, seeds."""
        noun = self.rng.choice(NOUNS)
        stmts: list[str] = []
        made = []
        for _ in range(self.rng.randint(3, 5)):
            t, s = self.table_sql(self.rng.choice(NOUNS))
            stmts += s
            made.append(t)
        for t in made:
            for col in t.columns:
                stmts.append(f"COMMENT ON COLUMN {t.name}.{col} IS '{col} of {t.name}';")
            stmts += self.seed_rows(t, self.rng.randint(8, 20))
        return f"{noun}_module", "\n".join(stmts) + "\n"

    def seed_rows(self, t: Table, n: int) -> list[str]:
        out = []
        for i in range(n):
            cols, vals = ["name", "amount_cents"], [f"'{t.name} seed {i}'", str(i * 100)]
            if t.fk and t.parent and t.parent.rows:
                cols.append(t.fk)
                vals.append(str(1 + i % t.parent.rows))
            out.append(f"INSERT INTO {t.name} ({', '.join(cols)}) VALUES ({', '.join(vals)});")
        t.rows += n
        return out

    def load(self) -> tuple[str, str] | None:
        t = self.pick()
        if t is None:
            return None
        n = self.rng.choice([200, 500, 1000, 2000, 5000, 10000, 20000])
        cols = ["name", "amount_cents", "quantity", "attrs", "created_at"]
        vals = [
            f"'{t.name} ' || g",
            "(g * 37) % 100000",
            "1 + g % 5",
            "jsonb_build_object('kind', g % 7, 'tags', jsonb_build_array('t' || g % 3))",
            "timestamptz '2024-01-01' + (g % 365) * interval '1 day'",
        ]
        if t.fk and t.parent and t.parent.rows:
            cols.append(t.fk)
            vals.append(f"1 + g % {t.parent.rows}")
        if t.enum:
            labels = ", ".join(f"'{x}'" for x in self.enums[t.enum][:3])
            cols.append("status")
            vals.append(f"(ARRAY[{labels}]::{t.enum}[])[1 + g % 3]")
        t.rows += n
        sql = (
            f"INSERT INTO {t.name} ({', '.join(cols)})\n"
            f"SELECT {', '.join(vals)}\nFROM generate_series(1, {n}) AS g;\n"
        )
        if self.rng.random() < 0.5:
            sql += f"ANALYZE {t.name};\n"
        return f"load_{t.name}", sql

    def add_column(self) -> tuple[str, str] | None:
        t = self.pick()
        if t is None:
            return None
        col = self.fresh(self.rng.choice(["note", "code", "external_ref", "priority", "label"]))
        typ = {"priority": "smallint"}.get(col.split("_")[0], "text")
        t.columns[col] = typ
        t.added.append(col)
        stmts = [f"ALTER TABLE {t.name} ADD COLUMN {col} {typ};"]
        if t.rows:
            expr = "(id % 10)::smallint" if typ == "smallint" else "lower(name) || '-' || id"
            stmts.append(f"UPDATE {t.name} SET {col} = {expr} WHERE {col} IS NULL;")
            if self.rng.random() < 0.5:
                stmts.append(f"ALTER TABLE {t.name} ALTER COLUMN {col} SET NOT NULL;")
        if self.rng.random() < 0.3:
            stmts.append(f"COMMENT ON COLUMN {t.name}.{col} IS 'Backfilled on creation.';")
        return f"{t.name}_add_{col}", "\n".join(stmts) + "\n"

    def rename_or_drop(self) -> tuple[str, str] | None:
        t = self.pick(lambda t: any(c not in t.pinned for c in t.added))
        if t is None:
            return None
        col = self.rng.choice([c for c in t.added if c not in t.pinned])
        t.added.remove(col)
        if self.rng.random() < 0.5:
            new = self.fresh(col + "_old")
            t.columns[new] = t.columns.pop(col)
            t.added.append(new)
            return f"{t.name}_rename_{col}", (
                f"ALTER TABLE {t.name} RENAME COLUMN {col} TO {new};\n"
            )
        del t.columns[col]
        return f"{t.name}_drop_{col}", f"ALTER TABLE {t.name} DROP COLUMN IF EXISTS {col};\n"

    def index(self) -> tuple[str, str] | None:
        t = self.pick()
        if t is None:
            return None
        kind = self.rng.choice(["partial", "expression", "gin", "multi"])
        name = self.fresh(f"{t.name}_{kind}_idx")
        if kind == "partial" and t.enum:
            label = self.enums[t.enum][0]
            sql = f"CREATE INDEX {name} ON {t.name} (created_at) WHERE status = '{label}';"
            t.pinned.add("status")
        elif kind == "partial":
            sql = f"CREATE INDEX {name} ON {t.name} (amount_cents) WHERE amount_cents > 1000;"
        elif kind == "expression":
            sql = f"CREATE UNIQUE INDEX {name} ON {t.name} (lower(name), id);"
        elif kind == "gin":
            sql = f"CREATE INDEX {name} ON {t.name} USING gin (attrs jsonb_path_ops);"
        else:
            sql = f"CREATE INDEX {name} ON {t.name} (quantity, amount_cents DESC) INCLUDE (name);"
        return f"index_{name}", sql + "\n"

    def view(self) -> tuple[str, str] | None:
        t = self.pick(lambda t: t.parent is not None)
        if t is None or t.parent is None:
            return None
        p = t.parent
        name = self.fresh(f"{p.name}_{t.name}_summary")
        self.views.append(name)
        t.pinned |= {"amount_cents", "created_at"}
        return f"view_{name}", (
            f"CREATE OR REPLACE VIEW {name} AS\n"
            f"SELECT p.id, p.name, count(c.id) AS {t.name}_count,\n"
            f"       coalesce(sum(c.amount_cents), 0) AS amount_cents,\n"
            f"       max(c.created_at) AS last_at\n"
            f"FROM {p.name} AS p\nLEFT JOIN {t.name} AS c ON c.{t.fk} = p.id\n"
            f"GROUP BY p.id, p.name;\n"
            f"COMMENT ON VIEW {name} IS 'One row per {singular(p.name)}.';\n"
        )

    def matview(self) -> tuple[str, str] | None:
        t = self.pick(lambda t: t.rows > 0)
        if t is None:
            return None
        name = self.fresh(f"{t.name}_daily")
        self.matviews.append(name)
        t.pinned |= {"created_at", "amount_cents"}
        return f"matview_{name}", (
            f"CREATE MATERIALIZED VIEW {name} AS\n"
            f"SELECT date_trunc('day', created_at) AS day, count(*) AS n,\n"
            f"       sum(amount_cents) AS amount_cents\n"
            f"FROM {t.name}\nGROUP BY 1\nWITH DATA;\n"
            f"CREATE UNIQUE INDEX {name}_day_idx ON {name} (day);\n"
        )

    def refresh(self) -> tuple[str, str] | None:
        if not self.matviews:
            return None
        name = self.rng.choice(self.matviews)
        return f"refresh_{name}", f"REFRESH MATERIALIZED VIEW {name};\n"

    def function(self) -> tuple[str, str] | None:
        t = self.pick(lambda t: t.parent is not None)
        if t is None or t.parent is None:
            return None
        name = self.fresh(f"{singular(t.parent.name)}_{t.name}_total")
        self.functions.append(name)
        tag = self.rng.choice(["$$", "$fn$", "$body$"])
        sql = (
            f"CREATE OR REPLACE FUNCTION {name}(p_id bigint, p_min integer DEFAULT 0)\n"
            f"RETURNS bigint\nLANGUAGE plpgsql STABLE AS {tag}\n"
            f"DECLARE\n    v_total bigint := 0;\n    v_count integer;\nBEGIN\n"
            f"    SELECT coalesce(sum(amount_cents), 0), count(*) INTO v_total, v_count\n"
            f"    FROM {t.name} WHERE {t.fk} = p_id AND amount_cents >= p_min;\n"
            f"    IF v_count = 0 THEN\n        RETURN 0; -- nothing yet; keep going\n    END IF;\n"
            f"    IF v_total < 0 THEN\n"
            f"        RAISE EXCEPTION 'negative total % for %; check {t.name}', v_total, p_id;\n"
            f"    END IF;\n    RETURN v_total;\nEND;\n{tag};\n"
            f"COMMENT ON FUNCTION {name}(bigint, integer) IS 'Sum of {t.name} amounts.';\n"
        )
        t.pinned |= {"amount_cents"}
        if self.rng.random() < 0.4:
            helper = self.fresh(f"{t.name}_label")
            sql += (
                f"CREATE OR REPLACE FUNCTION {helper}(p_name text, p_id bigint)\n"
                f"RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$\n"
                f"    SELECT upper(left(p_name, 1)) || substr(p_name, 2) || ' #' || p_id;\n$$;\n"
            )
        return f"function_{name}", sql

    def trigger(self) -> tuple[str, str] | None:
        t = self.pick(lambda t: not t.has_trigger)
        if t is None:
            return None
        t.has_trigger = True
        if self.rng.random() < 0.6:
            fn = self.fresh(f"{t.name}_touch")
            return f"trigger_{t.name}_touch", (
                f"CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger\nLANGUAGE plpgsql AS $$\n"
                f"BEGIN\n    NEW.updated_at := now();\n"
                f"    IF NEW.amount_cents < 0 THEN\n        NEW.amount_cents := 0;\n    END IF;\n"
                f"    RETURN NEW;\nEND;\n$$;\n"
                f"CREATE TRIGGER {t.name}_touch BEFORE UPDATE ON {t.name}\n"
                f"    FOR EACH ROW EXECUTE FUNCTION {fn}();\n"
            )
        log = self.fresh(f"{t.name}_audit")
        fn = self.fresh(f"{t.name}_audit_fn")
        return f"trigger_{t.name}_audit", (
            f"CREATE TABLE {log} (\n    id bigserial PRIMARY KEY,\n    op text NOT NULL,\n"
            f"    row_count integer NOT NULL,\n    at timestamptz NOT NULL DEFAULT now()\n);\n"
            f"CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger\nLANGUAGE plpgsql AS $audit$\n"
            f"DECLARE\n    n integer;\nBEGIN\n    SELECT count(*) INTO n FROM new_rows;\n"
            f"    INSERT INTO {log} (op, row_count) VALUES (TG_OP, n);\n    RETURN NULL;\nEND;\n"
            f"$audit$;\n"
            f"CREATE TRIGGER {t.name}_audit AFTER INSERT ON {t.name}\n"
            f"    REFERENCING NEW TABLE AS new_rows\n"
            f"    FOR EACH STATEMENT EXECUTE FUNCTION {fn}();\n"
        )

    def do_block(self) -> tuple[str, str] | None:
        t = self.pick(lambda t: t.rows > 0)
        if t is None:
            return None
        if self.rng.random() < 0.5:
            idx = self.fresh(f"{t.name}_name_idx")
            return f"do_{idx}", (
                f"DO $$\nBEGIN\n"
                f"    IF NOT EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = '{idx}') THEN\n"
                f"        EXECUTE 'CREATE INDEX {idx} ON {t.name} (name)';\n    END IF;\nEND\n$$;\n"
            )
        step = self.rng.choice([7, 13, 50])
        return f"do_{t.name}_flag", (
            f"DO $$\nDECLARE\n    r record;\n    done integer := 0;\nBEGIN\n"
            f"    FOR r IN SELECT id FROM {t.name} WHERE id % {step} = 0 ORDER BY id LIMIT 500"
            f" LOOP\n"
            f"        UPDATE {t.name} SET attrs = attrs || '{{\"flagged\": true}}'"
            f" WHERE id = r.id;\n"
            f"        done := done + 1;\n    END LOOP;\n"
            f"    RAISE NOTICE 'flagged % rows of {t.name}', done;\nEND\n$$;\n"
        )

    def backfill(self) -> tuple[str, str] | None:
        t = self.pick(lambda t: t.rows > 0)
        if t is None:
            return None
        kind = self.rng.choice(["jsonb", "amount", "status"])
        if kind == "status" and t.enum:
            a, b = self.enums[t.enum][0], self.enums[t.enum][-1]
            sql = f"UPDATE {t.name} SET status = '{a}' WHERE status = '{b}' AND id % 4 = 0;"
        elif kind == "amount":
            sql = f"UPDATE {t.name} SET amount_cents = amount_cents + 100 WHERE quantity > 3;"
        else:
            sql = (
                f"UPDATE {t.name}\nSET attrs = attrs || jsonb_build_object('migrated', true, "
                f"'bucket', id % 16)\nWHERE NOT attrs ? 'migrated';"
            )
        return f"backfill_{t.name}_{kind}", sql + "\n"

    def constraint(self) -> tuple[str, str] | None:
        t = self.pick()
        if t is None:
            return None
        name = self.fresh(f"{t.name}_amount_cap")
        return f"constraint_{name}", (
            f"ALTER TABLE {t.name} ADD CONSTRAINT {name} "
            f"CHECK (amount_cents < 100000000) NOT VALID;\n"
            f"ALTER TABLE {t.name} VALIDATE CONSTRAINT {name};\n"
        )


KINDS = [  # (kind, weight)
    ("table", 16), ("load", 14), ("add_column", 12), ("index", 12), ("backfill", 9),
    ("function", 7), ("trigger", 6), ("do_block", 6), ("view", 5), ("rename_or_drop", 6),
    ("enum", 3), ("enum_value", 4), ("constraint", 3), ("module", 2), ("matview", 1),
    ("refresh", 2),
]  # fmt: skip


def generate(n: int, seed: int = 14) -> list[tuple[str, str]]:
    """``n`` migration files, ``NNNN_slug.sql`` and their SQL, the same for the same seed."""
    c = Corpus(seed)
    first = [c.enum, c.table, c.table, c.module]
    kinds, weights = zip(*KINDS, strict=True)
    files: list[tuple[str, str]] = []
    while len(files) < n:
        if len(files) < len(first):
            make = first[len(files)]
        else:
            make = getattr(c, c.rng.choices(kinds, weights)[0])
        made = make()
        if made is None:
            continue
        slug, sql = made
        files.append((f"{len(files) + 1:04d}_{slug}.sql", f"-- {slug.replace('_', ' ')}\n{sql}"))
    return files
