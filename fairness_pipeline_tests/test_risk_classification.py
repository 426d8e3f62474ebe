"""Risk levels on hand-built metric sets: every level from the score, every override rule, the contexts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fairness_pipeline.metrics.impact import impact_ratio_table
from fairness_pipeline.risk import LEVELS, RulesError, assess, load_rules
from fairness_pipeline.risk.classification import SHIPPED_RULES

PAIR = "shown->shortlisted"


def impact(rows: list[tuple[str, int, int]], dimension: str = "company_tier", pair: str = PAIR) -> pd.DataFrame:
    counts = pd.DataFrame(rows, columns=["group", "n", "x"])
    return impact_ratio_table(counts, intersectional="+" in dimension).assign(
        tenant_id="t1", stage_pair=pair, dimension=dimension
    )


# Two equal groups: 100/200 each, ratio 1, no rule can hold.
NEUTRAL = [("a", 200, 100), ("b", 200, 100)]


@pytest.fixture
def slate_profile(tmp_path: Path) -> Path:
    """A profile whose score is exactly the slate component (concentrated slates / slates): a dial for the score."""
    path = tmp_path / "profiles.yaml"
    path.write_text("profiles:\n  slate_only:\n    description: test dial\n    weights: {slate: 1.0}\n")
    return path


def slates(share: float) -> dict[str, pd.DataFrame]:
    return {
        "slate": pd.DataFrame(
            {"dimension": ["company_tier"], "slates": [10_000], "concentrated": [round(share * 10_000)]}
        )
    }


def rule_ids(result) -> list[str]:
    return [r["rule"] for r in result.applied_rules]


@pytest.mark.parametrize(
    ("share", "level", "band"),
    [
        (0.05, "LOW", "EXCELLENT"),
        (0.2499, "LOW", "GOOD"),
        (0.25, "MEDIUM", "MODERATE"),  # thresholds are inclusive: score >= 0.25 is MEDIUM
        (0.49, "MEDIUM", "MODERATE"),
        (0.50, "HIGH", "POOR"),
        (0.75, "CRITICAL", "CRITICAL"),
        (0.95, "CRITICAL", "CRITICAL"),
    ],
)
def test_every_level_from_the_score(slate_profile: Path, share: float, level: str, band: str) -> None:
    result = assess(impact(NEUTRAL), audits=slates(share), profile="slate_only", profiles_path=slate_profile)
    assert result.score == pytest.approx(share)
    assert (result.score_level, result.level, result.band) == (level, level, band)
    assert result.applied_rules == []
    assert result.dominant_component == "slate"
    # No resampled component carries weight: the interval is the score itself.
    assert result.ci_low == result.ci_high == pytest.approx(share)


def test_each_level_has_a_timeline_and_actions(slate_profile: Path) -> None:
    days = {}
    for share, level in ((0.1, "LOW"), (0.3, "MEDIUM"), (0.6, "HIGH"), (0.9, "CRITICAL")):
        result = assess(impact(NEUTRAL), audits=slates(share), profile="slate_only", profiles_path=slate_profile)
        assert result.level == level and result.timeline["level"] == level
        assert result.actions and result.timeline["timeline"]
        days[level] = result.timeline["days"]
    assert days["LOW"] > days["MEDIUM"] > days["HIGH"] > days["CRITICAL"] == 2


def test_significant_adverse_impact_below_half_is_critical() -> None:
    # 20/100 against 60/100: IR = 1/3 < 0.50; z-test p = 7.8e-9; not a flip-flop (21/100 vs 59/100 is far below 1).
    # Score: gap (0.8 - 1/3) / 0.8 = 0.583, selections s = min(100 * 0.6, 60) = 60, weight 60 / 80 -> 0.4375;
    # evidence 1; with weights 0.583 / 0.417 the score is 0.67 (HIGH). The rule makes it CRITICAL.
    result = assess(impact([("ref", 100, 60), ("g", 100, 20)]))
    assert result.score == pytest.approx(0.35 / 0.6 * (0.8 - 1 / 3) / 0.8 * 60 / 80 + 0.25 / 0.6)
    assert result.score_level == "HIGH"
    assert result.level == "CRITICAL"
    first = result.applied_rules[0]
    assert first["rule"] == "significant_adverse_below_half" and first["changed"]
    assert first["level_after"] == "CRITICAL" and "impact ratio 0.33" in first["reason"]
    assert first["finding"]["group"] == "g"


def test_any_significant_adverse_impact_is_at_least_high() -> None:
    # 350/1000 against 500/1000: IR = 0.70, z = -6.7, significant. Severity = 0.125 * e(500) = 0.12; evidence 1.
    # Default profile without audits: weights 0.35 and 0.25 shared out as 0.583 / 0.417 -> score 0.49 (MEDIUM).
    result = assess(impact([("ref", 1000, 500), ("g", 1000, 350)]))
    assert result.score == pytest.approx(0.35 / 0.6 * 0.125 * 500 / 520 + 0.25 / 0.6 * 1.0)
    assert result.score_level == "MEDIUM"
    assert result.level == "HIGH"
    assert rule_ids(result) == ["significant_adverse"]
    assert "0.70" in result.applied_rules[0]["reason"]


def test_significant_but_flip_flop_is_not_escalated() -> None:
    # A significant difference that moving one selection would reverse is not practically significant.
    table = impact([("ref", 1000, 500), ("g", 1000, 350)])
    table.loc[table["group"] == "g", "flip_flop"] = True
    result = assess(table)
    assert "significant_adverse" not in rule_ids(result)
    assert result.components["evidence"].value == 0.0


def test_large_gap_on_small_numbers_is_medium_with_insufficient_evidence() -> None:
    # 2/10 against 50/100: IR = 0.40, Fisher p about 0.1: not significant; n = 10 < 20 (low sample).
    # Severity 0.5 * e(s = min(10 * 0.5, 50) = 5) = 0.5 * 5 / 25 = 0.1 -> score 0.06, LOW; the rule makes it MEDIUM.
    result = assess(impact([("ref", 100, 50), ("g", 10, 2)]))
    assert result.score_level == "LOW"
    assert result.level == "MEDIUM"
    assert rule_ids(result) == ["insufficient_evidence"]
    assert "insufficient_evidence" in result.flags
    assert "insufficient evidence" in result.applied_rules[0]["reason"]
    assert any("neither a finding nor a clearance" in a for a in result.actions)


def test_insufficient_evidence_does_not_apply_next_to_a_significant_finding() -> None:
    table = pd.concat(
        [impact([("ref", 100, 50), ("g", 10, 2)]), impact([("ref", 100, 60), ("g", 100, 20)], dimension="specialty")]
    )
    assert "insufficient_evidence" not in rule_ids(assess(table))


def test_several_high_components_is_at_least_high() -> None:
    # No adverse impact; exposure ratio 0.2 -> 0.75 and 70% concentrated slates -> 0.70: two components >= 0.60.
    audits = {
        "exposure": pd.DataFrame({"dimension": ["company_tier"] * 2, "group": ["a", "b"], "exposure_ratio": [1, 0.2]}),
        "slate": pd.DataFrame({"dimension": ["company_tier"], "slates": [100], "concentrated": [70]}),
    }
    result = assess(impact(NEUTRAL), audits=audits)
    # Available weights 0.35 + 0.25 + 0.10 + 0.05 = 0.75: score = (0.10 * 0.75 + 0.05 * 0.70) / 0.75.
    assert result.score == pytest.approx((0.10 * 0.75 + 0.05 * 0.70) / 0.75)
    assert result.score_level == "LOW" and result.level == "HIGH"
    assert rule_ids(result) == ["several_high_components"]
    assert "exposure, slate" in result.applied_rules[0]["reason"]


def test_nothing_comparable_is_not_a_clearance() -> None:
    # No selections at all: every ratio is undefined (reference rate 0); no component has data.
    result = assess(impact([("a", 100, 0), ("b", 50, 0)]))
    assert result.score is None and result.ci_low is None and result.band is None
    assert result.level == "MEDIUM"
    assert rule_ids(result) == ["no_comparison"] and result.flags == ["no_comparable_data"]


def test_rules_are_applied_in_order_and_all_recorded() -> None:
    # IR 1/3 significant: both significance rules hold; the second does not change the level but is recorded.
    result = assess(impact([("ref", 100, 60), ("g", 100, 20)]))
    assert rule_ids(result) == ["significant_adverse_below_half", "significant_adverse"]
    assert [r["changed"] for r in result.applied_rules] == [True, False]
    assert all(r["reason"] for r in result.applied_rules)


# --- regulatory contexts -------------------------------------------------------------------------------------------

# 22/100 against 30/100: IR = 0.733, not significant (p about 0.2), not small numbers (n = 100, no flip-flop):
# the base rules leave it LOW.
MILD = [("ref", 100, 30), ("g", 100, 22)]


def test_mild_gap_is_low_without_context() -> None:
    result = assess(impact(MILD))
    assert result.level == "LOW" and result.applied_rules == []


def test_nyc_ll144_context_reviews_any_published_ratio_below_four_fifths() -> None:
    result = assess(impact(MILD), context="nyc_ll144")
    assert result.level == "MEDIUM"
    assert rule_ids(result) == ["ll144_published_ratio_below_four_fifths"]
    assert result.applied_rules[0]["source"] == "context:nyc_ll144"
    assert "ll144_bias_audit" in result.flags
    assert any("10 business days" in a for a in result.actions)


def test_eu_ai_act_context_lowers_thresholds_and_examines_adverse_ratios(slate_profile: Path) -> None:
    # Score 0.22: LOW under the base thresholds, MEDIUM under the EU context's (MEDIUM from 0.20).
    base = assess(impact(NEUTRAL), audits=slates(0.22), profile="slate_only", profiles_path=slate_profile)
    eu = assess(
        impact(NEUTRAL),
        audits=slates(0.22),
        profile="slate_only",
        profiles_path=slate_profile,
        context="eu_ai_act_high_risk",
    )
    assert base.level == "LOW" and eu.level == "MEDIUM" and eu.thresholds["MEDIUM"] == 0.20
    mild = assess(impact(MILD), context="eu_ai_act_high_risk")
    assert rule_ids(mild) == ["eu_adverse_ratio_examined"] and mild.level == "MEDIUM"
    assert any("Art. 26" in a for a in mild.actions)


def test_eu_rule_looks_at_single_dimensions_only() -> None:
    result = assess(
        impact([("a|x", 100, 30), ("b|y", 100, 22)], dimension="company_tier+specialty"), context="eu_ai_act_high_risk"
    )
    assert "eu_adverse_ratio_examined" not in rule_ids(result)


def test_unknown_context_is_an_error() -> None:
    with pytest.raises(RulesError, match="unknown regulatory context 'gdpr'"):
        assess(impact(NEUTRAL), context="gdpr")


def test_ugesp_context_changes_nothing_but_flags() -> None:
    result = assess(impact(MILD), context="us_ugesp")
    assert result.level == "LOW" and result.flags == ["ugesp"]


# --- rule effects and rule files -----------------------------------------------------------------------------------


def custom_rules(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "rules.yaml"
    text = SHIPPED_RULES.read_text()
    path.write_text(text.replace("\nlevels:\n", "\n" + extra + "\nlevels:\n", 1))
    return path


def test_at_most_and_set_effects(tmp_path: Path) -> None:
    cap = """  - id: cap_small_tenant
    condition: adverse_impact
    params: {below: 0.80, scope: all}
    at_most: MEDIUM
    reason: "Capped for the test: {group} at {impact_ratio:.2f}."
"""
    result = assess(impact([("ref", 1000, 500), ("g", 1000, 350)]), rules_path=custom_rules(tmp_path, cap))
    assert rule_ids(result) == ["significant_adverse", "cap_small_tenant"]
    assert result.level == "MEDIUM"
    assert result.applied_rules[-1]["level_before"] == "HIGH" and result.applied_rules[-1]["changed"]


def test_rules_file_errors_name_the_file_and_the_rule(tmp_path: Path) -> None:
    bad_condition = "  - id: oops\n    condition: gender_gap\n    at_least: HIGH\n    reason: x\n"
    with pytest.raises(RulesError, match=r"rules\.yaml: rule 'oops': unknown condition 'gender_gap'"):
        load_rules(custom_rules(tmp_path, bad_condition))
    bad_field = "  - id: oops2\n    condition: adverse_impact\n    at_least: HIGH\n    reason: '{candidate}'\n"
    with pytest.raises(RulesError, match=r"rule 'oops2': reason template cannot be filled"):
        load_rules(custom_rules(tmp_path, bad_field))
    bad_level = "  - id: oops3\n    condition: adverse_impact\n    at_least: SEVERE\n    reason: x\n"
    with pytest.raises(RulesError, match=r"rule 'oops3': at_least must be one of"):
        load_rules(custom_rules(tmp_path, bad_level))
    path = tmp_path / "thresholds.yaml"
    path.write_text(SHIPPED_RULES.read_text().replace("  HIGH: 0.50\n", "  HIGH: 0.20\n", 1))
    with pytest.raises(RulesError, match=r"thresholds\.yaml: thresholds: values must increase strictly"):
        load_rules(path)


def test_shipped_rules_cover_every_level() -> None:
    rules = load_rules()
    assert list(rules.thresholds) == list(LEVELS[1:])
    assert set(rules.levels) == set(LEVELS)
    assert {"nyc_ll144", "eu_ai_act_high_risk"} <= set(rules.contexts)


def test_assessment_serialises_to_json_ready_dict() -> None:
    import json

    data = assess(impact([("ref", 100, 60), ("g", 100, 20)]), seed=3).to_dict()
    text = json.dumps(data, allow_nan=False)
    assert data["level"] == "CRITICAL" and data["level_index"] == 3
    assert set(data["components"]) == {"adverse_impact", "evidence", "scoring_rate", "exposure", "slate", "trend"}
    assert "NaN" not in text
