"""Risk components on hand-built impact tables (arithmetic in the comments), and the bootstrap interval."""

from __future__ import annotations

import time
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from fairness_pipeline.events.vocabulary import DEFAULT_STAGE_PAIRS, DIMENSION_VALUES, stage_pair_name
from fairness_pipeline.metrics.impact import impact_ratio_table
from fairness_pipeline.metrics.window import AnalysisSettings, impacts_for_counts
from fairness_pipeline.risk import RESAMPLED, ComponentSettings, assess
from fairness_pipeline.risk.components import (
    adverse_impact,
    adverse_impact_from_counts,
    all_components,
    count_tables,
    evidence,
    slate,
    trend,
)

PAIR = "shown->shortlisted"


def impact(rows: list[tuple[str, int, int]], dimension: str = "company_tier", pair: str = PAIR) -> pd.DataFrame:
    """An impact table (TABLE_KEYS + IMPACT_COLUMNS) from (group, n, x) rows, computed by metrics.impact."""
    counts = pd.DataFrame(rows, columns=["group", "n", "x"])
    table = impact_ratio_table(counts, intersectional="+" in dimension)
    return table.assign(tenant_id="t1", stage_pair=pair, dimension=dimension)


def test_adverse_impact_formula_by_hand() -> None:
    # Reference 100/200 = 0.5, group 30/100 = 0.3: IR = 0.6, gap = (0.8 - 0.6) / 0.8 = 0.25.
    # Selections behind it: s = min(100 * 100 / 200, 100) = 50 (g's selections at the reference rate); evidence
    # weight = 50 / 70; component = 0.25 * 5 / 7.
    value = adverse_impact(impact([("ref", 200, 100), ("g", 100, 30)]), ComponentSettings())
    assert value.value == pytest.approx(0.25 * 5 / 7, rel=1e-12)
    assert value.driver["group"] == "g" and value.driver["impact_ratio"] == pytest.approx(0.6)
    assert value.resampled


def test_adverse_impact_is_zero_at_the_four_fifths_line_and_halved_for_intersections() -> None:
    # 48/60 = 0.80 exactly is not adverse: gap 0.
    assert adverse_impact(impact([("ref", 100, 60), ("g", 100, 48)]), ComponentSettings()).value == 0.0
    single = adverse_impact(impact([("ref", 200, 100), ("g", 100, 30)]), ComponentSettings()).value
    pair = adverse_impact(impact([("a|x", 200, 100), ("b|y", 100, 30)], dimension="d1+d2"), ComponentSettings()).value
    assert pair == pytest.approx(0.5 * single)


def test_groups_left_out_under_two_percent_do_not_count() -> None:
    # "tiny" has 3 of 1003 candidates (0.3%) and none selected: reported, never compared.
    table = impact([("a", 500, 250), ("b", 500, 240), ("tiny", 3, 0)])
    assert bool(table.set_index("group").loc["tiny", "excluded_small_share"])
    assert adverse_impact(table, ComponentSettings()).value == 0.0


def test_evidence_formula_by_hand() -> None:
    # Reference 60/100 vs 20/100: z-test, p far below 0.001 -> strength 1. Intersections count half.
    strong = evidence(impact([("ref", 100, 60), ("g", 100, 20)]), ComponentSettings())
    assert strong.value == 1.0 and strong.driver["group"] == "g"
    # A not significant gap (2/10 vs 50/100, Fisher p about 0.1) gives no evidence at all.
    weak = evidence(impact([("ref", 100, 50), ("g", 10, 2)]), ComponentSettings())
    assert weak.value == 0.0
    # p_adjusted = 0.01 -> log10(0.01) / log10(0.001) = 2/3.
    table = impact([("ref", 100, 60), ("g", 100, 20)])
    table.loc[table["group"] == "g", "p_adjusted"] = 0.01
    assert evidence(table, ComponentSettings()).value == pytest.approx(2 / 3)


def test_slate_and_trend_formulas_by_hand() -> None:
    # 30 of 100 slates concentrated on company_tier, 10 of 100 on specialty -> 0.30.
    slates = pd.DataFrame({"dimension": ["company_tier", "specialty"], "slates": [100, 100], "concentrated": [30, 10]})
    assert slate(slates, ComponentSettings()).value == pytest.approx(0.30)
    # A series falling linearly from 1.0 to 0.9 over 30 days (31 points): fitted change -0.10 -> 0.10 / 0.20 = 0.5,
    # times the evidence weight of its last n = 180: 180 / 200 = 0.9.
    end = date(2026, 3, 31)
    rows = [
        {
            "window_end": end - timedelta(days=30 - d),
            "stage_pair": PAIR,
            "dimension": "company_tier",
            "group": "g",
            "n": 180,
            "x": 50,
            "impact_ratio": 1.0 - 0.1 * d / 30,
        }
        for d in range(31)
    ]
    value = trend(pd.DataFrame(rows), ComponentSettings(), end)
    assert value.value == pytest.approx(0.5 * 0.9)
    assert value.driver["fitted_change"] == pytest.approx(-0.1)
    # A rising series is not worsening; fewer than 14 points are not a trend.
    rising = pd.DataFrame(rows).assign(impact_ratio=lambda f: 2 - f["impact_ratio"])
    assert trend(rising, ComponentSettings(), end).value == 0.0
    assert trend(pd.DataFrame(rows[:10]), ComponentSettings(), end).value is None


def test_missing_inputs_are_unavailable_not_zero() -> None:
    values = all_components(impact([("ref", 100, 50), ("g", 100, 45)]), None, None, ComponentSettings())
    assert values["adverse_impact"].value == 0.0
    assert [values[c].value for c in ("scoring_rate", "exposure", "slate", "trend")] == [None] * 4
    with pytest.raises(ValueError, match="exposure table lacks columns"):
        all_components(impact([("ref", 100, 50)]), {"exposure": pd.DataFrame({"group": []})}, None, ComponentSettings())


# --- bootstrap ---------------------------------------------------------------------------------------------------


def realistic_impacts(seed: int = 3) -> pd.DataFrame:
    """Six stage pairs, three dimensions and their pairwise intersections of one tenant (about 600 groups)."""
    rng = np.random.default_rng(seed)
    rows = []
    for baseline, selection in DEFAULT_STAGE_PAIRS:
        pair = stage_pair_name(baseline, selection)
        for dim, values in DIMENSION_VALUES.items():
            for value in (*values, "unknown"):
                n = int(rng.integers(20, 600))
                rows.append(("t1", pair, dim, value, n, int(rng.binomial(n, 0.3))))
        for d1, d2 in (
            ("company_tier", "experience_band"),
            ("company_tier", "specialty"),
            ("experience_band", "specialty"),
        ):
            for v1 in DIMENSION_VALUES[d1]:
                for v2 in DIMENSION_VALUES[d2]:
                    n = int(rng.integers(1, 120))
                    rows.append(("t1", pair, f"{d1}+{d2}", f"{v1}|{v2}", n, int(rng.binomial(n, 0.3))))
    counts = pd.DataFrame(rows, columns=["tenant_id", "stage_pair", "dimension", "group", "n", "x"])
    return impacts_for_counts(counts, AnalysisSettings())


def test_bootstrap_is_reproducible_for_a_seed() -> None:
    impacts = realistic_impacts()
    first = assess(impacts, seed=42)
    again = assess(impacts, seed=42)
    other = assess(impacts, seed=43)
    assert (first.ci_low, first.ci_high) == (again.ci_low, again.ci_high)
    assert (first.ci_low, first.ci_high) != (other.ci_low, other.ci_high)
    assert first.score == other.score
    assert first.bootstrap["resampled_components"] == sorted(RESAMPLED & {"adverse_impact"})


def test_thousand_resamples_well_under_a_second() -> None:
    impacts = realistic_impacts()
    assert len(impacts) > 500
    assess(impacts, seed=1, resamples=10)  # warm the caches (YAML files)
    started = time.perf_counter()
    result = assess(impacts, seed=1, resamples=1000)
    total = time.perf_counter() - started
    assert result.bootstrap["seconds"] < 1.0, result.bootstrap
    assert total < 2.0


def test_bootstrap_interval_covers_the_true_value_at_about_the_nominal_rate(tmp_path) -> None:
    # Truth: three groups with known selection probabilities; the true component is the formula at the expected
    # counts x = n p. A profile that weighs only the resampled component makes the score that component.
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text("profiles:\n  severity_only:\n    weights: {adverse_impact: 1.0}\n")
    n = np.array([400, 300, 150])
    p = np.array([0.30, 0.20, 0.27])
    groups = ["a", "b", "c"]
    # Reference a: IR_b = 0.2 / 0.3; gap = (0.8 - 2/3) / 0.8 = 1/6; selections s = min(300 * 0.3, 120) = 90; weight
    # s / (s + 20). IR_c = 0.9: no gap.
    truth = (0.8 - 2 / 3) / 0.8 * 90 / 110
    expected = pd.DataFrame({"dimension": "d", "group": groups, "n": n, "x": n * p})
    tables = count_tables(expected, ComponentSettings())
    assert adverse_impact_from_counts(tables, tables.x[None, :], ComponentSettings())[0][0] == pytest.approx(truth)
    rng = np.random.default_rng(2026)
    simulations, covered = 200, 0
    for i in range(simulations):
        x = rng.binomial(n, p)
        result = assess(
            impact(list(zip(groups, n.tolist(), x.tolist(), strict=True))),
            profile="severity_only",
            profiles_path=profiles,
            seed=i,
            resamples=1000,
        )
        covered += result.ci_low <= truth <= result.ci_high
    # Nominal 95%; with 200 simulations the standard error is about 1.5 points.
    print(f"coverage {covered / simulations:.3f}")
    assert 0.90 <= covered / simulations <= 0.99, covered / simulations


def test_interval_brackets_the_score_and_stays_in_unit_range() -> None:
    result = assess(realistic_impacts(7), seed=5)
    assert 0.0 <= result.ci_low <= result.ci_high <= 1.0
    assert result.ci_low <= result.score <= result.ci_high


def test_other_tenants_rows_in_optional_inputs_are_ignored() -> None:
    end = date(2026, 3, 31)
    falling = pd.DataFrame(
        [
            {
                "tenant_id": "t2",
                "window_end": end - timedelta(days=29 - d),
                "stage_pair": PAIR,
                "dimension": "company_tier",
                "group": "g",
                "n": 500,
                "x": 100,
                "impact_ratio": 1.0 - 0.5 * d / 29,
            }
            for d in range(30)
        ]
    )
    result = assess(impact([("ref", 200, 100), ("g", 200, 95)]), trends=falling, window_end=end)
    assert result.components["trend"].value is None  # t2's series does not describe t1
    numbers = result.metadata_numbers()
    assert set(numbers) == {"risk_score", "risk_ci_low", "risk_ci_high", "risk_level_index"}
    assert numbers["risk_level_index"] == 0


def test_database_column_names_are_accepted() -> None:
    # scoring_rate_ratios (group_value, above_median), rank_exposure (group_value), slate_concentration (assessed).
    scoring = pd.DataFrame(
        {"dimension": "company_tier", "group_value": ["a", "b"], "n": [200, 100], "above_median": [100, 30]}
    )
    exposure_table = pd.DataFrame(
        {
            "dimension": "company_tier",
            "group_value": ["a", "b", "tiny"],
            "exposure_ratio": [1.0, 0.6, 0.1],
            "excluded_small_share": [False, False, True],
        }
    )
    slates = pd.DataFrame({"dimension": "company_tier", "searches": [120], "assessed": [100], "concentrated": [30]})
    values = all_components(
        impact([("ref", 100, 50), ("g", 100, 45)]),
        {"scoring_rate": scoring, "exposure": exposure_table, "slate": slates},
        None,
        ComponentSettings(),
    )
    # Scoring: the same arithmetic as test_adverse_impact_formula_by_hand. Exposure: 0.6 -> gap 0.25 ('tiny' is
    # left out under the 2% rule). Slates: 30 / 100.
    assert values["scoring_rate"].value == pytest.approx(0.25 * 5 / 7)
    assert values["exposure"].value == pytest.approx(0.25)
    assert values["slate"].value == pytest.approx(0.30)
