"""The partitions of the graph: UTC days for the event layer (every tenant's events of a day), tenant-days for what
is computed per tenant, and the mappings and keys between them."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import dagster as dg
from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset

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
    message=".*(backfill_policy|allow_nonexistent_upstream_partitions|MultiPartitionMapping|"
    "MultiToSingleDimensionPartitionMapping).*",
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


# --- tenants as a partition dimension ---------------------------------------------------------------------

TENANTS = "tenants"
"""The dynamic partitions definition's name: one partition per tenant, added by ingest or ``new_tenant_sensor``."""
DAY_DIMENSION, TENANT_DIMENSION = "day", "tenant"

tenant_partitions = dg.DynamicPartitionsDefinition(name=TENANTS)

tenant_day_partitions = dg.MultiPartitionsDefinition(
    {DAY_DIMENSION: daily_partitions, TENANT_DIMENSION: tenant_partitions}
)
"""A tenant-day: the unit of work of the per-tenant assets. Keys read ``2026-03-04|acme`` (dimensions in name order)."""


same_day_mapping = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name=DAY_DIMENSION)
"""A tenant-day reads the per-day event layer of its day: the event layer is one partition per day for every tenant.
Lineage names the day only (Dagster maps no time window from a tenant-day onto a daily asset): the window's earlier
days, and the trends' earlier windows, are read and checked through the store, which names any day not yet summarised.
The assets' eager condition thus waits for its own day's event layer only, so a new tenant's latest day runs at
once."""


def tenant_day_key(tenant: str, day: date) -> str:
    """The partition key of one tenant-day."""
    return dg.MultiPartitionKey({DAY_DIMENSION: day.isoformat(), TENANT_DIMENSION: tenant})


def split_partition_key(key: str) -> tuple[str | None, date]:
    """(tenant, day) of a tenant-day key such as ``2026-03-04|acme``; (None, day) of a daily key."""
    if "|" not in key:
        return None, date.fromisoformat(key)
    dimensions = tenant_day_partitions.get_partition_key_from_str(key).keys_by_dimension
    return dimensions[TENANT_DIMENSION], date.fromisoformat(dimensions[DAY_DIMENSION])


def tenant_days(context: dg.AssetExecutionContext) -> list[tuple[str, date]]:
    """The (tenant, day) pairs of this run: one for a single tenant-day, many for a single-run backfill (a range of
    days of one or several tenants), sorted by tenant then day."""
    return sorted(split_partition_key(key) for key in context.partition_keys)  # type: ignore[type-var]


def range_keys(
    partitions_def: dg.PartitionsDefinition, first_day: date, last_day: date, tenants: list[str]
) -> list[str]:
    """The partition keys of ``first_day .. last_day``: the days of a daily asset, each of ``tenants``' days of a
    tenant-day asset."""
    days = [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        return [tenant_day_key(tenant, day) for tenant in tenants for day in days]
    return [day.isoformat() for day in days]


def range_subset(
    asset_graph, asset_keys: Iterable[dg.AssetKey], first_day: date, last_day: date, tenants: list[str]
) -> AssetGraphSubset:
    """The ``AssetGraphSubset`` of ``asset_keys`` over ``first_day .. last_day`` (:func:`range_keys`: the days of
    the daily assets, ``tenants``' days of the tenant-day assets)."""
    subsets = {}
    for key in asset_keys:
        partitions = asset_graph.get(key).partitions_def
        subsets[key] = partitions.subset_with_partition_keys(range_keys(partitions, first_day, last_day, tenants))
    return AssetGraphSubset(partitions_subsets_by_asset_key=subsets)
