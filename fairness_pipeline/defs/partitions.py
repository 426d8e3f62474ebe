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

# Backfill policies, nonexistent-upstream and multi-partition mappings are beta in Dagster 1.13; the project relies on
# them.
warnings.filterwarnings(
    "ignore",
    category=dg.BetaWarning,
    message=".*(backfill_policy|allow_nonexistent_upstream_partitions|MultiPartitionMapping).*",
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


# --- tenants as a partition dimension (issue 17) ---------------------------------------------------------------------

TENANTS = "tenants"
"""The dynamic partitions definition's name: one partition per tenant, added by ingest or ``new_tenant_sensor``."""
DAY_DIMENSION, TENANT_DIMENSION = "day", "tenant"

tenant_partitions = dg.DynamicPartitionsDefinition(name=TENANTS)

tenant_day_partitions = dg.MultiPartitionsDefinition(
    {DAY_DIMENSION: daily_partitions, TENANT_DIMENSION: tenant_partitions}
)
"""A tenant-day: the unit of work of the per-tenant assets. Keys read ``2026-03-04|acme`` (dimensions in name order)."""


def tenant_day_mapping(day_mapping: dg.PartitionMapping) -> dg.MultiPartitionMapping:
    """``day_mapping`` (e.g. the window mapping) on the day dimension and the same tenant on the other: a tenant's
    window reads that tenant's days only."""
    return dg.MultiPartitionMapping(
        {
            DAY_DIMENSION: dg.DimensionPartitionMapping(DAY_DIMENSION, day_mapping),
            TENANT_DIMENSION: dg.DimensionPartitionMapping(TENANT_DIMENSION, dg.IdentityPartitionMapping()),
        }
    )


def tenant_day_key(tenant: str, day: date) -> str:
    """The partition key of one tenant-day."""
    return dg.MultiPartitionKey({DAY_DIMENSION: day.isoformat(), TENANT_DIMENSION: tenant})


def tenant_days(context: dg.AssetExecutionContext) -> list[tuple[str, date]]:
    """The (tenant, day) pairs of this run: one for a single tenant-day, many for a single-run backfill (a range of
    days of one or several tenants), sorted by tenant then day."""
    pairs = set()
    for key in context.partition_keys:
        dimensions = tenant_day_partitions.get_partition_key_from_str(key).keys_by_dimension
        pairs.add((dimensions[TENANT_DIMENSION], date.fromisoformat(dimensions[DAY_DIMENSION])))
    return sorted(pairs)
