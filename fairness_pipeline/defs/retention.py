"""The data lifecycle in Dagster: the daily retention run, and the re-run of the days an erasure changed.

``retention_schedule`` (on by default, 03:30 UTC unless ``FAIRNESS_RETENTION_HOUR``) runs ``retention_job``, which
applies the retention policy (``lifecycle.load_policy``) and records what it removed; a policy below the regulatory
minimum fails the run with the policy's message. ``erasure_recompute_sensor`` reads the days erasures marked
(``recompute_requests``) as ``late_events_sensor`` reads late events, with the same cursor rule and the same range of
days to re-run (``affected_range``: the days changed and every later window containing them).
"""

import json
import os
from datetime import UTC, date, datetime

import dagster as dg

from fairness_pipeline.defs.automation import COMMIT_LAG, rerun_request
from fairness_pipeline.defs.partitions import daily_partitions
from fairness_pipeline.defs.resources import FairnessDatabase

RETENTION_HOUR_ENV = "FAIRNESS_RETENTION_HOUR"


@dg.op(description="Delete the rows older than the retention policy allows, table by table, and record them.")
def apply_retention_op(context: dg.OpExecutionContext, database: FairnessDatabase) -> int:
    from fairness_pipeline.lifecycle import PolicyError, load_policy
    from fairness_pipeline.store.lifecycle import delete_expired

    try:
        policy = load_policy()
    except PolicyError as exc:
        raise dg.Failure(description=str(exc)) from exc
    with database.connect() as conn:
        removed = delete_expired(conn, policy.cutoffs(datetime.now(UTC).date()))
    total = sum(t.rows for t in removed)
    for t in removed:
        if t.rows:
            context.log.info(f"{t.table}: {t.rows} row(s) before {t.cutoff} deleted ({t.category})")
    context.add_output_metadata(
        {"rows_deleted": total, "policy": policy.source, **{f"rows_{t.table}": t.rows for t in removed}}
    )
    return total


@dg.job(description="Apply the retention policy (FAIRNESS_RETENTION_POLICY or the packaged one).")
def retention_job() -> None:
    apply_retention_op()


retention_schedule = dg.ScheduleDefinition(
    name="retention_schedule",
    job=retention_job,
    cron_schedule=f"30 {int(os.environ.get(RETENTION_HOUR_ENV, '3'))} * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Applies the retention policy daily (03:30 UTC unless FAIRNESS_RETENTION_HOUR).",
)


@dg.sensor(
    asset_selection=dg.AssetSelection.all(),
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Days an erasure changed re-run (their event layer), with every later window of the erased person's "
    "tenant containing them, as one backfill per batch. The cursor is the latest requested_at seen.",
)
def erasure_recompute_sensor(context: dg.SensorEvaluationContext, database: FairnessDatabase) -> dg.SensorResult:
    from fairness_pipeline.store.lifecycle import latest_recompute_request, recompute_requests

    now = datetime.now(UTC) - COMMIT_LAG
    with database.connect() as conn:
        if context.cursor is None:  # first tick: watch from here; requests made earlier are in the nightly history
            latest = latest_recompute_request(conn) or now
            return dg.SensorResult(cursor=json.dumps({"requested_at": latest.isoformat()}))
        after = datetime.fromisoformat(json.loads(context.cursor)["requested_at"])
        rows = recompute_requests(conn, after, now)
    if not rows:
        return dg.SensorResult(skip_reason=f"no recomputation asked for since {after.isoformat()}")
    first_partition = date.fromisoformat(daily_partitions.get_first_partition_key() or rows[0][0].isoformat())
    last_partition = date.fromisoformat(daily_partitions.get_last_partition_key() or rows[-1][0].isoformat())
    inside = [row for row in rows if first_partition <= row[0] <= last_partition]
    latest_seen = max(row[3] for row in rows)
    cursor = json.dumps({"requested_at": latest_seen.isoformat()})
    if not inside:
        return dg.SensorResult(skip_reason="the days asked for are outside the partitions", cursor=cursor)
    days, tenants = sorted({row[0] for row in inside}), sorted({row[1] for row in inside})
    request, (first_day, last_day) = rerun_request(context, days, tenants, last_partition, "erasure")
    context.log.info(
        f"recomputation asked for {len(days)} day(s) of {', '.join(tenants)}: re-running {first_day} .. {last_day}"
    )
    return dg.SensorResult(run_requests=[request], cursor=cursor)
