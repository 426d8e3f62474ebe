"""The compliance content of a report: recommended actions, the NYC LL144 summary and the checklist. Private to
``reports.builder``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fairness_pipeline.catalogue import load_catalogue
from fairness_pipeline.reports import interpretation as words
from fairness_pipeline.risk.assessment import SCORING_ADJUSTMENT, VERDICT_ADJUSTMENT

KEY_FINDINGS = 5


def findings(report: Mapping[str, Any], finding: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
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


def recommendations(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    risk = report["risk_assessment"]
    level = risk["level"]
    out = [{"priority": level, "source": "risk level", "action": a} for a in risk.get("actions", [])]
    for table, row in findings(report, "adverse_impact")[:KEY_FINDINGS]:
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
    for table, row in findings(report, "insufficient_evidence")[:3]:
        out.append(
            {
                "priority": "MEDIUM" if level in ("LOW", "MEDIUM") else level,
                "source": "finding",
                "action": f"Watch {row['group']} ({table['dimension']}) at the "
                f"{words.stage_label(table['stage_pair'])} step: collect more data before drawing a conclusion.",
            }
        )
    return out


PROXIES_ONLY_STATEMENT = (
    "Proxies only: no self-identified sex or race/ethnicity was loaded for this tenant's candidates, so the categories "
    "below are the inferred proxy dimensions. This is monitoring evidence, not an LL144 bias audit: load the "
    "candidates' self-identification (fairness-pipeline attributes load) for the LL144 categories."
)
SELF_IDENTIFIED_STATEMENT = (
    "Categories from the candidates' self-identification (sex, race/ethnicity and their intersection, 6 RCNY 5-301). "
    "Candidates who declined or gave no answer are counted in the unknown category, which is never compared."
)
SCORING_PROXIES_NOTE = (
    "Scoring rates are computed on the proxy dimensions only (company tier, experience band, specialty), not on the "
    "LL144 categories."
)


def ll144_dimensions() -> frozenset[str]:
    """The LL144 dimensions: the catalogue's attribute dimensions and its intersections made only of them."""
    catalogue = load_catalogue()
    attributes = set(catalogue.attribute_dimensions)
    intersections = {
        name
        for parts, name in zip(catalogue.intersections, catalogue.intersection_names, strict=True)
        if set(parts) <= attributes
    }
    return frozenset(attributes | intersections)


def ll144(report: Mapping[str, Any]) -> dict[str, Any]:
    """NYC LL144 summary of the headline stage pair, on the self-identified categories when the report has them
    (else on the proxies, saying so), and scoring rates when a scoring audit was given."""
    method = report["methodology"]
    pair = method["headline_stage_pair"]
    protected = ll144_dimensions()
    self_identified = any(
        t["kind"] == "selection" and t["stage_pair"] == pair and t["dimension"] in protected
        for t in report["detailed_analysis"]
    )

    def section(kind: str, stage_pair: str | None) -> dict[str, Any] | None:
        tables = [
            t
            for t in report["detailed_analysis"]
            if t["kind"] == kind
            and (stage_pair is None or t["stage_pair"] == stage_pair)
            and (kind != "selection" or (t["dimension"] in protected) == self_identified)
        ]
        if not tables:
            return None
        singles = [t for t in tables if not t["intersectional"]] or tables
        return {
            "stage_pair": tables[0]["stage_pair"],
            "number_of_candidates": singles[0]["n"],
            "number_selected": singles[0]["x"],
            "unknown_count": {t["dimension"]: t["unknown_count"] for t in singles},
            "categories": [
                {
                    "dimension": t["dimension"],
                    "category": r["group"],
                    "intersectional": t["intersectional"],
                    "n": r["n"],
                    "x": r["x"],
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

    notes = [
        f"Categories holding under {method['min_share']:.0%} of the candidates are left out of the impact-ratio "
        "calculation and of the choice of reference (LL144 allows it); they are listed, as grey rows, with their "
        "counts and rates, and under excluded_categories.",
        "The unknown category (no answer, declined, or an intersection with an unknown part) is counted beside each "
        "table; it is never the reference group and never decides adverse impact.",
        "Rates are selection rates (selected / candidates) for the selection section and scoring rates (share "
        "scoring above the median) for the scoring section.",
    ]
    scoring = section("scoring", None)
    if scoring and self_identified:
        notes.append(SCORING_PROXIES_NOTE)
    return {
        "audit_date": report["generated_at"][:10],
        "data_period": {"start": report["window"]["start"], "end": report["window"]["end"]},
        "data_source": report["data_source"]["name"],
        "data_explanation": report["data_source"]["explanation"],
        "tool_distribution_date": method["tool_distribution_date"],
        "categories_source": "self_identified" if self_identified else "proxies",
        "statement": SELF_IDENTIFIED_STATEMENT if self_identified else PROXIES_ONLY_STATEMENT,
        "selection": section("selection", pair),
        "scoring": scoring,
        "notes": notes,
    }


def checklist(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Compliance checklist; status is pass, fail, attention, manual (needs a person) or not_applicable."""
    tables = [t for t in report["detailed_analysis"] if t["kind"] == "selection"]
    summary = report["executive_summary"]["counts"]
    ll144 = report["ll144_audit_summary"]
    level = report["risk_assessment"]["level"]

    def item(item_id: str, source: str, requirement: str, status: str, detail: str) -> dict[str, Any]:
        return {"id": item_id, "source": source, "requirement": requirement, "status": status, "detail": detail}

    headline = ll144["selection"]
    self_identified = ll144["categories_source"] == "self_identified"
    intersections = bool(headline) and any(c["intersectional"] for c in headline["categories"])
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
            "ll144_categories",
            "NYC LL144, 6 RCNY 5-301",
            "Categories are sex and race/ethnicity from the candidates' self-identification",
            "pass" if self_identified else "fail",
            "self-identified sex and race/ethnicity"
            if self_identified
            else "proxies only: monitoring evidence, not an LL144 bias audit",
        ),
        item(
            "ll144_selection_rates",
            "NYC LL144, 6 RCNY 5-301",
            "Selection rates and impact ratios for every category, intersections included",
            "pass" if self_identified and intersections else "fail" if not self_identified else "attention",
            ("sex, race/ethnicity and their intersection" if intersections else "no intersectional table")
            if self_identified
            else "rates and ratios of the proxy dimensions only, not of the LL144 categories",
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
