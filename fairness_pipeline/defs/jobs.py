"""Jobs over the asset graph. The event layer is partitioned by UTC day (every tenant's events of the day at once),
everything computed per tenant by tenant-day, so a range is served by two jobs: ``event_days_job`` for the days the
windows read, then ``metrics_job`` for each tenant's windows."""

from __future__ import annotations

import dagster as dg

EVENT_LAYER = dg.AssetSelection.groups("events") | dg.AssetSelection.assets("slate_concentration")
"""The per-day assets: observed, validated and summarised events, and the day's slates (an audit without a window),
one partition per UTC day for every tenant."""
ANALYSIS_LAYERS = dg.AssetSelection.all() - EVENT_LAYER
"""Everything computed per tenant over windows of the summarised event days: metrics, audits, risk and reports, one
partition per tenant-day."""

event_days_job = dg.define_asset_job(
    "event_days_job",
    selection=EVENT_LAYER,
    description="Observe, validate and summarise events, and assess the slates, for a day or a range of days (every "
    "tenant; single run per range).",
)

metrics_job = dg.define_asset_job(
    "metrics_job",
    selection=ANALYSIS_LAYERS,
    description="Windows, impact ratios, audits, risk and reports of tenant-days (single run per range of one "
    "tenant's days; their event days must be summarised).",
)
