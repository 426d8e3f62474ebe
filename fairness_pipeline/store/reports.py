"""The risk and report tables: read a window's results, store verdicts and reports, and the findings the CLI prints."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

import pandas as pd

from fairness_pipeline.store.schema import TENANT_FILTER, Column, Table, fetch_frame, transaction

RISK_ASSESSMENTS = Table(
    "risk_assessments",
    description="The composite risk verdict per window and tenant, with components and applied rules.",
    columns=(
        Column("window_end", "date", "the window ending on the partition day, per tenant", nullable=False),
        Column(
            "tenant_id", "character varying(255)", "the window ending on the partition day, per tenant", nullable=False
        ),
        Column("profile", "text", nullable=False),
        Column("context", "text"),
        Column("score", "double precision", "composite risk in [0, 1] (1 = worst) with its 95% bootstrap interval"),
        Column("ci_low", "double precision", "composite risk in [0, 1] (1 = worst) with its 95% bootstrap interval"),
        Column("ci_high", "double precision", "composite risk in [0, 1] (1 = worst) with its 95% bootstrap interval"),
        Column("band", "text", "EXCELLENT, GOOD, MODERATE, POOR or CRITICAL from the score"),
        Column("level", "text", "LOW, MEDIUM, HIGH or CRITICAL after the override rules", nullable=False),
        Column("dominant_component", "text", "the component contributing most"),
        Column("assessment", "jsonb", "components, applied rules with reasons, actions, timeline", nullable=False),
        Column("computed_at", "timestamp with time zone", nullable=False),
    ),
    key=("window_end", "tenant_id"),
)

FAIRNESS_REPORTS = Table(
    "fairness_reports",
    description="The published reports per window and tenant: JSON, HTML and markdown.",
    columns=(
        Column("window_end", "date", nullable=False),
        Column("tenant_id", "character varying(255)", nullable=False),
        Column("report_json", "jsonb", nullable=False),
        Column("report_html", "text", nullable=False),
        Column("report_markdown", "text", nullable=False),
        Column("generated_at", "timestamp with time zone", nullable=False),
    ),
    key=("window_end", "tenant_id"),
)


IMPACTS_FOR_WINDOW = f"""
SELECT tenant_id, stage_pair, dimension, group_value AS "group", n, x, selection_rate, share, reference_group,
       reference_rate, is_reference, excluded_small_share, impact_ratio, adverse_impact, test, statistic, p_value,
       p_omnibus, p_adjusted, adjustment_method, significant, ci_low, ci_high, shortfall, flip_flop, flip_flop_ratio,
       cohens_h, low_sample, undefined_reason
FROM impact_ratios
WHERE window_end = %(window_end)s AND {TENANT_FILTER}
ORDER BY tenant_id, stage_pair, dimension, group_value
"""

IMPACT_SERIES = f"""
SELECT window_end, tenant_id, stage_pair, dimension, group_value AS "group", n, x, impact_ratio
FROM impact_ratios
WHERE window_end BETWEEN %(first_day)s AND %(last_day)s AND {TENANT_FILTER} AND position('+' IN dimension) = 0
ORDER BY window_end, tenant_id, stage_pair, dimension, group_value
"""
"""Past impact ratios of the single dimensions: the trend component and the report's 90-day chart."""

SCORING_FOR_WINDOW = f"""
SELECT tenant_id, dimension, group_value AS "group", n, above_median AS x, impact_ratio, significant
FROM scoring_rate_ratios WHERE window_end = %(window_end)s AND {TENANT_FILTER}
"""

EXPOSURE_FOR_WINDOW = f"""
SELECT tenant_id, dimension, group_value AS "group", exposure_ratio, significant
FROM rank_exposure WHERE window_end = %(window_end)s AND {TENANT_FILTER}
"""

SLATES_FOR_DAY = f"""
SELECT tenant_id, dimension, assessed AS slates, concentrated, excess_significant
FROM slate_concentration WHERE day = %(window_end)s AND {TENANT_FILTER}
"""

AUDIT_TABLES_PRESENT = """
SELECT to_regclass('scoring_rate_ratios') IS NOT NULL AND to_regclass('rank_exposure') IS NOT NULL
   AND to_regclass('slate_concentration') IS NOT NULL
"""

DELETE_ASSESSMENTS = f"DELETE FROM risk_assessments WHERE window_end = %(window_end)s AND {TENANT_FILTER}"

INSERT_ASSESSMENT = """
INSERT INTO risk_assessments (window_end, tenant_id, profile, context, score, ci_low, ci_high, band, level,
    dominant_component, assessment)
VALUES (%(window_end)s, %(tenant_id)s, %(profile)s, %(context)s, %(score)s, %(ci_low)s, %(ci_high)s, %(band)s,
    %(level)s, %(dominant_component)s, %(assessment)s)
"""

ASSESSMENTS_FOR_WINDOW = f"""
SELECT tenant_id, level, score, assessment FROM risk_assessments
WHERE window_end = %(window_end)s AND {TENANT_FILTER}
ORDER BY tenant_id
"""

ASSESSMENTS_AT_LEAST = f"""
SELECT tenant_id, level, score, ci_low, ci_high, assessment
FROM risk_assessments
WHERE window_end = %(window_end)s AND {TENANT_FILTER} AND level = ANY(%(levels)s)
ORDER BY tenant_id
"""

DELETE_REPORTS = f"DELETE FROM fairness_reports WHERE window_end = %(window_end)s AND {TENANT_FILTER}"

INSERT_REPORT = """
INSERT INTO fairness_reports (window_end, tenant_id, report_json, report_html, report_markdown)
VALUES (%(window_end)s, %(tenant_id)s, %(report_json)s, %(report_html)s, %(report_markdown)s)
"""

REPORT = """
SELECT report_json, report_html, report_markdown FROM fairness_reports
WHERE tenant_id = %(tenant_id)s AND window_end = %(window_end)s
"""

LATEST_REPORT_DAY = "SELECT max(window_end) FROM fairness_reports WHERE tenant_id = %(tenant_id)s"


# --- findings the CLI prints and the reports cite ---------------------------------------------------------

ADVERSE_FINDINGS = """
SELECT tenant_id, dimension, group_value, n, impact_ratio, ci_low, ci_high, p_adjusted, significant, flip_flop
FROM impact_ratios
WHERE window_end = %(window_end)s AND stage_pair = %(stage_pair)s AND adverse_impact
  AND position('+' IN dimension) = 0
ORDER BY tenant_id, significant DESC, impact_ratio
"""
"""Groups with adverse impact on the single dimensions of one stage pair (intersections are in the reports)."""

SCORING_FINDINGS = """
SELECT tenant_id, dimension, group_value, n, scoring_rate, impact_ratio, ci_low, ci_high, p_adjusted, significant
FROM scoring_rate_ratios
WHERE window_end = %(window_end)s AND adverse_impact AND position('+' IN dimension) = 0
ORDER BY tenant_id, significant DESC, impact_ratio
"""
"""Groups whose LL144 scoring rate is adverse (impact ratio < 0.80) in the window, single dimensions."""

EXPOSURE_FINDINGS = """
SELECT tenant_id, dimension, group_value, searches, exposure_ratio, ratio_ci_low, ratio_ci_high, p_adjusted,
       significant, skew_at_k, treatment_ratio, treatment_significant
FROM rank_exposure
WHERE window_end = %(window_end)s AND position('+' IN dimension) = 0
  AND (significant AND low_exposure OR treatment_significant AND treatment_ratio < %(threshold)s)
ORDER BY tenant_id, significant DESC, exposure_ratio
"""
"""Groups ranked significantly lower than the best-exposed group, or than their scores would place them, by a ratio
below the practical threshold (``threshold``, 0.80), single dimensions."""

SLATE_FINDINGS = """
SELECT s.tenant_id, s.dimension, sum(s.assessed)::bigint AS assessed, sum(s.concentrated)::bigint AS concentrated,
       sum(s.concentrated)::float8 / nullif(sum(s.assessed), 0) AS concentrated_share,
       sum(s.expected_share * s.assessed) / nullif(sum(s.assessed), 0) AS expected_share,
       count(*) FILTER (WHERE s.excess_significant) AS significant_days, count(*) AS days,
       (SELECT g.group_value FROM slate_concentration_groups g
        WHERE g.tenant_id = s.tenant_id AND g.dimension = s.dimension AND g.day BETWEEN %(first_day)s AND %(last_day)s
        GROUP BY g.group_value ORDER BY sum(g.concentrated) DESC, g.group_value LIMIT 1) AS top_group
FROM slate_concentration s
WHERE s.day BETWEEN %(first_day)s AND %(last_day)s AND position('+' IN s.dimension) = 0
GROUP BY s.tenant_id, s.dimension
HAVING count(*) FILTER (WHERE s.excess_significant) > 0
ORDER BY s.tenant_id, concentrated_share DESC
"""
"""Per tenant and dimension over the window's days: slates with more than 70% of one group, against the share expected
by chance, on the days where the excess is significant, and the group that dominates most of them."""

TREND_FINDINGS = """
SELECT tenant_id, stage_pair, dimension, group_value, ratio_previous, ratio_current, p_adjusted, worsening,
       latest_ratio, slope_per_day, approaching_threshold
FROM fairness_trends
WHERE window_end = %(window_end)s AND position('+' IN dimension) = 0 AND (worsening OR approaching_threshold)
ORDER BY tenant_id, worsening DESC, p_adjusted, stage_pair
"""
"""Series of single dimensions that worsened significantly week over week, or approach the 0.80 threshold."""


# --- functions ----------------------------------------------------------------------------------------------------


def window_inputs(cur, window_end: date, trend_days: int, tenant_id: str | None = None) -> dict[str, pd.DataFrame]:
    """Everything the verdict of a window reads: impact ratios, the audits (when their tables exist), and the
    ``trend_days`` windows of single-dimension impact ratios up to ``window_end``; ``tenant_id``'s only, when given."""
    params = {
        "tenant_id": tenant_id,
        "window_end": window_end,
        "first_day": window_end - timedelta(days=trend_days - 1),
        "last_day": window_end,
    }
    inputs = {
        "impacts": fetch_frame(cur, IMPACTS_FOR_WINDOW, params),
        "series": fetch_frame(cur, IMPACT_SERIES, params),
    }
    cur.execute(AUDIT_TABLES_PRESENT)
    if cur.fetchone()[0]:
        inputs["scoring_rate"] = fetch_frame(cur, SCORING_FOR_WINDOW, params)
        inputs["exposure"] = fetch_frame(cur, EXPOSURE_FOR_WINDOW, params)
        inputs["slate"] = fetch_frame(cur, SLATES_FOR_DAY, params)
    return inputs


def replace_assessments(cur, window_end: date, rows: Sequence[Mapping[str, Any]], tenant_id: str | None = None) -> int:
    """Replace the window's risk_assessments (``tenant_id``'s only, when given) with ``rows`` (tenant_id, profile,
    context, score, ci_low, ci_high, band, level, dominant_component, assessment as a dict); returns the rows
    written."""
    cur.execute(DELETE_ASSESSMENTS, {"window_end": window_end, "tenant_id": tenant_id})
    for row in rows:
        cur.execute(INSERT_ASSESSMENT, {**row, "window_end": window_end, "assessment": json.dumps(row["assessment"])})
    return len(rows)


def assessments_window(cur, window_end: date, tenant_id: str | None = None) -> pd.DataFrame:
    """The window's stored verdicts: tenant_id, level, score, assessment (a dict), by tenant (``tenant_id``'s only,
    when given)."""
    return fetch_frame(cur, ASSESSMENTS_FOR_WINDOW, {"window_end": window_end, "tenant_id": tenant_id})


def assessments_at_least(cur, window_end: date, levels: Sequence[str], tenant_id: str | None = None) -> list[tuple]:
    """The window's verdicts at one of ``levels`` (``tenant_id``'s only, when given): tenant_id, level, score, ci_low,
    ci_high, assessment."""
    cur.execute(ASSESSMENTS_AT_LEAST, {"window_end": window_end, "levels": list(levels), "tenant_id": tenant_id})
    return cur.fetchall()


def replace_reports(cur, window_end: date, reports: Sequence[Mapping[str, Any]], tenant_id: str | None = None) -> int:
    """Replace the window's fairness_reports (``tenant_id``'s only, when given) with ``reports`` (tenant_id,
    report_json as a dict, report_html, report_markdown); returns the rows written."""
    cur.execute(DELETE_REPORTS, {"window_end": window_end, "tenant_id": tenant_id})
    for report in reports:
        cur.execute(
            INSERT_REPORT, {**report, "window_end": window_end, "report_json": json.dumps(report["report_json"])}
        )
    return len(reports)


def latest_report_day(conn, tenant_id: str) -> date | None:
    """The window_end of the tenant's latest stored report, or None."""
    with transaction(conn) as cur:
        cur.execute(LATEST_REPORT_DAY, {"tenant_id": tenant_id})
        return cur.fetchone()[0]


def stored_report(conn, tenant_id: str, window_end: date) -> tuple | None:
    """The tenant's report of the window as (json, html, markdown), or None."""
    with transaction(conn) as cur:
        cur.execute(REPORT, {"tenant_id": tenant_id, "window_end": window_end})
        return cur.fetchone()


def verdicts(conn, window_end: date) -> list[tuple]:
    """The window's stored verdicts: (tenant_id, level, score, assessment), by tenant."""
    with transaction(conn) as cur:
        cur.execute(ASSESSMENTS_FOR_WINDOW, {"window_end": window_end, "tenant_id": None})
        return cur.fetchall()


def adverse_findings(conn, window_end: date, stage_pair: str) -> list[tuple]:
    """Groups with adverse impact on the single dimensions of one stage pair (:data:`ADVERSE_FINDINGS`)."""
    with transaction(conn) as cur:
        cur.execute(ADVERSE_FINDINGS, {"window_end": window_end, "stage_pair": stage_pair})
        return cur.fetchall()


AUDIT_FINDINGS = {
    "SCORING": SCORING_FINDINGS,
    "EXPOSURE": EXPOSURE_FINDINGS,
    "SLATE": SLATE_FINDINGS,
    "TREND": TREND_FINDINGS,
}


def audit_findings(conn, window_end: date, first_day: date, threshold: float) -> dict[str, list[tuple]]:
    """The audits' findings of the window (scoring, exposure, slates over its days, trends), by audit."""
    params = {"window_end": window_end, "first_day": first_day, "last_day": window_end, "threshold": threshold}
    with transaction(conn) as cur:
        found = {}
        for name, statement in AUDIT_FINDINGS.items():
            cur.execute(statement, params)
            found[name] = cur.fetchall()
        return found
