"""Impact-ratio trends: the week-over-week test against hand numbers and a log-binomial GLM, slopes, generated data."""

from __future__ import annotations

import datetime as dt
import math
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.stats import linregress

from fairness_pipeline.audits.from_events import window_cells
from fairness_pipeline.audits.trends import (
    SLOPE_COLUMNS,
    WOW_COLUMNS,
    fairness_trends,
    log_ratio_change,
    ratio_slopes,
    week_over_week,
)
from fairness_pipeline.metrics.window import TABLE_KEYS, AnalysisSettings, group_counts
from fairness_pipeline.synthetic import GeneratorConfig, generate_events

AS_OF = dt.date(2026, 3, 15)


def _counts(rows: list[tuple[str, int, int]], dimension: str = "company_tier") -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["group", "n", "x"])
    return frame.assign(tenant_id="t1", stage_pair="shown->shortlisted", dimension=dimension)[
        [*TABLE_KEYS, "group", "n", "x"]
    ]


def _glm_interaction(current: tuple[int, int, int, int], previous: tuple[int, int, int, int]) -> tuple[float, float]:
    """Wald z and p of the week x group interaction in a saturated log-binomial GLM (statsmodels)."""
    design, outcome = [], []
    for week, (x_g, n_g, x_r, n_r) in ((1, current), (0, previous)):
        for is_group, x, n in ((1, x_g, n_g), (0, x_r, n_r)):
            design.append([1.0, week, is_group, week * is_group])
            outcome.append([x, n - x])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        family = sm.families.Binomial(link=sm.families.links.Log())
        fit = sm.GLM(np.array(outcome, float), np.array(design), family=family).fit(tol=1e-12)
    return float(fit.tvalues[3]), float(fit.pvalues[3])


def test_log_ratio_change_by_hand() -> None:
    # Current: 30/100 vs 60/100 -> IR 0.5; previous: 45/100 vs 60/100 -> IR 0.75. d = ln(0.5 / 0.75) = -0.405465.
    # Var = (1/30 - 1/100 + 1/60 - 1/100) + (1/45 - 1/100 + 1/60 - 1/100) = 0.03 + 0.018889 = 0.048889.
    # se = 0.221108, z = -1.833785, p = 2 * Phi(-1.833785) = 0.066686.
    change, se, z, p = log_ratio_change((30, 100, 60, 100), (45, 100, 60, 100))
    assert change == pytest.approx(math.log(2 / 3))
    assert se == pytest.approx(math.sqrt(0.03 + 0.0188888889))
    assert z == pytest.approx(-1.833785, abs=1e-6)
    assert p == pytest.approx(0.066686, abs=1e-6)


@pytest.mark.parametrize(
    ("current", "previous"),
    [
        ((30, 100, 60, 100), (45, 100, 60, 100)),
        ((12, 80, 50, 120), (20, 90, 40, 110)),
        ((5, 40, 30, 60), (9, 45, 28, 70)),
    ],
)
def test_log_ratio_change_matches_the_log_binomial_glm(current, previous) -> None:
    _, _, z, p = log_ratio_change(current, previous)
    glm_z, glm_p = _glm_interaction(current, previous)
    assert z == pytest.approx(glm_z, rel=1e-6)
    assert p == pytest.approx(glm_p, rel=1e-5)


def test_zero_count_gets_the_half_correction() -> None:
    # x_g = 0 in the current week: 0.5 added to both x and 1 to both n -> IR* = (0.5/41) / (30.5/61) = 0.02439.
    change, _, _, _ = log_ratio_change((0, 40, 30, 60), (9, 45, 28, 70))
    assert change == pytest.approx(math.log((0.5 / 41) / (30.5 / 61)) - math.log((9 / 45) / (28 / 70)))


def test_week_over_week_table() -> None:
    current = _counts([("faang", 100, 60), ("startup", 100, 30), ("other", 100, 57), ("enterprise", 1, 0)])
    previous = _counts([("faang", 100, 60), ("startup", 100, 45), ("other", 100, 58)])
    table = week_over_week(current, previous, AnalysisSettings(min_share=0.02))
    assert list(table.columns) == [*TABLE_KEYS, *WOW_COLUMNS]
    table = table.set_index("group")
    startup, other = table.loc["startup"], table.loc["other"]
    assert startup["reference_group"] == "faang"
    assert (startup["ratio_current"], startup["ratio_previous"]) == (0.5, 0.75)
    assert startup["ratio_change"] == pytest.approx(2 / 3)
    assert startup["z"] == pytest.approx(-1.833785, abs=1e-6)
    # Holm over startup and other: the smaller p (startup, 0.0667) doubles to 0.1334 -> not significant.
    assert startup["p_adjusted"] == pytest.approx(2 * startup["p_value"])
    assert not startup["significant"] and not startup["worsening"] and not startup["improving"]
    assert other["ratio_previous"] == pytest.approx(58 / 60)
    assert table.loc["faang", "wow_undefined_reason"] == "reference group"
    # 1 candidate of 601 over both weeks: under 2%.
    assert table.loc["enterprise", "wow_undefined_reason"] == "both weeks: excluded: under 2% of the population"
    assert pd.isna(table.loc["faang", "significant"])


def test_week_over_week_reference_is_chosen_on_both_weeks_pooled() -> None:
    # This week faang has the best rate (0.60), but over both weeks "other" has (220/400 = 0.55 against faang's 0.50):
    # both weeks are compared against "other".
    current = _counts([("faang", 200, 120), ("startup", 200, 40), ("other", 200, 110)])
    previous = _counts([("faang", 200, 80), ("startup", 200, 80), ("other", 200, 110)])
    table = week_over_week(current, previous).set_index("group")
    assert table["reference_group"].unique().tolist() == ["other"]
    startup, faang = table.loc["startup"], table.loc["faang"]
    assert (startup["ratio_current"], startup["ratio_previous"]) == pytest.approx((40 / 110, 80 / 110))
    # startup: d = ln 0.5, Var = (1/40 - 1/200 + 1/110 - 1/200) + (1/80 - 1/200 + 1/110 - 1/200) = 0.0356818.
    assert startup["z"] == pytest.approx(math.log(0.5) / math.sqrt(0.0356818), rel=1e-5)
    assert startup["worsening"] and not startup["improving"]
    # faang: d = ln 1.5, Var = (1/120 - 1/200 + 1/110 - 1/200) + (1/80 - 1/200 + 1/110 - 1/200) = 0.0190151.
    assert faang["z"] == pytest.approx(math.log(1.5) / math.sqrt(0.0190151), rel=1e-5)
    assert faang["improving"] and not faang["worsening"]


def test_week_over_week_is_symmetric_in_the_weeks() -> None:
    # Swapping the weeks changes the sign of every change and nothing else: the null distribution is symmetric.
    rng = np.random.default_rng(8)
    weeks = []
    for _ in range(2):
        tables = []
        for i in range(30):
            sizes = rng.integers(100, 900, 4)
            rows = [(g, int(n), int(rng.binomial(n, 0.1))) for g, n in zip("abcd", sizes, strict=True)]
            tables.append(_counts(rows).assign(tenant_id=f"t{i}"))
        weeks.append(pd.concat(tables, ignore_index=True))
    forward, backward = week_over_week(weeks[0], weeks[1]), week_over_week(weeks[1], weeks[0])
    assert (forward["reference_group"] == backward["reference_group"]).all()
    tested = forward["p_value"].notna()
    assert tested.sum() >= 80
    assert forward.loc[tested, "log_change"].to_numpy() == pytest.approx(-backward.loc[tested, "log_change"].to_numpy())
    assert forward["p_adjusted"].equals(backward["p_adjusted"])
    assert forward["worsening"].equals(backward["improving"]) and forward["improving"].equals(backward["worsening"])


def test_week_over_week_undefined_cases() -> None:
    current = _counts([("faang", 100, 60), ("startup", 100, 30), ("other", 100, 20)])
    previous = _counts([("faang", 100, 0), ("startup", 100, 30)])
    table = week_over_week(current, previous).set_index("group")
    assert table.loc["startup", "wow_undefined_reason"] == "reference selection rate is 0 in the previous week"
    assert table.loc["other", "wow_undefined_reason"] == "no candidates in the previous week"
    assert table["p_value"].isna().all()
    # A group of the previous week only has a row too.
    table = week_over_week(_counts([("faang", 100, 60)]), _counts([("faang", 100, 50), ("startup", 100, 30)]))
    assert table.set_index("group").loc["startup", "wow_undefined_reason"] == "no candidates in the current week"


def test_week_over_week_false_positive_rate() -> None:
    # The test itself: unadjusted p < 0.05 in about 5% of null pairs of weeks (same rates in both weeks).
    rng = np.random.default_rng(4)
    p_values = [
        log_ratio_change(
            (int(rng.binomial(300, 0.15)), 300, int(rng.binomial(500, 0.2)), 500),
            (int(rng.binomial(300, 0.15)), 300, int(rng.binomial(500, 0.2)), 500),
        )[3]
        for _ in range(3000)
    ]
    assert 0.035 < np.mean(np.array(p_values) < 0.05) < 0.065
    # Whole tables (five groups, Holm): few significant changes, whichever group is the reference.
    weeks = [
        pd.concat(
            [
                _counts([(g, 400, int(rng.binomial(400, 0.2))) for g in "abcde"]).assign(tenant_id=f"t{i}")
                for i in range(20)
            ]
        )
        for _ in range(2)
    ]
    table = week_over_week(weeks[0], weeks[1])
    assert table["p_value"].notna().sum() == 80
    assert table["significant"].fillna(False).sum() <= 5


# --- slopes --------------------------------------------------------------------------------------------------------


def _series(values: list[float], group: str = "startup", end: dt.date = AS_OF) -> pd.DataFrame:
    days = [end - dt.timedelta(days=len(values) - 1 - i) for i in range(len(values))]
    frame = pd.DataFrame({"group": group, "window_end": days, "impact_ratio": values})
    return frame.assign(tenant_id="t1", stage_pair="shown->shortlisted", dimension="company_tier")


def test_slope_flags_by_hand() -> None:
    falling = [0.95 - 0.005 * i for i in range(15)]  # 0.95 .. 0.88: slope -0.005/day, (0.88 - 0.80) / 0.005 = 16 days
    slow = [0.913 - 0.001 * i for i in range(14)]  # latest 0.90, 100 days away
    adverse = [0.85 - 0.01 * i for i in range(14)]  # latest 0.72: already adverse
    frame = pd.concat([_series(falling, "startup"), _series(slow, "other"), _series(adverse, "faang")])
    table = ratio_slopes(frame)
    assert list(table.columns) == [*TABLE_KEYS, *SLOPE_COLUMNS]
    table = table.set_index("group")
    startup = table.loc["startup"]
    assert startup["windows_used"] == 14  # the last 14 windows only
    assert startup["latest_ratio"] == pytest.approx(0.88)
    assert startup["slope_per_day"] == pytest.approx(-0.005)
    assert startup["days_to_threshold"] == pytest.approx(16.0)
    assert startup["approaching_threshold"] and not startup["adverse_now"]
    assert table.loc["other", "days_to_threshold"] == pytest.approx(100.0)
    assert not table.loc["other", "approaching_threshold"]
    assert table.loc["faang", "adverse_now"] and not table.loc["faang", "approaching_threshold"]


def test_slope_matches_linregress_with_gaps() -> None:
    rng = np.random.default_rng(1)
    values = list(0.9 - 0.004 * np.arange(14) + rng.normal(0, 0.01, 14))
    values[3] = values[7] = math.nan  # undefined windows are skipped
    frame = _series(values)
    frame = frame.drop(index=5)  # a missing window
    row = ratio_slopes(frame).iloc[0]
    kept = frame[frame["impact_ratio"].notna()]
    x = [(d - AS_OF).days for d in kept["window_end"]]
    assert row["slope_per_day"] == pytest.approx(linregress(x, kept["impact_ratio"]).slope)
    assert row["windows_used"] == 11


def test_slope_undefined_cases() -> None:
    frame = pd.concat([_series([0.9, 0.89, 0.88], "short"), _series([0.9] * 10 + [math.nan], "no_latest")])
    table = ratio_slopes(frame, as_of=AS_OF).set_index("group")
    assert table.loc["short", "trend_undefined_reason"] == "fewer than 7 windows with an impact ratio"
    assert table.loc["short", "latest_ratio"] == pytest.approx(0.88)
    assert pd.isna(table.loc["short", "approaching_threshold"])
    assert table.loc["no_latest", "trend_undefined_reason"] == "no impact ratio for the as-of window"


def test_many_series_at_once_match_linregress_per_series() -> None:
    """300 random series with gaps and undefined ratios, against a per-series oracle (scipy's linregress)."""
    rng = np.random.default_rng(5)
    rows = []
    for tenant in ("t1", "t2"):
        for index in range(150):
            days = rng.choice(np.arange(-16, 1), size=int(rng.integers(1, 17)), replace=False)
            slope = rng.uniform(-0.02, 0.01)
            for day in days:
                value = np.nan if rng.random() < 0.1 else 0.9 + slope * (day + 16) + rng.normal(0, 0.02)
                when = AS_OF + dt.timedelta(days=int(day))
                rows.append((tenant, "shown->clicked", "company_tier", f"g{index}", when, value))
    series = pd.DataFrame(rows, columns=[*TABLE_KEYS, "group", "window_end", "impact_ratio"])
    for horizon, min_points, threshold in ((30.0, 7, 0.80), (10.0, 3, 0.85)):
        table = ratio_slopes(series, as_of=AS_OF, horizon_days=horizon, min_points=min_points, threshold=threshold)
        recent = series[series["window_end"] > AS_OF - dt.timedelta(days=14)]
        assert len(table) == recent.groupby(["tenant_id", "group"]).ngroups
        checked = 0
        for row in table.itertuples():
            part = recent[(recent["tenant_id"] == row.tenant_id) & (recent["group"] == row.group)]
            defined = part[np.isfinite(part["impact_ratio"])]
            assert row.windows_used == len(defined)
            latest = defined.loc[defined["window_end"] == AS_OF, "impact_ratio"]
            if latest.empty or len(defined) < min_points:
                assert math.isnan(row.slope_per_day) and pd.isna(row.approaching_threshold)
                continue
            fit = linregress([(d - AS_OF).days for d in defined["window_end"]], defined["impact_ratio"])
            assert row.slope_per_day == pytest.approx(fit.slope, abs=1e-12)
            value = float(latest.iloc[0])
            expected = value >= threshold and fit.slope < 0 and (value - threshold) / -fit.slope <= horizon
            assert bool(row.approaching_threshold) == expected
            checked += 1
        assert checked > 50 and table["approaching_threshold"].fillna(False).any()
    with pytest.raises(ValueError, match="more than one row"):
        ratio_slopes(pd.concat([series, series]), as_of=AS_OF)


def test_fairness_trends_joins_both() -> None:
    series = _series([0.95 - 0.005 * i for i in range(14)])
    current = _counts([("faang", 100, 60), ("startup", 100, 30)])
    previous = _counts([("faang", 100, 60), ("startup", 100, 45)])
    table = fairness_trends(series, current, previous).set_index("group")
    assert table.loc["startup", "approaching_threshold"] and table.loc["startup", "ratio_current"] == 0.5
    assert pd.isna(table.loc["faang", "approaching_threshold"])  # no series row for faang


# --- generated data ------------------------------------------------------------------------------------------------


def _two_weeks(bias_now: tuple[str, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-group counts of two consecutive weeks; the second is generated with ``bias_now`` (same candidate pool)."""
    start = dt.date(2026, 3, 2)
    frames = []
    for offset, bias in ((0, ()), (7, bias_now)):
        config = GeneratorConfig(
            seed=17, start=start + dt.timedelta(days=offset), days=7, tenants=1, events_per_day=3500, bias=bias
        )
        frames.append(pd.concat(generate_events(config), ignore_index=True))
    events = pd.concat(frames, ignore_index=True)
    settings = AnalysisSettings(stage_pairs=(("shown", "shortlisted"),), intersections=False)
    weeks = []
    for first in (start + dt.timedelta(days=7), start):
        cells = window_cells(events, first, first + dt.timedelta(days=6), settings.stage_pairs)
        weeks.append(group_counts(cells, settings))
    return weeks[0], weeks[1]


def test_bias_starting_this_week_is_worsening() -> None:
    current, previous = _two_weeks(("company_tier=startup:0.5",))
    table = week_over_week(current, previous)
    worsening = table[table["worsening"].fillna(False)]
    assert set(zip(worsening["dimension"], worsening["group"], strict=True)) <= {("company_tier", "startup")}
    assert ("company_tier", "startup") in set(zip(worsening["dimension"], worsening["group"], strict=True))
    row = table.set_index(["dimension", "group"]).loc[("company_tier", "startup")]
    assert row["ratio_change"] == pytest.approx(0.5, abs=0.15)


def test_unbiased_weeks_are_not_worsening() -> None:
    current, previous = _two_weeks(())
    table = week_over_week(current, previous)
    assert table["p_value"].notna().sum() >= 10
    assert not table["worsening"].fillna(False).any()
