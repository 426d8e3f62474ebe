"""The one way the asset modules declare an asset: the partitions (UTC days for the per-day event layer, tenant-days
for everything computed per tenant), a single-run backfill, the partition-writes pool and the downstream automation
condition, set here once; each module names its group."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dagster as dg

from fairness_pipeline.defs.partitions import (
    PARTITION_WRITES_POOL,
    daily_partitions,
    downstream_automation,
    single_run,
    tenant_day_partitions,
)


def daily_asset_factory(group: str, **defaults: Any) -> Callable[..., Callable]:
    """A decorator factory like ``dg.asset`` with the daily policies and ``group`` filled in; ``defaults`` (e.g.
    ``automation_condition=None``, ``partitions_def=tenant_day_partitions``) and per-asset arguments override them.
    The docstring is the UI description."""
    policies: dict[str, Any] = {
        "partitions_def": daily_partitions,
        "backfill_policy": single_run,
        "pool": PARTITION_WRITES_POOL,
        "automation_condition": downstream_automation,
        "group_name": group,
        **defaults,
    }

    def daily_asset(**arguments: Any) -> Callable:
        return dg.asset(**{**policies, **arguments})

    return daily_asset


def tenant_day_asset_factory(group: str, **defaults: Any) -> Callable[..., Callable]:
    """``daily_asset_factory`` with tenant-day partitions: one tenant's window ending on each day."""
    return daily_asset_factory(group, partitions_def=tenant_day_partitions, **defaults)


def daily_multi_asset(**arguments: Any) -> Callable:
    """``dg.multi_asset`` with the daily partitions, single-run backfill and partition-writes pool."""
    return dg.multi_asset(
        partitions_def=daily_partitions, backfill_policy=single_run, pool=PARTITION_WRITES_POOL, **arguments
    )
