"""Materialise the graph for a range of days from Python (the CLI's ``run``), recorded in the Dagster instance.

A window ending on day D needs the candidate days D-29 .. D. One run has one partition range, so a range of days is
served by up to two runs: first the event layer for every day the windows read that is not yet summarised (and for
the requested days themselves, whose events may have changed), then the metric layer for the requested days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

DAGSTER_RANGE_START_TAG = "dagster/asset_partition_range_start"
DAGSTER_RANGE_END_TAG = "dagster/asset_partition_range_end"


@dataclass(frozen=True)
class RunSummary:
    job_name: str
    first_day: date
    last_day: date
    run_id: str
    success: bool


def days_to_summarise(summarised: set[date], first_day: date, last_day: date, window_days: int) -> tuple[date, date]:
    """The contiguous range of event days to (re)materialise before computing windows ``first_day .. last_day``."""
    earliest_needed = first_day - timedelta(days=window_days - 1)
    lacking = [
        earliest_needed + timedelta(days=i)
        for i in range((first_day - earliest_needed).days)
        if earliest_needed + timedelta(days=i) not in summarised
    ]
    return (min(lacking) if lacking else first_day), last_day


METRIC_ASSETS = (
    "selection_rate_frames",
    "impact_ratios",
    "bias_metrics",
    "scoring_rate_ratios",
    "rank_exposure",
    "fairness_trends",
    "risk_classification",
    "fairness_reports",
)
"""Assets whose config takes ``window_days`` (``slate_concentration`` is per day and has no window)."""


def run_range(instance, first_day: date, last_day: date, *, window_days: int = 30, database=None) -> list[RunSummary]:
    """Materialise ``first_day .. last_day`` (and the event days their windows lack) through Dagster.

    ``database`` is a ``FairnessDatabase`` resource (default: FAIRNESS_DATABASE_URL or the embedded server).
    """
    from fairness_pipeline.definitions import build_definitions
    from fairness_pipeline.defs.partitions import daily_partitions
    from fairness_pipeline.defs.resources import FairnessDatabase
    from fairness_pipeline.store import analysis as q

    database = database or FairnessDatabase()
    defs = build_definitions(database)

    if last_day < first_day:
        raise ValueError(f"--end {last_day} is before --start {first_day}")
    partitions_start = daily_partitions.start.date()
    if first_day < partitions_start:
        raise ValueError(
            f"--start {first_day} is before the first partition {partitions_start} (FAIRNESS_PARTITIONS_START)"
        )

    with database.connect() as conn, conn.cursor() as cur:
        cur.execute(q.SUMMARISED_DAYS, {"first_day": first_day - timedelta(days=window_days), "last_day": last_day})
        summarised = {row[0] for row in cur.fetchall()}
    event_first, event_last = days_to_summarise(summarised, first_day, last_day, window_days)
    event_first = max(event_first, partitions_start)

    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # the instance keeps the full event log
    window_config = {"ops": {name: {"config": {"window_days": window_days}} for name in METRIC_ASSETS}, **quiet}
    summaries = []
    for job_name, start, end, run_config in (
        ("event_days_job", event_first, event_last, quiet),
        ("metrics_job", first_day, last_day, window_config),
    ):
        result = defs.resolve_job_def(job_name).execute_in_process(
            run_config=run_config,
            instance=instance,
            tags={DAGSTER_RANGE_START_TAG: start.isoformat(), DAGSTER_RANGE_END_TAG: end.isoformat()},
            raise_on_error=False,
        )
        summaries.append(RunSummary(job_name, start, end, result.run_id, result.success))
        if not result.success:
            break
    return summaries
