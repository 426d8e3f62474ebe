"""The lifecycle in Dagster: the daily retention job and schedule, and the sensor that re-runs erased days."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import psycopg2
import pytest

from fairness_pipeline.cli.runs import run_range
from fairness_pipeline.definitions import build_definitions
from fairness_pipeline.defs.partitions import daily_partitions, tenant_day_key
from fairness_pipeline.defs.resources import FairnessDatabase
from fairness_pipeline.defs.retention import erasure_recompute_sensor, retention_job, retention_schedule


def execute(url: str, statement: str, params: tuple = ()) -> None:
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        cur.execute(statement, params)
    conn.close()


def test_retention_runs_daily_at_half_past_three_utc():
    assert retention_schedule.cron_schedule == "30 3 * * *"
    assert retention_schedule.execution_timezone == "UTC"
    assert retention_schedule.job_name == "retention_job"


def test_erasure_recompute_sensor_re_runs_the_days_and_their_windows(db_url):
    database = FairnessDatabase(url=db_url)
    request = "INSERT INTO recompute_requests (day, tenant_id, reason, requested_at) VALUES (%s, 't1', 'erasure 1', %s)"
    execute(db_url, request, (date(2026, 3, 1), datetime.now(UTC) - timedelta(hours=2)))

    defs = build_definitions(database)

    def context(cursor: str | None = None) -> dg.SensorEvaluationContext:
        return dg.build_sensor_context(cursor=cursor, resources={"database": database}, definitions=defs)

    first = erasure_recompute_sensor(context())
    assert not first.run_requests  # the first tick starts watching from the latest request
    nothing = erasure_recompute_sensor(context(first.cursor))
    assert not nothing.run_requests and nothing.skip_reason

    ten_minutes_ago = datetime.now(UTC) - timedelta(minutes=10)
    for day in (date(2026, 3, 5), date(2026, 3, 2), date(2026, 3, 5)):
        execute(db_url, request, (day, ten_minutes_ago))
    execute(db_url, request, (date(2026, 3, 9), datetime.now(UTC)))  # too recent: may not be committed yet
    second = erasure_recompute_sensor(context(first.cursor))
    (run,) = second.run_requests
    last_partition = date.fromisoformat(daily_partitions.get_last_partition_key())
    last_day = min(date(2026, 3, 5) + timedelta(days=29), last_partition)
    days = [date(2026, 3, 2) + timedelta(days=i) for i in range((last_day - date(2026, 3, 2)).days + 1)]
    subset = run.asset_graph_subset  # the event layer of the days, t1's windows of them and after
    assert subset.get_partitions_subset(dg.AssetKey("validated_selection_events")).get_partition_keys() == [
        day.isoformat() for day in days
    ]
    assert sorted(subset.get_partitions_subset(dg.AssetKey("risk_classification")).get_partition_keys()) == sorted(
        tenant_day_key("t1", day) for day in days
    )
    assert datetime.fromisoformat(json.loads(second.cursor)["requested_at"]) == ten_minutes_ago

    third = erasure_recompute_sensor(context(second.cursor))
    assert not third.run_requests


@pytest.mark.slow
def test_retention_job_deletes_and_records(db_url, monkeypatch, tmp_path):
    monkeypatch.delenv("FAIRNESS_RETENTION_POLICY", raising=False)
    old = datetime.now(UTC) - timedelta(days=800)
    execute(
        db_url,
        "INSERT INTO selection_events (event_id, timestamp, candidate_id, event_type, search_id, tenant_id, "
        "user_id_hash) VALUES ('old', %s, 'c', 'shown', 's', 't1', 'u'), ('new', now(), 'c', 'shown', 's', 't1', 'u')",
        (old,),
    )
    resources = {"database": FairnessDatabase(url=db_url)}
    result = retention_job.execute_in_process(resources=resources)
    assert result.success and result.output_for_node("apply_retention_op") == 1
    conn = psycopg2.connect(db_url)
    with conn.cursor() as cur:
        cur.execute("SELECT event_id FROM selection_events")
        assert cur.fetchall() == [("new",)]
        cur.execute("SELECT rows FROM retention_deletions WHERE table_name = 'selection_events'")
        assert cur.fetchall() == [(1,)]
    conn.close()

    short = tmp_path / "short.yaml"
    short.write_text("retention_days:\n  events: 30\n")
    monkeypatch.setenv("FAIRNESS_RETENTION_POLICY", str(short))
    refused = retention_job.execute_in_process(resources=resources, raise_on_error=False)
    assert not refused.success
    failure = next(e for e in refused.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "events (30 days)" in str(failure.event_specific_data.error)


@pytest.mark.slow
def test_an_erased_candidate_leaves_the_recomputed_numbers(db_url):
    """Erase a shortlisted candidate after the pipeline ran; the sensor asks for their days, and re-running them
    takes the person out of the window's counts (one candidate and one selection fewer in their group)."""
    from fairness_pipeline import synthetic
    from fairness_pipeline.ingest.frames import load_frames
    from fairness_pipeline.lifecycle.erasure import field_pattern
    from fairness_pipeline.store import lifecycle as store
    from fairness_pipeline.store.urls import sqlalchemy_url

    start = date(2026, 3, 1)
    window_end = start + timedelta(days=2)
    database = FairnessDatabase(url=db_url)
    conn = psycopg2.connect(db_url)
    load_frames(
        conn,
        synthetic.generate_events(
            synthetic.GeneratorConfig(seed=5, start=start, days=3, tenants=1, events_per_day=300)
        ),
        source="test",
    )
    counts = (
        "SELECT group_value, n, x FROM impact_ratios WHERE window_end = %s AND stage_pair = 'shown->shortlisted' "
        "AND dimension = 'company_tier' ORDER BY group_value"
    )
    with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_url": sqlalchemy_url(db_url)}}}) as inst:
        assert all(
            r.success for r in run_range(inst, start + timedelta(days=1), window_end, window_days=2, database=database)
        )
        with conn, conn.cursor() as cur:
            # A candidate shortlisted in the window, shown in it under one known company tier.
            cur.execute(
                "SELECT s.candidate_id, min(f.company_tier) FROM candidate_daily_stages s "
                "JOIN candidate_daily_stages f ON f.candidate_id = s.candidate_id AND f.event_type = 'shown' "
                "AND f.day BETWEEN %(first)s AND %(last)s "
                "WHERE s.event_type = 'shortlisted' AND s.day BETWEEN %(first)s AND %(last)s "
                "GROUP BY s.candidate_id "
                "HAVING count(DISTINCT f.company_tier) = 1 AND count(f.company_tier) = count(*) ORDER BY 1 LIMIT 1",
                {"first": start + timedelta(days=1), "last": window_end},
            )
            candidate, group = cur.fetchone()
            cur.execute(counts, (window_end,))
            before = {g: (n, x) for g, n, x in cur.fetchall()}
        erased = store.erase_candidate(
            conn,
            "tenant-1",
            candidate,
            subject_hash=None,
            candidate_pattern=field_pattern(candidate),
            tenant_pattern=field_pattern("tenant-1"),
        )
        assert erased.rows_by_table["selection_events"] >= 2
        with conn, conn.cursor() as cur:
            cur.execute("UPDATE recompute_requests SET requested_at = now() - interval '10 minutes'")
        cursor = json.dumps({"requested_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat()})
        tick = erasure_recompute_sensor(
            dg.build_sensor_context(
                cursor=cursor, resources={"database": database}, definitions=build_definitions(database)
            )
        )
        (request,) = tick.run_requests
        event_days = request.asset_graph_subset.get_partitions_subset(dg.AssetKey("candidate_daily_stages"))
        first_day = date.fromisoformat(min(event_days.get_partition_keys()))
        assert first_day == erased.days[0]
        assert all(
            r.success
            for r in run_range(inst, first_day, window_end, window_days=2, database=database, tenants=["tenant-1"])
        )
    with conn.cursor() as cur:
        cur.execute(counts, (window_end,))
        after = {g: (n, x) for g, n, x in cur.fetchall()}
    conn.close()
    expected = dict(before)
    expected[group] = (before[group][0] - 1, before[group][1] - 1)
    assert after == expected
