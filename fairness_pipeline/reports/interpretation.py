"""Plain-language sentences rendered from templates (no language model, no network).

Every sentence is built from one of ``TEMPLATES`` with numbers formatted by the helpers below. The functions take the
report's own dictionaries, so the same code words the internal report and the published one: in a published report a
suppressed group's numbers are gone and its sentence says so instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

from fairness_pipeline.risk.assessment import SCORING_ADJUSTMENT, VERDICT_ADJUSTMENT

COMPONENT_LABELS: dict[str, str] = {
    "adverse_impact": "adverse-impact severity (how far the worst impact ratios fall below 0.80)",
    "evidence": "statistical evidence (significant adverse findings after adjustment)",
    "scoring_rate": "scoring-rate impact ratios",
    "exposure": "ranking exposure",
    "slate": "concentrated slates",
    "trend": "a worsening trend",
}

FINDING_LABELS: dict[str, str] = {
    "adverse_impact": "adverse impact (significant)",
    "insufficient_evidence": "insufficient evidence",
    "not_practically_significant": "not practically significant",
    "no_adverse_impact": "no adverse impact",
    "reference": "reference group",
    "excluded": "left out (under 2%)",
    "undefined": "no ratio",
}

TEMPLATES: dict[str, str] = {
    "risk": "The overall fairness risk for {tenant} in the {days}-day window ending {end} is {level}{score_text}.",
    "risk_score": " (score {score} on a scale from 0, no concern, to 1; 95% interval {ci_low} to {ci_high}; "
    "band {band})",
    "no_score": "No weighted risk component had data, so there is no score; the level comes from the rules alone.",
    "dominant": "The largest part of the score comes from {component}.",
    "timeline": "Recommended timeline: {timeline}",
    "rule": "Rule {rule} set the level from {before} to {after}: {reason}",
    "rules_unchanged": "{count} more rule(s) also hold without changing the level: {rules}.",
    "adverse_impact": (
        "At the {stage} step, {group} candidates ({dimension}) were selected at {rate}, against {ref_rate} for "
        "{reference}, the reference group: an impact ratio of {ratio}, below the 0.80 line. The difference is "
        "statistically significant after {method} adjustment (p {p}){shortfall}."
    ),
    "shortfall": "; {shortfall} more selection(s) would have brought the group to the reference rate",
    "insufficient_evidence": (
        "At the {stage} step, {group} ({dimension}) has an impact ratio of {ratio}, below the 0.80 line, but the "
        "difference is not statistically significant{small}. Under the Uniform Guidelines this is insufficient "
        "evidence: neither a finding of adverse impact nor a clearance."
    ),
    "small_numbers": " and rests on small numbers",
    "insufficient_evidence_many": (
        "At the {stage} step, {count} {dimension} groups have impact ratios below the 0.80 line that are not "
        "statistically significant: {groups}. Under the Uniform Guidelines this is insufficient evidence: neither a "
        "finding of adverse impact nor a clearance."
    ),
    "not_practically_significant": (
        "At the {stage} step, {group} ({dimension}) has an impact ratio of {ratio} that is statistically "
        "significant, but moving a single selection would reverse it, so it is not practically significant."
    ),
    "suppressed": (
        "At the {stage} step, {group} ({dimension}) is classed as {finding}, but its rates and ratios are withheld: "
        "{withheld}."
    ),
    "readjusted": (
        " Its own table's adjustment finds the gap significant (p {table_p}); the risk verdict re-adjusts every "
        "test of the tenant together (weighted Holm), which does not keep it, so it counts as insufficient evidence."
    ),
    "unknown_withheld": "The number of candidates with no recorded {dimension} is withheld ({count}).",
    "few_windows": "{count} window(s) so far: the trend fills in as more days are materialised.",
    "ratios_suppressed": (
        "At the {stage} step, the impact ratios for {dimension} are not published because the reference group's "
        "counts are under {k}."
    ),
    "no_adverse": "At the {stage} step, no {dimension} group has an impact ratio below 0.80{lowest}.",
    "lowest": " (lowest: {group} at {ratio})",
    "no_comparison": "At the {stage} step, no {dimension} group could be compared with a reference group.",
    "unknown": "{count} candidate(s) have no recorded {dimension}; they are counted in the 'unknown' category.",
    "trend": "Over the last {days} days the impact ratio of {group} ({dimension}, {stage} step) went from {first} to "
    "{last}.",
    "no_trend": "No trend series were available for this report.",
    "suppression_note": (
        "Small counts: a count from 1 to {k_minus} is shown as '< {k}' (when the number not selected is under {k}, "
        "the number selected is shown as '> n-{k}'); a zero is shown; when a table hides exactly one count, the next "
        "smallest is withheld too (shown 'suppressed') so the total does not give it back. Every rate, ratio and "
        "p-value computed from a withheld count is withheld; the finding's class stays, with the count withheld named."
    ),
}


def suppression_note(k: int) -> str:
    """The one statement of the small-count rule, for the published formats."""
    return TEMPLATES["suppression_note"].format(k=k, k_minus=k - 1)


def fmt_ratio(value: Any, threshold: float = 0.80) -> str:
    """Two decimals, or more when rounding would lift a ratio below the threshold onto it (0.7996 -> 0.7996)."""
    if value is None:
        return "n/a"
    for digits in range(2, 7):
        text = f"{value:.{digits}f}"
        if not (value < threshold <= float(text)):
            return text
    return repr(value)


def fmt_rate(value: Any) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def fmt_p(value: Any) -> str:
    """A p-value with its relation: '= 0.012' or '< 0.001'."""
    if value is None:
        return "n/a"
    return "< 0.001" if value < 0.001 else f"= {value:.3f}"


def fmt_count(value: Any) -> str:
    """Counts as text: whole numbers (also 484.0, as counts read back from a table arrive) with thousands
    separators, suppressed counts as they are ('< 5')."""
    if value is None:
        return "n/a"
    if isinstance(value, Real) and not isinstance(value, bool) and float(value).is_integer():
        return f"{int(value):,}"
    return str(value)


def stage_label(stage_pair: str) -> str:
    return stage_pair.replace("->", " → ")


def method_label(method: Any) -> str:
    labels = {
        "holm": "Holm",
        "fdr_bh": "Benjamini-Hochberg",
        VERDICT_ADJUSTMENT: "weighted Holm (across every test of the tenant's risk verdict)",
        SCORING_ADJUSTMENT: "weighted Holm (across all of the tenant's scoring-rate tests)",
    }
    return labels.get(method, str(method or "multiple-testing"))


def finding_of(row: Mapping[str, Any]) -> str:
    """The plain finding for one group row of an impact table (before any suppression).

    adverse_impact: IR < 0.80, significant after adjustment and practically significant (no flip-flop);
    not_practically_significant: significant but a flip-flop; insufficient_evidence: IR < 0.80, not significant;
    no_adverse_impact: IR >= 0.80; reference; excluded (under 2%); undefined (empty group, reference rate 0).
    """
    if row.get("is_reference") and row.get("impact_ratio") is not None:
        return "reference"
    if row.get("excluded_small_share"):
        return "excluded"
    if row.get("impact_ratio") is None:
        return "undefined"
    if not row.get("adverse_impact"):
        return "no_adverse_impact"
    if row.get("significant"):
        return "not_practically_significant" if row.get("flip_flop") else "adverse_impact"
    return "insufficient_evidence"


def withheld_counts(row: dict[str, Any], k: int) -> str:
    """Which of a published row's counts are withheld and why, in words ("the number selected is under 5")."""
    n, x = row.get("n"), row.get("x")
    if n == f"< {k}":
        return f"the number of candidates is under {k}"
    if x == f"< {k}":
        return f"the number selected is under {k}"
    if isinstance(x, str) and x.startswith("> "):
        return f"the number not selected is under {k}"
    return f"its counts are withheld with another group's: otherwise the table total would give back a count under {k}"


def group_sentence(table: Mapping[str, Any], row: Mapping[str, Any], k: int) -> str | None:
    """One sentence about a group whose finding needs words (adverse, insufficient evidence, flip-flop)."""
    finding = row["finding"]
    names = {"stage": stage_label(table["stage_pair"]), "group": row["group"], "dimension": table["dimension"]}
    if row.get("suppressed") and finding in ("adverse_impact", "insufficient_evidence", "not_practically_significant"):
        return TEMPLATES["suppressed"].format(
            **names, finding=FINDING_LABELS[finding], withheld=withheld_counts(row, k)
        )
    if finding == "adverse_impact":
        shortfall = row.get("shortfall")
        return TEMPLATES["adverse_impact"].format(
            **names,
            rate=fmt_rate(row.get("selection_rate")),
            ref_rate=fmt_rate(table.get("reference_rate")),
            reference=table.get("reference_group"),
            ratio=fmt_ratio(row.get("impact_ratio")),
            method=method_label(row.get("adjustment_method")),
            p=fmt_p(row.get("p_adjusted")),
            shortfall=TEMPLATES["shortfall"].format(shortfall=fmt_count(shortfall)) if shortfall else "",
        )
    if finding == "insufficient_evidence":
        small = TEMPLATES["small_numbers"] if row.get("low_sample") or row.get("flip_flop") else ""
        sentence = TEMPLATES["insufficient_evidence"].format(
            **names, ratio=fmt_ratio(row.get("impact_ratio")), small=small
        )
        return sentence + readjustment_note(row)
    if finding == "not_practically_significant":
        return TEMPLATES["not_practically_significant"].format(**names, ratio=fmt_ratio(row.get("impact_ratio")))
    return None


def readjustment_note(row: Mapping[str, Any]) -> str:
    """Why a gap its own table calls significant is not a finding: the verdict's tenant-wide adjustment drops it."""
    if not row.get("table_significant") or row.get("significant"):
        return ""
    return TEMPLATES["readjusted"].format(
        table_p=fmt_p(row.get("table_p_adjusted")),
    )


def table_sentences(table: Mapping[str, Any], k: int) -> list[str]:
    """Sentences for one impact table: findings first, then the note on excluded and unknown categories."""
    names = {"stage": stage_label(table["stage_pair"]), "dimension": table["dimension"]}
    rows = table["groups"]
    weak = [r for r in rows if r["finding"] == "insufficient_evidence" and not r.get("suppressed")]
    if len(weak) > 1:
        listed = ", ".join(
            f"{r['group']} ({fmt_ratio(r['impact_ratio'])}{', small numbers' if r.get('low_sample') else ''})"
            for r in weak
        )
        sentences = [s for row in rows if row not in weak and (s := group_sentence(table, row, k))]
        sentences.append(TEMPLATES["insufficient_evidence_many"].format(**names, count=len(weak), groups=listed))
    else:
        sentences = [s for row in rows if (s := group_sentence(table, row, k))]
    if table.get("ratios_suppressed"):
        sentences.append(TEMPLATES["ratios_suppressed"].format(**names, k=k))
    elif not sentences:
        compared = [r for r in rows if r["finding"] in ("no_adverse_impact",) and r.get("impact_ratio") is not None]
        if compared:
            low = min(compared, key=lambda r: r["impact_ratio"])
            lowest = TEMPLATES["lowest"].format(group=low["group"], ratio=fmt_ratio(low["impact_ratio"]))
            sentences.append(TEMPLATES["no_adverse"].format(**names, lowest=lowest))
        elif not any(r["finding"] == "no_adverse_impact" for r in rows):
            sentences.append(TEMPLATES["no_comparison"].format(**names))
        else:
            sentences.append(TEMPLATES["no_adverse"].format(**names, lowest=""))
    unknown = table.get("unknown_count")
    if unknown and not table.get("intersectional"):
        template = "unknown" if isinstance(unknown, int) else "unknown_withheld"
        sentences.append(TEMPLATES[template].format(count=fmt_count(unknown), dimension=table["dimension"]))
    return sentences


def risk_sentences(risk: Mapping[str, Any], tenant: str, days: int, end: str) -> list[str]:
    """The overall verdict, what drives it, the rules that changed it, and the timeline."""
    if risk.get("score") is not None:
        score_text = TEMPLATES["risk_score"].format(
            score=fmt_ratio(risk["score"]),
            ci_low=fmt_ratio(risk.get("ci_low")),
            ci_high=fmt_ratio(risk.get("ci_high")),
            band=risk.get("band"),
        )
    else:
        score_text = ""
    sentences = [
        TEMPLATES["risk"].format(tenant=tenant, days=days, end=end, level=risk["level"], score_text=score_text)
    ]
    if risk.get("score") is None:
        sentences.append(TEMPLATES["no_score"])
    if risk.get("dominant_component"):
        sentences.append(TEMPLATES["dominant"].format(component=COMPONENT_LABELS[risk["dominant_component"]]))
    rules = risk.get("applied_rules", [])
    for rule in rules:
        if rule.get("changed"):
            sentences.append(
                TEMPLATES["rule"].format(
                    rule=rule["rule"], before=rule["level_before"], after=rule["level_after"], reason=rule["reason"]
                )
            )
    unchanged = [r["rule"] for r in rules if not r.get("changed")]
    if unchanged:
        sentences.append(TEMPLATES["rules_unchanged"].format(count=len(unchanged), rules=", ".join(unchanged)))
    sentences.append(TEMPLATES["timeline"].format(timeline=risk["timeline"]["timeline"]))
    return sentences


def trend_sentences(trend_charts: Sequence[Mapping[str, Any]], days: int, limit: int = 3) -> list[str]:
    """The largest falls of impact ratios over the trend period (first and last published point of each series)."""
    moves = []
    for chart in trend_charts:
        for series in chart["series"]:
            points = [p for p in series["points"] if p.get("impact_ratio") is not None]
            if len(points) >= 2:
                first, last = points[0]["impact_ratio"], points[-1]["impact_ratio"]
                moves.append((last - first, chart, series["group"], first, last))
    if not trend_charts:
        return [TEMPLATES["no_trend"]]
    falls = sorted((m for m in moves if m[0] < 0), key=lambda m: m[0])[:limit]
    return [
        TEMPLATES["trend"].format(
            days=days,
            group=group,
            dimension=chart["dimension"],
            stage=stage_label(chart["stage_pair"]),
            first=fmt_ratio(first),
            last=fmt_ratio(last),
        )
        for _, chart, group, first, last in falls
    ]
