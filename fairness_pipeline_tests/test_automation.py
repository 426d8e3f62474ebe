"""Schedules and sensors with a real Dagster instance and real PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import psycopg2
import pytest

from fairness_pipeline import synthetic
from fairness_pipeline.cli.runs import run_range
from fairness_pipeline.definitions import build_definitions
from fairness_pipeline.defs.automation import affected_range, late_events_sensor, nightly_schedule
from fairness_pipeline.defs.partitions import tenant_day_key
from fairness_pipeline.defs.resources import FairnessDatabase
from fairness_pipeline.defs.tenants import register_tenants
from fairness_pipeline.ingest.frames import load_frames

START = date(2026, 3, 1)


def _execute(db_url: str, statement: str, params: tuple = ()) -> None:
    conn = psycopg2.connect(db_url)
    with conn, conn.cursor() as cur:
        cur.execute(statement, params)
    conn.close()


def test_nightly_schedule_runs_yesterday_at_two() -> None:
    assert nightly_schedule.cron_schedule == "0 2 * * *"
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 3, 10, 2, 0, tzinfo=UTC),
        repository_def=build_definitions(FairnessDatabase(url="postgresql://unused/db")).get_repository_def(),
    )
    (request,) = nightly_schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2026-03-09"  # the event layer's day; the tenant-days follow by automation
    assert request.job_name in (None, "event_days_job")


def test_affected_range_covers_every_later_window() -> None:
    assert affected_range([date(2026, 3, 5), date(2026, 3, 2)], date(2026, 5, 1)) == (
        date(2026, 3, 2),
        date(2026, 4, 3),
    )
    assert affected_range([date(2026, 3, 5)], date(2026, 3, 9)) == (date(2026, 3, 5), date(2026, 3, 9))


@pytest.mark.slow
def test_a_days_event_layer_starts_each_tenants_windows_of_that_day(db_url: str, instance) -> None:
    """The nightly chain: the schedule materialises yesterday's event layer, then the assets' eager condition asks for
    every tenant's windows of that day (a new tenant's first day too), nothing else, and asks once."""
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    defs = build_definitions(FairnessDatabase(url=db_url))
    register_tenants(instance, ["tenant-1", "tenant-2"])
    before = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert before.get_requested_partitions(dg.AssetKey("selection_rate_frames")) == set()  # its day not there yet
    nightly = defs.resolve_job_def("event_days_job").execute_in_process(
        instance=instance, partition_key=yesterday.isoformat()
    )
    assert nightly.success
    after = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=before.cursor)
    expected = {tenant_day_key(tenant, yesterday) for tenant in ("tenant-1", "tenant-2")}
    for key in ("selection_rate_frames", "impact_ratios", "rank_exposure", "fairness_trends", "fairness_reports"):
        assert after.get_requested_partitions(dg.AssetKey(key)) == expected, key
    assert after.get_requested_partitions(dg.AssetKey("candidate_daily_stages")) == set()  # the schedule's, done
    again = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=after.cursor)
    assert again.total_requested == 0


@pytest.mark.slow
def test_late_events_sensor_requests_one_run_and_advances_its_cursor(db_url: str, instance) -> None:
    config = synthetic.GeneratorConfig(seed=3, start=START, days=4, tenants=2, events_per_day=300)
    conn = psycopg2.connect(db_url)
    load_frames(conn, synthetic.generate_events(config), source="test")
    conn.close()
    _execute(db_url, "UPDATE selection_events SET created_at = now() - interval '3 hours'")
    database = FairnessDatabase(url=db_url)
    defs = build_definitions(database)
    assert all(
        r.success
        for r in run_range(
            instance, START + timedelta(days=1), START + timedelta(days=3), window_days=2, database=database
        )
    )

    def context(cursor: str | None = None) -> dg.SensorEvaluationContext:
        return dg.build_sensor_context(
            instance=instance, cursor=cursor, resources={"database": database}, definitions=defs
        )

    first = late_events_sensor(context())
    assert not first.run_requests
    cursor = json.loads(first.cursor)["created_at"]
    assert datetime.fromisoformat(cursor) < datetime.now(UTC) - timedelta(hours=2)

    nothing = late_events_sensor(context(first.cursor))
    assert not nothing.run_requests and nothing.skip_reason

    insert = (
        "INSERT INTO selection_events (event_id, timestamp, candidate_id, event_type, search_id, tenant_id, "
        "user_id_hash, created_at) VALUES (%s, %s, 'late-candidate', 'shortlisted', 's', 'tenant-1', %s, "
        "now() - interval '1 hour')"
    )
    for event_id, day in (("late-1", START + timedelta(days=1)), ("late-2", START + timedelta(days=2))):
        _execute(db_url, insert, (event_id, datetime(day.year, day.month, day.day, 9, tzinfo=UTC), "ab" * 32))
    # An event for a day never analysed is not late: nothing to re-run for it.
    _execute(db_url, insert, ("new-day", datetime(2026, 4, 20, 9, tzinfo=UTC), "ab" * 32))

    second = late_events_sensor(context(first.cursor))
    (request,) = second.run_requests
    last_day = min(START + timedelta(days=2 + 29), date.today() - timedelta(days=1))  # the last window of the later
    days = [START + timedelta(days=i) for i in range(1, (last_day - START).days + 1)]  # late day, or yesterday
    subset = request.asset_graph_subset  # a backfill: the event layer of every tenant, then tenant-1's windows only
    assert subset.get_partitions_subset(dg.AssetKey("candidate_daily_stages")).get_partition_keys() == [
        day.isoformat() for day in days
    ]
    for key in ("impact_ratios", "fairness_reports"):
        keys = sorted(subset.get_partitions_subset(dg.AssetKey(key)).get_partition_keys())
        assert keys == sorted(tenant_day_key("tenant-1", day) for day in days), key
    assert json.loads(second.cursor)["created_at"] > cursor

    third = late_events_sensor(context(second.cursor))
    assert not third.run_requests


@pytest.mark.slow
def test_failed_run_raises_one_operational_alert(db_url: str, instance) -> None:
    from fairness_pipeline.defs.automation import run_failure_sensor

    unreachable = FairnessDatabase(url="postgresql://nobody@127.0.0.1:9/none")
    failed = (
        build_definitions(unreachable)
        .resolve_job_def("event_days_job")
        .execute_in_process(instance=instance, partition_key=START.isoformat(), raise_on_error=False)
    )
    assert not failed.success
    run = instance.get_run_by_id(failed.run_id)
    failure_event = next(e for e in failed.all_events if e.event_type_value == "PIPELINE_FAILURE")
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_sensor", dagster_instance=instance, dagster_run=run, dagster_event=failure_event
    ).for_run_failure()
    request = run_failure_sensor(context)
    assert request.run_key == f"run-failure-{failed.run_id}"

    defs = build_definitions(FairnessDatabase(url=db_url))
    for _ in range(2):  # the same failure reported twice still gives one alert
        assert (
            defs.resolve_job_def("alert_job")
            .execute_in_process(run_config=request.run_config, instance=instance)
            .success
        )
    conn = psycopg2.connect(db_url)
    with conn.cursor() as cur:
        cur.execute("SELECT tenant_id, scope, level, payload FROM fairness_alerts")
        ((tenant, scope, level, payload),) = cur.fetchall()
        cur.execute("SELECT channel, outcome FROM fairness_alert_deliveries")
        deliveries = cur.fetchall()
    conn.close()
    assert (tenant, scope, level) == ("operations", "operational", "MEDIUM")
    assert failed.run_id in json.dumps(payload)
    assert deliveries and all(channel == "log" for channel, _ in deliveries)


@pytest.mark.slow
def test_risk_sensor_alerts_tenants_at_or_above_high_once(db_url: str, instance) -> None:
    from fairness_pipeline.definitions import build_definitions
    from fairness_pipeline.defs.automation import risk_alert_sensor

    day = START
    for tenant, level, score in (("tenant-1", "CRITICAL", 0.9), ("tenant-2", "LOW", 0.1), ("tenant-3", "HIGH", 0.6)):
        rule = {"rule": "no_comparison", "reason": f"{tenant} reason", "level_before": "LOW", "level_after": level}
        assessment = {"applied_rules": [rule], "scope": {}}
        _execute(
            db_url,
            "INSERT INTO risk_assessments (window_end, tenant_id, profile, score, level, assessment) "
            "VALUES (%s, %s, 'default', %s, %s, %s)",
            (day, tenant, score, level, json.dumps(assessment)),
        )
    database = FairnessDatabase(url=db_url)
    instance.report_runless_asset_event(dg.AssetMaterialization("risk_classification", partition=day.isoformat()))
    context = dg.build_sensor_context(instance=instance, resources={"database": database})
    requests = risk_alert_sensor.evaluate_tick(context).run_requests
    configs = {r.run_config["ops"]["raise_alerts_op"]["config"]["tenant_id"]: r for r in requests}
    assert set(configs) == {"tenant-1", "tenant-3"}
    assert "reasons" not in configs["tenant-1"].run_config["ops"]["raise_alerts_op"]["config"]  # no free text

    alert_job = build_definitions(database).resolve_job_def("alert_job")
    for request in [*requests, *requests]:  # a second evaluation of the same findings raises nothing new
        assert alert_job.execute_in_process(run_config=request.run_config, instance=instance).success
    conn = psycopg2.connect(db_url)
    with conn.cursor() as cur:
        cur.execute("SELECT tenant_id, level, payload->'reasons' FROM fairness_alerts ORDER BY tenant_id")
        assert cur.fetchall() == [
            (
                "tenant-1",
                "CRITICAL",
                ["no_comparison (LOW -> CRITICAL): no group could be compared with a reference group."],
            ),
            ("tenant-3", "HIGH", ["no_comparison (LOW -> HIGH): no group could be compared with a reference group."]),
        ]
        cur.execute("SELECT count(*) FROM fairness_reviews WHERE status = 'open'")
        assert cur.fetchone()[0] == 2
    conn.close()
