"""Calibration of the verdict side (issue 13): tenant-wide adjustment, evidence weight, practical thresholds, report
findings that agree with the verdict, and false-alarm rates of each audit family on null data (fixed seeds).

Monte Carlo bounds: with N null replicates and a true rate of at most alpha = 0.05, the count of alarms exceeds
``N * 0.05 + 3 * sqrt(N * 0.05 * 0.95)`` with probability under 0.2%; each bound below is that figure, worked out.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from fairness_pipeline.audits.exposure import position_weight, rank_exposure, rank_findings
from fairness_pipeline.audits.scoring import scoring_cells, scoring_rate_ratios
from fairness_pipeline.audits.slates import slate_concentration
from fairness_pipeline.metrics.impact import IMPACT_COLUMNS, impact_ratio_table
from fairness_pipeline.metrics.window import AnalysisSettings, group_counts, impacts_for_counts
from fairness_pipeline.reports.builder import build_report
from fairness_pipeline.risk import assess
from fairness_pipeline.risk.assessment import (
    VERDICT_ADJUSTMENT,
    verdict_adjustment,
    verdict_raw_p,
    weighted_holm,
)
from fairness_pipeline.risk.components import ComponentSettings, adverse_impact

END = dt.date(2026, 3, 31)
PAIR = "shown->shortlisted"
GATED = "p_omnibus" in IMPACT_COLUMNS
"""Whether metrics.impact carries the homogeneity gate that accounts for the data-dependent reference (branch
``stats``); without it the impact tables' own p-values are too small on null data, and so is the verdict's."""


def impact(rows: list[tuple[str, int, int]], dimension: str = "company_tier", pair: str = PAIR) -> pd.DataFrame:
    counts = pd.DataFrame(rows, columns=["group", "n", "x"])
    table = impact_ratio_table(counts, intersectional="+" in dimension)
    return table.assign(tenant_id="t1", stage_pair=pair, dimension=dimension)


def bound(replicates: int, alpha: float = 0.05) -> int:
    return math.floor(replicates * alpha + 3 * math.sqrt(replicates * alpha * (1 - alpha)))


# --- the tenant-wide adjustment --------------------------------------------------------------------------------------


def test_weighted_holm_equal_weights_is_holm_and_unequal_weights_by_hand() -> None:
    p = [0.001, 0.04, 0.012, 0.3, 0.0049]
    assert weighted_holm(p, [1.0] * 5) == pytest.approx(multipletests(p, method="holm")[1])
    # Weights 1, 1, 0.1, 0.1 (total 2.2). Order by p / w: a (0.001), b (0.01), c (0.1), d (0.5).
    # a: 0.001 * 2.2 / 1 = 0.0022; b: 0.01 * 1.2 / 1 = 0.012; c: 0.01 * 0.2 / 0.1 = 0.02; d: 0.05 * 0.1 / 0.1 = 0.05.
    adjusted = weighted_holm([0.001, 0.01, 0.01, 0.05], [1.0, 1.0, 0.1, 0.1])
    assert adjusted == pytest.approx([0.0022, 0.012, 0.02, 0.05])
    # Monotone: a later hypothesis never gets a smaller adjusted p than an earlier one.
    assert weighted_holm([0.02, 0.001], [0.1, 1.0]) == pytest.approx([max(0.02 * 0.1 / 0.1, 0.0011), 0.0011])


def test_verdict_uses_the_larger_of_the_pairwise_p_and_the_table_gate() -> None:
    rows = pd.DataFrame(
        {
            "dimension": ["company_tier", "company_tier", "specialty"],
            "p_value": [0.001, 0.001, 0.2],
            "p_omnibus": [0.03, np.nan, 0.1],
        }
    )
    assert verdict_raw_p(rows).tolist() == [0.03, 0.001, 0.2]
    assert verdict_raw_p(rows.drop(columns="p_omnibus")).tolist() == [0.001, 0.001, 0.2]
    out = verdict_adjustment(rows.assign(p_adjusted=np.nan, adjustment_method=None, significant=pd.NA))
    # Holm on (0.03, 0.001, 0.2): 0.003, 0.06, 0.2.
    assert out["p_adjusted"].tolist() == pytest.approx([0.06, 0.003, 0.2])
    assert out["significant"].tolist() == [False, True, False]
    assert set(out["adjustment_method"]) == {VERDICT_ADJUSTMENT}


def test_an_intersection_weighs_a_tenth_of_a_single_dimension() -> None:
    rows = pd.DataFrame({"dimension": ["company_tier", "company_tier+specialty"], "p_value": [0.02, 0.02]})
    rows = rows.assign(p_adjusted=np.nan, adjustment_method=None, significant=pd.NA)
    out = verdict_adjustment(rows)
    # Order by p / w: the single test first, 0.02 * 1.1 / 1 = 0.022; then 0.02 * 0.1 / 0.1 = 0.02 -> 0.022 (monotone).
    assert out["p_adjusted"].tolist() == pytest.approx([0.022, 0.022])
    assert verdict_adjustment(rows, intersection_weight=1.0)["p_adjusted"].tolist() == pytest.approx([0.04, 0.04])


# --- evidence weight counts selections -------------------------------------------------------------------------------


def test_evidence_weight_counts_selections_not_candidates() -> None:
    # shown->hired: 5,000 candidates per group, 6 hires in the reference, none in g. IR = 0, gap 1. The selections
    # behind the comparison: s = min(5000 * 6 / 5000, 6) = 6, weight 6 / 26. Counting candidates (n_eff = 2,500)
    # would have weighed it 2500 / 2520 = 0.99 and made a handful of hires the worst gap of the tenant.
    value = adverse_impact(impact([("ref", 5000, 6), ("g", 5000, 0)], pair="shown->hired"), ComponentSettings())
    assert value.value == pytest.approx(6 / 26)
    assert value.driver["selections"] == pytest.approx(6.0)
    # With 3 hires the reference is not a stable yardstick (fewer than 5 selections): no gap counts.
    assert not adverse_impact(
        impact([("ref", 5000, 3), ("g", 5000, 0)], pair="shown->hired"), ComponentSettings()
    ).value
    # Many selections: 2,000 against 1,000 candidates, reference 20% (200 of 1,000): s = min(2000 * 0.2, 200) = 200.
    many = adverse_impact(impact([("ref", 1000, 200), ("g", 2000, 200)]), ComponentSettings())
    assert many.value == pytest.approx((0.8 - 0.5) / 0.8 * 200 / 220)


# --- practical significance ------------------------------------------------------------------------------------------


def test_a_significant_099_impact_ratio_on_huge_numbers_is_not_a_finding() -> None:
    # 9,900,000 of 20,000,000 against 10,000,000 of 20,000,000: IR = 0.99, z about -31.6, p far below 1e-100.
    table = impact([("ref", 20_000_000, 10_000_000), ("g", 20_000_000, 9_900_000)])
    g = table.set_index("group").loc["g"]
    assert g["impact_ratio"] == pytest.approx(0.99) and g["p_value"] < 1e-100 and g["significant"]
    assessment = assess(table, resamples=50)
    assert assessment.level == "LOW"
    report = build_report("t1", END, table, None, assessment, data_source="test")
    assert report["executive_summary"]["counts"]["adverse_impact"] == 0
    assert report["executive_summary"]["key_findings"] == []


def _two_group_exposure(ratio: float, searches: int, seed: int) -> pd.DataFrame:
    """Per-search aggregates of two groups of 10 impressions each, b's exposure ``ratio`` times a's, with noise."""
    rng = np.random.default_rng(seed)
    a = 10 * (1 + rng.normal(0, 0.01, searches))
    b = 10 * ratio * (1 + rng.normal(0, 0.01, searches))
    rows = []
    for group, weights in (("enterprise", a), ("startup", b)):
        rows.append(
            pd.DataFrame(
                {
                    "tenant_id": "t1",
                    "search_id": np.arange(searches),
                    "company_tier": group,
                    "shown": 10,
                    "ranked": 10,
                    "weight_sum": weights,
                    "top_k": 5,
                    "scored": 10,
                    "score_sum": 5.0,
                    "scored_weight_sum": weights,
                    "merit_weight_sum": weights,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_a_significant_099_exposure_or_treatment_ratio_is_not_a_finding() -> None:
    settings = AnalysisSettings(dimensions=("company_tier",), intersections=False)
    table = rank_exposure(_two_group_exposure(0.99, 2000, 3), settings, n_boot=200, seed=1).set_index("group")
    startup = table.loc["startup"]
    # Equal mean scores, so the treatment ratio equals the exposure ratio (about 0.99); both significant.
    assert startup["exposure_ratio"] == pytest.approx(0.99, abs=0.001)
    assert startup["treatment_ratio"] == pytest.approx(startup["exposure_ratio"])
    assert startup["significant"] and startup["treatment_significant"]
    assert not rank_findings(table, settings.threshold).any()
    low = rank_exposure(_two_group_exposure(0.7, 2000, 3), settings, n_boot=200, seed=1).set_index("group")
    found = rank_findings(low, settings.threshold)
    assert found[found].index.tolist() == ["startup"]


# --- report findings agree with the verdict --------------------------------------------------------------------------


def test_report_findings_use_the_verdict_adjustment_and_say_so() -> None:
    # One real gap (100/1000 against 200/1000, p about 1e-10) and, among 40 tables, one chance gap of p = 0.009:
    # significant in its own two-group table, not across the verdict's 41 tests (0.009 * 40 > 0.05).
    real = impact([("ref", 1000, 200), ("g", 1000, 100)])
    chance = impact([("ref", 400, 100), ("g", 400, 70)], dimension="specialty")
    assert chance.set_index("group").loc["g", "significant"] and chance.set_index("group").loc["g", "p_value"] < 0.01
    fillers = [
        impact([("ref", 400, 100), ("g", 400, 98)], pair=f"stage{i}->next", dimension="experience_band")
        for i in range(39)
    ]
    impacts = pd.concat([real, chance, *fillers], ignore_index=True)
    assessment = assess(impacts, resamples=50)
    assert assessment.level == "HIGH"
    (rule,) = [r for r in assessment.applied_rules if r["rule"] == "significant_adverse"]
    assert rule["finding"]["dimension"] == "company_tier" and rule["finding"]["group"] == "g"
    report = build_report("t1", END, impacts, None, assessment, data_source="test")
    findings = [
        (t["dimension"], g["group"])
        for t in report["detailed_analysis"]
        for g in t["groups"]
        if g["finding"] == "adverse_impact"
    ]
    assert findings == [("company_tier", "g")]
    chance_row = next(
        g
        for t in report["detailed_analysis"]
        if t["dimension"] == "specialty"
        for g in t["groups"]
        if g["group"] == "g"
    )
    assert chance_row["finding"] == "insufficient_evidence" and chance_row["p_adjusted"] > 0.05
    significant, insufficient = report["executive_summary"]["key_findings"]
    assert "company_tier" in significant
    assert "weighted Holm (across every test of the tenant's risk verdict)" in significant
    assert "specialty" in insufficient and "not statistically significant" in insufficient
    assert any("weighted Holm across every test" in note for note in report["methodology"]["notes"])


# --- false alarms on null data, per family ---------------------------------------------------------------------------


def _null_exposure_aggregates(rng: np.random.Generator, tenants: int, searches: int) -> pd.DataFrame:
    """Slates of 20 whose groups are drawn independently of rank (company tier shares as the generator's)."""
    groups = np.array(["faang", "enterprise", "startup", "other"], dtype=object)
    rows, slate = tenants * searches, 20
    drawn = rng.choice(4, size=(rows, slate), p=[0.1, 0.32, 0.3, 0.28])
    rank = np.tile(np.arange(1, slate + 1), (rows, 1))
    score = 1 - 0.03 * rank + rng.normal(0, 0.02, size=rank.shape)
    weight = position_weight(rank)
    frame = pd.DataFrame(
        {
            "tenant_id": np.repeat(np.arange(tenants), searches * slate),
            "search_id": np.repeat(np.arange(rows), slate),
            "company_tier": groups[drawn.ravel()],
            "weight": weight.ravel(),
            "score": score.ravel(),
            "top": (rank <= 10).ravel().astype(int),
        }
    )
    agg = frame.groupby(["tenant_id", "search_id", "company_tier"], as_index=False).agg(
        shown=("weight", "size"), weight_sum=("weight", "sum"), top_k=("top", "sum"), score_sum=("score", "sum")
    )
    agg["tenant_id"] = agg["tenant_id"].map(lambda i: f"t{i:03d}")
    return agg.assign(
        ranked=agg["shown"],
        scored=agg["shown"],
        scored_weight_sum=agg["weight_sum"],
        merit_weight_sum=agg["weight_sum"],
    )


def test_exposure_and_treatment_false_alarms_within_alpha() -> None:
    # 150 null tenant-windows of 400 searches (about what 500 events per tenant-day give in 30 days: 600).
    settings = AnalysisSettings(dimensions=("company_tier",), intersections=False)
    aggregates = _null_exposure_aggregates(np.random.default_rng(20261203), 150, 400)
    table = rank_exposure(aggregates, settings, n_boot=200, seed=7)
    by_tenant = table.groupby("tenant_id")
    exposure = int(by_tenant["significant"].apply(lambda s: s.fillna(False).any()).sum())
    treatment = int(by_tenant["treatment_significant"].apply(lambda s: s.fillna(False).any()).sum())
    assert exposure <= bound(150) and treatment <= bound(150)  # 15
    assert not rank_findings(table, settings.threshold).any()


def test_slate_false_alarms_within_alpha_across_a_window() -> None:
    # 80 null windows of 10 days, 12 slates of 10 a day with groups drawn independently: any significant day?
    rng = np.random.default_rng(7)
    windows, days, searches, size = 80, 10, 12, 10
    groups = np.array(["faang", "enterprise", "startup", "other"], dtype=object)
    drawn = rng.choice(4, size=(windows * days * searches, size), p=[0.4, 0.3, 0.2, 0.1])
    frame = pd.DataFrame(
        {
            "tenant_id": np.repeat(np.arange(windows), days * searches * size),
            "day": np.tile(np.repeat(np.arange(days), searches * size), windows),
            "search_id": np.repeat(np.arange(windows * days * searches), size),
            "company_tier": groups[drawn.ravel()],
            "shown": 1,
        }
    )
    aggregates = frame.groupby(["tenant_id", "day", "search_id", "company_tier"], as_index=False)["shown"].sum()
    summary = slate_concentration(aggregates, dimensions=("company_tier",), window_days=days).summary
    alarms = int(summary.groupby("tenant_id")["excess_significant"].apply(lambda s: s.fillna(False).any()).sum())
    assert alarms <= bound(windows)  # 9
    first = aggregates[aggregates["tenant_id"] == 0]
    per_day = slate_concentration(first, dimensions=("company_tier",), window_days=1).summary
    assert summary["excess_p_adjusted"].to_numpy()[:days] == pytest.approx(
        np.minimum(1.0, days * per_day["excess_p_adjusted"].to_numpy())
    )


def _null_tenant_cells(rng: np.random.Generator, tenant: str, candidates: int) -> pd.DataFrame:
    """Window cells of a fair tenant: groups with the generator's shares, the same funnel probabilities for all."""
    from fairness_pipeline import synthetic
    from fairness_pipeline.events.vocabulary import DIMENSION_VALUES, DIMENSIONS

    grid = pd.MultiIndex.from_product([DIMENSION_VALUES[d] for d in DIMENSIONS], names=list(DIMENSIONS))
    grid = grid.to_frame(index=False)
    probs = np.ones(len(grid))
    for d in DIMENSIONS:
        probs *= grid[d].map(dict(zip(DIMENSION_VALUES[d], synthetic.GROUP_PROPORTIONS[d], strict=True))).to_numpy()
    stages = {"shown": rng.multinomial(candidates, probs / probs.sum())}
    stages["clicked"] = rng.binomial(stages["shown"], 0.1)
    stages["shortlisted"] = rng.binomial(stages["clicked"], 0.4)
    stages["contacted"] = rng.binomial(stages["shortlisted"], 0.55)
    parts = [
        grid.assign(tenant_id=tenant, stage_pair=f"{b}->{s}", n=stages[b], x=stages[s])
        for b, s in (("shown", "clicked"), ("shown", "shortlisted"), ("shortlisted", "contacted"))
    ]
    return pd.concat(parts, ignore_index=True)


def test_scoring_findings_within_alpha() -> None:
    # 120 null tenants of 2,500 scored candidates, scores independent of the groups.
    from fairness_pipeline import synthetic
    from fairness_pipeline.events.vocabulary import DIMENSION_VALUES

    rng = np.random.default_rng(11)
    tenants, per_tenant = 120, 2500
    dims = {d: np.array(v, dtype=object) for d, v in DIMENSION_VALUES.items()}
    candidates = pd.DataFrame(
        {
            "tenant_id": np.repeat([f"t{i:03d}" for i in range(tenants)], per_tenant),
            "score": rng.uniform(size=tenants * per_tenant).round(4),
            **{
                d: v[rng.choice(len(v), tenants * per_tenant, p=synthetic.GROUP_PROPORTIONS[d])]
                for d, v in dims.items()
            },
        }
    )
    table = scoring_rate_ratios(scoring_cells(candidates), AnalysisSettings(intersections=False))
    finding = table["significant"].fillna(False).astype(bool) & table["adverse_impact"].fillna(False).astype(bool)
    per_table = table.assign(finding=finding).groupby(["tenant_id", "dimension"])["finding"].any()
    assert int(per_table.sum()) <= bound(len(per_table))  # 360 tables: 29
    if GATED:  # with the gate, any significant group (not only findings) stays within alpha too
        significant = table.assign(s=table["significant"].fillna(False).astype(bool))
        assert int(significant.groupby(["tenant_id", "dimension"])["s"].any().sum()) <= bound(len(per_table))


@pytest.mark.skipif(not GATED, reason="needs the homogeneity gate p_omnibus of metrics.impact (branch stats)")
def test_verdict_high_or_critical_within_alpha_on_null_tenants() -> None:
    # 60 fair tenants of 8,000 shown candidates (about 500 events per tenant-day), three stage pairs, every
    # dimension and intersection; the tenant-wide adjustment keeps HIGH or CRITICAL within alpha.
    rng = np.random.default_rng(5)
    settings = AnalysisSettings()
    high = 0
    for t in range(60):
        impacts = impacts_for_counts(group_counts(_null_tenant_cells(rng, f"t{t}", 8000), settings), settings)
        high += assess(impacts, resamples=20).level in ("HIGH", "CRITICAL")
    assert high <= bound(60)  # 8
