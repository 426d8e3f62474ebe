"""Slate concentration: hand-worked slates, the chance model against brute force, planted concentration, null data."""

from __future__ import annotations

import datetime as dt
import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from fairness_pipeline.audits.from_events import search_aggregates, shown_impressions
from fairness_pipeline.audits.slates import (
    DOMINANT_COLUMNS,
    NO_ASSESSED_REASON,
    SUMMARY_COLUMNS,
    concentration_probability,
    slate_concentration,
)
from fairness_pipeline.synthetic import GeneratorConfig, generate_events

DAY = dt.date(2026, 2, 2)


def _slates(slates: dict[str, list[str | None]], day: dt.date = DAY) -> pd.DataFrame:
    """Per-search aggregates (shown per company tier) of hand-made slates of tenant t1."""
    rows = []
    for search, tiers in slates.items():
        for tier, count in pd.Series(tiers, dtype=object).value_counts(dropna=False).items():
            rows.append(("t1", day, search, None if tier is None or tier != tier else tier, "3-7", "ml", int(count)))
    columns = ["tenant_id", "day", "search_id", "company_tier", "experience_band", "specialty", "shown"]
    return pd.DataFrame(rows, columns=columns)


HAND = {
    "s1": ["faang"] * 8 + ["startup"] * 2,  # 8/10 = 80% > 70%: concentrated on faang
    "s2": ["faang"] * 7 + ["other"] * 3,  # 7/10 = 70%: not above 70%, not concentrated
    "s3": ["startup"],  # one candidate: under the minimum of 5, not assessed
    "s4": [None] * 5,  # 5/5 unknown: concentrated on unknown
    "s5": ["startup"] * 15 + ["enterprise"] * 5,  # 15/20 = 75%: concentrated on startup
    "s6": ["startup"] * 14 + ["enterprise"] * 6,  # 14/20 = 70%: not concentrated
}


def test_hand_worked_slates() -> None:
    result = slate_concentration(_slates(HAND), dimensions=("company_tier",))
    assert list(result.summary.columns) == ["tenant_id", "day", *SUMMARY_COLUMNS]
    assert list(result.dominant.columns) == ["tenant_id", "day", *DOMINANT_COLUMNS]
    [row] = result.summary.to_dict("records")
    # Six searches, s3 too small; of the five assessed, s1, s4 and s5 are concentrated: 3/5 = 0.6.
    assert (row["searches"], row["assessed"], row["too_small"], row["concentrated"]) == (6, 5, 1, 3)
    assert row["concentrated_share"] == 0.6
    # Ties in the number of concentrated slates go to the group name: faang first.
    assert row["top_group"] == "faang"
    dominant = result.dominant.set_index("group")
    assert dominant["concentrated"].to_dict() == {"faang": 1, "startup": 1, "unknown": 1}
    assert dominant.loc["faang", "share_of_concentrated"] == pytest.approx(1 / 3)
    assert dominant.loc["faang", "share_of_assessed"] == pytest.approx(1 / 5)
    # The other dimensions are the same value on every row: every assessed slate is concentrated on it.
    every = slate_concentration(_slates(HAND)).summary.set_index("dimension")
    assert every.loc["specialty", "concentrated"] == 5 and every.loc["specialty", "top_group"] == "ml"
    assert every.loc["specialty", "expected_share"] == 1.0 and every.loc["specialty", "excess_p_value"] == 1.0


def test_chance_model_by_hand() -> None:
    # Group shares of the day's 66 shown impressions: faang 8+7 = 15, startup 2+1+15+14 = 32, enterprise 5+6 = 11,
    # unknown 5, other 3. Chance of a concentrated slate of size s: sum_g P(Binomial(s, p_g) > 0.7 s).
    aggregates = _slates(HAND)
    counts = aggregates.groupby(aggregates["company_tier"].fillna("unknown"))["shown"].sum()
    assert counts.to_dict() == {"enterprise": 11, "faang": 15, "other": 3, "startup": 32, "unknown": 5}
    shares = (counts / counts.sum()).to_numpy()
    sizes = [10, 10, 5, 20, 20]  # the assessed slates
    expected = np.mean([concentration_probability(s, shares, 0.7) for s in sizes])
    result = slate_concentration(aggregates, dimensions=("company_tier",))
    assert result.summary["expected_share"].iloc[0] == pytest.approx(expected)
    # 3 of 5 concentrated against a small chance probability: significant on its own day (one dimension, Holm is the
    # raw p), but not once the 30 days of a window are adjusted together (Bonferroni: 30 p).
    p = binomtest(3, 5, expected, alternative="greater").pvalue
    assert expected < 0.1 and p < 0.05 / 5
    alone = slate_concentration(aggregates, dimensions=("company_tier",), window_days=1).summary.iloc[0]
    assert alone["excess_p_adjusted"] == pytest.approx(p) and alone["excess_significant"]
    row = result.summary.iloc[0]
    assert row["excess_p_adjusted"] == pytest.approx(min(1.0, 30 * p)) and not row["excess_significant"]


def test_days_of_a_window_are_adjusted_together_holm_then_bonferroni() -> None:
    # Two dimensions on one day: Holm gives (2 p_min, max(2 p_min, p_max)); a 7-day window multiplies by 7.
    aggregates = _slates(HAND)
    raw = slate_concentration(aggregates, dimensions=("company_tier", "specialty"), window_days=1, alpha=1.0)
    p = raw.summary.set_index("dimension")["excess_p_value"]
    low, high = sorted(p.to_numpy())
    holm = {d: (2 * low if v == low else max(2 * low, high)) for d, v in p.items()}
    week = slate_concentration(aggregates, dimensions=("company_tier", "specialty"), window_days=7).summary
    for dimension, adjusted in week.set_index("dimension")["excess_p_adjusted"].items():
        assert adjusted == pytest.approx(min(1.0, 7 * min(1.0, holm[dimension])))


@pytest.mark.parametrize(("size", "shares"), [(5, (0.5, 0.3, 0.2)), (6, (0.6, 0.4)), (7, (0.25, 0.25, 0.25, 0.25))])
def test_concentration_probability_against_brute_force(size: int, shares: tuple[float, ...]) -> None:
    brute = 0.0
    for draw in itertools.product(range(len(shares)), repeat=size):
        counts = np.bincount(draw, minlength=len(shares))
        if counts.max() * 10 > 7 * size:  # strictly more than 70%
            brute += math.prod(shares[g] for g in draw)
    assert concentration_probability(size, shares, 0.7) == pytest.approx(brute, rel=1e-12)


def test_boundaries_are_exact_and_min_slate_is_a_parameter() -> None:
    # 7 of 10 is exactly 70%: not above. 0.7 * 10 in floating point must not tip it either way.
    exact = slate_concentration(_slates({"a": ["faang"] * 7 + ["other"] * 3}), dimensions=("company_tier",))
    assert exact.summary["concentrated"].iloc[0] == 0
    tiny = _slates({"a": ["faang"], "b": ["faang", "faang"]})
    none = slate_concentration(tiny, dimensions=("company_tier",)).summary.iloc[0]
    assert (none["assessed"], none["too_small"]) == (0, 2)
    assert np.isnan(none["concentrated_share"]) and none["undefined_reason"] == NO_ASSESSED_REASON
    assert pd.isna(none["excess_significant"])
    one = slate_concentration(tiny, dimensions=("company_tier",), min_slate=1).summary.iloc[0]
    assert (one["assessed"], one["concentrated"], one["concentrated_share"]) == (2, 2, 1.0)


def test_per_day_rows() -> None:
    frame = pd.concat([_slates(HAND), _slates({"x": ["other"] * 6}, DAY + dt.timedelta(days=1))])
    summary = slate_concentration(frame, dimensions=("company_tier",)).summary
    assert summary["day"].tolist() == [DAY, DAY + dt.timedelta(days=1)]
    assert summary["concentrated"].tolist() == [3, 1]


# --- generated data ------------------------------------------------------------------------------------------------


def _generated(seed: int = 13, **options: object) -> pd.DataFrame:
    config = GeneratorConfig(seed=seed, start=DAY, days=3, tenants=2, events_per_day=2500, **options)
    shown = shown_impressions(pd.concat(generate_events(config), ignore_index=True))
    return search_aggregates(shown, keys=("tenant_id", "day"))


def test_planted_concentration_is_found() -> None:
    result = slate_concentration(_generated(slate_concentration=("company_tier=faang:0.2",)))
    tier = result.summary[result.summary["dimension"] == "company_tier"]
    total = tier["concentrated"].sum() / tier["assessed"].sum()
    n = tier["assessed"].sum()
    assert abs(total - 0.2) < 3 * math.sqrt(0.2 * 0.8 / n)
    assert tier["excess_significant"].all() and (tier["top_group"] == "faang").all()
    assert set(result.dominant.loc[result.dominant["dimension"] == "company_tier", "group"]) == {"faang"}
    others = result.summary[result.summary["dimension"] != "company_tier"]
    assert others["concentrated"].sum() <= 2 and not others["excess_significant"].any()  # chance: ~1e-4 per slate


def test_unbiased_data_has_no_concentrated_slates() -> None:
    result = slate_concentration(_generated(), pairs=True)
    assert result.summary["concentrated"].sum() <= 1  # chance is about 1e-3 per slate at most
    assert not result.summary["excess_significant"].fillna(False).any()
    assert (result.summary["expected_share"] < 0.01).all()


def test_empty_input_gives_empty_frames() -> None:
    result = slate_concentration(_slates(HAND).iloc[:0])
    assert result.summary.empty and list(result.summary.columns) == ["tenant_id", "day", *SUMMARY_COLUMNS]
    assert result.dominant.empty
