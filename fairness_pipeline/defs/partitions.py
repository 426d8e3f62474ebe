"""The one daily partitioning shared by every asset: UTC days."""

from __future__ import annotations

import os
import warnings
from datetime import UTC, date, datetime, timedelta

import dagster as dg

PARTITIONS_START_ENV = "FAIRNESS_PARTITIONS_START"
DEFAULT_PARTITIONS_START = "2025-01-01"

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=os.environ.get(PARTITIONS_START_ENV, DEFAULT_PARTITIONS_START), timezone="UTC"
)

# Backfill policies and nonexistent-upstream mappings are beta in Dagster 1.13; the project relies on them.
warnings.filterwarnings(
    "ignore", category=dg.BetaWarning, message=".*(backfill_policy|allow_nonexistent_upstream_partitions).*"
)

single_run = dg.BackfillPolicy.single_run()
"""Every asset backfills a range of days in one run, looping over the days inside."""

PARTITION_WRITES_POOL = "fairness_partition_writes"
"""The Dagster concurrency pool of the assets that replace partitions' rows (limits in dagster.yaml). It bounds how
many such runs share the machine; what makes overlapping writes safe is ``store.partition_lock``."""


def partition_days(context: dg.AssetExecutionContext) -> list[date]:
    """The days of this run: one for a single partition, many for a single-run backfill."""
    return [date.fromisoformat(key) for key in context.partition_keys]


def day_bounds(day: date) -> dict[str, object]:
    """Query parameters of one UTC day."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return {"day": day, "day_start": start, "day_end": start + timedelta(days=1)}


downstream_automation = dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()
"""For assets below validation: materialise when upstream changes, never past a failed blocking check (blocking
checks only stop downstream steps of the same run; this also holds for automated runs)."""
