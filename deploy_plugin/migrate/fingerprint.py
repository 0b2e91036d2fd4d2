"""Schema fingerprint: what a database's schema is, read from its catalogs, and a diff that
names what differs ("column post.id moved from position 1 to 8", "function
hot_rank(numeric, timestamp with time zone) left behind").

Read from the catalogs, not from ``pg_dump`` (whose version must match the server's). On
PostgreSQL: schemas, tables, columns (position among the live columns, type, default,
nullability), constraints, indexes, views, functions (argument types, result, language,
body), types (enum labels in order, domains, composites), sequences, triggers and
extensions; the store's ``deploy`` schema and the ledger's ``pytest_deploy`` schema are
left out, as are objects that belong to an extension. On SQLite: ``sqlite_master`` and
``pragma table_info`` (the ledger table left out).

A fingerprint maps ``kind`` → object name → its attributes (all strings), so two compare
with ``==`` and :func:`diff` explains the difference.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

#: Schemas that are never part of the application's schema.
EXCLUDED_SCHEMAS = ("pg_catalog", "information_schema", "deploy", "pytest_deploy")
_SQLITE_EXCLUDED = ("pytest_deploy_applied",)

#: The order kinds are reported in.
KINDS = (
    "extension", "schema", "type", "sequence", "table", "column", "constraint", "index",
    "view", "function", "trigger",
)  # fmt: skip

Objects = dict[str, dict[str, dict[str, str]]]


@dataclass(frozen=True)
class Fingerprint:
    """The schema of one database, as ``kind`` → name → attributes."""

    objects: Objects

    def digest(self) -> str:
        """SHA-256 of the fingerprint (equal schemas, equal digests)."""
        text = json.dumps(self.objects, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def count(self) -> int:
        return sum(len(v) for v in self.objects.values())


def _name(schema: str, name: str) -> str:
    return name if schema == "public" else f"{schema}.{name}"


_NOT_OURS = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema', 'deploy', 'pytest_deploy')"
    " AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'"
)
_NOT_EXT = (
    "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = {oid} AND d.classid = {cls}"
    "::regclass AND d.deptype = 'e')"
)

_PG_QUERIES: dict[str, str] = {
    "extension": "SELECT extname, 'public', json_build_object('version', extversion)::text"
    " FROM pg_extension",
    "schema": f"SELECT n.nspname, 'public', '{{}}' FROM pg_namespace n WHERE {_NOT_OURS}",
    "type": f"""SELECT t.typname, n.nspname, json_build_object(
            'kind', t.typtype::text,
            'labels', (SELECT string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder)
                       FROM pg_enum e WHERE e.enumtypid = t.oid),
            'base', CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END,
            'fields', (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid,
                       a.atttypmod), ', ' ORDER BY a.attnum) FROM pg_attribute a
                       WHERE t.typtype = 'c' AND a.attrelid = t.typrelid AND a.attnum > 0
                       AND NOT a.attisdropped))::text
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE {_NOT_OURS} AND (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND
            (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
        AND {_NOT_EXT.format(oid="t.oid", cls="'pg_type'")}""",
    "sequence": f"""SELECT c.relname, n.nspname, json_build_object('type',
            format_type(s.seqtypid, NULL), 'start', s.seqstart::text, 'increment',
            s.seqincrement::text, 'min', s.seqmin::text, 'max', s.seqmax::text,
            'cycle', s.seqcycle::text)::text
        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_NOT_OURS} AND {_NOT_EXT.format(oid="c.oid", cls="'pg_class'")}""",
    "table": f"""SELECT c.relname, n.nspname, json_build_object('kind', c.relkind::text,
            'partitioned by', pg_get_partkeydef(c.oid))::text
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'f') AND {_NOT_OURS}
        AND {_NOT_EXT.format(oid="c.oid", cls="'pg_class'")}""",
    "column": f"""SELECT c.relname || '.' || a.attname, n.nspname, json_build_object(
            'position', (row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum))::text,
            'type', format_type(a.atttypid, a.atttypmod),
            'default', pg_get_expr(d.adbin, d.adrelid),
            'nullable', (NOT a.attnotnull)::text,
            'generated', nullif(a.attgenerated::text, ''),
            'identity', nullif(a.attidentity::text, ''))::text
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'f', 'v', 'm')
        AND {_NOT_OURS} AND {_NOT_EXT.format(oid="c.oid", cls="'pg_class'")}""",
    "constraint": f"""SELECT c.relname || '.' || k.conname, n.nspname,
            json_build_object('definition', pg_get_constraintdef(k.oid))::text
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_NOT_OURS}""",
    "index": f"""SELECT c.relname, n.nspname,
            json_build_object('definition', pg_get_indexdef(c.oid))::text
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_NOT_OURS} AND {_NOT_EXT.format(oid="c.oid", cls="'pg_class'")}""",
    "view": f"""SELECT c.relname, n.nspname, json_build_object('kind', c.relkind::text,
            'definition', pg_get_viewdef(c.oid))::text
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('v', 'm') AND {_NOT_OURS}
        AND {_NOT_EXT.format(oid="c.oid", cls="'pg_class'")}""",
    "function": f"""SELECT p.proname || '(' || oidvectortypes(p.proargtypes) || ')',
            n.nspname, json_build_object('kind', p.prokind::text,
            'returns', pg_get_function_result(p.oid), 'language', l.lanname,
            'volatility', p.provolatile::text, 'body', p.prosrc)::text
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        JOIN pg_language l ON l.oid = p.prolang
        WHERE {_NOT_OURS} AND {_NOT_EXT.format(oid="p.oid", cls="'pg_proc'")}""",
    "trigger": f"""SELECT c.relname || '.' || t.tgname, n.nspname,
            json_build_object('definition', pg_get_triggerdef(t.oid))::text
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT t.tgisinternal AND {_NOT_OURS}""",
}


#: Short names of long type names, in function signatures: hot_rank(numeric, timestamptz).
_SHORT_TYPES = (
    ("timestamp with time zone", "timestamptz"), ("timestamp without time zone", "timestamp"),
    ("time with time zone", "timetz"), ("time without time zone", "time"),
    ("character varying", "varchar"),
)  # fmt: skip


def _signature(name: str) -> str:
    for long, short in _SHORT_TYPES:
        name = name.replace(long, short)
    return name


def _pg(connection: Any) -> Objects:
    objects: Objects = {}
    for kind, sql in _PG_QUERIES.items():
        found: dict[str, dict[str, str]] = {}
        for name, schema, attrs in connection.execute(sql).fetchall():
            name = _signature(name) if kind == "function" else name
            values = json.loads(attrs) if attrs else {}
            found[_name(schema, name)] = {k: str(v) for k, v in values.items() if v is not None}
        objects[kind] = found
    return objects


def _sqlite(connection: Any) -> Objects:
    objects: Objects = {kind: {} for kind in ("table", "column", "index", "view", "trigger")}
    rows = connection.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
    ).fetchall()
    # every table's columns in one query (pragma_table_info as a table-valued function,
    # SQLite 3.16+), not one PRAGMA per table
    columns: dict[str, list[tuple[Any, ...]]] = {}
    for table, *column in connection.execute(
        'SELECT m.name, p.cid, p.name, p.type, p."notnull", p.dflt_value, p.pk'
        " FROM sqlite_master AS m JOIN pragma_table_info(m.name) AS p"
        " WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.cid"
    ).fetchall():
        columns.setdefault(table, []).append(tuple(column))
    for kind, name, table, sql in rows:
        if name in _SQLITE_EXCLUDED or table in _SQLITE_EXCLUDED:
            continue
        if kind == "table":
            objects["table"][name] = {}
            for cid, column, type_, notnull, default, pk in columns.get(name, ()):
                objects["column"][f"{name}.{column}"] = {
                    "position": str(cid + 1), "type": type_ or "",
                    "default": "" if default is None else str(default),
                    "nullable": str(not notnull).lower(), "primary key": str(pk),
                }  # fmt: skip
        elif kind in objects:
            # an automatic index (UNIQUE, PRIMARY KEY) has no SQL of its own
            objects[kind][f"{table}.{name}" if kind == "trigger" else name] = {
                "definition": " ".join((sql or f"(automatic, on {table})").split())
            }
    return objects


def fingerprint(connection: Any, kind: str) -> Fingerprint:
    """The schema of the database ``connection`` is connected to (``kind``: ``postgresql``
    with a psycopg connection, ``sqlite`` with a sqlite3 one). Reads only."""
    return Fingerprint(_pg(connection) if kind == "postgresql" else _sqlite(connection))


def _show(value: str | None) -> str:
    if value is None or value == "":
        return "none"
    value = " ".join(value.split())
    return value if len(value) <= 80 else value[:77] + "..."


def _column_change(name: str, attr: str, old: str | None, new: str | None) -> str:
    if attr == "position":
        return f"column {name} moved from position {old} to {new}"
    if attr == "nullable":
        return f"column {name} became {'nullable' if new == 'true' else 'NOT NULL'}"
    return f"column {name} {attr} changed from {_show(old)} to {_show(new)}"


def diff(before: Fingerprint, after: Fingerprint) -> list[str]:
    """What differs from ``before`` to ``after``, one sentence per difference, by kind:
    objects only in ``after`` are "left behind", objects only in ``before`` "missing"."""
    out: list[str] = []
    kinds = [k for k in KINDS if k in before.objects or k in after.objects]
    for kind in kinds:
        old, new = before.objects.get(kind, {}), after.objects.get(kind, {})
        for name in sorted(set(old) | set(new)):
            if name not in old:
                out.append(f"{kind} {name} left behind")
            elif name not in new:
                out.append(f"{kind} {name} missing (it was there before)")
            elif old[name] != new[name]:
                for attr in sorted(set(old[name]) | set(new[name])):
                    a, b = old[name].get(attr), new[name].get(attr)
                    if a == b:
                        continue
                    if kind == "column":
                        out.append(_column_change(name, attr, a, b))
                    else:
                        out.append(f"{kind} {name} {attr} changed from {_show(a)} to {_show(b)}")
    return out


__all__ = ["EXCLUDED_SCHEMAS", "KINDS", "Fingerprint", "diff", "fingerprint"]
