"""Risk layer: one composite verdict per tenant and day, and the reports that explain it."""

import json
from datetime import timedelta

import dagster as dg
import pandas as pd

from fairness_pipeline.audits import AUDIT_TABLES, RISK_AUDITS
from fairness_pipeline.defs.metadata import column_schema, markdown_preview, table_metadata
from fairness_pipeline.defs.partitions import (
    PARTITION_WRITES_POOL,
    daily_partitions,
    downstream_automation,
    partition_days,
    single_run,
)
from fairness_pipeline.defs.resources import FairnessDatabase
from fairness_pipeline.metrics.window import DEFAULT_ANALYSIS
from fairness_pipeline.queries import analysis as analysis_queries
from fairness_pipeline.queries import risk as q
from fairness_pipeline.risk.levels import LEVELS
from fairness_pipeline.store.partition_lock import partition_transaction

AUDIT_ASSETS = tuple(AUDIT_TABLES.values())
REPORT_TREND_DAYS = DEFAULT_ANALYSIS.trend_days
LEVEL_ORDER = LEVELS


class RiskConfig(dg.Config):
    """Which weight profile and regulatory context classify the tenants, and how reports are published."""

    profile: str = "default"
    context: str | None = None
    seed: int = 0
    window_days: int = DEFAULT_ANALYSIS.window_days
    min_cell: int = 5
    data_source: str | None = None
    """Overrides the report facts' data source (default: $FAIRNESS_REPORT_FACTS or reports/facts.toml)."""


def _frame(cur, statement: str, params: dict) -> pd.DataFrame:
    cur.execute(statement, params)
    return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


def window_inputs(cur, window_end) -> dict[str, pd.DataFrame]:
    """Everything the verdict of a window reads: impact ratios, the audits, the past series."""
    params = {"window_end": window_end, "first_day": window_end - timedelta(days=REPORT_TREND_DAYS - 1),
              "last_day": window_end}  # fmt: skip
    inputs = {
        "impacts": _frame(cur, q.IMPACTS_FOR_WINDOW, params),
        "series": _frame(cur, q.IMPACT_SERIES, params),
    }
    cur.execute(q.AUDIT_TABLES_PRESENT)
    if cur.fetchone()[0]:
        inputs["scoring_rate"] = _frame(cur, q.SCORING_FOR_WINDOW, params)
        inputs["exposure"] = _frame(cur, q.EXPOSURE_FOR_WINDOW, params)
        inputs["slate"] = _frame(cur, q.SLATES_FOR_DAY, params)
    return inputs


def _audits(inputs: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    return {name: inputs[name] for name in RISK_AUDITS if name in inputs and len(inputs[name])}


ASSESSMENT_SCHEMA = column_schema(
    [
        ("window_end, tenant_id", "key", "the window ending on the partition day, per tenant"),
        ("score, ci_low, ci_high", "double", "composite risk in [0, 1] (1 = worst) with its 95% bootstrap interval"),
        ("band", "text", "EXCELLENT, GOOD, MODERATE, POOR or CRITICAL from the score"),
        ("level", "text", "LOW, MEDIUM, HIGH or CRITICAL after the override rules"),
        ("dominant_component", "text", "the component contributing most"),
        ("assessment", "jsonb", "components, applied rules with reasons, actions, timeline"),
    ]
)


@dg.asset(
    deps=["impact_ratios", *AUDIT_ASSETS],
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    pool=PARTITION_WRITES_POOL,
    automation_condition=downstream_automation,
    group_name="risk",
    kinds={"postgres"},
    description="Composite risk per tenant and day: weighted components, bootstrap interval, severity band, risk "
    "level with every override rule and its reason (fairness_pipeline.risk).",
)
def risk_classification(
    context: dg.AssetExecutionContext, database: FairnessDatabase, config: RiskConfig
) -> dg.MaterializeResult:
    from fairness_pipeline.risk import assess

    rows, last = 0, []
    with database.connect() as conn:
        for window_end in partition_days(context):
            with partition_transaction(conn, "risk_classification", window_end) as cur:
                inputs = window_inputs(cur, window_end)
                impacts = inputs["impacts"]
                cur.execute(q.DELETE_ASSESSMENTS, {"window_end": window_end})
                last = []
                for tenant, tenant_impacts in impacts.groupby("tenant_id", sort=True):
                    assessment = assess(
                        tenant_impacts.reset_index(drop=True), audits=_audits(inputs), trends=inputs["series"],
                        profile=config.profile, context=config.context, seed=config.seed, window_end=window_end,
                    )  # fmt: skip
                    document = assessment.to_dict()
                    cur.execute(q.INSERT_ASSESSMENT, {
                        "window_end": window_end, "tenant_id": tenant, "profile": assessment.profile,
                        "context": config.context, "score": assessment.score, "ci_low": assessment.ci_low,
                        "ci_high": assessment.ci_high, "band": assessment.band, "level": assessment.level,
                        "dominant_component": assessment.dominant_component, "assessment": json.dumps(document),
                    })  # fmt: skip
                    rows += 1
                    last.append(assessment)
    preview = pd.DataFrame(
        [{"tenant": a.tenant_id, "level": a.level, "score": a.score, "interval": f"{a.ci_low:.2f}-{a.ci_high:.2f}"
          if a.ci_low is not None else "", "dominant": a.dominant_component,
          "rules": "; ".join(r["rule"] for r in a.applied_rules)} for a in last]
    )  # fmt: skip
    worst = max(last, key=lambda a: (LEVEL_ORDER.index(a.level), a.score or 0), default=None)
    numbers = worst.metadata_numbers() if worst else {}
    numbers["tenants_high_or_critical"] = sum(a.level in ("HIGH", "CRITICAL") for a in last)
    return dg.MaterializeResult(metadata=table_metadata(rows, ASSESSMENT_SCHEMA, markdown_preview(preview), numbers))


@dg.asset(
    deps=[risk_classification],
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    pool=PARTITION_WRITES_POOL,
    automation_condition=downstream_automation,
    group_name="risk",
    kinds={"postgres", "html"},
    description="Per tenant and day: the internal JSON report (validated against the package's schema), the "
    "published HTML with embedded charts and the markdown summary (small cells suppressed).",
)
def fairness_reports(
    context: dg.AssetExecutionContext, database: FairnessDatabase, config: RiskConfig
) -> dg.MaterializeResult:
    from fairness_pipeline.reports.builder import build_report
    from fairness_pipeline.reports.html import render_html
    from fairness_pipeline.reports.markdown import render_markdown
    from fairness_pipeline.reports.schema import validate_report

    written, last_markdown = 0, ""
    with database.connect() as conn:
        for window_end in partition_days(context):
            with partition_transaction(conn, "fairness_reports", window_end) as cur:
                inputs = window_inputs(cur, window_end)
                frames = _frame(cur, analysis_queries.FRAMES_WINDOW, {"window_end": window_end})
                assessments = _frame(cur, q.ASSESSMENTS_FOR_WINDOW, {"window_end": window_end})
                cur.execute(q.DELETE_REPORTS, {"window_end": window_end})
                for tenant, assessment in zip(assessments["tenant_id"], assessments["assessment"], strict=True):
                    report = build_report(
                        tenant, window_end, inputs["impacts"], frames, assessment, trends=inputs["series"],
                        audits=_audits(inputs), data_source=config.data_source, min_cell=config.min_cell,
                        window_days=config.window_days, trend_days=REPORT_TREND_DAYS,
                    )  # fmt: skip
                    validate_report(report)
                    markdown = render_markdown(report, min_cell=config.min_cell)
                    cur.execute(q.INSERT_REPORT, {
                        "window_end": window_end, "tenant_id": tenant, "report_json": json.dumps(report),
                        "report_html": render_html(report, min_cell=config.min_cell), "report_markdown": markdown,
                    })  # fmt: skip
                    written += 1
                    last_markdown = markdown
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(written),
            "report": dg.MetadataValue.md(last_markdown or "_no tenants in this window_"),
        }
    )
