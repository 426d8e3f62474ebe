"""The indexes of selection_events after migration 019: only those a query uses, and the queries use them.

Plans are read with EXPLAIN (FORMAT JSON) on a small loaded database with sequential scans disabled, so that the
planner shows which index serves each query (with sequential scans allowed it rightly reads a table this small)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from fairness_pipeline import synthetic
from fairness_pipeline.ingest.loader import ingest_file
from fairness_pipeline.store import analysis, events, validation
from fairness_pipeline.store.event_indexes import summarize_event_ranges

START = date(2026, 3, 2)
EXPECTED_INDEXES = {
    "selection_events_pkey": "btree",
    "idx_selection_events_tenant": "btree",
    "idx_selection_events_timestamp_brin": "brin",
    "idx_selection_events_created_at_brin": "brin",
}


@pytest.fixture
def loaded(conn, tmp_path):
    """Four days of two tenants (about 12,000 events) ingested through the loader."""
    config = synthetic.GeneratorConfig(seed=3, start=START, days=4, tenants=2, events_per_day=1500)
    path = tmp_path / "events.csv"
    synthetic.write_events(synthetic.generate_events(config), path)
    counts = ingest_file(conn, path)
    assert counts.inserted > 8000
    return conn


def index_names(plan: object) -> list[str]:
    """Every index a plan (EXPLAIN FORMAT JSON) reads, in plan order."""
    found = []
    if isinstance(plan, dict):
        if "Index Name" in plan:
            found.append(plan["Index Name"])
        for value in plan.values():
            found += index_names(value)
    elif isinstance(plan, list):
        for item in plan:
            found += index_names(item)
    return found


def plan_indexes(conn, statement: str, params: dict) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("SET enable_seqscan = off")
        cur.execute("EXPLAIN (FORMAT JSON) " + statement, params)
        plan = cur.fetchone()[0]
    conn.rollback()
    return index_names(plan)


def day_params(day: date) -> dict:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return {"day": day, "day_start": start, "day_end": start + timedelta(days=1)}


def test_selection_events_keeps_only_the_indexes_queries_use(conn):
    with conn.cursor() as cur:
        cur.execute(
            """SELECT c.relname, am.amname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
               JOIN pg_am am ON am.oid = c.relam WHERE i.indrelid = 'selection_events'::regclass"""
        )
        assert dict(cur.fetchall()) == EXPECTED_INDEXES


@pytest.mark.parametrize(
    "statement",
    [events.RAW_DAY_OBSERVATION, validation.INSERT_VALIDATED_DAY, validation.DAY_RECONCILIATION],
    ids=["raw_day_observation", "insert_validated_day", "day_reconciliation"],
)
def test_day_queries_read_the_timestamp_brin(loaded, statement):
    assert "idx_selection_events_timestamp_brin" in plan_indexes(loaded, statement, day_params(START + timedelta(1)))


def test_late_event_days_reads_the_created_at_brin(loaded):
    now = datetime.now(UTC)
    params = {"after": now - timedelta(minutes=1), "until": now}
    assert plan_indexes(loaded, analysis.LATE_EVENT_DAYS, params)[0] == "idx_selection_events_created_at_brin"


def test_tenant_checks_read_the_tenant_btree(loaded):
    index = "idx_selection_events_tenant"
    assert index in plan_indexes(loaded, events.TENANT_EXISTS, {"tenant_id": "tenant-1"})
    assert index in plan_indexes(loaded, events.TENANTS, {})


def test_a_load_leaves_no_block_range_unsummarised(loaded, tmp_path):
    with loaded, loaded.cursor() as cur:
        assert summarize_event_ranges(cur) == 0  # the loader summarised its ranges
        # A COPY that bypasses the loader leaves new ranges (a few hundred KB: more than one 128-page range).
        cur.execute("SELECT pg_relation_size('selection_events') / 8192")
        pages_before = cur.fetchone()[0]
        cur.execute(
            """INSERT INTO selection_events (event_id, timestamp, candidate_id, event_type, search_id, tenant_id,
                   user_id_hash)
               SELECT 'extra-' || g, %s, 'c', 'shown', 's', 't', 'u' FROM generate_series(1, 30000) g""",
            (datetime(2026, 3, 10, tzinfo=UTC),),
        )
        cur.execute("SELECT pg_relation_size('selection_events') / 8192")
        assert cur.fetchone()[0] - pages_before > 128
        assert summarize_event_ranges(cur) >= 2  # both indexes had at least one new full range
