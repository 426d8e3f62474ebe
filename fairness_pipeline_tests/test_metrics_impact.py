"""Impact ratios and tests, checked against hand-worked numbers, scipy and statsmodels."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency, fisher_exact, hypergeom
from scipy.stats.contingency import expected_freq
from statsmodels.stats.multitest import multipletests

from fairness_pipeline.metrics.impact import (
    IMPACT_COLUMNS,
    NO_REFERENCE_REASON,
    UNKNOWN_GROUP_REASON,
    benjamini_hochberg,
    choose_reference,
    holm,
    hypergeometric_tests,
    impact_ratio_table,
    impact_ratio_tables,
    summarise_impact,
    table_records,
    unknown_count,
)

ANY_REFERENCE = {"min_reference_candidates": 0, "min_reference_selections": 0}
"""Known-answer cases on few candidates: every known group that meets the share rule may be the reference."""


def _counts(rows: list[tuple[str, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["group", "n", "x"])


def _row(table: pd.DataFrame, group: str) -> pd.Series:
    return table.set_index("group").loc[group]


def _oracle_p(x_g: int, n_g: int, x_r: int, n_r: int) -> tuple[str, float]:
    """Independent choice of test and p-value: scipy's expected frequencies, chi-square or Fisher."""
    table = np.array([[x_g, n_g - x_g], [x_r, n_r - x_r]])
    if expected_freq(table).min() < 5:
        return "fisher_exact", fisher_exact(table).pvalue
    return "two_proportion_z", chi2_contingency(table, correction=False).pvalue


def test_ugesp_example_by_hand() -> None:
    # 48/80 = 0.60 (reference) vs 12/40 = 0.30: IR = 0.5 < 0.8, adverse.
    table = impact_ratio_table(_counts([("white", 80, 48), ("black", 40, 12)]))
    assert list(table.columns) == list(IMPACT_COLUMNS)
    ref, g = _row(table, "white"), _row(table, "black")
    assert ref["is_reference"] and ref["impact_ratio"] == 1.0 and ref["test"] is None
    assert ref["undefined_reason"] is None and pd.isna(ref["p_value"])
    assert g["reference_group"] == "white" and g["reference_rate"] == 0.6
    assert g["impact_ratio"] == 0.5
    assert g["adverse_impact"]
    # Expected cells: rows 40, 80; columns 60, 60; N = 120 -> smallest 40 * 60 / 120 = 20 >= 5: z-test.
    assert g["test"] == "two_proportion_z"
    # Pooled p = 60/120 = 0.5; se = sqrt(0.25 * (1/40 + 1/80)) = sqrt(0.009375) = 0.0968246; z = -0.3 / se = -3.09839.
    assert g["statistic"] == pytest.approx(-3.098387, abs=1e-6)
    # Katz: se = sqrt(1/12 - 1/40 + 1/48 - 1/80) = sqrt(1/15) = 0.2581989; 0.5 * exp(-+1.96 se) = 0.301430, 0.829380.
    assert g["ci_low"] == pytest.approx(0.5 * math.exp(-1.96 * math.sqrt(1 / 15)), rel=1e-12)
    assert g["ci_high"] == pytest.approx(0.5 * math.exp(1.96 * math.sqrt(1 / 15)), rel=1e-12)
    assert g["ci_low"] == pytest.approx(0.301430, abs=1e-6)
    assert g["ci_high"] == pytest.approx(0.829380, abs=1e-6)
    # Shortfall: 40 * 0.6 - 12 = 12. Flip-flop: (13/40) / (47/80) = 0.325 / 0.5875 = 0.553 < 1.
    assert g["shortfall"] == 12
    assert g["flip_flop_ratio"] == pytest.approx(0.325 / 0.5875, rel=1e-12)
    assert not g["flip_flop"]
    # Cohen's h = 2 asin(sqrt 0.3) - 2 asin(sqrt 0.6) = 1.159279 - 1.772154 = -0.612875.
    assert g["cohens_h"] == pytest.approx(-0.612875, abs=1e-6)
    # Only one test: Holm leaves p unchanged; p = 0.001946 < 0.05.
    assert g["p_adjusted"] == g["p_value"]
    assert g["p_value"] == pytest.approx(0.0019457, abs=1e-6)
    assert g["significant"] and g["adjustment_method"] == "holm"
    assert not g["low_sample"] and g["undefined_reason"] is None


def test_z_squared_equals_chi_square() -> None:
    table = impact_ratio_table(_counts([("r", 500, 210), ("g", 350, 120)]))
    g = _row(table, "g")
    chi2, p, _, _ = chi2_contingency(np.array([[120, 230], [210, 290]]), correction=False)
    assert g["test"] == "two_proportion_z"
    assert g["statistic"] ** 2 == pytest.approx(chi2, rel=1e-10)
    assert g["statistic"] < 0  # group rate below the reference
    assert g["p_value"] == pytest.approx(p, rel=1e-10)


def test_fisher_when_an_expected_cell_is_below_five() -> None:
    # 2/10 vs 27/50: columns 29 and 31, N = 60; smallest expected 10 * 29 / 60 = 4.83 < 5 -> Fisher.
    table = impact_ratio_table(_counts([("r", 50, 27), ("g", 10, 2)]))
    g = _row(table, "g")
    result = fisher_exact([[2, 8], [27, 23]])
    assert g["test"] == "fisher_exact"
    assert g["statistic"] == pytest.approx(result.statistic, rel=1e-12)  # odds ratio (2 * 23) / (8 * 27)
    assert g["statistic"] == pytest.approx(46 / 216, rel=1e-12)
    assert g["p_value"] == pytest.approx(result.pvalue, rel=1e-12)
    assert g["low_sample"]  # n = 10 < 20, yet tested


def test_expected_count_of_exactly_five_uses_z() -> None:
    # 3/10 vs 27/50: columns 30 and 30, N = 60; smallest expected 10 * 30 / 60 = 5, not below 5 -> z-test.
    table = impact_ratio_table(_counts([("r", 50, 27), ("g", 10, 3)]))
    g = _row(table, "g")
    assert g["test"] == "two_proportion_z"
    assert g["low_sample"]
    assert g["p_value"] == pytest.approx(chi2_contingency([[3, 7], [27, 23]], correction=False).pvalue, rel=1e-10)


def test_boundary_ratio_of_exactly_point_eight_is_not_adverse() -> None:
    # 48/100 vs 60/100: IR = 0.48 / 0.60 = 4/5 exactly.
    g = _row(impact_ratio_table(_counts([("r", 100, 60), ("g", 100, 48)])), "g")
    assert g["impact_ratio"] == 0.8
    assert not g["adverse_impact"]
    # 60/100 vs 75/100 is also exactly 4/5, but naive float division of the rates falls just below 0.8;
    # the table must still report 0.8 and no adverse impact (no tolerance involved).
    assert (60 / 100) / (75 / 100) < 0.8
    g = _row(impact_ratio_table(_counts([("r", 100, 75), ("g", 100, 60)])), "g")
    assert g["impact_ratio"] == 0.8
    assert not g["adverse_impact"]
    # Just below: 59/100 vs 75/100 = 0.7867 -> adverse.
    g = _row(impact_ratio_table(_counts([("r", 100, 75), ("g", 100, 59)])), "g")
    assert g["adverse_impact"]


def test_threshold_is_configurable() -> None:
    g = _row(impact_ratio_table(_counts([("r", 100, 60), ("g", 100, 48)]), threshold=0.9), "g")
    assert g["adverse_impact"]


def test_zero_selections_in_a_group() -> None:
    # 0/30 vs 20/40: IR = 0, shortfall = 30 * 0.5 = 15, Cohen's h = 0 - 2 asin(sqrt 0.5) = -pi/2.
    g = _row(impact_ratio_table(_counts([("r", 40, 20), ("g", 30, 0)])), "g")
    assert g["impact_ratio"] == 0.0
    assert g["adverse_impact"]
    assert g["shortfall"] == 15
    assert g["cohens_h"] == pytest.approx(-math.pi / 2, rel=1e-12)
    # Katz with 0.5 added to all four cells: a = 0.5, b = 30 + 1, c = 20.5, d = 40 + 1.
    a, b, c, d = 0.5, 31.0, 20.5, 41.0
    centre = math.log((a / b) / (c / d))
    half = 1.96 * math.sqrt(1 / a - 1 / b + 1 / c - 1 / d)
    assert g["ci_low"] == pytest.approx(math.exp(centre - half), rel=1e-12)
    assert g["ci_high"] == pytest.approx(math.exp(centre + half), rel=1e-12)
    assert 0 < g["ci_low"] < g["ci_high"] < 1
    # Expected cells: smallest 30 * 20 / 70 = 8.6 >= 5 -> z-test, p from chi-square.
    assert g["test"] == "two_proportion_z"
    assert g["p_value"] == pytest.approx(chi2_contingency([[0, 30], [20, 20]], correction=False).pvalue, rel=1e-10)


def test_zero_reference_rate_is_undefined() -> None:
    table = impact_ratio_table(_counts([("a", 40, 0), ("b", 30, 0)]), **ANY_REFERENCE)
    assert table["reference_group"].tolist() == ["a", "a"]  # tie on rate 0: larger n
    assert table["impact_ratio"].isna().all()
    assert table["adverse_impact"].isna().all()
    assert table["p_value"].isna().all() and table["significant"].isna().all()
    assert table["ci_low"].isna().all() and table["flip_flop_ratio"].isna().all()
    assert table["undefined_reason"].tolist() == ["reference selection rate is 0"] * 2
    assert table["selection_rate"].tolist() == [0.0, 0.0]  # rates themselves are defined


def test_empty_group_is_reported_not_tested() -> None:
    table = impact_ratio_table(_counts([("r", 50, 25), ("g", 50, 10), ("empty", 0, 0)]))
    e = _row(table, "empty")
    assert e["n"] == 0 and np.isnan(e["selection_rate"])
    assert e["undefined_reason"] == "empty group"
    assert np.isnan(e["impact_ratio"]) and pd.isna(e["adverse_impact"]) and pd.isna(e["shortfall"])
    assert e["test"] is None and np.isnan(e["p_value"])
    # Only g is tested, so its Holm p equals its raw p.
    g = _row(table, "g")
    assert g["p_adjusted"] == g["p_value"]


def test_one_group_dimension_has_no_tests() -> None:
    table = impact_ratio_table(_counts([("only", 50, 10)]))
    assert len(table) == 1
    row = table.iloc[0]
    assert row["is_reference"] and row["impact_ratio"] == 1.0
    assert table["p_value"].isna().all() and table["p_adjusted"].isna().all()
    assert summarise_impact(table)["lowest_impact_ratio"] is None


def test_two_percent_rule() -> None:
    # Total 1000. "tiny" holds 1% with the highest rate (10/10) but is left out; "edge" holds exactly 2% and stays.
    counts = _counts([("big", 600, 300), ("mid", 370, 100), ("edge", 20, 6), ("tiny", 10, 10)])
    table = impact_ratio_table(counts)
    assert table["reference_group"].unique().tolist() == ["big"]
    tiny, edge = _row(table, "tiny"), _row(table, "edge")
    assert tiny["excluded_small_share"] and tiny["share"] == 0.01
    assert tiny["selection_rate"] == 1.0 and tiny["n"] == 10  # counts and rate still reported
    assert np.isnan(tiny["impact_ratio"]) and np.isnan(tiny["p_value"])
    assert "excluded" in tiny["undefined_reason"]
    assert not edge["excluded_small_share"] and edge["share"] == 0.02
    assert edge["impact_ratio"] == pytest.approx(0.3 / 0.5)
    assert summarise_impact(table)["excluded_groups"] == ["tiny"]
    # Without the share rule and the minimum counts the small group becomes the reference.
    assert choose_reference(counts, min_share=0.0, **ANY_REFERENCE) == "tiny"
    # Without the share rule alone it does not: 10 candidates are under the default 30.
    assert choose_reference(counts, min_share=0.0) == "big"


def test_no_group_meets_the_share_rule_no_fallback() -> None:
    # No group holds 50% of the population: no reference, nothing compared, every group left out and reported.
    counts = _counts([("a", 30, 3), ("b", 30, 9), ("c", 30, 6)])
    table = impact_ratio_table(counts, min_share=0.5, **ANY_REFERENCE)
    assert table["reference_group"].isna().all()
    assert table["excluded_small_share"].all()
    assert table["impact_ratio"].isna().all() and table["p_value"].isna().all()
    assert table["selection_rate"].tolist() == [0.1, 0.3, 0.2]


def test_reference_ties() -> None:
    assert choose_reference(_counts([("a", 20, 10), ("b", 40, 20)])) == "b"  # same rate: larger n
    assert choose_reference(_counts([("b", 40, 20), ("a", 40, 20)])) == "a"  # same rate and n: name
    assert choose_reference(_counts([("a", 0, 0)])) is None


def test_holm_against_statsmodels_and_hand() -> None:
    # By hand: p = (0.01, 0.04, 0.03) -> sorted 0.01*3 = 0.03, 0.03*2 = 0.06, max(0.06, 0.04*1) = 0.06.
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    # BH: 0.04*3/3 = 0.04, min(0.03*3/2, 0.04) = 0.04, min(0.01*3/1, 0.04) = 0.03.
    assert benjamini_hochberg([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.04, 0.04])
    rng = np.random.default_rng(3)
    p = rng.random(9) ** 3
    assert holm(p.tolist()) == pytest.approx(multipletests(p, method="holm")[1].tolist(), rel=1e-12)
    assert benjamini_hochberg(p.tolist()) == pytest.approx(multipletests(p, method="fdr_bh")[1].tolist(), rel=1e-12)


def _group_vs_rest_bonferroni(rows: list[tuple[str, int, int]]) -> float:
    """Oracle of the sparse omnibus: Bonferroni over each group's doubled one-sided Fisher test against the rest."""
    total, chosen = sum(n for _, n, _ in rows), sum(x for _, _, x in rows)
    p = []
    for _, n, x in rows:
        table = [[x, n - x], [chosen - x, total - n - chosen + x]]
        one_sided = min(
            fisher_exact(table, alternative="less").pvalue, fisher_exact(table, alternative="greater").pvalue
        )
        p.append(min(1.0, 2 * one_sided))
    return min(1.0, len(rows) * min(p))


@pytest.mark.parametrize(("intersectional", "method"), [(False, "holm"), (True, "fdr_bh")])
def test_table_adjustment_against_oracles(intersectional: bool, method: str) -> None:
    # Total 360; every group holds at least 2%, so all five non-reference groups form one family. The expected
    # count of b's non-selected cell is 10 * 172 / 360 = 4.8 < 5: the omnibus is the exact group-vs-rest Bonferroni.
    rows = [("r", 100, 60), ("a", 60, 28), ("b", 10, 2), ("c", 40, 20), ("d", 120, 68), ("e", 30, 10)]
    table = impact_ratio_table(_counts(rows), intersectional=intersectional)
    ref = next(r for r in rows if r[0] == "r")
    others = [r for r in rows if r[0] != "r"]
    oracle = [_oracle_p(x, n, ref[2], ref[1]) for _, n, x in others]
    omnibus = _group_vs_rest_bonferroni(rows)
    expected_adj = np.maximum(multipletests([p for _, p in oracle], method=method)[1], omnibus)
    by_group = table.set_index("group")
    for (group, _, _), (test, p), adj in zip(others, oracle, expected_adj, strict=True):
        assert by_group.loc[group, "test"] == test
        assert by_group.loc[group, "p_value"] == pytest.approx(p, rel=1e-9)
        assert by_group.loc[group, "p_omnibus"] == pytest.approx(omnibus, rel=1e-9)
        assert by_group.loc[group, "p_adjusted"] == pytest.approx(adj, rel=1e-9)
        assert by_group.loc[group, "adjustment_method"] == method
        assert bool(by_group.loc[group, "significant"]) == (adj < 0.05)
    assert by_group.loc["b", "test"] == "fisher_exact" and by_group.loc["b", "low_sample"]
    assert np.isnan(by_group.loc["r", "p_omnibus"])  # the reference row has no test


def test_omnibus_is_pearson_chi_square_when_expected_cells_allow() -> None:
    # Every expected cell is at least 5: p_omnibus is scipy's chi-square of homogeneity on the 5 x 2 table.
    rows = [("a", 200, 69), ("b", 200, 58), ("c", 200, 58), ("d", 200, 45), ("e", 200, 55)]
    table = impact_ratio_table(_counts(rows)).set_index("group")
    oracle = chi2_contingency([[x, n - x] for _, n, x in rows], correction=False).pvalue
    compared = table[~table["is_reference"]]
    assert compared["p_omnibus"].tolist() == pytest.approx([oracle] * 4, rel=1e-9)
    assert oracle == pytest.approx(0.12501, abs=1e-5)
    # The gate decides here: d (45/200 against a's 69/200) has Holm p 0.031 on its own, but the table as a whole does
    # not differ (a was picked as the highest of five rates), so d is not significant.
    holm_p = multipletests(compared["p_value"], method="holm")[1]
    assert holm_p.min() == pytest.approx(0.031413, abs=1e-6)
    assert compared["p_adjusted"].tolist() == pytest.approx(np.maximum(holm_p, oracle).tolist(), rel=1e-12)
    assert not compared["significant"].any()


@pytest.mark.parametrize("seed", range(6))
def test_two_compared_groups_keep_textbook_p_values(seed: int) -> None:
    # Two compared groups (an unknown and a sub-2% group beside them change nothing): the pairwise test is the
    # omnibus test, so p_omnibus = p_adjusted = p_value = scipy's chi-square or Fisher p.
    rng = np.random.default_rng(seed)
    n_r, n_g = (int(v) for v in rng.integers(30, 400, 2))
    x_r, x_g = int(rng.integers(5, n_r // 2)), int(rng.integers(0, n_g // 3))
    rows = [("r", n_r, x_r), ("g", n_g, x_g), ("unknown", 40, 30), ("tiny", 1, 1)]
    table = impact_ratio_table(_counts(rows), intersectional=bool(seed % 2))
    reference = choose_reference(_counts(rows))
    low, high = ("g", "r") if reference == "r" else ("r", "g")
    row = _row(table, low)
    ref_row = next(r for r in rows if r[0] == high)
    own = next(r for r in rows if r[0] == low)
    test, p = _oracle_p(own[2], own[1], ref_row[2], ref_row[1])
    assert row["test"] == test
    assert row["p_value"] == pytest.approx(p, rel=1e-9)
    assert row["p_omnibus"] == row["p_value"] and row["p_adjusted"] == row["p_value"]


def test_unknown_is_never_the_reference_nor_compared() -> None:
    # unknown has the highest rate and 20% of the candidates; faang|unknown is an intersection cell with an unknown
    # part.
    single = impact_ratio_table(_counts([("startup", 300, 60), ("faang", 200, 50), ("unknown", 125, 60)]))
    assert single["reference_group"].unique().tolist() == ["faang"]
    unknown = _row(single, "unknown")
    assert unknown["undefined_reason"] == UNKNOWN_GROUP_REASON
    assert pd.isna(unknown["adverse_impact"]) and np.isnan(unknown["p_value"]) and not unknown["excluded_small_share"]
    assert unknown["selection_rate"] == 0.48 and unknown["share"] == 0.2  # counted and reported
    cells = _counts([("faang|unknown", 100, 60), ("faang|3-7", 100, 30), ("startup|3-7", 100, 20)])
    table = impact_ratio_table(cells, intersectional=True)
    assert table["reference_group"].unique().tolist() == ["faang|3-7"]
    assert _row(table, "faang|unknown")["undefined_reason"] == UNKNOWN_GROUP_REASON
    assert choose_reference(_counts([("unknown", 500, 400)])) is None


def test_small_groups_are_compared_but_never_the_reference() -> None:
    # Shares all >= 2% of 1,000. "small" (rate 0.6) has 25 candidates, under 30; "high" (rate 0.1) 4 selections,
    # under 5: both are compared against "big" (rate 0.08), neither is the reference.
    counts = _counts([("big", 500, 40), ("mid", 185, 10), ("small", 25, 15), ("high", 40, 4), ("few", 250, 4)])
    table = impact_ratio_table(counts)
    assert table["reference_group"].unique().tolist() == ["big"]
    small = _row(table, "small")
    assert small["impact_ratio"] == pytest.approx(0.6 / 0.08) and small["test"] == "fisher_exact"
    assert _row(table, "high")["impact_ratio"] == pytest.approx(0.1 / 0.08)
    # With the minimums lowered the small group is the reference again.
    assert choose_reference(counts, min_reference_candidates=20, min_reference_selections=5) == "small"


def test_no_eligible_reference_is_said_not_guessed() -> None:
    counts = _counts([("a", 25, 10), ("b", 28, 4), ("unknown", 300, 150)])
    table = impact_ratio_table(counts)
    assert table["reference_group"].isna().all() and not table["is_reference"].any()
    reasons = table.set_index("group")["undefined_reason"]
    assert reasons["a"] == reasons["b"]
    assert reasons["a"] == (
        f"{NO_REFERENCE_REASON}: no known group with at least 2% of the population, n >= 30 and x >= 5"
    )
    assert reasons["unknown"] == UNKNOWN_GROUP_REASON
    assert table["impact_ratio"].isna().all() and table["significant"].isna().all()
    summary = summarise_impact(table)
    assert summary["reference_group"] is None and summary["adverse_groups"] == []


def test_declared_reference_has_no_gate() -> None:
    rows = [("a", 200, 69), ("b", 200, 58), ("c", 200, 58), ("d", 200, 45), ("e", 200, 55)]
    table = impact_ratio_table(_counts(rows), declared_reference="c").set_index("group")
    assert table["reference_group"].unique().tolist() == ["c"]
    compared = table[~table["is_reference"]]
    assert compared["p_omnibus"].isna().all()
    oracle = [_oracle_p(x, n, 58, 200)[1] for g, n, x in rows if g != "c"]
    assert compared["p_adjusted"].tolist() == pytest.approx(multipletests(oracle, method="holm")[1].tolist())
    assert table.loc["a", "impact_ratio"] == pytest.approx(69 / 58)  # above the declared reference: ratio > 1
    # A declared reference that is not eligible leaves the table without one, and says why.
    missing = impact_ratio_table(_counts(rows), declared_reference="zzz")
    assert missing["reference_group"].isna().all()
    assert missing["undefined_reason"].iloc[0].startswith(f"{NO_REFERENCE_REASON}: the declared reference 'zzz'")
    # Per table: declared in one, chosen in the other.
    both = pd.concat([_counts(rows).assign(t="x"), _counts(rows).assign(t="y")], ignore_index=True)
    declared = np.where(both["t"] == "x", "c", None)
    result = impact_ratio_tables(both, ["t"], declared_reference=declared)
    assert result.groupby("t")["reference_group"].first().to_dict() == {"x": "c", "y": "a"}
    assert result.loc[result["t"] == "y", "p_omnibus"].notna().sum() == 4


def test_significant_is_a_real_bool_in_json() -> None:
    table = impact_ratio_table(_counts([("white", 80, 48), ("black", 40, 12), ("other", 60, 33)]))
    values = table["significant"].tolist()
    assert [type(v) for v in values[1:]] == [bool, bool]
    assert values[0] is pd.NA  # reference row: not tested
    records = table_records(table)
    text = json.dumps(records)
    assert '"significant": true' in text and '"significant": false' in text and '"significant": null' in text
    assert json.loads(text)[1]["significant"] is True
    assert all(type(r["is_reference"]) is bool for r in records)
    assert all(isinstance(r["n"], int) for r in records)
    json.dumps(summarise_impact(table))  # plain Python values


def test_flip_flop_small_numbers() -> None:
    # 1/5 vs 3/10: IR = 0.2 / 0.3 = 0.667 adverse, yet IR' = (2/5) / (2/10) = 2 >= 1: flip-flop.
    g = _row(impact_ratio_table(_counts([("r", 10, 3), ("g", 5, 1)]), **ANY_REFERENCE), "g")
    assert g["adverse_impact"]
    assert g["flip_flop"] and g["flip_flop_ratio"] == pytest.approx(2.0)
    # A reference with one selection: IR' divides by (1 - 1) / n_r = 0, the finding reverses.
    g = _row(impact_ratio_table(_counts([("r", 10, 1), ("g", 10, 0)]), **ANY_REFERENCE), "g")
    assert g["flip_flop"] and math.isinf(g["flip_flop_ratio"])


def test_shortfall_is_exact() -> None:
    # 10/77 vs 9/11: 77 * 9 / 11 = 63 exactly, shortfall 63 - 10 = 53 (naive float gives 63.00000000000001 -> 54).
    assert math.ceil(77 * (9 / 11) - 10) == 54
    g = _row(impact_ratio_table(_counts([("r", 11, 9), ("g", 77, 10)]), **ANY_REFERENCE), "g")
    assert g["shortfall"] == 53
    # Partial selections round up: 40 * 0.6 - 13 = 11; 7 * 0.6 - 4 = 0.2 -> 1; above the reference -> 0.
    assert _row(impact_ratio_table(_counts([("r", 80, 48), ("g", 40, 13)])), "g")["shortfall"] == 11
    assert _row(impact_ratio_table(_counts([("r", 80, 48), ("g", 7, 4)])), "g")["shortfall"] == 1


def test_unknown_group_count_and_summary() -> None:
    counts = _counts(
        [
            ("startup|0-3", 100, 50),
            ("unknown|0-3", 30, 6),
            ("faang|unknown", 20, 10),
            ("faang|3-7", 3, 3),
            ("enterprise|0-3", 80, 20),
        ]
    )
    table = impact_ratio_table(counts, intersectional=True)
    assert unknown_count(table) == 50  # 30 + 20
    summary = summarise_impact(table)
    assert summary["unknown_count"] == 50
    assert summary["reference_group"] == "startup|0-3"
    # unknown|0-3 (0.2 / 0.5 = 0.4) is reported, never compared: the lowest ratio is enterprise|0-3's 0.25 / 0.5.
    assert summary["lowest_impact_group"] == "enterprise|0-3"
    assert summary["lowest_impact_ratio"] == pytest.approx(0.5)
    assert summary["adverse_groups"] == ["enterprise|0-3"]
    assert summary["low_sample_groups"] == ["faang|3-7"]
    assert summary["excluded_groups"] == ["faang|3-7"]  # 3 / 233 < 2%, though its rate is the highest
    assert summary["candidates"] == 233
    assert table["adjustment_method"].dropna().unique().tolist() == ["fdr_bh"]


def test_hypergeometric_tests_agree_with_scipy() -> None:
    # Random 2 x 2 tables from tiny to large and from balanced to extreme, against scipy's fisher_exact and hypergeom.
    rng = np.random.default_rng(12)
    n_g, n_r = rng.integers(1, 3000, 300), rng.integers(1, 60000, 300)
    x_g = rng.binomial(n_g, rng.uniform(0.0, 0.3, 300))
    x_r = rng.binomial(n_r, rng.uniform(0.0, 0.3, 300))
    total, good, draws = n_g + n_r, n_g, x_g + x_r
    lower, upper, fisher = hypergeometric_tests(x_g, total, good, draws)
    for i in range(300):
        table = [[x_g[i], n_g[i] - x_g[i]], [x_r[i], n_r[i] - x_r[i]]]
        assert fisher[i] == pytest.approx(fisher_exact(table).pvalue, rel=1e-9, abs=1e-300)
        assert lower[i] == pytest.approx(hypergeom.cdf(x_g[i], total[i], good[i], draws[i]), rel=1e-9, abs=1e-300)
        assert upper[i] == pytest.approx(hypergeom.sf(x_g[i] - 1, total[i], good[i], draws[i]), rel=1e-9, abs=1e-300)
    assert fisher.min() < 1e-20  # the far tails are covered too
