"""Exposure audit: hand-worked sums, a direct pandas oracle, a slow-loop bootstrap oracle, coverage, planted bias."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from fairness_pipeline.audits._common import stable_seed
from fairness_pipeline.audits.exposure import (
    AGGREGATE_COLUMNS,
    EXPOSURE_COLUMNS,
    NO_MERIT_REASON,
    NO_RANKED_REASON,
    ExposureLayout,
    ExposureSums,
    exposure_sums,
    exposure_table,
    position_weight,
    rank_exposure,
    stratum_rng,
)
from fairness_pipeline.audits.from_events import search_aggregates, shown_impressions
from fairness_pipeline.metrics.selection_rates import INTERSECTION_SEPARATOR
from fairness_pipeline.metrics.window import AnalysisSettings
from fairness_pipeline.synthetic import GeneratorConfig, generate_events

TIER_ONLY = AnalysisSettings(dimensions=("company_tier",), intersections=False)
V1, V2, V3 = 1.0, 1 / math.log2(3), 0.5  # position weights of ranks 1, 2, 3 (v2 = 0.630930)


def _impressions(rows: list[tuple[str, str | None, float | None, float | None]]) -> pd.DataFrame:
    """(search_id, company_tier, rank, score) rows of tenant t1."""
    frame = pd.DataFrame(rows, columns=["search_id", "company_tier", "rank", "score"])
    frame["rank"] = pd.array(frame["rank"], dtype="Int64")
    return frame.assign(tenant_id="t1", experience_band="3-7", specialty="backend")


HAND = _impressions(
    [
        ("s1", "startup", 1, 0.7),
        ("s1", "faang", 2, 0.9),
        ("s1", "faang", 3, 0.8),
        ("s2", "startup", 1, None),  # ranked, no score
        ("s2", "faang", 2, 0.5),
        ("s2", "faang", None, 0.6),  # shown without rank
    ]
)


def _row(table: pd.DataFrame, group: str, dimension: str = "company_tier") -> pd.Series:
    return table[table["dimension"] == dimension].set_index("group").loc[group]


def test_position_weight() -> None:
    assert position_weight([1, 3, 7]).tolist() == pytest.approx([1.0, 0.5, 1 / 3])


def test_search_aggregates_by_hand() -> None:
    agg = search_aggregates(HAND, dimensions=("company_tier",), k=2).set_index(["search_id", "company_tier"])
    assert list(agg.columns) == ["tenant_id", *AGGREGATE_COLUMNS]
    # s1 faang: ranks 2 and 3, scores 0.9 and 0.8. Merit: s1's ranks {1, 2, 3} go to scores 0.9, 0.8, 0.7 in that
    # order, so the faang candidates would hold ranks 1 and 2 and the startup one rank 3.
    s1f = agg.loc[("s1", "faang")]
    assert (s1f["shown"], s1f["ranked"], s1f["top_k"], s1f["scored"]) == (2, 2, 1, 2)
    assert s1f["weight_sum"] == pytest.approx(V2 + V3)
    assert s1f["score_sum"] == pytest.approx(1.7)
    assert s1f["merit_weight_sum"] == pytest.approx(V1 + V2)
    assert agg.loc[("s1", "startup"), "merit_weight_sum"] == pytest.approx(V3)
    # s2 faang: one ranked (2, score 0.5) and one unranked; the only scored impression keeps its own rank 2.
    s2f = agg.loc[("s2", "faang")]
    assert (s2f["shown"], s2f["ranked"], s2f["scored"]) == (2, 1, 1)
    assert s2f["weight_sum"] == pytest.approx(V2) and s2f["merit_weight_sum"] == pytest.approx(V2)
    s2s = agg.loc[("s2", "startup")]
    assert (s2s["ranked"], s2s["scored"], s2s["score_sum"], s2s["merit_weight_sum"]) == (1, 0, 0.0, 0.0)


def test_rank_exposure_by_hand() -> None:
    table = rank_exposure(search_aggregates(HAND, k=2), TIER_ONLY, n_boot=0)
    assert list(table.columns) == ["tenant_id", *EXPOSURE_COLUMNS]
    faang, startup = _row(table, "faang"), _row(table, "startup")
    # Exposure: faang (v2 + v3 + v2) / 3 = 1.761860 / 3 = 0.587287; startup (v1 + v1) / 2 = 1, the best exposed.
    assert faang["exposure"] == pytest.approx((2 * V2 + V3) / 3)
    assert startup["exposure"] == 1.0 and startup["is_reference"] and faang["reference_group"] == "startup"
    assert faang["exposure_ratio"] == pytest.approx((2 * V2 + V3) / 3)
    assert (faang["searches"], faang["shown"], faang["ranked"], faang["missing_rank"]) == (2, 4, 3, 1)
    assert faang["low_exposure"]  # 0.587 < 0.80
    # Skew@2: top-2 impressions are 2 faang, 2 startup -> 1/2 each; shares of ranked impressions 3/5 and 2/5.
    assert faang["skew_at_k"] == pytest.approx(0.5 / 0.6)
    assert startup["skew_at_k"] == pytest.approx(0.5 / 0.4)
    # Scored impressions: faang 0.9, 0.8, 0.5 (mean 0.7333), weights v2 + v3 + v2; startup 0.7 at rank 1.
    # Treatment ratio = (1.761860 / 2.2) / (1 / 0.7) = 0.800846 / 1.428571 = 0.560592.
    assert faang["mean_score"] == pytest.approx(2.2 / 3)
    assert faang["treatment_ratio"] == pytest.approx(((2 * V2 + V3) / 2.2) / (1 / 0.7))
    # Merit: faang would hold ranks 1, 2 (s1) and 2 (s2): actual / merit = 1.761860 / 2.261860 = 0.778945;
    # startup holds rank 1 but would hold 3: 1 / 0.5 = 2.
    assert faang["merit_ratio"] == pytest.approx((2 * V2 + V3) / (V1 + 2 * V2))
    assert startup["merit_ratio"] == pytest.approx(2.0)
    # Without the bootstrap there are no intervals or tests; two searches are a low sample.
    assert np.isnan(faang["ratio_ci_low"]) and np.isnan(faang["p_value"]) and pd.isna(faang["significant"])
    assert faang["low_sample"] and faang["n_boot"] == 0
    enterprise = _row(table, "enterprise")
    assert enterprise["shown"] == 0 and np.isnan(enterprise["exposure"])
    assert enterprise["undefined_reason"] == "no shown impressions"


def test_missing_ranks_scores_and_merit_column() -> None:
    rows = [("s1", "startup", None, 0.9), ("s1", "faang", 1, None), ("s1", "faang", 2, None)]
    table = rank_exposure(search_aggregates(_impressions(rows)), TIER_ONLY, n_boot=50)
    startup, faang = _row(table, "startup"), _row(table, "faang")
    assert startup["undefined_reason"] == NO_RANKED_REASON and startup["missing_rank"] == 1
    assert np.isnan(startup["exposure"]) and np.isnan(startup["skew_at_k"])
    assert faang["score_undefined_reason"] == "no impressions with rank and score"
    assert np.isnan(faang["treatment_ratio"]) and np.isnan(faang["merit_ratio"])
    without_merit = search_aggregates(HAND).drop(columns="merit_weight_sum")
    table = rank_exposure(without_merit, TIER_ONLY, n_boot=0)
    assert table["merit_ratio"].isna().all()
    assert _row(table, "faang")["score_undefined_reason"] == NO_MERIT_REASON
    assert _row(table, "faang")["treatment_ratio"] == pytest.approx(((2 * V2 + V3) / 2.2) / (1 / 0.7))


def test_rank_below_one_counts_as_missing() -> None:
    rows = [("s1", "faang", 0, 0.5), ("s1", "faang", 1, 0.5), ("s1", "startup", 2, 0.4)]
    agg = search_aggregates(_impressions(rows), dimensions=("company_tier",))
    assert agg.set_index("company_tier").loc["faang", ["shown", "ranked"]].tolist() == [2, 1]


# --- generated data ------------------------------------------------------------------------------------------------


def _aggregates(
    seed: int = 5, days: int = 3, events_per_day: int = 3000, tenants: int = 1, **options: object
) -> pd.DataFrame:
    config = GeneratorConfig(
        seed=seed, start=dt.date(2026, 2, 2), days=days, tenants=tenants, events_per_day=events_per_day, **options
    )
    return search_aggregates(shown_impressions(pd.concat(generate_events(config), ignore_index=True)))


def _shown(seed: int, **options: object) -> pd.DataFrame:
    config = GeneratorConfig(seed=seed, start=dt.date(2026, 2, 2), days=2, tenants=2, events_per_day=2000, **options)
    return shown_impressions(pd.concat(generate_events(config), ignore_index=True))


def test_matches_direct_computation_on_impressions() -> None:
    shown = _shown(8, rank_bias=("experience_band=15+:4",))
    shown.loc[shown.index[::29], "rank"] = pd.NA
    shown.loc[shown.index[::31], "score"] = np.nan
    table = rank_exposure(search_aggregates(shown), AnalysisSettings(intersections=False), n_boot=0)
    for (tenant, dimension), part in table.groupby(["tenant_id", "dimension"]):
        frame = shown[shown["tenant_id"] == tenant].assign(group=shown[dimension].astype(object).fillna("unknown"))
        ranked = frame[frame["rank"].notna()].assign(v=lambda f: 1 / np.log2(1 + f["rank"].astype(float)))
        exposure = ranked.groupby("group")["v"].mean()
        top = ranked[ranked["rank"] <= 10]
        skew = (top["group"].value_counts() / len(top)) / (ranked["group"].value_counts() / len(ranked))
        ours = part.set_index("group")
        pd.testing.assert_series_equal(
            ours.loc[exposure.index, "exposure"], exposure, check_names=False, check_index_type=False
        )
        pd.testing.assert_series_equal(
            ours.loc[skew.index, "skew_at_k"], skew, check_names=False, check_index_type=False
        )
        assert (ours["missing_rank"].sum(), ours["ranked"].sum()) == (frame["rank"].isna().sum(), len(ranked))
        ref = ours.loc[ours["is_reference"]].index[0]
        eligible = ranked["group"].value_counts(normalize=True) >= 0.02
        assert exposure[eligible[eligible].index].idxmax() == ref
        scored = ranked[ranked["score"].notna()]
        per_score = scored.groupby("group")["v"].sum() / scored.groupby("group")["score"].sum()
        compared = ours["exposure_ratio"].notna()
        expected = (per_score / per_score[ref])[ours.index[compared]]
        pd.testing.assert_series_equal(
            ours.loc[compared, "treatment_ratio"], expected, check_names=False, check_index_type=False
        )


def _slow_bootstrap(shown: pd.DataFrame, reference: str, n_boot: int, seed: int) -> pd.DataFrame:
    """The bootstrap by hand: the same draws, then one resample at a time from the impression rows."""
    ranked = shown[shown["rank"].notna()].assign(
        group=shown["company_tier"].astype(object).fillna("unknown"),
        v=lambda f: 1 / np.log2(1 + f["rank"].astype(float)),
    )
    searches = np.sort(shown["search_id"].unique())
    rng = np.random.default_rng([seed, stable_seed("tenant-1")])
    draws = rng.integers(0, searches.size, size=(n_boot, searches.size))
    by_search = {s: part for s, part in ranked.groupby("search_id")}
    rows = []
    for b in range(n_boot):
        sample = pd.concat([by_search[searches[i]] for i in draws[b] if searches[i] in by_search])
        rows.append(sample.groupby("group")["v"].mean())
    return pd.DataFrame(rows)


def test_bootstrap_matches_a_slow_loop_with_the_same_draws() -> None:
    shown = _shown(3)
    shown = shown[shown["tenant_id"] == "tenant-1"]
    shown = shown[shown["search_id"].isin(np.sort(shown["search_id"].unique())[:60])]
    n_boot = 40
    table = rank_exposure(search_aggregates(shown), TIER_ONLY, n_boot=n_boot, seed=9).set_index("group")
    reference = table.index[table["is_reference"]][0]
    exposures = _slow_bootstrap(shown, reference, n_boot, seed=9)
    slow = exposures.div(exposures[reference], axis=0)
    # The p-value repeats the choice of the reference in every resample: errors d*_g = log Exp*_g - log Exp_g, the
    # resample's reference is the group with the largest error, and the null log ratio is d*_g - d*_ref*.
    # ``unknown`` is never the reference (nor compared).
    pool = [g for g in exposures.columns if not table.loc[g, "excluded_small_share"] and g != "unknown"]
    assert pd.isna(table.loc["unknown", "p_value"]) and pd.isna(table.loc["unknown", "exposure_ratio"])
    errors = np.log(exposures[pool]) - np.log(table["exposure"][pool])
    null = errors.sub(errors.max(axis=1), axis=0)
    compared = table.index[table["p_value"].notna()]
    assert len(compared) == 3
    for group in compared:
        ratios = slow[group].to_numpy()
        low, high = np.quantile(ratios, [0.025, 0.975])
        # the resampled sums are float32 (about 7 significant digits); the slow loop works in float64
        assert table.loc[group, "ratio_ci_low"] == pytest.approx(low, rel=1e-6)
        assert table.loc[group, "ratio_ci_high"] == pytest.approx(high, rel=1e-6)
        observed = math.log(table.loc[group, "exposure_ratio"])
        p = ((null[group] <= observed + 1e-9).sum() + 1) / (n_boot + 1)
        assert table.loc[group, "p_value"] == pytest.approx(p)


def test_day_stratified_bootstrap_matches_a_slow_loop_with_the_same_draws() -> None:
    # With a day column each day's searches are resampled on their own, from the day's own stream; a resample of the
    # window is the union of one resample per day.
    shown = _shown(3)
    shown = shown[shown["tenant_id"] == "tenant-1"]
    days = sorted(shown["day"].unique())
    assert len(days) == 2
    n_boot, seed = 40, 9
    agg = search_aggregates(shown, keys=("tenant_id", "day"))
    table = rank_exposure(agg, TIER_ONLY, n_boot=n_boot, seed=seed).set_index("group")
    reference = table.index[table["is_reference"]][0]
    ranked = shown[shown["rank"].notna()].assign(
        group=shown["company_tier"].astype(object).fillna("unknown"),
        v=lambda f: 1 / np.log2(1 + f["rank"].astype(float)),
    )
    by_search = {key: part for key, part in ranked.groupby(["day", "search_id"])}
    draws = {}
    for day in days:
        searches = np.sort(shown.loc[shown["day"] == day, "search_id"].unique())
        rng = np.random.default_rng([seed, stable_seed("tenant-1", str(day))])
        draws[day] = searches[rng.integers(0, searches.size, size=(n_boot, searches.size))]
    ratios = []
    for b in range(n_boot):
        picked = [by_search[(d, s)] for d in days for s in draws[d][b] if (d, s) in by_search]
        exposure = pd.concat(picked).groupby("group")["v"].mean()
        ratios.append(exposure / exposure[reference])
    slow = pd.DataFrame(ratios)
    compared = table.index[table["p_value"].notna()]
    assert len(compared) == 3
    for group in compared:
        low, high = np.quantile(slow[group].to_numpy(), [0.025, 0.975])
        assert table.loc[group, "ratio_ci_low"] == pytest.approx(low, rel=1e-6)
        assert table.loc[group, "ratio_ci_high"] == pytest.approx(high, rel=1e-6)


def test_day_sums_add_up_to_the_window_and_survive_storage() -> None:
    agg = search_aggregates(_shown(6), keys=("tenant_id", "day"))
    settings = AnalysisSettings()
    layout = ExposureLayout.build(settings, attributes=())  # the frame has no self-identified attribute columns
    n_boot, seed = 50, 4
    window = rank_exposure(agg, settings, n_boot=n_boot, seed=seed)
    sums = {}
    for (tenant, day), part in agg.groupby(["tenant_id", "day"]):
        day_sums = exposure_sums(part, layout, stratum_rng(seed, (tenant,), day), n_boot)
        stored = ExposureSums.unpack(layout, n_boot, **day_sums.pack())  # float32 replicates round-trip exactly
        assert np.array_equal(stored.replicates, day_sums.replicates)
        sums[(tenant,)] = sums[(tenant,)] + stored if (tenant,) in sums else stored
    assert sum(s.searches for s in sums.values()) == agg.groupby(["tenant_id", "day"])["search_id"].nunique().sum()
    pd.testing.assert_frame_equal(exposure_table(sums, layout, settings, n_boot=n_boot), window)
    with pytest.raises(ValueError, match="do not fit"):
        ExposureSums.unpack(layout, n_boot + 1, **sums[("tenant-1",)].pack())


def test_layout_is_fixed_by_the_vocabulary() -> None:
    settings = AnalysisSettings()
    layout = ExposureLayout.build(settings)
    assert layout.values["company_tier"] == ("enterprise", "faang", "other", "startup", "unknown")
    assert layout.labels(3)[:2] == ["enterprise|0-3", "enterprise|15+"]  # company_tier+experience_band
    assert layout.offsets[-1] == 5 + 5 + 9 + 25 + 45 + 45 + 3 + 8 + 24  # then sex, race_ethnicity and both
    assert layout.resampled == [3, 4, 5, 8]  # singles are summed from the first intersection holding them
    assert layout.fingerprint == ExposureLayout.build(settings).fingerprint
    assert layout.fingerprint != ExposureLayout.build(dataclasses.replace(settings, intersections=False)).fingerprint
    frame = pd.DataFrame({"company_tier": ["mars"], "experience_band": ["0-3"], "specialty": [None]})
    with pytest.raises(ValueError, match="not in the layout"):
        layout.row_codes(frame)


def test_single_dimensions_resampled_through_their_intersections_are_the_same() -> None:
    # With intersections, a single dimension's resampled sums are added up from an intersection's groups; without,
    # they are resampled directly. The draws are the same, so the intervals and p-values agree.
    agg = _aggregates(4, days=2, events_per_day=600)
    settings = AnalysisSettings()
    both = rank_exposure(agg, settings, n_boot=200, seed=5)
    singles = both[~both["dimension"].str.contains(INTERSECTION_SEPARATOR, regex=False)].reset_index(drop=True)
    alone = rank_exposure(agg, dataclasses.replace(settings, intersections=False), n_boot=200, seed=5)
    assert len(singles) == len(alone) > 10
    for column in ("exposure_ci_low", "ratio_ci_high", "treatment_ci_low", "merit_ci_high", "p_value", "skew_ci_low"):
        assert np.allclose(singles[column], alone[column], rtol=1e-5, equal_nan=True), column


def test_exposure_interval_covers_the_true_value() -> None:
    # Without rank bias every impression's rank is uniform on 1..20, so each group's true exposure is mean v(1..20).
    # Ten tenants are ten independent data sets (each tenant has its own random streams).
    truth = float(np.mean(position_weight(np.arange(1, 21))))
    table = rank_exposure(_aggregates(1, days=2, events_per_day=1500, tenants=10), TIER_ONLY, n_boot=300, seed=3)
    main = table[table["group"].isin(["faang", "enterprise", "startup", "other"])]
    assert len(main) == 40
    covered = (main["exposure_ci_low"] <= truth) & (truth <= main["exposure_ci_high"])
    assert covered.mean() >= 0.85  # nominal 95%


def _findings(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["low_exposure"].fillna(False) & table["significant"].fillna(False)]


def _merit_findings(table: pd.DataFrame) -> pd.DataFrame:
    return table[(table["merit_ratio"] < 1) & table["merit_significant"].fillna(False)]


def test_planted_rank_bias_is_found() -> None:
    table = rank_exposure(_aggregates(rank_bias=("company_tier=startup:3",)), n_boot=400)
    startup = _row(table, "startup")
    assert startup["exposure_ratio"] < 0.8 and startup["ratio_ci_high"] < 1 and startup["significant"]
    assert startup["merit_ratio"] < 0.9 and startup["merit_significant"]  # same scores, ranked lower
    singles = table[~table["dimension"].str.contains("+", regex=False)]
    assert set(_findings(singles)["group"]) == {"startup"}
    assert set(_merit_findings(singles)["group"]) == {"startup"}
    assert _findings(table)["group"].str.startswith("startup").all()


def test_planted_score_bias_lowers_exposure_but_not_the_merit_ratio() -> None:
    table = rank_exposure(_aggregates(score_bias=("company_tier=startup:-0.1",)), n_boot=200)
    startup = _row(table, "startup")
    assert startup["significant"] and startup["low_exposure"]
    assert startup["mean_score"] < _row(table, "faang")["mean_score"] - 0.05
    # The slates are ordered by (biased) score, so the ranking follows the scores exactly.
    assert table["merit_ratio"].dropna().eq(1.0).all()
    assert _merit_findings(table).empty


def test_unbiased_data_gives_no_findings() -> None:
    table = rank_exposure(_aggregates(), n_boot=400)
    assert _findings(table).empty
    assert _merit_findings(table).empty
    assert table["exposure_ratio"].min() > 0.8


def test_false_positive_rate_of_the_exposure_test() -> None:
    table = rank_exposure(_aggregates(2, days=2, events_per_day=1500, tenants=12), TIER_ONLY, n_boot=300)
    assert table["p_value"].notna().sum() >= 36
    assert table["significant"].fillna(False).sum() <= 4  # ~5% per table with Holm; the max reference adds a little
    assert _findings(table).empty


def test_bootstrap_is_seeded_and_per_tenant() -> None:
    shown = _shown(4)
    agg = search_aggregates(shown)
    first = rank_exposure(agg, TIER_ONLY, n_boot=100, seed=1)
    pd.testing.assert_frame_equal(first, rank_exposure(agg, TIER_ONLY, n_boot=100, seed=1))
    assert not first["ratio_ci_low"].equals(rank_exposure(agg, TIER_ONLY, n_boot=100, seed=2)["ratio_ci_low"])
    alone = rank_exposure(agg[agg["tenant_id"] == "tenant-2"], TIER_ONLY, n_boot=100, seed=1)
    pd.testing.assert_frame_equal(alone, first[first["tenant_id"] == "tenant-2"].reset_index(drop=True))


def test_invalid_input() -> None:
    with pytest.raises(ValueError, match="lack columns"):
        rank_exposure(search_aggregates(HAND).drop(columns="ranked"), TIER_ONLY)
    agg = search_aggregates(HAND)
    agg.loc[0, "merit_weight_sum"] = np.nan
    with pytest.raises(ValueError, match="merit_weight_sum holds nulls"):
        rank_exposure(agg, TIER_ONLY)


def test_empty_input_and_no_keys() -> None:
    empty = rank_exposure(search_aggregates(HAND).iloc[:0], TIER_ONLY)
    assert empty.empty and list(empty.columns) == ["tenant_id", *EXPOSURE_COLUMNS]
    table = rank_exposure(search_aggregates(HAND, keys=()), TIER_ONLY, keys=(), n_boot=0)
    assert list(table.columns) == list(EXPOSURE_COLUMNS)
    assert _row(table, "faang")["exposure"] == pytest.approx((2 * V2 + V3) / 3)
