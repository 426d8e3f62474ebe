"""Metric-layer assets: selection-rate frames over 30-day windows, impact ratios, seed-shaped bias metrics.

Each window is read through the store, computed by ``fairness_pipeline.metrics`` and written through the store; each
day records its own figures (per tenant where they differ by tenant) on that day's materialisation.
"""

from datetime import UTC, date, datetime

import dagster as dg
import pandas as pd

from fairness_pipeline.defs.config import HEADLINE_STAGE_PAIR, WindowConfig
from fairness_pipeline.defs.declare import tenant_day_asset_factory
from fairness_pipeline.defs.metadata import (
    markdown_preview,
    numbers_metadata,
    per_tenant,
    record_tenant_day,
    table_metadata,
    table_schema,
    worst_first,
)
from fairness_pipeline.defs.partitions import same_day_mapping, tenant_days
from fairness_pipeline.defs.resources import FairnessDatabase
from fairness_pipeline.metrics import selection_rates
from fairness_pipeline.metrics.impact import IMPACT_COLUMNS
from fairness_pipeline.metrics.window import TABLE_KEYS, group_counts, impacts_for_counts
from fairness_pipeline.store import analysis, audits
from fairness_pipeline.store.partition_lock import partition_transaction

__all__ = ["WindowConfig", "bias_metrics", "impact_ratios", "selection_rate_frames"]

metrics_asset = tenant_day_asset_factory("metrics")
NAN = float("nan")

IMPACT_INSERT_COLUMNS = ["tenant_id", "stage_pair", "dimension", *IMPACT_COLUMNS]
IMPACT_PREVIEW_COLUMNS = [
    "tenant_id",
    "stage_pair",
    "dimension",
    "group",
    "n",
    "x",
    "impact_ratio",
    "test",
    "p_adjusted",
    "significant",
]


def _flag(frame: pd.DataFrame, column: str) -> pd.Series:
    """A nullable boolean column as plain booleans (missing = False)."""
    return frame[column].astype("boolean").fillna(False).astype(bool)


def _headline_singles(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of the headline stage pair on single dimensions."""
    return frame[(frame["stage_pair"] == HEADLINE_STAGE_PAIR) & ~frame["dimension"].str.contains("+", regex=False)]


def _missing_note(context: dg.AssetExecutionContext, tenant: str, window_end: date, missing: list[date]) -> None:
    context.log.warning(
        f"window of {tenant} ending {window_end}: candidate_daily_stages lacks {len(missing)} day(s): "
        f"{', '.join(d.isoformat() for d in missing)}; materialise them, e.g. "
        f"`fairness-pipeline run --start {missing[0]} --end {window_end} --tenant {tenant}`"
    )


@metrics_asset(
    deps=[dg.AssetDep("candidate_daily_stages", partition_mapping=same_day_mapping)], kinds={"postgres", "fairlearn"}
)
def selection_rate_frames(
    context: dg.AssetExecutionContext, database: FairnessDatabase, config: WindowConfig
) -> dg.MaterializeResult:
    """Selection rates per tenant, stage pair, dimension and pairwise intersection for the window ending on the
    partition day, with demographic parity, from fairlearn MetricFrame on aggregated counts."""
    settings = config.settings()
    rows_written, missing_all, headline = 0, {}, []
    last_frames = pd.DataFrame()
    with database.connect() as conn:
        for tenant, window_end in tenant_days(context):
            first_day, last_day = settings.window(window_end)
            with partition_transaction(conn, "selection_rate_frames", window_end, tenant) as cur:
                missing = analysis.missing_summary_days(cur, first_day, last_day)
                cells = analysis.window_cells(
                    cur, settings.stage_pair_names, settings.stage_pairs, first_day, last_day, tenant_id=tenant
                )
                frames = selection_rates.selection_rate_frames(group_counts(cells, settings), keys=TABLE_KEYS)
                written = analysis.replace_frames(cur, window_end, settings.window_days, frames, tenant)
            if missing:
                missing_all[window_end.isoformat()] = [d.isoformat() for d in missing]
                _missing_note(context, tenant, window_end, missing)
            rows_written += written
            last_frames = frames
            head = _headline_singles(frames)
            headline.append(head["dp_ratio"].min() if len(head) else None)
            lowest = head.groupby("tenant_id")["dp_ratio"].min().to_dict() if len(head) else {}
            preview = worst_first(
                head,
                "dp_ratio",
                ["tenant_id", "stage_pair", "dimension", "group", "n", "x", "selection_rate", "dp_ratio"],
            )
            record_tenant_day(
                context,
                tenant,
                window_end,
                {
                    "dagster/row_count": written,
                    "preview": markdown_preview(preview),
                    "missing_upstream_day_count": len(missing),
                    **numbers_metadata(
                        {
                            "windows": 1,
                            "lowest_demographic_parity_ratio": float(head["dp_ratio"].min()) if len(head) else NAN,
                            "windows_missing_upstream_days": int(bool(missing)),
                        }
                    ),
                    **per_tenant(lowest, "lowest_demographic_parity_ratio"),
                },
            )
    preview = _headline_singles(last_frames).drop(columns=["undefined_reason"]) if len(last_frames) else last_frames
    numbers = {
        "windows": len(tenant_days(context)),
        "lowest_demographic_parity_ratio": float(min((h for h in headline if pd.notna(h)), default=float("nan"))),
        "windows_missing_upstream_days": len(missing_all),
    }
    metadata = table_metadata(
        rows_written,
        table_schema(analysis.SELECTION_RATE_FRAMES),
        markdown_preview(worst_first(preview, "dp_ratio", list(preview.columns))),
        numbers,
    )
    if missing_all:
        metadata["missing_upstream_days"] = dg.MetadataValue.json(missing_all)
    return dg.MaterializeResult(metadata=metadata)


@metrics_asset(deps=[selection_rate_frames], kinds={"postgres", "scipy"})
def impact_ratios(context: dg.AssetExecutionContext, database: FairnessDatabase, config: WindowConfig):
    """Impact ratio of every group against the reference group, with the significance test chosen by the
    expected-count rule, adjusted p values, Katz interval, shortfall, flip-flop and Cohen's h."""
    settings = config.settings()
    written, lowest, adverse, significant = 0, [], 0, 0
    last = pd.DataFrame()
    with database.connect() as conn:
        for tenant, window_end in tenant_days(context):
            with partition_transaction(conn, "impact_ratios", window_end, tenant) as cur:
                frames = analysis.frames_window(cur, window_end, tenant)
                impacts = impacts_for_counts(frames[[*TABLE_KEYS, "group", "n", "x"]], settings)
                day_written = analysis.replace_impacts(
                    cur, window_end, settings.window_days, impacts, IMPACT_INSERT_COLUMNS, tenant
                )
            written += day_written
            day_numbers: dict = numbers_metadata(
                {"lowest_impact_ratio": NAN, "adverse_groups": 0, "significant_adverse_groups": 0}
            )
            shown = pd.DataFrame()
            if len(impacts):
                head = impacts[impacts["stage_pair"] == HEADLINE_STAGE_PAIR]
                lowest.append(head["impact_ratio"].min())
                flagged = _flag(impacts, "adverse_impact")
                day_significant = flagged & _flag(impacts, "significant")
                adverse += int(flagged.sum())
                significant += int(day_significant.sum())
                last = impacts
                day_numbers = {
                    **numbers_metadata(
                        {
                            "lowest_impact_ratio": float(head["impact_ratio"].min()) if len(head) else NAN,
                            "adverse_groups": int(flagged.sum()),
                            "significant_adverse_groups": int(day_significant.sum()),
                        }
                    ),
                    **per_tenant(head.groupby("tenant_id")["impact_ratio"].min().to_dict(), "lowest_impact_ratio"),
                    **per_tenant(flagged.groupby(impacts["tenant_id"]).sum().to_dict(), "adverse_groups"),
                    **per_tenant(
                        day_significant.groupby(impacts["tenant_id"]).sum().to_dict(), "significant_adverse_groups"
                    ),
                }
                shown = impacts[flagged]
            record_tenant_day(
                context,
                tenant,
                window_end,
                {
                    "dagster/row_count": day_written,
                    "preview": markdown_preview(worst_first(shown, "impact_ratio", IMPACT_PREVIEW_COLUMNS)),
                    **day_numbers,
                },
            )
    shown = last[(last["stage_pair"] == HEADLINE_STAGE_PAIR) & _flag(last, "adverse_impact")] if len(last) else last
    numbers = {
        "lowest_impact_ratio": float(min((v for v in lowest if pd.notna(v)), default=float("nan"))),
        "adverse_groups": adverse,
        "significant_adverse_groups": significant,
    }
    preview = worst_first(shown, "impact_ratio", IMPACT_PREVIEW_COLUMNS)
    return dg.MaterializeResult(
        metadata=table_metadata(written, table_schema(analysis.IMPACT_RATIOS), markdown_preview(preview), numbers)
    )


@metrics_asset(
    deps=[
        selection_rate_frames,
        impact_ratios,
        "scoring_rate_ratios",
        "rank_exposure",
        dg.AssetDep("slate_concentration", partition_mapping=same_day_mapping),
        "fairness_trends",
    ],
    kinds={"postgres"},
)
def bias_metrics(context: dg.AssetExecutionContext, database: FairnessDatabase, config: WindowConfig):
    """One bias_metrics row per tenant and day in the seed worker's metrics_json shape (its admin dashboard reads
    it), with this project's correct rates, ratios and significance tests, and the audits' scoring rates, rank
    exposure, concentrated slates and trends under extra keys."""
    from fairness_pipeline.metrics.seed_format import audit_metrics_json, tenant_metrics_json

    settings = config.settings()
    documents = 0
    adverse_tenants: set[str] = set()
    with database.connect() as conn:
        for tenant, window_end in tenant_days(context):
            with partition_transaction(conn, "bias_metrics", window_end, tenant) as cur:
                frames = analysis.frames_window(cur, window_end, tenant)
                impacts = analysis.impacts_window(cur, window_end, tenant)
                stored_audits = audits.window_audits(cur, window_end, *settings.window(window_end), tenant)
                computed_at = datetime.now(UTC)
                by_tenant = {}
                if len(frames):
                    document = tenant_metrics_json(frames, impacts, tenant, window_end, settings, computed_at)
                    document.update(audit_metrics_json(tenant, window_end, **stored_audits))
                    by_tenant[tenant] = document
                day_documents = analysis.replace_bias_metrics(
                    cur, window_end, settings.window_days, computed_at, by_tenant, tenant
                )
            day_adverse = sorted(t for t, d in by_tenant.items() if d["any_adverse_impact"])
            adverse_tenants.update(day_adverse)
            documents += day_documents
            record_tenant_day(
                context,
                tenant,
                window_end,
                {
                    "dagster/row_count": day_documents,
                    "tenants_with_adverse_impact": len(day_adverse),
                    "preview": dg.MetadataValue.md(_adverse_line(day_adverse)),
                    **numbers_metadata(
                        {f"any_adverse_impact/{t}": int(d["any_adverse_impact"]) for t, d in by_tenant.items()}
                    ),
                },
            )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(documents),
            "tenants_with_adverse_impact": dg.MetadataValue.int(len(adverse_tenants)),
            "preview": dg.MetadataValue.md(_adverse_line(sorted(adverse_tenants))),
        }
    )


def _adverse_line(tenants: list[str]) -> str:
    return f"Tenants with adverse impact ({HEADLINE_STAGE_PAIR}): " + (", ".join(tenants) or "none")
