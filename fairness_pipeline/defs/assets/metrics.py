"""Metric-layer assets: selection-rate frames over 30-day windows, impact ratios, seed-shaped bias metrics."""

import dataclasses
import json
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pandas as pd
from psycopg2.extras import execute_values
from pydantic import Field

from fairness_pipeline.defs.metadata import column_schema, markdown_preview, table_metadata
from fairness_pipeline.defs.partitions import (
    PARTITION_WRITES_POOL,
    daily_partitions,
    downstream_automation,
    partition_days,
    single_run,
    window_mapping,
)
from fairness_pipeline.defs.resources import FairnessDatabase
from fairness_pipeline.metrics import selection_rates
from fairness_pipeline.metrics.impact import IMPACT_COLUMNS
from fairness_pipeline.metrics.window import (
    DEFAULT_ANALYSIS,
    HEADLINE_STAGE_PAIR,
    TABLE_KEYS,
    AnalysisSettings,
    group_counts,
    impacts_for_counts,
)
from fairness_pipeline.queries import analysis as q
from fairness_pipeline.store.partition_lock import partition_transaction


class WindowConfig(dg.Config):
    """Analysis settings of fairness-methods.md; the defaults are ``metrics.window.DEFAULT_ANALYSIS``.

    ``window_days`` may shorten the window (tests do) but not lengthen it past the code location's window, from
    which ``window_mapping`` declares the upstream days: lineage then always covers the days a run reads.
    """

    window_days: int = Field(default=DEFAULT_ANALYSIS.window_days, ge=1, le=DEFAULT_ANALYSIS.window_days)
    alpha: float = DEFAULT_ANALYSIS.alpha
    threshold: float = DEFAULT_ANALYSIS.threshold
    min_share: float = DEFAULT_ANALYSIS.min_share
    min_sample: int = DEFAULT_ANALYSIS.min_sample

    def settings(self) -> AnalysisSettings:
        own = {name: getattr(self, name) for name in WindowConfig.model_fields}
        return dataclasses.replace(DEFAULT_ANALYSIS, **own)


def missing_summary_days(cur, first_day: date, last_day: date) -> list[date]:
    """Days of the window whose candidate_daily_stages partition has not been materialised."""
    cur.execute(q.SUMMARISED_DAYS, {"first_day": first_day, "last_day": last_day})
    present = {row[0] for row in cur.fetchall()}
    days = [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]
    return [d for d in days if d not in present]


def window_cells(cur, settings: AnalysisSettings, window_end: date, tenant_id: str | None = None) -> pd.DataFrame:
    """Candidate counts of the window per tenant, stage pair and dimension cell (the SQL does the counting)."""
    first_day, last_day = settings.window(window_end)
    cur.execute(q.WINDOW_CELLS, {**pair_arrays(settings), "first_day": first_day, "last_day": last_day,
                                 "tenant_id": tenant_id})  # fmt: skip
    return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


def pair_arrays(settings: AnalysisSettings) -> dict[str, list[str]]:
    return {
        "pair_names": settings.stage_pair_names,
        "baselines": [b for b, _ in settings.stage_pairs],
        "selections": [s for _, s in settings.stage_pairs],
    }


def _rows(frame: pd.DataFrame, columns: list[str], prefix: tuple) -> list[tuple]:
    """Tuples for execute_values with NaN/NA as NULL and numpy scalars as Python values (groups, not events)."""
    clean = frame[columns].astype(object).where(frame[columns].notna(), None)
    return [prefix + tuple(v.item() if hasattr(v, "item") else v for v in row) for row in clean.itertuples(False)]


FRAME_SCHEMA = column_schema(
    [
        ("window_end", "date", "last day of the window (the partition)"),
        ("tenant_id, stage_pair, dimension, group_value", "text", "which table and group"),
        ("n, x", "bigint", "candidates in the population, selected"),
        ("selection_rate, overall_rate", "double", "x / n per group and overall (fairlearn MetricFrame)"),
        ("demographic_parity_ratio, _difference", "double", "min/max and max-min of the group rates"),
    ]
)


@dg.asset(
    deps=[dg.AssetDep("candidate_daily_stages", partition_mapping=window_mapping)],
    automation_condition=downstream_automation,
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    pool=PARTITION_WRITES_POOL,
    group_name="metrics",
    kinds={"postgres", "fairlearn"},
    description="Selection rates per tenant, stage pair, dimension and pairwise intersection for the window ending "
    "on the partition day, with demographic parity, from fairlearn MetricFrame on aggregated counts.",
)
def selection_rate_frames(
    context: dg.AssetExecutionContext, database: FairnessDatabase, config: WindowConfig
) -> dg.MaterializeResult:
    settings = config.settings()
    rows_written, missing_all, headline = 0, {}, []
    last_frames = pd.DataFrame()
    with database.connect() as conn:
        for window_end in partition_days(context):
            with partition_transaction(conn, "selection_rate_frames", window_end) as cur:
                missing = missing_summary_days(cur, *settings.window(window_end))
                if missing:
                    missing_all[window_end.isoformat()] = [d.isoformat() for d in missing]
                    context.log.warning(
                        f"window ending {window_end}: candidate_daily_stages lacks {len(missing)} day(s): "
                        f"{', '.join(d.isoformat() for d in missing)}; materialise them, e.g. "
                        f"`fairness-pipeline run --start {missing[0]} --end {window_end}`"
                    )
                counts = group_counts(window_cells(cur, settings, window_end), settings)
                frames = selection_rates.selection_rate_frames(counts, keys=TABLE_KEYS)
                cur.execute(q.DELETE_FRAMES_WINDOW, {"window_end": window_end})
                columns = ["tenant_id", "stage_pair", "dimension", "group", "n", "x", "selection_rate",
                           "overall_rate", "dp_ratio", "dp_difference", "undefined_reason"]  # fmt: skip
                execute_values(cur, q.INSERT_FRAMES, _rows(frames, columns, (window_end, settings.window_days)))
            rows_written += len(frames)
            last_frames = frames
            head = frames[
                (frames["stage_pair"] == HEADLINE_STAGE_PAIR) & ~frames["dimension"].str.contains("+", regex=False)
            ]
            headline.append(head["dp_ratio"].min() if len(head) else None)
    preview = last_frames[last_frames["stage_pair"] == HEADLINE_STAGE_PAIR].drop(columns=["undefined_reason"])
    numbers = {
        "windows": len(partition_days(context)),
        "lowest_demographic_parity_ratio": float(min((h for h in headline if pd.notna(h)), default=float("nan"))),
        "windows_missing_upstream_days": len(missing_all),
    }
    metadata = table_metadata(
        rows_written, FRAME_SCHEMA, markdown_preview(preview[preview["dimension"] != ""]), numbers
    )
    if missing_all:
        metadata["missing_upstream_days"] = dg.MetadataValue.json(missing_all)
    return dg.MaterializeResult(metadata=metadata)


IMPACT_SCHEMA = column_schema(
    [
        ("window_end, tenant_id, stage_pair, dimension, group_value", "key", "which table and group"),
        ("reference_group, reference_rate", "text, double", "highest rate among groups with >= 2% of candidates"),
        ("impact_ratio, adverse_impact", "double, bool", "SR_g / SR_r; adverse when < 0.80 (strictly)"),
        ("test, statistic, p_value, p_adjusted, significant", "mixed", "Fisher or pooled z; Holm (BH for pairs)"),
        ("ci_low, ci_high", "double", "Katz 95% interval of the impact ratio"),
        ("shortfall, flip_flop, cohens_h, low_sample", "mixed", "practical significance"),
        ("excluded_small_share, undefined_reason", "bool, text", "2% rule; why a value is NULL"),
    ]
)

IMPACT_INSERT_COLUMNS = ["tenant_id", "stage_pair", "dimension", *IMPACT_COLUMNS]


@dg.asset(
    deps=[selection_rate_frames],
    automation_condition=downstream_automation,
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    pool=PARTITION_WRITES_POOL,
    group_name="metrics",
    kinds={"postgres", "scipy"},
    description="Impact ratio of every group against the reference group, with the significance test chosen by the "
    "expected-count rule, adjusted p values, Katz interval, shortfall, flip-flop and Cohen's h.",
)
def impact_ratios(context: dg.AssetExecutionContext, database: FairnessDatabase, config: WindowConfig):
    settings = config.settings()
    written, lowest, adverse, significant = 0, [], 0, 0
    last = pd.DataFrame()
    with database.connect() as conn:
        for window_end in partition_days(context):
            with partition_transaction(conn, "impact_ratios", window_end) as cur:
                cur.execute(q.FRAMES_WINDOW, {"window_end": window_end})
                frames = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
                impacts = impacts_for_counts(frames[[*TABLE_KEYS, "group", "n", "x"]], settings)
                cur.execute(q.DELETE_IMPACTS_WINDOW, {"window_end": window_end})
                if len(impacts):
                    execute_values(
                        cur, q.INSERT_IMPACTS, _rows(impacts, IMPACT_INSERT_COLUMNS, (window_end, settings.window_days))
                    )
            written += len(impacts)
            if len(impacts):
                head = impacts[impacts["stage_pair"] == HEADLINE_STAGE_PAIR]
                lowest.append(head["impact_ratio"].min())
                flagged = impacts["adverse_impact"].fillna(False).astype(bool)
                adverse += int(flagged.sum())
                significant += int((flagged & impacts["significant"].fillna(False).astype(bool)).sum())
                last = impacts
    shown = last[
        (last.get("stage_pair") == HEADLINE_STAGE_PAIR) & last["adverse_impact"].fillna(False).astype(bool)
    ] if len(last) else last  # fmt: skip
    preview_columns = ["tenant_id", "dimension", "group", "n", "x", "impact_ratio", "test", "p_adjusted",
                       "significant"]  # fmt: skip
    numbers = {
        "lowest_impact_ratio": float(min((v for v in lowest if pd.notna(v)), default=float("nan"))),
        "adverse_groups": adverse,
        "significant_adverse_groups": significant,
    }
    preview = shown[preview_columns] if len(shown) else pd.DataFrame()
    return dg.MaterializeResult(metadata=table_metadata(written, IMPACT_SCHEMA, markdown_preview(preview), numbers))


@dg.asset(
    deps=[
        selection_rate_frames,
        impact_ratios,
        "scoring_rate_ratios",
        "rank_exposure",
        dg.AssetDep("slate_concentration", partition_mapping=window_mapping),
        "fairness_trends",
    ],
    automation_condition=downstream_automation,
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    pool=PARTITION_WRITES_POOL,
    group_name="metrics",
    kinds={"postgres"},
    description="One bias_metrics row per tenant and day in the seed worker's metrics_json shape (its admin "
    "dashboard reads it), with this project's correct rates, ratios and significance tests, and the audits' "
    "scoring rates, rank exposure, concentrated slates and trends under extra keys.",
)
def bias_metrics(context: dg.AssetExecutionContext, database: FairnessDatabase, config: WindowConfig):
    from fairness_pipeline.metrics.seed_format import audit_metrics_json, tenant_metrics_json
    from fairness_pipeline.queries import audits as audit_queries

    settings = config.settings()
    documents = 0
    adverse_tenants: set[str] = set()
    with database.connect() as conn:
        for window_end in partition_days(context):
            with partition_transaction(conn, "bias_metrics", window_end) as cur:
                cur.execute(q.FRAMES_WINDOW, {"window_end": window_end})
                frames = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
                cur.execute(q.IMPACTS_WINDOW, {"window_end": window_end})
                impacts = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
                first_day, last_day = settings.window(window_end)
                audits = {}
                for name, statement, params in (
                    ("scoring", audit_queries.SCORING_WINDOW, {"window_end": window_end}),
                    ("exposure", audit_queries.EXPOSURE_WINDOW, {"window_end": window_end}),
                    ("slates", audit_queries.SLATES_DAYS, {"first_day": first_day, "last_day": last_day}),
                    ("slate_groups", audit_queries.SLATE_GROUPS_DAYS, {"first_day": first_day, "last_day": last_day}),
                    ("trends", audit_queries.TRENDS_WINDOW, {"window_end": window_end}),
                ):
                    cur.execute(statement, params)
                    audits[name] = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
                cur.execute(q.DELETE_BIAS_METRICS_WINDOW, {"window_end": window_end})
                computed_at = datetime.now(UTC)
                for tenant in sorted(frames["tenant_id"].unique()):
                    document = tenant_metrics_json(frames, impacts, tenant, window_end, settings, computed_at)
                    document.update(audit_metrics_json(tenant, window_end, **audits))
                    if document["any_adverse_impact"]:
                        adverse_tenants.add(tenant)
                    cur.execute(q.INSERT_BIAS_METRICS, {
                        "tenant_id": tenant, "computed_at": computed_at, "metrics_json": json.dumps(document),
                        "window_end": window_end, "window_days": settings.window_days,
                    })  # fmt: skip
                    documents += 1
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(documents),
            "tenants_with_adverse_impact": dg.MetadataValue.int(len(adverse_tenants)),
            "preview": dg.MetadataValue.md(
                "Tenants with adverse impact (shown->shortlisted): " + (", ".join(sorted(adverse_tenants)) or "none")
            ),
        }
    )
