"""LL144 scoring rates: hand-worked cases, an independent pandas/numpy oracle, planted score bias, null data."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from fairness_pipeline.audits.from_events import first_shown_candidates
from fairness_pipeline.audits.scoring import (
    NO_SCORES_REASON,
    SCORING_COLUMNS,
    ZERO_REFERENCE_SCORING_REASON,
    coded_scoring_cells,
    scoring_cells,
    scoring_rate_ratios,
)
from fairness_pipeline.events.vocabulary import DIMENSION_VALUES, DIMENSIONS
from fairness_pipeline.metrics.impact import IMPACT_COLUMNS, UNKNOWN_GROUP_REASON, impact_ratio_table
from fairness_pipeline.metrics.window import AnalysisSettings
from fairness_pipeline.synthetic import GeneratorConfig, generate_events

HAND_SIZED = {"min_reference_candidates": 0, "min_reference_selections": 0}
"""Hand-worked tables of a few candidates: any known group meeting the share rule may be the reference."""
TIER_ONLY = AnalysisSettings(dimensions=("company_tier",), intersections=False, **HAND_SIZED)


def _candidates(rows: list[tuple[str | None, float]], tenant: str = "t1") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "tenant_id": tenant,
            "company_tier": [g for g, _ in rows],
            "experience_band": "3-7",
            "specialty": "backend",
            "score": [s for _, s in rows],
        }
    )


def _row(table: pd.DataFrame, group: str) -> pd.Series:
    return table.set_index("group").loc[group]


HAND = [
    *[("faang", s) for s in (0.9, 0.8, 0.6, 0.5)],
    *[("startup", s) for s in (0.6, 0.6, 0.4, np.nan, np.nan)],
    *[(None, s) for s in (0.7, 0.2)],
    ("other", np.nan),
]


def test_hand_worked_ties_at_the_median_and_missing_scores() -> None:
    # Scored: 0.2 0.4 0.5 0.6 0.6 0.6 0.7 0.8 0.9 (nine) -> M = 0.6, the fifth. Scores equal to M are not above it.
    # Above M: faang 0.9, 0.8 -> 2/4 = 0.5; startup none -> 0/3; unknown 0.7 -> 1/2 = 0.5; other has no score.
    # Reference: faang (unknown ties at 0.5 but is never the reference).
    cells = scoring_cells(_candidates(HAND))
    assert cells["median_score"].unique().tolist() == [0.6]
    assert cells["n"].sum() == 9 and cells["x"].sum() == 3 and cells["missing_score"].sum() == 3
    table = scoring_rate_ratios(cells, TIER_ONLY)
    assert list(table.columns) == ["tenant_id", *SCORING_COLUMNS]
    assert set(table["group"]) == {"faang", "enterprise", "startup", "other", "unknown"}
    faang, startup, unknown = _row(table, "faang"), _row(table, "startup"), _row(table, "unknown")
    assert (faang["n"], faang["above_median"], faang["missing_score"], faang["scoring_rate"]) == (4, 2, 0, 0.5)
    assert (startup["n"], startup["above_median"], startup["missing_score"], startup["scoring_rate"]) == (3, 0, 2, 0)
    assert (unknown["n"], unknown["above_median"], unknown["scoring_rate"]) == (2, 1, 0.5)
    assert faang["is_reference"] and faang["impact_ratio"] == 1.0
    assert startup["reference_group"] == "faang" and startup["impact_ratio"] == 0.0 and startup["adverse_impact"]
    # Fisher on [[0, 3], [2, 2]]: P(a=0) = C(2,0) C(5,3) / C(7,3) = 10/35, P(a=2) = 5/35 <= 10/35, P(a=1) = 20/35.
    # Two-sided p = 15/35 = 0.428571. unknown is reported, never compared: startup's is the only test, so its Holm p
    # and its omnibus p (two compared groups: the pairwise test) are 15/35 too.
    assert startup["test"] == "fisher_exact"
    assert startup["p_value"] == pytest.approx(15 / 35)
    assert startup["p_adjusted"] == pytest.approx(15 / 35) and startup["p_omnibus"] == startup["p_value"]
    assert np.isnan(unknown["p_adjusted"]) and unknown["undefined_reason"] == UNKNOWN_GROUP_REASON
    # Shortfall: ceil(3 * 0.5 - 0) = 2 candidates above the median lacking.
    assert startup["shortfall"] == 2
    other = _row(table, "other")
    assert other["n"] == 0 and other["missing_score"] == 1 and other["undefined_reason"] == NO_SCORES_REASON
    assert np.isnan(other["scoring_rate"]) and np.isnan(other["impact_ratio"])
    assert _row(table, "enterprise")["undefined_reason"] == "empty group"


def test_even_count_median_is_the_mean_of_the_middle_two() -> None:
    # 0.2 0.4 | 0.6 0.8 -> M = 0.5: a above (0.6 no: it is b's) -> a: 0.2, 0.8 -> 1/2; b: 0.4, 0.6 -> 1/2.
    cells = scoring_cells(_candidates([("faang", 0.2), ("faang", 0.8), ("startup", 0.4), ("startup", 0.6)]))
    assert cells["median_score"].iloc[0] == pytest.approx(0.5)
    table = scoring_rate_ratios(cells, TIER_ONLY)
    assert _row(table, "faang")["scoring_rate"] == 0.5 and _row(table, "startup")["scoring_rate"] == 0.5


def test_all_scores_tied_gives_undefined_ratios_not_zero() -> None:
    # Every score equals M = 0.5, so nobody is above the median: every rate is 0 and every ratio undefined.
    cells = scoring_cells(_candidates([("faang", 0.5)] * 30 + [("startup", 0.5)] * 30))
    table = scoring_rate_ratios(cells, TIER_ONLY)
    populated = table[table["n"] > 0]
    assert (populated["scoring_rate"] == 0).all()
    assert populated["impact_ratio"].isna().all()
    assert (populated["undefined_reason"] == ZERO_REFERENCE_SCORING_REASON).all()


def test_median_is_per_tenant_and_intersections_are_listed() -> None:
    frame = pd.concat([_candidates(HAND, "t1"), _candidates([("faang", 0.1), ("startup", 0.9)] * 5, "t2")])
    cells = scoring_cells(frame)
    assert cells.groupby("tenant_id")["median_score"].first().to_dict() == {"t1": 0.6, "t2": 0.5}
    table = scoring_rate_ratios(cells, AnalysisSettings(**HAND_SIZED))
    assert set(table["dimension"]) == {
        "company_tier",
        "experience_band",
        "specialty",
        "company_tier+experience_band",
        "company_tier+specialty",
        "experience_band+specialty",
    }
    pair = table[(table["tenant_id"] == "t1") & (table["dimension"] == "company_tier+experience_band")]
    assert set(pair["group"]) == {"faang|3-7", "startup|3-7", "unknown|3-7", "other|3-7"}
    assert set(pair["adjustment_method"].dropna()) == {"fdr_bh"}
    t2 = table[(table["tenant_id"] == "t2") & (table["dimension"] == "company_tier")].set_index("group")
    assert t2.loc["startup", "scoring_rate"] == 1.0 and t2.loc["faang", "scoring_rate"] == 0.0


def test_inconsistent_median_is_rejected() -> None:
    cells = scoring_cells(_candidates(HAND))
    cells.loc[0, "median_score"] = 0.1
    with pytest.raises(ValueError, match="median_score differs"):
        scoring_rate_ratios(cells, TIER_ONLY)


# --- generated data ------------------------------------------------------------------------------------------------


def _generated(seed: int = 21, tenants: int = 1, **options: object) -> pd.DataFrame:
    config = GeneratorConfig(
        seed=seed, start=dt.date(2026, 2, 2), days=3, tenants=tenants, events_per_day=3000, **options
    )
    return first_shown_candidates(pd.concat(generate_events(config), ignore_index=True))


def _oracle_counts(candidates: pd.DataFrame, dimension: str) -> pd.DataFrame:
    """Independent counts: numpy's median over all scores, then per group with plain Python."""
    scores = candidates["score"].to_numpy(dtype=float)
    median = float(np.median(scores[~np.isnan(scores)]))
    rows = {}
    for group, score in zip(candidates[dimension].astype(object).fillna("unknown"), scores, strict=True):
        n, x = rows.get(group, (0, 0))
        if not np.isnan(score):
            rows[group] = (n + 1, x + int(score > median))
    return pd.DataFrame([(g, n, x) for g, (n, x) in sorted(rows.items())], columns=["group", "n", "x"])


def test_matches_impact_ratio_table_on_independently_counted_scores() -> None:
    candidates = _generated(score_bias=("company_tier=startup:-0.1",))
    candidates.loc[candidates.index[::37], "score"] = np.nan  # some missing scores
    table = scoring_rate_ratios(scoring_cells(candidates), AnalysisSettings(intersections=False))
    for dimension in ("company_tier", "specialty"):
        ours = table[(table["dimension"] == dimension) & (table["n"] > 0)].reset_index(drop=True)
        expected = impact_ratio_table(_oracle_counts(candidates, dimension))
        renamed = ours.rename(columns={"above_median": "x", "scoring_rate": "selection_rate"})[list(IMPACT_COLUMNS)]
        pd.testing.assert_frame_equal(renamed, expected, check_exact=False, rtol=1e-12)


def test_planted_score_bias_is_found() -> None:
    table = scoring_rate_ratios(scoring_cells(_generated(score_bias=("company_tier=startup:-0.1",))))
    findings = table[table["adverse_impact"].fillna(False) & table["significant"].fillna(False)]
    assert set(findings.loc[findings["dimension"] == "company_tier", "group"]) == {"startup"}
    assert _row(table[table["dimension"] == "company_tier"], "startup")["impact_ratio"] < 0.7
    with_tier = findings[findings["dimension"].str.contains("company_tier")]
    assert with_tier["group"].str.startswith("startup|").sum() >= 8  # most startup intersections, and only those
    assert with_tier["group"].str.startswith("startup").all()
    assert not findings["dimension"].isin(["experience_band", "specialty"]).any()
    # experience_band+specialty has ~45 cells tested with Benjamini-Hochberg: a stray false positive there is allowed.
    assert (findings["dimension"] == "experience_band+specialty").sum() <= 2


def test_unbiased_data_gives_no_findings_and_few_significant_differences() -> None:
    # Four tenants: four independent data sets (each tenant has its own pool and random streams).
    table = scoring_rate_ratios(scoring_cells(_generated(seed=2, tenants=4)), AnalysisSettings(intersections=False))
    assert not (table["adverse_impact"].fillna(False) & table["significant"].fillna(False)).any()
    tested = int(table["p_value"].notna().sum())
    assert tested >= 40
    assert table["significant"].fillna(False).sum() / tested <= 0.10  # nominal 5% family-wise per table (Holm)


# --- the stored per-day arrays -------------------------------------------------------------------------------------


def test_coded_cells_equal_the_pandas_cells() -> None:
    candidates = _generated(seed=5, tenants=2, score_bias=("specialty=frontend:-0.1",))
    candidates.loc[candidates.index[::23], "score"] = np.nan
    candidates.loc[candidates.index[::31], "company_tier"] = None
    expected = scoring_cells(candidates)
    parts = []
    for tenant, part in candidates.groupby("tenant_id"):
        codes = np.column_stack(
            [
                part[d].map({v: i for i, v in enumerate(DIMENSION_VALUES[d], 1)}).fillna(0).astype(int)
                for d in DIMENSIONS
            ]
        )
        parts.append(coded_scoring_cells(tenant, part["score"].to_numpy(), codes))
    ours = pd.concat(parts, ignore_index=True)
    assert (ours["company_tier"].isna()).any()
    key = ["tenant_id", *DIMENSIONS]
    left = ours.astype({d: object for d in DIMENSIONS}).fillna({d: "-" for d in DIMENSIONS}).sort_values(key)
    right = expected.astype({d: object for d in DIMENSIONS}).fillna({d: "-" for d in DIMENSIONS}).sort_values(key)
    pd.testing.assert_frame_equal(
        left.reset_index(drop=True), right[list(left.columns)].reset_index(drop=True), check_dtype=False
    )
    empty = coded_scoring_cells("t", np.zeros(0), np.zeros((0, len(DIMENSIONS)), dtype=int))
    assert empty.empty and list(empty.columns) == ["tenant_id", *DIMENSIONS, "n", "x", "missing_score", "median_score"]
