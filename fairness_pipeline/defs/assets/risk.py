"""Risk layer: one composite verdict per tenant and day, and the reports that explain it.

Each window's inputs are read through ``fairness_pipeline.store.reports``, judged by ``fairness_pipeline.risk`` and
written back through the store; each day records its own verdicts, one entry per tenant, on that day's
materialisation.
"""

import dagster as dg
import pandas as pd

from fairness_pipeline.audits import AUDIT_TABLES, risk_audit_frames
from fairness_pipeline.defs.declare import tenant_day_asset_factory
from fairness_pipeline.defs.metadata import (
    markdown_preview,
    numbers_metadata,
    per_tenant,
    record_tenant_day,
    table_metadata,
    table_schema,
)
from fairness_pipeline.defs.partitions import tenant_days
from fairness_pipeline.defs.resources import FairnessDatabase
from fairness_pipeline.metrics.window import DEFAULT_ANALYSIS
from fairness_pipeline.risk.levels import LEVELS, REVIEW_FLOOR, levels_at_or_above
from fairness_pipeline.store import analysis, reports
from fairness_pipeline.store.partition_lock import partition_transaction

AUDIT_ASSETS = tuple(AUDIT_TABLES.values())
REPORT_TREND_DAYS = DEFAULT_ANALYSIS.trend_days
LEVEL_ORDER = LEVELS

risk_asset = tenant_day_asset_factory("risk")


class RiskConfig(dg.Config):
    """Which weight profile and regulatory context classify the tenants, and how reports are published."""

    profile: str = "default"
    context: str | None = None
    seed: int = 0
    window_days: int = DEFAULT_ANALYSIS.window_days
    min_cell: int = 5
    data_source: str | None = None
    """Overrides the report facts' data source (default: $FAIRNESS_REPORT_FACTS or reports/facts.toml)."""


def _verdicts(assessments: list) -> pd.DataFrame:
    """One preview row per tenant, the worst level (then score) first."""
    rows = [
        {
            "tenant": a.tenant_id,
            "level": a.level,
            "score": a.score,
            "interval": f"{a.ci_low:.2f}-{a.ci_high:.2f}" if a.ci_low is not None else "",
            "dominant": a.dominant_component,
            "rules": "; ".join(r["rule"] for r in a.applied_rules),
        }
        for a in sorted(assessments, key=lambda a: (-LEVEL_ORDER.index(a.level), -(a.score or 0), a.tenant_id))
    ]
    return pd.DataFrame(rows)


def _worst_numbers(assessments: list) -> dict:
    """The worst verdict's numbers (level, then score) and how many tenants are HIGH or CRITICAL."""
    worst = max(assessments, key=lambda a: (LEVEL_ORDER.index(a.level), a.score or 0), default=None)
    numbers = worst.metadata_numbers() if worst else {}
    numbers["tenants_high_or_critical"] = sum(a.level in levels_at_or_above(REVIEW_FLOOR) for a in assessments)
    return numbers


@risk_asset(deps=["impact_ratios", *AUDIT_ASSETS], kinds={"postgres"})
def risk_classification(
    context: dg.AssetExecutionContext, database: FairnessDatabase, config: RiskConfig
) -> dg.MaterializeResult:
    """Composite risk per tenant and day: weighted components, bootstrap interval, severity band, risk level with
    every override rule and its reason (fairness_pipeline.risk)."""
    from fairness_pipeline.risk import assess

    rows, last = 0, []
    with database.connect() as conn:
        for tenant, window_end in tenant_days(context):
            with partition_transaction(conn, "risk_classification", window_end, tenant) as cur:
                inputs = reports.window_inputs(cur, window_end, REPORT_TREND_DAYS, tenant)
                day = {
                    tenant_id: assess(
                        tenant_impacts.reset_index(drop=True),
                        audits=risk_audit_frames(inputs),
                        trends=inputs["series"],
                        profile=config.profile,
                        context=config.context,
                        seed=config.seed,
                        window_end=window_end,
                    )
                    for tenant_id, tenant_impacts in inputs["impacts"].groupby("tenant_id", sort=True)
                }
                rows += reports.replace_assessments(
                    cur,
                    window_end,
                    [
                        {
                            "tenant_id": tenant_id,
                            "profile": a.profile,
                            "context": config.context,
                            "score": a.score,
                            "ci_low": a.ci_low,
                            "ci_high": a.ci_high,
                            "band": a.band,
                            "level": a.level,
                            "dominant_component": a.dominant_component,
                            "assessment": a.to_dict(),
                        }
                        for tenant_id, a in day.items()
                    ],
                    tenant,
                )
            last = list(day.values())
            record_tenant_day(
                context,
                tenant,
                window_end,
                {
                    "dagster/row_count": len(day),
                    "preview": markdown_preview(_verdicts(last)),
                    **numbers_metadata(_worst_numbers(last)),
                    **per_tenant({tenant_id: a.score for tenant_id, a in day.items()}, "score"),
                    **per_tenant({tenant_id: LEVEL_ORDER.index(a.level) for tenant_id, a in day.items()}, "level_rank"),
                },
            )
    return dg.MaterializeResult(
        metadata=table_metadata(
            rows, table_schema(reports.RISK_ASSESSMENTS), markdown_preview(_verdicts(last)), _worst_numbers(last)
        )
    )


def _worst_report(assessments: pd.DataFrame, documents: list[dict]) -> str:
    """The markdown report of the day's worst tenant (level, then score), or a line saying there is none."""
    if not documents:
        return "_no tenants in this window_"
    rank = {
        tenant: (LEVEL_ORDER.index(level), score or 0)
        for tenant, level, score in zip(
            assessments["tenant_id"], assessments["level"], assessments["score"], strict=True
        )
    }
    worst = max(documents, key=lambda d: rank.get(d["tenant_id"], (-1, 0)))
    return worst["report_markdown"]


@risk_asset(deps=[risk_classification], kinds={"postgres", "html"})
def fairness_reports(
    context: dg.AssetExecutionContext, database: FairnessDatabase, config: RiskConfig
) -> dg.MaterializeResult:
    """Per tenant and day: the internal JSON report (validated against the package's schema), the published HTML
    with embedded charts and the markdown summary (small cells suppressed)."""
    from fairness_pipeline.reports.builder import build_report
    from fairness_pipeline.reports.html import render_html
    from fairness_pipeline.reports.markdown import render_markdown
    from fairness_pipeline.reports.schema import validate_report

    written, last_markdown = 0, ""
    with database.connect() as conn:
        for tenant, window_end in tenant_days(context):
            with partition_transaction(conn, "fairness_reports", window_end, tenant) as cur:
                inputs = reports.window_inputs(cur, window_end, REPORT_TREND_DAYS, tenant)
                frames = analysis.frames_window(cur, window_end, tenant)
                assessments = reports.assessments_window(cur, window_end, tenant)
                documents = []
                for tenant_id, assessment in zip(assessments["tenant_id"], assessments["assessment"], strict=True):
                    report = build_report(
                        tenant_id,
                        window_end,
                        inputs["impacts"],
                        frames,
                        assessment,
                        trends=inputs["series"],
                        audits=risk_audit_frames(inputs),
                        data_source=config.data_source,
                        min_cell=config.min_cell,
                        window_days=config.window_days,
                        trend_days=REPORT_TREND_DAYS,
                    )
                    validate_report(report)
                    documents.append(
                        {
                            "tenant_id": tenant_id,
                            "report_json": report,
                            "report_html": render_html(report, min_cell=config.min_cell),
                            "report_markdown": render_markdown(report, min_cell=config.min_cell),
                        }
                    )
                day_written = reports.replace_reports(cur, window_end, documents, tenant)
            written += day_written
            if documents:
                last_markdown = documents[-1]["report_markdown"]
            record_tenant_day(
                context,
                tenant,
                window_end,
                {
                    "dagster/row_count": day_written,
                    "preview": markdown_preview(
                        assessments[["tenant_id", "level", "score"]].sort_values(
                            ["score", "tenant_id"], ascending=[False, True], na_position="last"
                        )
                    ),
                    "report": dg.MetadataValue.md(_worst_report(assessments, documents)),
                },
            )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(written),
            "report": dg.MetadataValue.md(last_markdown or "_no tenants in this window_"),
        }
    )
