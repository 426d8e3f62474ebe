"""The internal fairness report of one tenant and day, as JSON-ready data (validated by ``schema.json``).

``build_report`` reads aggregate tables only (groups with counts, never events), copies only the columns it names,
and so holds no candidate id or other personal data. The internal report is unsuppressed; ``publish.publish_report``
derives the published version (small cells hidden) from it, and the HTML and markdown renderers use that.

A report has *base* sections built from the inputs (``detailed_analysis``, ``charts.trend``, ``risk_assessment`` and
the metadata) and *derived* sections computed from the base ones by ``complete_report`` (executive summary, the
other charts, recommendations, compliance checklist, LL144 summary, interpretation), so that the published version
derives them again from its suppressed base sections. The work is split into private siblings: ``_gather`` (base
sections from the tables), ``_chart_data`` (chart entries) and ``_compliance`` (actions, LL144, checklist).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from fairness_pipeline.metrics.window import DEFAULT_ANALYSIS, HEADLINE_STAGE_PAIR
from fairness_pipeline.reports import interpretation as words
from fairness_pipeline.reports._chart_data import component_chart, funnel_charts, impact_chart
from fairness_pipeline.reports._compliance import KEY_FINDINGS, checklist, findings, ll144, recommendations
from fairness_pipeline.reports._gather import analysis, scoring_analysis, trend_charts, verdict_adjusted
from fairness_pipeline.reports.facts import ReportFacts, facts_section, load_facts
from fairness_pipeline.reports.schema import copy_report
from fairness_pipeline.risk.components import normalise

SCHEMA_VERSION = "1.0"
DEFAULT_HEADLINE_STAGE_PAIR = HEADLINE_STAGE_PAIR
COMPARED_FINDINGS = ("adverse_impact", "insufficient_evidence", "not_practically_significant", "no_adverse_impact")


def build_report(
    tenant_id: str,
    window_end: date,
    impacts: pd.DataFrame,
    frames: pd.DataFrame | None,
    assessment: Any,
    trends: pd.DataFrame | None = None,
    audits: Mapping[str, pd.DataFrame] | None = None,
    *,
    facts: ReportFacts | None = None,
    data_source: str | None = None,
    min_cell: int = 5,
    window_days: int = DEFAULT_ANALYSIS.window_days,
    headline_stage_pair: str = DEFAULT_HEADLINE_STAGE_PAIR,
    data_explanation: str | None = None,
    tool_distribution_date: date | None = None,
    generated_at: datetime | None = None,
    trend_days: int = DEFAULT_ANALYSIS.trend_days,
    threshold: float = DEFAULT_ANALYSIS.threshold,
    alpha: float = DEFAULT_ANALYSIS.alpha,
    min_share: float = DEFAULT_ANALYSIS.min_share,
    min_sample: int = DEFAULT_ANALYSIS.min_sample,
) -> dict[str, Any]:
    """The internal (unsuppressed) report of one tenant and window.

    ``impacts`` and ``frames`` are the window's impact table and selection-rate frames (``TABLE_KEYS`` + their
    columns; other tenants' rows are ignored); ``assessment`` a ``RiskAssessment`` (or its ``to_dict()``);
    ``trends`` past impact rows (window_end, stage_pair, dimension, group, n, x, impact_ratio); ``audits`` may hold
    ``scoring_rate`` (dimension, group, n, x). ``min_cell`` is recorded for publishing; nothing is hidden here.
    ``facts`` (default: ``facts.load_facts()``) states the data source, the tool's distribution date, the auditor
    and the employer; ``data_source``, ``data_explanation`` and ``tool_distribution_date`` override its values.
    """
    if min_cell < 1:
        raise ValueError("min_cell must be at least 1")
    own = impacts[impacts["tenant_id"] == tenant_id] if "tenant_id" in impacts.columns else impacts
    own_frames = None
    if frames is not None and len(frames):
        own_frames = frames[frames["tenant_id"] == tenant_id] if "tenant_id" in frames.columns else frames
    trends = normalise(trends, "trend")
    if trends is not None and "tenant_id" in trends.columns:
        trends = trends[trends["tenant_id"] == tenant_id]
    scoring = normalise((audits or {}).get("scoring_rate"), "scoring_rate")
    if scoring is not None and "tenant_id" in scoring.columns:
        scoring = scoring[scoring["tenant_id"] == tenant_id]
    risk = assessment.to_dict() if hasattr(assessment, "to_dict") else dict(assessment)
    if risk.get("tenant_id") not in (None, tenant_id):
        raise ValueError(f"assessment is for tenant {risk['tenant_id']!r}, not {tenant_id!r}")
    own = verdict_adjusted(own, risk.get("scope") or {})
    generated = generated_at or datetime.now(UTC)
    facts = replace(
        facts or load_facts(),
        **{
            key: value
            for key, value in (
                ("data_source", data_source),
                ("data_explanation", data_explanation),
                ("tool_distribution_date", tool_distribution_date),
            )
            if value is not None
        },
    )
    methodology = {
        "threshold": threshold,
        "alpha": alpha,
        "min_share": min_share,
        "min_sample": min_sample,
        "min_cell": min_cell,
        "trend_days": trend_days,
        "headline_stage_pair": headline_stage_pair,
        "tool_distribution_date": facts.tool_distribution_date.isoformat() if facts.tool_distribution_date else None,
        "notes": [
            "Selection rate = selected / candidates per group; impact ratio = rate / the reference group's rate, the "
            "reference being the highest rate among groups holding at least 2% of the candidates.",
            f"Adverse impact: impact ratio below {threshold:.2f} (strictly).",
            "Each group is tested against the reference group: Fisher's exact test when an expected cell is under 5, "
            "else the pooled two-proportion z-test. The selection tables and key findings of this report use the risk "
            "verdict's adjustment: weighted Holm across every test of the tenant's verdict (all its stage pairs "
            "and dimensions together, an intersection weighing a tenth of a single dimension, each test's p being "
            "the larger of its own and its table's homogeneity gate when "
            f"there is one); significant when that adjusted p < {alpha}. Scoring-rate tables are adjusted the same "
            "way as one family of their own: weighted Holm across all of the tenant's scoring-rate tests.",
            "Practical significance: a difference that moving one selection would reverse (flip-flop) is not "
            f"practically significant; groups under {min_sample} candidates are marked low sample.",
            "95% intervals of impact ratios: Katz log method. Risk score interval: parametric bootstrap over the group "
            "counts (seeded).",
        ],
    }
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "report_type": "fairness_report",
        "tenant_id": tenant_id,
        "window": {
            "start": (window_end - timedelta(days=window_days - 1)).isoformat(),
            "end": window_end.isoformat(),
            "days": window_days,
        },
        "generated_at": generated.isoformat(),
        "data_source": facts_section(facts),
        "publication": {"suppressed": False, "min_cell": min_cell, "suppressed_cells": 0},
        "methodology": methodology,
        "risk_assessment": risk,
        "detailed_analysis": analysis(own, own_frames) + scoring_analysis(scoring, methodology),
        "charts": {"trend": trend_charts(trends, window_end, trend_days, threshold)},
    }
    return complete_report(report)


# --- derived sections ------------------------------------------------------------------------------------------------


def complete_report(report: dict[str, Any]) -> dict[str, Any]:
    """Add the sections derived from the base ones (in place; returns the report)."""
    k = report["publication"]["min_cell"]
    for table in report["detailed_analysis"]:
        table["summary"] = _summary(table)
        table["interpretation"] = words.table_sentences(table, k)
    selection = [t for t in report["detailed_analysis"] if t["kind"] == "selection"]
    report["charts"] = {
        "impact_ratios": [impact_chart(t, report["methodology"]["threshold"]) for t in report["detailed_analysis"]],
        "funnel": funnel_charts(selection),
        "trend": report["charts"].get("trend", []),
        "risk_components": component_chart(report["risk_assessment"]),
    }
    report["executive_summary"] = _executive_summary(report)
    report["recommendations"] = recommendations(report)
    report["ll144_audit_summary"] = ll144(report)
    report["compliance_checklist"] = checklist(report)
    report["interpretation"] = _interpretation(report)
    return report


def apply_facts(report: dict[str, Any], facts: ReportFacts) -> dict[str, Any]:
    """A copy of an internal report stating ``facts`` (its derived sections rebuilt)."""
    if report["publication"]["suppressed"]:
        raise ValueError("restate the internal report, not a published one")
    out = copy_report(report)
    out["data_source"] = facts_section(facts)
    released = facts.tool_distribution_date
    out["methodology"]["tool_distribution_date"] = released.isoformat() if released else None
    return complete_report(out)


def _summary(table: Mapping[str, Any]) -> dict[str, Any]:
    rows = table["groups"]
    count = {f: sum(r["finding"] == f for r in rows) for f in words.FINDING_LABELS}
    compared = [r for r in rows if r["impact_ratio"] is not None and r["finding"] in COMPARED_FINDINGS]
    lowest = min(compared, key=lambda r: r["impact_ratio"]) if compared else None
    return {
        "groups": len(rows),
        "compared": sum(count[f] for f in COMPARED_FINDINGS),
        "adverse_impact": count["adverse_impact"],
        "insufficient_evidence": count["insufficient_evidence"],
        "not_practically_significant": count["not_practically_significant"],
        "excluded": count["excluded"],
        "undefined": count["undefined"],
        "suppressed": sum(bool(r["suppressed"]) for r in rows),
        "lowest_impact_ratio": lowest["impact_ratio"] if lowest else None,
        "lowest_group": lowest["group"] if lowest else None,
    }


def _executive_summary(report: Mapping[str, Any]) -> dict[str, Any]:
    risk, k = report["risk_assessment"], report["publication"]["min_cell"]
    window = report["window"]
    significant = findings(report, "adverse_impact")
    insufficient = findings(report, "insufficient_evidence")
    key = [words.group_sentence(t, r, k) for t, r in significant[:KEY_FINDINGS]]
    key += [words.group_sentence(t, r, k) for t, r in insufficient[: max(0, KEY_FINDINGS - len(key))][:2]]
    if report["charts"]["trend"]:
        key += words.trend_sentences(report["charts"]["trend"], report["methodology"]["trend_days"], limit=1)
    tables = report["detailed_analysis"]
    headline = words.risk_sentences(risk, report["tenant_id"], window["days"], window["end"])[0]
    return {
        "risk_level": risk["level"],
        "score": risk.get("score"),
        "ci_low": risk.get("ci_low"),
        "ci_high": risk.get("ci_high"),
        "band": risk.get("band"),
        "dominant_component": risk.get("dominant_component"),
        "timeline": risk["timeline"]["timeline"],
        "headline": headline,
        "key_findings": [s for s in key if s],
        "counts": {
            "tables": len(tables),
            "adverse_impact": sum(t["summary"]["adverse_impact"] for t in tables),
            "insufficient_evidence": sum(t["summary"]["insufficient_evidence"] for t in tables),
            "not_practically_significant": sum(t["summary"]["not_practically_significant"] for t in tables),
            "excluded": sum(t["summary"]["excluded"] for t in tables),
            "suppressed": sum(t["summary"]["suppressed"] for t in tables),
        },
    }


def _interpretation(report: Mapping[str, Any]) -> list[str]:
    """Paragraphs: the verdict, the headline stage pair and the trend (the small-count rule is stated once, by the
    renderers)."""
    risk, method = report["risk_assessment"], report["methodology"]
    window = report["window"]
    verdict = words.risk_sentences(risk, report["tenant_id"], window["days"], window["end"])
    paragraphs = [verdict[0], " ".join(verdict[1:])]
    headline = [
        t
        for t in report["detailed_analysis"]
        if t["kind"] == "selection" and t["stage_pair"] == method["headline_stage_pair"] and not t["intersectional"]
    ]
    for table in headline:
        paragraphs.append(" ".join(table["interpretation"]))
    paragraphs.append(" ".join(words.trend_sentences(report["charts"]["trend"], method["trend_days"])))
    return [p for p in paragraphs if p]
