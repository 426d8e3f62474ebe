"""Schedules and sensors: the nightly run and the re-run of windows that late events change.

The nightly schedule materialises yesterday's event layer (one partition per day for every tenant); each tenant's
windows of that day follow through the assets' automation condition (eager: one run per tenant-day, as the
``automation_condition_sensor`` launches them), so one tenant's failure leaves the others' results. Late events re-run
their days' event layer and the windows of the tenants that received them only."""

import json
import os
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from fairness_pipeline.alerts import OPERATIONAL_TENANT
from fairness_pipeline.defs.alerting import alert_job, alert_run_config
from fairness_pipeline.defs.jobs import ANALYSIS_LAYERS, EVENT_LAYER, event_days_job, metrics_job
from fairness_pipeline.defs.partitions import daily_partitions, range_subset, split_partition_key
from fairness_pipeline.defs.resources import FairnessDatabase
from fairness_pipeline.defs.tags import DAGSTER_RANGE_END_TAG
from fairness_pipeline.metrics.window import DEFAULT_ANALYSIS
from fairness_pipeline.risk import levels as risk_levels
from fairness_pipeline.risk.levels import REVIEW_FLOOR
from fairness_pipeline.store import analysis, events
from fairness_pipeline.store.schema import transaction

NIGHTLY_HOUR_ENV = "FAIRNESS_NIGHTLY_HOUR"
WINDOW_DAYS = DEFAULT_ANALYSIS.window_days
COMMIT_LAG = timedelta(minutes=2)
"""Rows are stamped with their transaction's start time; reading only up to now - lag lets open transactions commit
before the cursor passes them."""


@dg.schedule(
    job=event_days_job,
    cron_schedule=f"0 {int(os.environ.get(NIGHTLY_HOUR_ENV, '2'))} * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Materialises yesterday's event layer (02:00 UTC unless FAIRNESS_NIGHTLY_HOUR); every tenant's "
    "windows of the day follow, one run per tenant-day, through the automation condition sensor.",
)
def nightly_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    yesterday = (context.scheduled_execution_time.astimezone(UTC) - timedelta(days=1)).date()
    return dg.RunRequest(run_key=f"nightly-{yesterday.isoformat()}", partition_key=yesterday.isoformat())


automation_condition_sensor = dg.AutomationConditionSensorDefinition(
    "automation_condition_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Evaluates the assets' automation conditions: downstream steps run once blocking checks pass.",
)


def affected_range(days: list[date], last_partition: date, window_days: int = WINDOW_DAYS) -> tuple[date, date]:
    """Days to re-run when ``days`` changed: from the earliest changed day to the last window that contains the
    latest changed day, bounded by the last partition."""
    return min(days), min(max(days) + timedelta(days=window_days - 1), last_partition)


RERUN_REASON_TAG = "fairness/rerun_reason"


def rerun_request(
    context: dg.SensorEvaluationContext, days: list[date], tenants: list[str], last_partition: date, reason: str
) -> tuple[dg.RunRequest, tuple[date, date]]:
    """A backfill request that re-runs ``days`` and every later window containing them (:func:`affected_range`): the
    event layer of those days for every tenant, the windows of ``tenants`` only; and the range it covers. The event
    layer runs first (its days are upstream of the tenant-days)."""
    first_day, last_day = affected_range(days, last_partition)
    asset_graph = context.repository_def.asset_graph
    subset = range_subset(asset_graph, EVENT_LAYER.resolve(asset_graph), first_day, last_day, []) | range_subset(
        asset_graph, ANALYSIS_LAYERS.resolve(asset_graph), first_day, last_day, tenants
    )
    return dg.RunRequest.for_asset_graph_subset(subset, tags={RERUN_REASON_TAG: reason}), (first_day, last_day)


@dg.sensor(
    asset_selection=dg.AssetSelection.all(),
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Events inserted for days that were already analysed re-run those days' event layer and every later "
    "window containing them of the tenants that received them, as one backfill per batch. The cursor is the latest "
    "created_at seen.",
)
def late_events_sensor(context: dg.SensorEvaluationContext, database: FairnessDatabase) -> dg.SensorResult:
    now = datetime.now(UTC) - COMMIT_LAG
    with database.connect() as conn, transaction(conn) as cur:
        if context.cursor is None:  # first tick: start watching from here, do not replay history
            latest = events.latest_created_at(cur) or now
            return dg.SensorResult(cursor=json.dumps({"created_at": latest.isoformat()}))
        after = datetime.fromisoformat(json.loads(context.cursor)["created_at"])
        rows = analysis.late_event_days(cur, after, now)
    if not rows:
        return dg.SensorResult(skip_reason=f"no late events since {after.isoformat()}")
    days = sorted({row[0] for row in rows})
    tenants = sorted({row[1] for row in rows})
    last_partition = date.fromisoformat(daily_partitions.get_last_partition_key())
    latest_seen = max(row[3] for row in rows)
    request, (first_day, last_day) = rerun_request(context, days, tenants, last_partition, "late events")
    context.log.info(
        f"{sum(row[2] for row in rows)} late event(s) on {len(days)} day(s) of {', '.join(tenants)}: re-running "
        f"{first_day} .. {last_day}"
    )
    return dg.SensorResult(run_requests=[request], cursor=json.dumps({"created_at": latest_seen.isoformat()}))


@dg.run_failure_sensor(
    monitored_jobs=[event_days_job, metrics_job],
    request_job=alert_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A failed pipeline run raises an operational alert through the alert channels (once per run).",
)
def run_failure_sensor(context: dg.RunFailureSensorContext) -> dg.RunRequest:
    run = context.dagster_run
    key = run.tags.get("dagster/partition") or run.tags.get(DAGSTER_RANGE_END_TAG)
    day = split_partition_key(key)[1].isoformat() if key else datetime.now(UTC).date().isoformat()
    return dg.RunRequest(
        run_key=f"run-failure-{run.run_id}",
        run_config=alert_run_config(
            OPERATIONAL_TENANT,
            "MEDIUM",
            day,
            scope="operational",
            failed_job=run.job_name,
            failed_run_id=run.run_id,
        ),
    )


ALERT_LEVEL_ENV = "FAIRNESS_ALERT_LEVEL"


def levels_at_or_above(level: str) -> list[str]:
    """``HIGH`` -> [HIGH, CRITICAL] (``risk.levels``); an unknown level raises naming the setting."""
    try:
        return list(risk_levels.levels_at_or_above(level))
    except ValueError:
        raise ValueError(f"{ALERT_LEVEL_ENV}={level!r} is not one of {', '.join(risk_levels.LEVELS)}") from None


@dg.asset_sensor(
    asset_key=dg.AssetKey("risk_classification"),
    job=alert_job,
    required_resource_keys={"database"},
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After each risk_classification materialisation, launches the alert job for every tenant at or "
    "above FAIRNESS_ALERT_LEVEL (default HIGH) with that tenant's assessment.",
)
def risk_alert_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    from fairness_pipeline.store import reports

    key = asset_event.dagster_event.partition if asset_event.dagster_event else None
    if key is None:
        return dg.SkipReason("materialisation without a partition")
    scope, day = split_partition_key(key)
    partition = day.isoformat()
    levels = levels_at_or_above(os.environ.get(ALERT_LEVEL_ENV, REVIEW_FLOOR))
    database: FairnessDatabase = context.resources.database
    with database.connect() as conn, transaction(conn) as cur:
        rows = reports.assessments_at_least(cur, day, levels, scope)
    if not rows:
        return dg.SkipReason(f"no tenant at {levels[0]} or above in {key}")
    requests = []
    for tenant, level, _, _, _, assessment in rows:
        requests.append(
            dg.RunRequest(
                run_key=f"risk-{tenant}-{partition}-{level}-{asset_event.timestamp}",
                run_config=alert_run_config(
                    tenant,
                    level,
                    partition,
                    window_days=assessment.get("scope", {}).get("window_days") or WINDOW_DAYS,
                ),
            )
        )
    return requests
