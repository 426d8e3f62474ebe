"""The internal fairness report of one tenant and day, as JSON-ready data (validated by ``schema.json``).

``build_report`` reads aggregate tables only (groups with counts, never events), copies only the columns it names,
and so holds no candidate id or other personal data. The internal report is unsuppressed; ``publish.publish_report``
derives the published version (small cells hidden) from it, and the HTML and markdown renderers use that.

A report has *base* sections built from the inputs (``detailed_analysis``, ``charts.trend``, ``risk_assessment`` and
the metadata) and *derived* sections computed from the base ones by ``complete_report`` (executive summary, the
other charts, recommendations, compliance checklist, LL144 summary, interpretation), so that the published version
derives them again from its suppressed base sections.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from fairness_pipeline.events.vocabulary import DEFAULT_STAGE_PAIRS, stage_pair_name
from fairness_pipeline.metrics.impact import impact_ratio_table, is_unknown_group
from fairness_pipeline.metrics.selection_rates import INTERSECTION_SEPARATOR
from fairness_pipeline.reports import interpretation as words
from fairness_pipeline.reports.facts import ReportFacts, facts_section, load_facts
from fairness_pipeline.risk.assessment import SCORING_ADJUSTMENT, VERDICT_ADJUSTMENT, verdict_adjustment
from fairness_pipeline.risk.components import is_intersection, normalise

SCHEMA_VERSION = "1.0"
DEFAULT_HEADLINE_STAGE_PAIR = "shown->shortlisted"
GROUP_FIELDS: tuple[str, ...] = (
    "group",
    "n",
    "x",
    "selection_rate",
    "share",
    "is_reference",
    "excluded_small_share",
    "impact_ratio",
    "adverse_impact",
    "test",
    "statistic",
    "p_value",
    "p_adjusted",
    "adjustment_method",
    "significant",
    "table_p_adjusted",
    "table_significant",
    "ci_low",
    "ci_high",
    "shortfall",
    "flip_flop",
    "flip_flop_ratio",
    "cohens_h",
    "low_sample",
    "undefined_reason",
)
"""The columns of an impact table a report copies (reference_group and reference_rate go to the table)."""
KEY_FINDINGS = 5
COMPARED_FINDINGS = ("adverse_impact", "insufficient_evidence", "not_practically_significant", "no_adverse_impact")


def _plain(value: Any) -> Any:
    """A JSON-ready scalar: numpy to Python, NaN / NA / inf to None."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _stage_order(pair: str) -> tuple[int, str]:
    names = [stage_pair_name(b, s) for b, s in DEFAULT_STAGE_PAIRS]
    return (names.index(pair) if pair in names else len(names), pair)


def _dimension_order(dimension: str) -> tuple[bool, str]:
    return (INTERSECTION_SEPARATOR in dimension, dimension)


def _table(kind: str, pair: str, dimension: str, rows: pd.DataFrame, frame: pd.DataFrame | None) -> dict[str, Any]:
    """One impact table of the report: totals, reference, parity and one entry per group."""
    groups = []
    for record in rows.to_dict("records"):
        entry = {field: _plain(record.get(field)) for field in GROUP_FIELDS}
        entry["group"] = str(entry["group"])
        entry["n"], entry["x"] = int(record["n"]), int(record["x"])
        entry["finding"] = words.finding_of(entry)
        entry["suppressed"] = False
        groups.append(entry)
    reference = rows["reference_group"].dropna()
    n_total, x_total = int(rows["n"].sum()), int(rows["x"].sum())
    rates = [g["selection_rate"] for g in groups if g["selection_rate"] is not None]
    if frame is not None and len(frame):
        first = frame.iloc[0]
        overall, dp_ratio, dp_difference = (_plain(first[c]) for c in ("overall_rate", "dp_ratio", "dp_difference"))
    else:  # the same definitions as metrics.selection_rates
        overall = x_total / n_total if n_total else None
        dp_difference = max(rates) - min(rates) if len(rates) >= 2 else None
        dp_ratio = min(rates) / max(rates) if len(rates) >= 2 and max(rates) > 0 else None
    methods = rows["adjustment_method"].dropna()
    return {
        "kind": kind,
        "stage_pair": pair,
        "dimension": dimension,
        "intersectional": INTERSECTION_SEPARATOR in dimension,
        "n": n_total,
        "x": x_total,
        "overall_rate": overall,
        "reference_group": str(reference.iloc[0]) if len(reference) else None,
        "reference_rate": _plain(rows["reference_rate"].dropna().iloc[0])
        if rows["reference_rate"].notna().any()
        else None,
        "dp_ratio": dp_ratio,
        "dp_difference": dp_difference,
        "adjustment_method": str(methods.iloc[0]) if len(methods) else None,
        "unknown_count": int(rows.loc[rows["group"].map(is_unknown_group).astype(bool), "n"].sum()),
        "ratios_suppressed": False,
        "groups": groups,
    }


def _analysis(impacts: pd.DataFrame, frames: pd.DataFrame | None, kind: str = "selection") -> list[dict[str, Any]]:
    tables = []
    for (pair, dimension), rows in impacts.groupby(["stage_pair", "dimension"], sort=False):
        frame = None
        if frames is not None and len(frames):
            frame = frames[(frames["stage_pair"] == pair) & (frames["dimension"] == dimension)]
        tables.append(_table(kind, str(pair), str(dimension), rows, frame))
    return sorted(tables, key=lambda t: (_stage_order(t["stage_pair"]), _dimension_order(t["dimension"])))


def _scoring_analysis(audit: pd.DataFrame | None, methodology: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Scoring-rate tables (LL144 for score-based tools): the impact rules applied to above-median counts."""
    if audit is None or audit.empty:
        return []
    parts = []
    work = audit if "stage_pair" in audit.columns else audit.assign(stage_pair="scores")
    for (pair, dimension), rows in work.groupby(["stage_pair", "dimension"], sort=True):
        table = impact_ratio_table(
            rows[["group", "n", "x"]],
            intersectional=INTERSECTION_SEPARATOR in str(dimension),
            alpha=methodology["alpha"],
            threshold=methodology["threshold"],
            min_share=methodology["min_share"],
            min_sample=methodology["min_sample"],
        )
        parts.append(table.assign(stage_pair=str(pair), dimension=str(dimension)))
    tables = verdict_adjustment(pd.concat(parts, ignore_index=True), methodology["alpha"], SCORING_ADJUSTMENT)
    return _analysis(tables, None, kind="scoring")


def verdict_adjusted(impacts: pd.DataFrame, scope: Mapping[str, Any]) -> pd.DataFrame:
    """The impact rows with the verdict's tenant-wide adjustment (``risk.assessment.verdict_adjustment``) on the rows
    the verdict read (its ``scope``: stage pairs, intersections or not), so that the report's findings are the
    verdict's. Rows outside the scope keep their table's own adjustment."""
    if impacts.empty or "p_value" not in impacts.columns:
        return impacts
    in_scope = pd.Series(True, index=impacts.index)
    if scope.get("stage_pairs") is not None:
        in_scope &= impacts["stage_pair"].isin(list(scope["stage_pairs"]))
    if scope.get("include_intersections") is False:
        in_scope &= ~impacts["dimension"].map(is_intersection).astype(bool)
    adjusted = verdict_adjustment(impacts[in_scope])
    out = impacts.copy()
    out["table_p_adjusted"] = out["p_adjusted"]
    out["table_significant"] = out["significant"].astype("boolean")
    for column in ("p_adjusted", "adjustment_method", "significant"):
        if column == "significant":
            out[column] = out[column].astype("boolean")
        out.loc[in_scope, column] = adjusted[column]
    return out


def _trend_charts(trends: pd.DataFrame | None, window_end: date, days: int, threshold: float) -> list[dict[str, Any]]:
    """Impact-ratio series of single dimensions over the last ``days`` days, one chart per stage pair and dimension."""
    if trends is None or trends.empty:
        return []
    work = trends.copy()
    work["day"] = pd.to_datetime(work["window_end"]).dt.date
    start = window_end - timedelta(days=days - 1)
    work = work[(work["day"] >= start) & (work["day"] <= window_end)]
    work = work[~work["dimension"].astype(str).str.contains(INTERSECTION_SEPARATOR, regex=False)]
    if "x" not in work.columns:
        raise ValueError("trend table lacks column 'x' (needed to suppress small cells in published reports)")
    charts = []
    for (pair, dimension), rows in work.groupby(["stage_pair", "dimension"], sort=False):
        series = []
        for group, points in rows.sort_values("day").groupby("group", sort=True):
            series.append(
                {
                    "group": str(group),
                    "points": [
                        {"date": d.isoformat(), "impact_ratio": _plain(r), "n": int(n), "x": int(x)}
                        for d, r, n, x in zip(
                            points["day"], points["impact_ratio"], points["n"], points["x"], strict=True
                        )
                    ],
                }
            )
        charts.append(
            {
                "stage_pair": str(pair),
                "dimension": str(dimension),
                "threshold": threshold,
                "start": start.isoformat(),
                "end": window_end.isoformat(),
                "windows": int(rows["day"].nunique()),
                "series": series,
            }
        )
    return sorted(charts, key=lambda c: (_stage_order(c["stage_pair"]), c["dimension"]))


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
    window_days: int = 30,
    headline_stage_pair: str = DEFAULT_HEADLINE_STAGE_PAIR,
    data_explanation: str | None = None,
    tool_distribution_date: date | None = None,
    generated_at: datetime | None = None,
    trend_days: int = 90,
    threshold: float = 0.80,
    alpha: float = 0.05,
    min_share: float = 0.02,
    min_sample: int = 20,
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
        "detailed_analysis": _analysis(own, own_frames) + _scoring_analysis(scoring, methodology),
        "charts": {"trend": _trend_charts(trends, window_end, trend_days, threshold)},
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
        "impact_ratios": [_impact_chart(t, report["methodology"]["threshold"]) for t in report["detailed_analysis"]],
        "funnel": _funnel_charts(selection),
        "trend": report["charts"].get("trend", []),
        "risk_components": _component_chart(report["risk_assessment"]),
    }
    report["executive_summary"] = _executive_summary(report)
    report["recommendations"] = _recommendations(report)
    report["ll144_audit_summary"] = _ll144(report)
    report["compliance_checklist"] = _checklist(report)
    report["interpretation"] = _interpretation(report)
    return report


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


def _impact_chart(table: Mapping[str, Any], threshold: float) -> dict[str, Any]:
    return {
        "kind": table["kind"],
        "stage_pair": table["stage_pair"],
        "dimension": table["dimension"],
        "intersectional": table["intersectional"],
        "threshold": threshold,
        "reference_group": table["reference_group"],
        "points": [
            {
                key: row[key]
                for key in (
                    "group",
                    "impact_ratio",
                    "ci_low",
                    "ci_high",
                    "finding",
                    "n",
                    "x",
                    "low_sample",
                    "suppressed",
                )
            }
            for row in table["groups"]
        ],
    }


def _funnel_charts(tables: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per single dimension: each stage pair's selection rates by group, with the four-fifths line of the reference."""
    by_dimension: dict[str, list[dict[str, Any]]] = {}
    for table in tables:
        if not table["intersectional"]:
            by_dimension.setdefault(table["dimension"], []).append(table)
    charts = []
    for dimension, parts in by_dimension.items():
        panels = []
        for t in parts:
            ref = t["reference_rate"]
            panels.append(
                {
                    "stage_pair": t["stage_pair"],
                    "reference_group": t["reference_group"],
                    "reference_rate": ref,
                    "four_fifths_rate": ref * 0.8 if ref is not None else None,
                    "bars": [
                        {
                            "group": r["group"],
                            "rate": r["selection_rate"],
                            "n": r["n"],
                            "x": r["x"],
                            "finding": r["finding"],
                            "suppressed": r["suppressed"],
                        }
                        for r in t["groups"]
                    ],
                }
            )
        groups = list(dict.fromkeys(r["group"] for t in parts for r in t["groups"]))
        charts.append({"dimension": dimension, "groups": groups, "panels": panels})
    return charts


def _component_chart(risk: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "component": name,
            "label": words.COMPONENT_LABELS[name],
            "value": c["value"],
            "weight": c["weight"],
            "weight_used": c["weight_used"],
            "contribution": c["contribution"],
        }
        for name, c in risk["components"].items()
    ]


def _findings(report: Mapping[str, Any], finding: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    pairs = [
        (t, r)
        for t in report["detailed_analysis"]
        if t["kind"] == "selection"
        for r in t["groups"]
        if r["finding"] == finding
    ]
    return sorted(
        pairs, key=lambda p: (p[1]["impact_ratio"] is None, p[1]["impact_ratio"] or 0, p[0]["intersectional"])
    )


def _executive_summary(report: Mapping[str, Any]) -> dict[str, Any]:
    risk, k = report["risk_assessment"], report["publication"]["min_cell"]
    window = report["window"]
    significant = _findings(report, "adverse_impact")
    insufficient = _findings(report, "insufficient_evidence")
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


def _recommendations(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    risk = report["risk_assessment"]
    level = risk["level"]
    out = [{"priority": level, "source": "risk level", "action": a} for a in risk.get("actions", [])]
    for table, row in _findings(report, "adverse_impact")[:KEY_FINDINGS]:
        shortfall = row.get("shortfall")
        gap = f" ({words.fmt_count(shortfall)} selection(s) short of the reference rate)" if shortfall else ""
        out.append(
            {
                "priority": level,
                "source": "finding",
                "action": f"Review the {words.stage_label(table['stage_pair'])} step for {row['group']} "
                f"({table['dimension']}){gap}: check the criteria and scores that drive it and whether they are "
                "job-related.",
            }
        )
    for table, row in _findings(report, "insufficient_evidence")[:3]:
        out.append(
            {
                "priority": "MEDIUM" if level in ("LOW", "MEDIUM") else level,
                "source": "finding",
                "action": f"Watch {row['group']} ({table['dimension']}) at the "
                f"{words.stage_label(table['stage_pair'])} step: collect more data before drawing a conclusion.",
            }
        )
    return out


def _ll144(report: Mapping[str, Any]) -> dict[str, Any]:
    """NYC LL144 summary of the headline stage pair (and scoring rates when a scoring audit was given)."""
    method = report["methodology"]
    pair = method["headline_stage_pair"]

    def section(kind: str, stage_pair: str | None) -> dict[str, Any] | None:
        tables = [
            t
            for t in report["detailed_analysis"]
            if t["kind"] == kind and (stage_pair is None or t["stage_pair"] == stage_pair)
        ]
        if not tables:
            return None
        singles = [t for t in tables if not t["intersectional"]] or tables
        return {
            "stage_pair": tables[0]["stage_pair"],
            "number_of_candidates": singles[0]["n"],
            "unknown_count": {t["dimension"]: t["unknown_count"] for t in singles},
            "categories": [
                {
                    "dimension": t["dimension"],
                    "category": r["group"],
                    "intersectional": t["intersectional"],
                    "n": r["n"],
                    "rate": r["selection_rate"],
                    "impact_ratio": r["impact_ratio"],
                    "excluded_small_share": bool(r["excluded_small_share"]),
                    "suppressed": r["suppressed"],
                }
                for t in tables
                for r in t["groups"]
            ],
            "excluded_categories": [
                {"dimension": t["dimension"], "category": r["group"], "n": r["n"]}
                for t in tables
                for r in t["groups"]
                if r["excluded_small_share"]
            ],
        }

    return {
        "audit_date": report["generated_at"][:10],
        "data_period": {"start": report["window"]["start"], "end": report["window"]["end"]},
        "data_source": report["data_source"]["name"],
        "data_explanation": report["data_source"]["explanation"],
        "tool_distribution_date": method["tool_distribution_date"],
        "selection": section("selection", pair),
        "scoring": section("scoring", None),
        "notes": [
            f"Categories holding under {method['min_share']:.0%} of the candidates are left out of the impact-ratio "
            "calculation (LL144 allows it); their counts are listed under excluded_categories.",
            "Rates are selection rates (selected / candidates) for the selection section and scoring rates (share "
            "scoring above the median) for the scoring section.",
        ],
    }


def _checklist(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Compliance checklist; status is pass, fail, attention, manual (needs a person) or not_applicable."""
    tables = [t for t in report["detailed_analysis"] if t["kind"] == "selection"]
    summary = report["executive_summary"]["counts"]
    ll144 = report["ll144_audit_summary"]
    level = report["risk_assessment"]["level"]

    def item(item_id: str, source: str, requirement: str, status: str, detail: str) -> dict[str, Any]:
        return {"id": item_id, "source": source, "requirement": requirement, "status": status, "detail": detail}

    headline = ll144["selection"]
    intersections = any(t["intersectional"] for t in tables)
    return [
        item(
            "four_fifths_rule",
            "UGESP 29 CFR 1607.4(D)",
            "Impact ratios computed for every stage pair and dimension",
            "pass" if tables else "fail",
            f"{len(tables)} tables analysed",
        ),
        item(
            "no_significant_adverse_impact",
            "UGESP 29 CFR 1607.4(D)",
            "No statistically and practically significant adverse impact",
            "fail" if summary["adverse_impact"] else "pass",
            f"{summary['adverse_impact']} significant adverse finding(s)",
        ),
        item(
            "insufficient_evidence_flagged",
            "UGESP Questions and Answers",
            "Large differences on small numbers reported as insufficient evidence, not as findings or clearances",
            "attention" if summary["insufficient_evidence"] else "pass",
            f"{summary['insufficient_evidence']} group(s) with insufficient evidence",
        ),
        item(
            "multiple_testing",
            "Methodology",
            "p-values adjusted for multiple comparisons",
            "pass",
            f"selection findings: {VERDICT_ADJUSTMENT}; scoring rates: {SCORING_ADJUSTMENT}",
        ),
        item(
            "ll144_selection_rates",
            "NYC LL144, 6 RCNY 5-301",
            "Selection rates and impact ratios for every category, intersections included",
            "pass" if headline and intersections else "attention",
            "intersections included" if intersections else "no intersectional tables in the input",
        ),
        item(
            "ll144_unknown_category",
            "NYC LL144, 6 RCNY 5-301",
            "Number of candidates in the unknown category",
            "pass" if headline else "fail",
            "reported per dimension" if headline else "no headline stage pair",
        ),
        item(
            "ll144_small_categories",
            "NYC LL144, 6 RCNY 5-301",
            "Categories left out under the 2% rule reported with their counts",
            "pass" if headline else "fail",
            f"{len(headline['excluded_categories']) if headline else 0} categor(y/ies) left out",
        ),
        item(
            "ll144_scoring_rates",
            "NYC LL144, 6 RCNY 5-301(b)",
            "Scoring rates for a tool that scores candidates",
            "pass" if ll144["scoring"] else "manual",
            "scoring-rate audit included" if ll144["scoring"] else "no scoring-rate audit supplied",
        ),
        item(
            "ll144_data_source",
            "NYC LL144, 6 RCNY 5-303",
            "Source and explanation of the data",
            "pass" if report["data_source"]["name"].strip() else "fail",
            report["data_source"]["name"],
        ),
        item(
            "ll144_distribution_date",
            "NYC LL144, 6 RCNY 5-303",
            "Distribution date of the tool",
            "pass" if ll144["tool_distribution_date"] else "manual",
            ll144["tool_distribution_date"] or "not supplied: add it before publishing",
        ),
        item(
            "ll144_annual_audit",
            "NYC LL144",
            "Independent bias audit within one year before use",
            "manual",
            "this report is monitoring evidence; the independent audit is a separate step",
        ),
        item(
            "eu_bias_examination",
            "EU AI Act Art. 10",
            "Possible biases examined and mitigated",
            "attention" if level in ("HIGH", "CRITICAL") else "pass",
            f"risk level {level}" + ("; mitigation required" if level in ("HIGH", "CRITICAL") else ""),
        ),
        item(
            "eu_logging",
            "EU AI Act Art. 12",
            "Automatic logs of the system's operation",
            "manual",
            "selection events are logged; confirm the system's own logs",
        ),
        item(
            "eu_log_retention",
            "EU AI Act Art. 26",
            "Logs kept at least six months",
            "manual",
            "confirm the retention of events and of these reports",
        ),
    ]


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
