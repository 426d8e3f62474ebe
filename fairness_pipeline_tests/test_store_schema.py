"""The store's table declarations against the migrated database: columns, types, nullability and keys cannot drift
from the migrations without this failing."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from fairness_pipeline.defs.metadata import table_schema
from fairness_pipeline.store import analysis, audits
from fairness_pipeline.store.catalog import TABLES
from fairness_pipeline.store.schema import Column, Table, fetch_frame, insert_rows

COLUMNS = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY c.relname, a.attnum
"""

UNIQUE_INDEXES = """
SELECT c.relname, i.indisprimary, array_agg(a.attname ORDER BY k.ord)
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
WHERE n.nspname = 'public' AND i.indisunique
GROUP BY c.relname, i.indexrelid, i.indisprimary
"""


def _database_tables(conn) -> tuple[dict, dict, dict]:
    with conn.cursor() as cur:
        cur.execute(COLUMNS)
        columns: dict[str, list[tuple[str, str, bool]]] = {}
        for table, name, sql_type, nullable in cur.fetchall():
            columns.setdefault(table, []).append((name, sql_type, nullable))
        cur.execute(UNIQUE_INDEXES)
        keys: dict[str, tuple[str, ...]] = {}
        unique: dict[str, set[tuple[str, ...]]] = {}
        for table, primary, names in cur.fetchall():
            if primary:
                keys[table] = tuple(names)
            else:
                unique.setdefault(table, set()).add(tuple(names))
    return columns, keys, unique


def test_every_migrated_table_is_declared_once_as_it_is(conn) -> None:
    columns, keys, unique = _database_tables(conn)
    assert sorted(TABLES) == sorted(columns)
    for name, table in TABLES.items():
        declared = [(c.name, c.type, c.nullable) for c in table.columns]
        assert declared == columns[name], name
        assert table.key == keys.get(name, ()), name
        assert set(table.unique) == unique.get(name, set()), name


def test_a_declaration_that_drifted_is_caught(conn) -> None:
    """The comparison above fails on a changed type (the check is not vacuous)."""
    columns, _, _ = _database_tables(conn)
    drifted = [(c.name, "text" if c.name == "n" else c.type, c.nullable) for c in analysis.IMPACT_RATIOS.columns]
    assert drifted != columns["impact_ratios"]


def test_declarations_refuse_unknown_key_columns() -> None:
    with pytest.raises(ValueError, match="not declared"):
        Table("t", columns=(Column("a", "integer"),), key=("b",))
    with pytest.raises(ValueError, match="declared twice"):
        Table("t", columns=(Column("a", "integer"), Column("a", "text")), key=("a",))


def test_column_schema_is_derived_from_the_declaration() -> None:
    schema = table_schema(audits.SCORING_RATE_RATIOS)
    assert isinstance(schema, dg.TableSchema)
    assert [c.name for c in schema.columns] == audits.SCORING_RATE_RATIOS.column_names
    assert {c.type for c in schema.columns} <= {c.type for c in audits.SCORING_RATE_RATIOS.columns}
    assert "mixed" not in {c.type for c in schema.columns}
    keyed = [c.name for c in schema.columns if "key" in c.constraints.other]
    assert keyed == ["window_end", "tenant_id", "dimension", "group_value"]
    n = next(c for c in schema.columns if c.name == "n")
    assert (n.type, n.constraints.nullable) == ("bigint", False)


def test_fetch_frame_applies_declared_dtypes_and_insert_rows_writes_nulls(conn) -> None:
    frames = pd.DataFrame(
        {
            "tenant_id": ["t1", "t1"],
            "stage_pair": ["shown->shortlisted"] * 2,
            "dimension": ["company_tier"] * 2,
            "group": ["a", "b"],
            "n": [10, 4],
            "x": [3, 0],
            "selection_rate": [0.3, 0.0],
            "overall_rate": [3 / 14, 3 / 14],
            "dp_ratio": [float("nan"), float("nan")],
            "dp_difference": [0.3, 0.3],
            "undefined_reason": [None, "no selections"],
        }
    )
    day = pd.Timestamp("2026-01-31").date()
    with conn, conn.cursor() as cur:
        assert analysis.replace_frames(cur, day, 30, frames) == 2
        assert analysis.replace_frames(cur, day, 30, frames) == 2  # replaces, never duplicates
        stored = fetch_frame(
            cur,
            "SELECT group_value, n, x, demographic_parity_ratio FROM selection_rate_frames ORDER BY group_value",
            dtypes=analysis.SELECTION_RATE_FRAMES.dtypes(),
        )
        assert insert_rows(cur, analysis.INSERT_FRAMES, frames.iloc[:0], analysis.FRAME_COLUMNS) == 0
    assert stored["group_value"].tolist() == ["a", "b"]
    assert str(stored["n"].dtype) == "Int64" and stored["n"].tolist() == [10, 4]
    assert str(stored["demographic_parity_ratio"].dtype) == "float64"
    assert stored["demographic_parity_ratio"].isna().all()


def test_the_resource_checks_migrations_once_per_process_and_url(empty_db_url: str) -> None:
    """The first connection migrates; later ones run no migration query (a history table dropped after the first
    connection stays dropped)."""
    from fairness_pipeline.defs.resources import FairnessDatabase

    database = FairnessDatabase(url=empty_db_url)
    with database.connect() as conn, conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM schema_migrations")
        assert cur.fetchone()[0] > 0
        cur.execute("DROP TABLE schema_migrations")
    with database.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('schema_migrations') IS NULL")
        assert cur.fetchone()[0]
