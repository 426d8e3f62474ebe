"""Jobs over the asset graph. A run has one partition range, so windows whose upstream days are missing are
served by two runs: ``event_days_job`` for the days the windows read, then ``fairness_job`` for the windows."""

from __future__ import annotations

import dagster as dg

from fairness_pipeline.defs.partitions import daily_partitions

EVENT_LAYER = dg.AssetSelection.groups("events") | dg.AssetSelection.assets("slate_concentration")
"""The per-day assets: observed, validated and summarised events, and the day's slates (an audit without a window),
so that a window's days all have their slates when its metrics run."""
ANALYSIS_LAYERS = dg.AssetSelection.all() - EVENT_LAYER
"""Everything computed over windows of the summarised event days: metrics, audits, risk and reports."""

fairness_job = dg.define_asset_job(
    "fairness_job",
    selection=dg.AssetSelection.all(),
    partitions_def=daily_partitions,
    description="The whole graph for a day or a range of days (single run per range).",
)

event_days_job = dg.define_asset_job(
    "event_days_job",
    selection=EVENT_LAYER,
    partitions_def=daily_partitions,
    description="Observe, validate and summarise events, and assess the slates, for a range of days.",
)

metrics_job = dg.define_asset_job(
    "metrics_job",
    selection=ANALYSIS_LAYERS,
    partitions_def=daily_partitions,
    description="Windows, impact ratios, audits, risk and reports for a range of days (their event days must be "
    "summarised).",
)
