from __future__ import annotations

import shutil
from pathlib import Path

import psycopg2
import pytest

from fairness_pipeline.events.vocabulary import DIMENSION_VALUES, EVENT_TYPES
from fairness_pipeline.store.migrations import MigrationError, discover, migrate, migrations_dir


def _tables(conn) -> set[str]:
    with conn.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row[0] for row in cur.fetchall()}


def test_migrations_apply_in_order_and_record_history(empty_db_url: str) -> None:
    conn = psycopg2.connect(empty_db_url)
    try:
        applied = migrate(conn)
        assert [m.version for m in applied] == [m.version for m in discover()]
        assert [m.version for m in applied] == sorted(m.version for m in applied)
        assert {"selection_events", "bias_metrics", "selection_event_rejects", "schema_migrations"} <= _tables(conn)
        with conn.cursor() as cur:
            cur.execute("SELECT version, checksum, applied_at FROM schema_migrations ORDER BY version")
            history = cur.fetchall()
        assert [(v, c) for v, c, _ in history] == [(m.version, m.checksum) for m in applied]
        assert all(applied_at is not None for _, _, applied_at in history)
    finally:
        conn.close()


def test_second_run_is_a_no_op(empty_db_url: str) -> None:
    conn = psycopg2.connect(empty_db_url)
    try:
        migrate(conn)
        with conn.cursor() as cur:
            cur.execute("SELECT version, applied_at FROM schema_migrations")
            before = cur.fetchall()
        assert migrate(conn) == []
        with conn.cursor() as cur:
            cur.execute("SELECT version, applied_at FROM schema_migrations")
            assert cur.fetchall() == before
    finally:
        conn.close()


def test_changed_applied_file_is_refused(empty_db_url: str, tmp_path: Path) -> None:
    copy = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), copy)
    conn = psycopg2.connect(empty_db_url)
    try:
        migrate(conn, copy)
        first = sorted(copy.glob("*.sql"))[0]
        first.write_text(first.read_text() + "\n-- edited after it was applied\n")
        (copy / "999_new_table.sql").write_text("CREATE TABLE should_not_exist (id int);")
        with pytest.raises(MigrationError, match=f"{first.name} was changed after it was applied"):
            migrate(conn, copy)
        assert "should_not_exist" not in _tables(conn)
    finally:
        conn.close()


def test_failing_migration_rolls_back_alone(empty_db_url: str, tmp_path: Path) -> None:
    copy = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), copy)
    (copy / "900_good.sql").write_text("CREATE TABLE good_one (id int);")
    (copy / "901_bad.sql").write_text("CREATE TABLE half_done (id int); SELECT no_such_function();")
    conn = psycopg2.connect(empty_db_url)
    try:
        with pytest.raises(psycopg2.Error):
            migrate(conn, copy)
        tables = _tables(conn)
        assert "good_one" in tables and "half_done" not in tables
        with conn.cursor() as cur:
            cur.execute("SELECT max(version) FROM schema_migrations")
            assert cur.fetchone()[0] == 900
    finally:
        conn.close()


def _check_values(conn, column: str) -> list[set[str]]:
    """Values allowed by each CHECK constraint on selection_events.<column>, read from the catalog."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
            WHERE c.conrelid = 'selection_events'::regclass AND c.contype = 'c' AND a.attname = %s
            """,
            (column,),
        )
        definitions = [row[0] for row in cur.fetchall()]
    import re

    return [set(re.findall(r"'([^']+)'::", definition)) for definition in definitions]


def test_event_types_are_checked_and_dimension_values_are_left_to_the_catalogue(conn) -> None:
    assert _check_values(conn, "event_type") == [set(EVENT_TYPES)]
    for column in DIMENSION_VALUES:  # no schema lists a dimension's values (migration 021)
        assert _check_values(conn, column) == []


def test_migration_021_drops_the_dimension_checks_of_an_existing_table(empty_db_url: str, tmp_path: Path) -> None:
    """A database migrated up to 020 refuses a value outside the packaged lists; after 021 it stores it."""
    directory = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), directory)
    later = sorted(p for p in directory.glob("*.sql") if p.name >= "021")
    kept = {p: p.read_text() for p in later}
    for path in later:
        path.unlink()
    row = (
        "INSERT INTO selection_events (event_id, candidate_id, event_type, search_id, tenant_id, user_id_hash, "
        "company_tier) VALUES ('e1', 'c1', 'shown', 's1', 't1', 'u1', 'public_sector')"
    )
    conn = psycopg2.connect(empty_db_url)
    try:
        migrate(conn, directory)
        with pytest.raises(psycopg2.errors.CheckViolation), conn, conn.cursor() as cur:
            cur.execute(row)
        for path, text in kept.items():
            path.write_text(text)
        migrate(conn, directory)
        with conn, conn.cursor() as cur:
            cur.execute(row)
            cur.execute("SELECT company_tier FROM selection_events")
            assert cur.fetchall() == [("public_sector",)]
    finally:
        conn.close()
