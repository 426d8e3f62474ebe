"""Audit assets: LL144 scoring rates, rank exposure, concentrated slates and impact-ratio trends, per UTC day.

``search_daily_aggregates`` (event layer) sums each day's searches per dimension cell once, and each tenant's exposure
sums of the day; ``rank_exposure`` adds up 30 days of the latter and ``slate_concentration`` reads one day of the
former. ``scoring_rate_ratios`` de-duplicates the per-day candidate arrays written with ``candidate_daily_stages``;
``fairness_trends`` reads the stored impact ratios, counts this week's candidates and reads last week's counts as
stored a week before. The store (``fairness_pipeline.store.audits``) reads and writes, the statistics are those of
``fairness_pipeline.audits``, and every asset replaces its partition's rows, so re-runs never duplicate.
"""

import dataclasses
import time
from datetime import timedelta

import dagster as dg
import pandas as pd

from fairness_pipeline.audits import exposure, scoring, slates, trends
from fairness_pipeline.defs.config import (
    DEFAULT_BOOTSTRAP_SEED,
    HEADLINE_STAGE_PAIR,
    AuditConfig,
    SlateConfig,
    TrendConfig,
    WindowConfig,
    previous_day_mapping,
)
from fairness_pipeline.defs.declare import daily_asset_factory, tenant_day_asset_factory
from fairness_pipeline.defs.metadata import (
    markdown_preview,
    numbers_metadata,
    per_tenant,
    record_day,
    record_tenant_day,
    table_metadata,
    table_schema,
    worst_first,
)
from fairness_pipeline.defs.partitions import (
    day_bounds,
    partition_days,
    same_day_mapping,
    tenant_days,
)
from fairness_pipeline.defs.resources import FairnessDatabase
from fairness_pipeline.events.vocabulary import DIMENSIONS
from fairness_pipeline.metrics.window import TABLE_KEYS, AnalysisSettings
from fairness_pipeline.store import analysis, audits
from fairness_pipeline.store.partition_lock import partition_transaction

__all__ = ["AuditConfig", "SlateConfig", "TrendConfig", "WindowConfig"]

GROUP = "audits"
WEEK_DAYS = 7
audit_asset = daily_asset_factory(GROUP)
"""The per-day audit inputs and slates: one partition per day for every tenant, like the event layer."""
tenant_audit_asset = tenant_day_asset_factory(GROUP)
"""The window audits: one tenant's window ending on each day."""

DEFAULT_EXPOSURE_LAYOUT = exposure.ExposureLayout.build(AnalysisSettings())
"""The layout whose day sums the event layer stores (rank_exposure's default settings; others are computed on use)."""


def _flag(frame: pd.DataFrame, column: str) -> pd.Series:
    """A nullable boolean column as plain booleans (missing = False)."""
    if frame.empty:
        return pd.Series(False, index=frame.index, dtype=bool)
    return frame[column].astype("boolean").fillna(False).astype(bool)


def _min_or_nan(values: list[float]) -> float:
    defined = [float(v) for v in values if pd.notna(v)]
    return min(defined, default=float("nan"))


def _by_tenant(frame: pd.DataFrame, column: str, how: str) -> dict:
    """Per tenant, ``how`` (min, max, sum) of ``column``; {} for an empty frame."""
    if frame.empty:
        return {}
    return frame.groupby("tenant_id", observed=True)[column].agg(how).to_dict()


@audit_asset(
    deps=[dg.AssetDep("validated_selection_events", partition_mapping=previous_day_mapping)],
    group_name="events",
    kinds={"postgres"},
)
def search_daily_aggregates(context: dg.AssetExecutionContext, database: FairnessDatabase) -> dg.MaterializeResult:
    """Per tenant, day, search and combination of dimension values: sums over the search's shown impressions (first
    shown event per candidate; a search belongs to the day of its first shown event), so that exposure windows and
    slate audits read aggregates instead of events; and each tenant's exposure sums of the day with their bootstrap
    replicates (default settings), which exposure windows add up."""
    per_day = []
    with database.connect() as conn:
        for day in partition_days(context):
            with partition_transaction(conn, "search_daily_aggregates", day) as cur:
                rows, searches = audits.replace_search_day(cur, day_bounds(day), exposure.DEFAULT_TOP_K)
                summed = audits.store_exposure_day_sums(
                    cur, DEFAULT_EXPOSURE_LAYOUT, exposure.DEFAULT_N_BOOT, DEFAULT_BOOTSTRAP_SEED, day
                )
            numbers = {"aggregate_rows": rows, "searches": searches, "tenants_with_exposure_sums": summed}
            per_day.append({"day": day.isoformat(), **numbers})
            record_day(
                context,
                day,
                {"dagster/row_count": rows, "preview": markdown_preview(pd.DataFrame(per_day[-1:])), **numbers},
            )
    total = sum(d["aggregate_rows"] for d in per_day)
    return dg.MaterializeResult(
        metadata=table_metadata(
            total,
            table_schema(
                audits.SEARCH_DAILY_AGGREGATES, extra=[audits.SEARCH_DAILY_AGGREGATES_DAYS, audits.EXPOSURE_DAY_SUMS]
            ),
            markdown_preview(pd.DataFrame(per_day)),
            {"aggregate_rows": total, "searches": sum(d["searches"] for d in per_day)},
        )
    )


SCORING_PREVIEW_COLUMNS = [
    "tenant_id",
    "dimension",
    "group",
    "n",
    "above_median",
    "scoring_rate",
    "impact_ratio",
    "p_adjusted",
    "significant",
]


@tenant_audit_asset(
    deps=[dg.AssetDep("candidate_daily_stages", partition_mapping=same_day_mapping)], kinds={"postgres", "scipy"}
)
def scoring_rate_ratios(
    context: dg.AssetExecutionContext, database: FairnessDatabase, config: WindowConfig
) -> dg.MaterializeResult:
    """LL144 scoring rates: the share of each group's candidates scoring above the window's median score (first
    shown event per candidate), and their impact ratios with the tests, intervals and small-sample rules of
    selection-rate impact ratios, per tenant, dimension and pairwise intersection."""
    settings = config.settings()
    written, lowest, adverse, significant = 0, [], 0, 0
    last = pd.DataFrame()
    with database.connect() as conn:
        for tenant, window_end in tenant_days(context):
            with partition_transaction(conn, "scoring_rate_ratios", window_end, tenant) as cur:
                cells = audits.scoring_cells(cur, *settings.window(window_end), tenant_id=tenant)
                table = scoring.scoring_rate_ratios(cells, settings) if len(cells) else pd.DataFrame()
                day_written = audits.replace_scoring(cur, window_end, settings.window_days, table, tenant)
            written += day_written
            day_numbers: dict = {"windows": 1, "adverse_scoring_groups": 0, "significant_adverse_scoring_groups": 0}
            findings = pd.DataFrame()
            if len(table):
                compared = table[~table["is_reference"].astype(bool)]
                lowest.append(compared["impact_ratio"].min())
                flagged = _flag(table, "adverse_impact")
                adverse += int(flagged.sum())
                significant += int((flagged & _flag(table, "significant")).sum())
                last = table
                findings = table[flagged]
                day_numbers = {
                    "windows": 1,
                    **numbers_metadata(
                        {
                            "lowest_scoring_impact_ratio": _min_or_nan([compared["impact_ratio"].min()]),
                            "adverse_scoring_groups": int(flagged.sum()),
                            "significant_adverse_scoring_groups": int((flagged & _flag(table, "significant")).sum()),
                            "median_score": float(table["median_score"].median()),
                        }
                    ),
                    **per_tenant(_by_tenant(compared, "impact_ratio", "min"), "lowest_scoring_impact_ratio"),
                    **per_tenant(_by_tenant(table, "median_score", "median"), "median_score"),
                    **per_tenant(flagged.groupby(table["tenant_id"]).sum().to_dict(), "adverse_scoring_groups"),
                }
            record_tenant_day(
                context,
                tenant,
                window_end,
                {
                    "dagster/row_count": day_written,
                    "preview": markdown_preview(worst_first(findings, "impact_ratio", SCORING_PREVIEW_COLUMNS)),
                    **day_numbers,
                },
            )
    findings = last[_flag(last, "adverse_impact")] if len(last) else last
    numbers = {
        "windows": len(tenant_days(context)),
        "lowest_scoring_impact_ratio": _min_or_nan(lowest),
        "adverse_scoring_groups": adverse,
        "significant_adverse_scoring_groups": significant,
        "median_score": float(last["median_score"].median()) if len(last) else float("nan"),
    }
    preview = markdown_preview(worst_first(findings, "impact_ratio", SCORING_PREVIEW_COLUMNS))
    return dg.MaterializeResult(
        metadata=table_metadata(written, table_schema(audits.SCORING_RATE_RATIOS), preview, numbers)
    )


EXPOSURE_PREVIEW_COLUMNS = [
    "tenant_id",
    "dimension",
    "group",
    "searches",
    "exposure_ratio",
    "ratio_ci_low",
    "ratio_ci_high",
    "significant",
    "skew_at_k",
    "merit_ratio",
    "merit_significant",
]


@tenant_audit_asset(
    deps=[dg.AssetDep(search_daily_aggregates, partition_mapping=same_day_mapping)], kinds={"postgres", "numpy"}
)
def rank_exposure(
    context: dg.AssetExecutionContext, database: FairnessDatabase, config: AuditConfig
) -> dg.MaterializeResult:
    """Position-discounted exposure (1 / log2(1 + rank)) per group over the window's shown impressions, exposure
    ratios against the best-exposed group, skew@10 and exposure relative to score (treatment and merit ratios), with
    intervals and p-values from a seeded, vectorised bootstrap over searches."""
    settings = config.settings()
    written, lowest, lowest_merit, low, significant, searches = 0, [], [], 0, 0, 0
    sums_seconds = exposure_seconds = 0.0
    days_computed = 0
    layout = exposure.ExposureLayout.build(settings)
    missing_all: dict[str, list[str]] = {}
    last = pd.DataFrame()
    with database.connect() as conn:
        for tenant, window_end in tenant_days(context):
            with partition_transaction(conn, "rank_exposure", window_end, tenant) as cur:
                missing = audits.missing_search_days(cur, *settings.window(window_end))
                started = time.perf_counter()
                sums, computed = audits.exposure_window_sums(
                    cur, layout, config.n_boot, config.bootstrap_seed, *settings.window(window_end), tenant
                )
                sums_seconds += time.perf_counter() - started
                started = time.perf_counter()
                table = exposure.exposure_table(sums, layout, settings, n_boot=config.n_boot)
                exposure_seconds += time.perf_counter() - started
                day_written = audits.replace_exposure(
                    cur, window_end, settings.window_days, exposure.DEFAULT_TOP_K, table, tenant
                )
            if missing:
                missing_all[window_end.isoformat()] = [d.isoformat() for d in missing]
                context.log.warning(
                    f"window ending {window_end}: search_daily_aggregates lacks {len(missing)} day(s): "
                    f"{', '.join(d.isoformat() for d in missing)}"
                )
            days_computed += len(computed)
            window_searches = sum(s.searches for s in sums.values())
            context.log.info(f"{window_end}: {window_searches} searches, {len(table)} rows")
            written += day_written
            searches += window_searches
            day_numbers: dict = {
                "windows": 1,
                "n_boot": config.n_boot,
                "day_sums_computed": len(computed),
                "windows_missing_upstream_days": int(bool(missing)),
                "low_exposure_groups": 0,
                "significant_low_exposure_groups": 0,
            }
            findings = pd.DataFrame()
            if len(table):
                lowest.append(table["exposure_ratio"].min())
                lowest_merit.append(table["merit_ratio"].min())
                flagged = _flag(table, "low_exposure")
                low += int(flagged.sum())
                significant += int((flagged & _flag(table, "significant")).sum())
                last = table
                findings = table[flagged]
                day_numbers.update(
                    numbers_metadata(
                        {
                            "lowest_exposure_ratio": _min_or_nan([table["exposure_ratio"].min()]),
                            "lowest_merit_ratio": _min_or_nan([table["merit_ratio"].min()]),
                            "low_exposure_groups": int(flagged.sum()),
                            "significant_low_exposure_groups": int((flagged & _flag(table, "significant")).sum()),
                        }
                    )
                )
                day_numbers = {
                    **day_numbers,
                    **per_tenant(_by_tenant(table, "exposure_ratio", "min"), "lowest_exposure_ratio"),
                    **per_tenant(_by_tenant(table, "merit_ratio", "min"), "lowest_merit_ratio"),
                    **per_tenant({t[0]: s.searches for t, s in sums.items()}, "searches"),
                }
            record_tenant_day(
                context,
                tenant,
                window_end,
                {
                    "dagster/row_count": day_written,
                    "preview": markdown_preview(worst_first(findings, "exposure_ratio", EXPOSURE_PREVIEW_COLUMNS)),
                    "searches": window_searches,
                    "missing_upstream_day_count": len(missing),
                    **day_numbers,
                },
            )
    findings = last[_flag(last, "low_exposure")] if len(last) else last
    numbers = {
        "windows": len(tenant_days(context)),
        "searches": searches,
        "lowest_exposure_ratio": _min_or_nan(lowest),
        "lowest_merit_ratio": _min_or_nan(lowest_merit),
        "low_exposure_groups": low,
        "significant_low_exposure_groups": significant,
        "n_boot": config.n_boot,
        "day_sums_seconds": round(sums_seconds, 3),
        "day_sums_computed": days_computed,
        "exposure_seconds": round(exposure_seconds, 3),
        "windows_missing_upstream_days": len(missing_all),
    }
    preview = markdown_preview(worst_first(findings, "exposure_ratio", EXPOSURE_PREVIEW_COLUMNS))
    metadata = table_metadata(written, table_schema(audits.RANK_EXPOSURE), preview, numbers)
    if missing_all:
        metadata["missing_upstream_days"] = dg.MetadataValue.json(missing_all)
    return dg.MaterializeResult(metadata=metadata)


SLATE_PREVIEW_COLUMNS = [
    "tenant_id",
    "day",
    "dimension",
    "assessed",
    "concentrated",
    "concentrated_share",
    "expected_share",
    "excess_significant",
    "top_group",
]


@audit_asset(deps=[search_daily_aggregates], kinds={"postgres", "scipy"})
def slate_concentration(
    context: dg.AssetExecutionContext, database: FairnessDatabase, config: SlateConfig
) -> dg.MaterializeResult:
    """Per tenant, day and dimension: the number and share of searches whose shown slate has more than 70% of its
    candidates from one group, the share expected by chance, and which groups dominate."""
    written, highest, concentrated, assessed, significant = 0, [], 0, 0, 0
    shown_rows = []
    with database.connect() as conn:
        for day in partition_days(context):
            with partition_transaction(conn, "slate_concentration", day) as cur:
                aggregates = audits.exposure_window(cur, day, day).assign(day=day)
                result = slates.slate_concentration(
                    aggregates,
                    keys=("tenant_id", "day"),
                    dimensions=DIMENSIONS,
                    pairs=config.intersections,
                    concentration=config.concentration,
                    min_slate=config.min_slate,
                    alpha=config.alpha,
                )
                day_written = audits.replace_slates(
                    cur, day, config.concentration, config.min_slate, result.summary, result.dominant
                )
            summary = result.summary
            written += day_written
            day_numbers: dict = {
                "days": 1,
                "concentrated_slates": 0,
                "assessed_slate_dimensions": 0,
                "significant_excess_tables": 0,
            }
            findings = pd.DataFrame()
            if len(summary):
                highest.append(summary["concentrated_share"].max())
                concentrated += int(summary["concentrated"].sum())
                assessed += int(summary["assessed"].sum())
                significant += int(_flag(summary, "excess_significant").sum())
                findings = summary[summary["concentrated"] > 0]
                shown_rows.append(findings)
                day_numbers = {
                    "days": 1,
                    **numbers_metadata(
                        {
                            "concentrated_share": float(summary["concentrated_share"].max()),
                            "concentrated_slates": int(summary["concentrated"].sum()),
                            "assessed_slate_dimensions": int(summary["assessed"].sum()),
                            "significant_excess_tables": int(_flag(summary, "excess_significant").sum()),
                        }
                    ),
                    **per_tenant(_by_tenant(summary, "concentrated_share", "max"), "concentrated_share"),
                    **per_tenant(_by_tenant(summary, "concentrated", "sum"), "concentrated_slates"),
                }
            record_day(
                context,
                day,
                {
                    "dagster/row_count": day_written,
                    "preview": markdown_preview(
                        worst_first(findings, "concentrated_share", SLATE_PREVIEW_COLUMNS, ascending=False)
                    ),
                    **day_numbers,
                },
            )
    findings = pd.concat(shown_rows, ignore_index=True) if shown_rows else pd.DataFrame()
    numbers = {
        "days": len(partition_days(context)),
        "concentrated_share": max((float(v) for v in highest if pd.notna(v)), default=float("nan")),
        "concentrated_slates": concentrated,
        "assessed_slate_dimensions": assessed,
        "significant_excess_tables": significant,
    }
    preview = markdown_preview(worst_first(findings, "concentrated_share", SLATE_PREVIEW_COLUMNS, ascending=False))
    schema = table_schema(audits.SLATE_CONCENTRATION, extra=[audits.SLATE_CONCENTRATION_GROUPS])
    return dg.MaterializeResult(metadata=table_metadata(written, schema, preview, numbers))


TREND_PREVIEW_COLUMNS = [
    "tenant_id",
    "stage_pair",
    "dimension",
    "group",
    "latest_ratio",
    "slope_per_day",
    "ratio_previous",
    "ratio_current",
    "p_adjusted",
    "worsening",
    "approaching_threshold",
]


def _trend_findings(table: pd.DataFrame) -> pd.DataFrame:
    """Worsening or approaching series, the headline stage pair first, then worsening, then by adjusted p."""
    if table.empty:
        return pd.DataFrame()
    findings = table[_flag(table, "worsening") | _flag(table, "approaching_threshold")]
    return findings.assign(headline=findings["stage_pair"] != HEADLINE_STAGE_PAIR).sort_values(
        ["headline", "worsening", "p_adjusted"], ascending=[True, False, True]
    )[TREND_PREVIEW_COLUMNS]


@tenant_audit_asset(
    deps=[
        "impact_ratios",
        dg.AssetDep("candidate_daily_stages", partition_mapping=same_day_mapping),
    ],
    kinds={"postgres", "scipy"},
)
def fairness_trends(
    context: dg.AssetExecutionContext, database: FairnessDatabase, config: TrendConfig
) -> dg.MaterializeResult:
    """Per tenant, stage pair, dimension and group: the impact-ratio series of the daily windows ending in the last
    14 days with its slope ('approaching threshold': above 0.80 and falling towards it), and the week-over-week
    change between the non-overlapping 7-day windows with a significance test ('worsening')."""
    settings = config.settings()
    weekly = dataclasses.replace(settings, window_days=WEEK_DAYS)
    written, worsening, approaching, reused_weeks = 0, 0, 0, 0
    missing_all: dict[str, list[str]] = {}
    last = pd.DataFrame()
    with database.connect() as conn:
        for tenant, as_of in tenant_days(context):
            first_day = as_of - timedelta(days=trends.DEFAULT_SLOPE_WINDOWS - 1)
            with partition_transaction(conn, "fairness_trends", as_of, tenant) as cur:
                missing = analysis.missing_summary_days(cur, first_day, as_of)
                series = audits.impact_series(cur, first_day, as_of, settings.window_days, tenant)
                # the earlier week first: the days and weeks this writes are locked in ascending order
                previous, current = audits.trend_week_counts(cur, weekly, as_of, tenant_id=tenant)
                table = pd.DataFrame()
                if len(series) or len(current):
                    table = trends.fairness_trends(
                        series,
                        current,
                        previous,
                        settings,
                        as_of=as_of,
                        keys=TABLE_KEYS,
                        horizon_days=config.horizon_days,
                        min_points=config.min_points,
                    )
                day_written = audits.replace_trends(cur, as_of, settings.window_days, table, tenant)
            if missing:
                missing_all[as_of.isoformat()] = [d.isoformat() for d in missing]
                context.log.warning(f"trends as of {as_of}: candidate_daily_stages lacks {len(missing)} day(s)")
            reused_weeks += int(previous.attrs["stored"])
            written += day_written
            day_numbers: dict = {
                "windows": 1,
                "previous_weeks_reused": int(previous.attrs["stored"]),
                "windows_missing_upstream_days": int(bool(missing)),
                "worsening_series": 0,
                "approaching_threshold_series": 0,
            }
            if len(table):
                flagged_worse = _flag(table, "worsening")
                flagged_near = _flag(table, "approaching_threshold")
                worsening += int(flagged_worse.sum())
                approaching += int(flagged_near.sum())
                last = table
                day_numbers = {
                    **day_numbers,
                    "worsening_series": int(flagged_worse.sum()),
                    "approaching_threshold_series": int(flagged_near.sum()),
                    **per_tenant(flagged_worse.groupby(table["tenant_id"]).sum().to_dict(), "worsening_series"),
                    **per_tenant(
                        flagged_near.groupby(table["tenant_id"]).sum().to_dict(), "approaching_threshold_series"
                    ),
                }
            record_tenant_day(
                context,
                tenant,
                as_of,
                {
                    "dagster/row_count": day_written,
                    "preview": markdown_preview(_trend_findings(table)),
                    "missing_upstream_day_count": len(missing),
                    **day_numbers,
                },
            )
    numbers = {
        "windows": len(tenant_days(context)),
        "previous_weeks_reused": reused_weeks,
        "worsening_series": worsening,
        "approaching_threshold_series": approaching,
        "windows_missing_upstream_days": len(missing_all),
    }
    metadata = table_metadata(
        written, table_schema(audits.FAIRNESS_TRENDS), markdown_preview(_trend_findings(last)), numbers
    )
    if missing_all:
        metadata["missing_upstream_days"] = dg.MetadataValue.json(missing_all)
    return dg.MaterializeResult(metadata=metadata)
