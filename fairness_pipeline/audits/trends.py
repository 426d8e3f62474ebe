"""Impact-ratio trends: week-over-week change with a significance test, and "approaching threshold" flags.

Week over week (:func:`week_over_week`): for a day D, the 7-day window D-6..D ("current") against the non-overlapping
previous one D-13..D-7 ("previous"), from per-group counts of each window (unique candidates, as for the 30-day
windows). The reference group r is the *current* week's (highest rate among groups with at least ``min_share``); the
previous week's ratio is computed against the same r, so the change compares like with like. The test is a z-test on
the difference of log impact ratios with Katz variances, the two weeks taken as independent samples:

    d = ln IR_cur - ln IR_prev,  Var = sum over both weeks of (1/x_g - 1/n_g + 1/x_r - 1/n_r),  z = d / sqrt(Var)

two-sided p from the normal distribution, Holm-adjusted across the groups of one (tenant, stage pair, dimension)
table (Benjamini-Hochberg for intersections). This is the Wald test of the week x group interaction in a saturated
log-binomial model. When x_g is 0 in a week, 0.5 is added to that week's four cells first (as for the Katz interval).
Undefined (with a reason): the reference itself, empty or under-``min_share`` groups in the current week, a group with
no candidates in the previous week, a reference rate of 0 in either week. ``worsening`` = significant and d < 0.

Approaching threshold (:func:`ratio_slopes`): over the daily (30-day) windows ending in the last ``windows`` (14)
days up to ``as_of``, the least-squares slope of the impact ratio per day. A group is *approaching* when its latest
ratio (the window ending on ``as_of``) is not adverse (>= threshold, 0.80) and the slope is negative and the straight
line from the latest ratio reaches the threshold within ``horizon_days`` (30): (latest - threshold) / -slope <=
horizon. At least ``min_points`` (7) defined ratios are needed, including the one of ``as_of``.

:func:`fairness_trends` joins both per (tenant, stage pair, dimension, group).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from fairness_pipeline.audits._common import adjust_p_values
from fairness_pipeline.metrics.impact import impact_ratio_table
from fairness_pipeline.metrics.selection_rates import INTERSECTION_SEPARATOR, validate_counts
from fairness_pipeline.metrics.window import TABLE_KEYS, AnalysisSettings

DEFAULT_SLOPE_WINDOWS = 14
DEFAULT_HORIZON_DAYS = 30
DEFAULT_MIN_POINTS = 7

WOW_COLUMNS: tuple[str, ...] = (
    "group",
    "reference_group",
    "n_current",
    "x_current",
    "n_previous",
    "x_previous",
    "ratio_current",
    "ratio_previous",
    "ratio_change",
    "log_change",
    "se",
    "z",
    "p_value",
    "p_adjusted",
    "adjustment_method",
    "significant",
    "worsening",
    "low_sample",
    "wow_undefined_reason",
)
"""After ``keys``: counts of both weeks (the group's), ratios against the current reference, ratio_change =
ratio_current / ratio_previous, log_change = d (0.5-corrected when a count is 0), se = sqrt(Var), z, p-values;
``low_sample`` = n_g < min_sample in either week."""

SLOPE_COLUMNS: tuple[str, ...] = (
    "group",
    "as_of",
    "latest_ratio",
    "windows_used",
    "slope_per_day",
    "days_to_threshold",
    "adverse_now",
    "approaching_threshold",
    "trend_undefined_reason",
)
"""After ``keys``: latest_ratio = impact ratio of the window ending on ``as_of``; days_to_threshold = (latest -
threshold) / -slope when the slope is negative (NaN otherwise); adverse_now = latest < threshold."""


def week_over_week(
    current: pd.DataFrame,
    previous: pd.DataFrame,
    settings: AnalysisSettings | None = None,
    *,
    keys: Sequence[str] = TABLE_KEYS,
) -> pd.DataFrame:
    """Week-over-week change of impact ratios per table and group (see the module doc).

    ``current`` and ``previous``: ``keys`` + group, n, x, the per-group counts of the two 7-day windows (e.g.
    ``metrics.window.group_counts`` of each window's cells). Returns ``keys`` + :data:`WOW_COLUMNS`, one row per group
    of the current week.
    """
    settings = settings or AnalysisSettings()
    keys = list(keys)
    cur = validate_counts(current, keys)
    prev = validate_counts(previous, keys)
    before: dict[tuple, tuple[int, int]] = {
        (*k, g): (x, n) for *k, g, n, x in zip(*(prev[c].tolist() for c in [*keys, "group", "n", "x"]), strict=True)
    }  # (keys..., group) -> (x, n) of the previous week
    rows: list[dict[str, Any]] = []
    grouped = cur.groupby(keys, sort=True, dropna=False) if keys else [((), cur)]
    for key_values, table in grouped:
        key_values = key_values if isinstance(key_values, tuple) else (key_values,)
        prefix = dict(zip(keys, key_values, strict=True))
        intersectional = INTERSECTION_SEPARATOR in str(prefix.get("dimension", ""))
        previous_of = {g: before.get((*key_values, g), (0, 0)) for g in table["group"]}
        for row in _wow_rows(table[["group", "n", "x"]], previous_of, before, key_values, settings, intersectional):
            rows.append({**prefix, **row})
    out = pd.DataFrame(rows, columns=[*keys, *WOW_COLUMNS])
    for col in ("n_current", "x_current", "n_previous", "x_previous"):
        out[col] = out[col].astype("int64")
    for col in ("ratio_current", "ratio_previous", "ratio_change", "log_change", "se", "z", "p_value", "p_adjusted"):
        out[col] = out[col].astype(float)
    for col in ("significant", "worsening"):
        out[col] = pd.array([None if v is None else bool(v) for v in out[col]], dtype="boolean")
    out["low_sample"] = out["low_sample"].astype(bool)
    for col in ("group", "reference_group", "adjustment_method", "wow_undefined_reason"):
        out[col] = out[col].astype(object)
    return out


def log_ratio_change(
    current: tuple[int, int, int, int], previous: tuple[int, int, int, int]
) -> tuple[float, float, float, float]:
    """(d, se, z, p) for two weeks' (x_g, n_g, x_r, n_r); requires n_g, n_r > 0 and x_r > 0 in both weeks."""
    log_ratios, variances = [], []
    for x_g, n_g, x_r, n_r in (current, previous):
        a, b, c, d = float(x_g), float(n_g), float(x_r), float(n_r)
        if x_g == 0 or x_r == 0:
            a, b, c, d = a + 0.5, b + 1.0, c + 0.5, d + 1.0
        log_ratios.append(math.log((a / b) / (c / d)))
        variances.append(1 / a - 1 / b + 1 / c - 1 / d)
    change = log_ratios[0] - log_ratios[1]
    se = math.sqrt(sum(variances))
    z = change / se if se > 0 else (0.0 if change == 0 else math.copysign(math.inf, change))
    return change, se, z, float(2 * norm.sf(abs(z)))


def _wow_rows(
    current: pd.DataFrame,
    previous_of: dict[str, tuple[int, int]],
    before: dict[tuple, tuple[int, int]],
    key_values: tuple,
    settings: AnalysisSettings,
    intersectional: bool,
) -> list[dict[str, Any]]:
    """Rows of one (tenant, stage pair, dimension) table; ``before`` maps (keys..., group) to the previous (x, n)."""
    impacts = impact_ratio_table(
        current, intersectional=intersectional, alpha=settings.alpha, threshold=settings.threshold,
        min_share=settings.min_share, min_sample=settings.min_sample,
    )  # fmt: skip
    reference = impacts["reference_group"].dropna()
    ref = str(reference.iloc[0]) if len(reference) else None
    counts_now = {g: (x, n) for g, n, x in zip(current["group"], current["n"], current["x"], strict=True)}
    x_r, n_r = counts_now.get(ref, (0, 0)) if ref is not None else (0, 0)
    x_rp, n_rp = before.get((*key_values, ref), (0, 0)) if ref is not None else (0, 0)
    rows = []
    for item in impacts.itertuples(index=False):
        x_p, n_p = previous_of.get(item.group, (0, 0))
        row: dict[str, Any] = dict.fromkeys(WOW_COLUMNS)
        row.update(group=item.group, reference_group=ref, n_current=item.n, x_current=item.x, n_previous=n_p,
                   x_previous=x_p, low_sample=min(item.n, n_p) < settings.min_sample)  # fmt: skip
        if item.undefined_reason is not None:
            row["wow_undefined_reason"] = f"current week: {item.undefined_reason}"
        elif item.is_reference:
            row["wow_undefined_reason"] = "reference group"
        elif n_p == 0:
            row["wow_undefined_reason"] = "no candidates in the previous week"
        elif n_rp == 0 or x_rp == 0:
            row["wow_undefined_reason"] = "reference selection rate is 0 in the previous week"
        else:
            row["ratio_current"] = (item.x * n_r) / (item.n * x_r)
            row["ratio_previous"] = (x_p * n_rp) / (n_p * x_rp)
            row["ratio_change"] = row["ratio_current"] / row["ratio_previous"] if x_p else math.nan
            change, se, z, p = log_ratio_change((item.x, item.n, x_r, n_r), (x_p, n_p, x_rp, n_rp))
            row.update(log_change=change, se=se, z=z, p_value=p)
        rows.append(row)
    tested = [row for row in rows if row["p_value"] is not None]
    if tested:
        adjusted, method = adjust_p_values([row["p_value"] for row in tested], intersectional)
        for row, p in zip(tested, adjusted, strict=True):
            row.update(p_adjusted=p, adjustment_method=method, significant=p < settings.alpha)
            row["worsening"] = row["significant"] and row["log_change"] < 0
    return rows


def ratio_slopes(
    series: pd.DataFrame,
    *,
    as_of: dt.date | None = None,
    keys: Sequence[str] = TABLE_KEYS,
    windows: int = DEFAULT_SLOPE_WINDOWS,
    horizon_days: float = DEFAULT_HORIZON_DAYS,
    min_points: int = DEFAULT_MIN_POINTS,
    threshold: float = 0.80,
) -> pd.DataFrame:
    """Slope of each group's impact-ratio series and the "approaching threshold" flag (see the module doc).

    ``series``: ``keys`` + group + window_end (date) + impact_ratio (NaN when undefined), one row per daily window, as
    stored in the impact-ratio table. ``as_of`` defaults to the latest window_end. Returns ``keys`` +
    :data:`SLOPE_COLUMNS`, one row per (keys, group) with any row in the last ``windows`` days.
    """
    keys = list(keys)
    missing = [c for c in (*keys, "group", "window_end", "impact_ratio") if c not in series.columns]
    if missing:
        raise ValueError(f"impact-ratio series lacks columns {missing}")
    if windows < 2 or min_points < 2:
        raise ValueError("windows and min_points must be at least 2")
    frame = series[[*keys, "group", "window_end", "impact_ratio"]].copy()
    frame["window_end"] = pd.to_datetime(frame["window_end"]).dt.date
    if as_of is None:
        if frame.empty:
            return pd.DataFrame(columns=[*keys, *SLOPE_COLUMNS])
        as_of = max(frame["window_end"])
    first = as_of - dt.timedelta(days=windows - 1)
    frame = frame[(frame["window_end"] >= first) & (frame["window_end"] <= as_of)]
    if frame.duplicated([*keys, "group", "window_end"]).any():
        raise ValueError("impact-ratio series has more than one row per group and window_end")
    frame["day"] = [(d - as_of).days for d in frame["window_end"]]
    frame["impact_ratio"] = pd.to_numeric(frame["impact_ratio"], errors="coerce").astype(float)
    rows = []
    for key_values, part in frame.groupby([*keys, "group"], sort=True, dropna=False):
        key_values = key_values if isinstance(key_values, tuple) else (key_values,)
        row: dict[str, Any] = dict(zip([*keys, "group"], key_values, strict=True))
        row.update(_slope_row(part, as_of, horizon_days, min_points, threshold))
        rows.append(row)
    out = pd.DataFrame(rows, columns=[*keys, *SLOPE_COLUMNS])
    out["windows_used"] = out["windows_used"].astype("int64")
    for col in ("latest_ratio", "slope_per_day", "days_to_threshold"):
        out[col] = out[col].astype(float)
    for col in ("adverse_now", "approaching_threshold"):
        out[col] = pd.array([None if v is None else bool(v) for v in out[col]], dtype="boolean")
    return out


def _slope_row(part: pd.DataFrame, as_of: dt.date, horizon: float, min_points: int, threshold: float) -> dict:
    defined = part[np.isfinite(part["impact_ratio"])]
    latest = defined.loc[defined["day"] == 0, "impact_ratio"]
    row: dict[str, Any] = {"as_of": as_of, "windows_used": len(defined), "latest_ratio": math.nan,
                           "slope_per_day": math.nan, "days_to_threshold": math.nan, "adverse_now": None,
                           "approaching_threshold": None, "trend_undefined_reason": None}  # fmt: skip
    if latest.empty:
        row["trend_undefined_reason"] = "no impact ratio for the as-of window"
        return row
    row["latest_ratio"] = value = float(latest.iloc[0])
    row["adverse_now"] = value < threshold
    if len(defined) < min_points:
        row["trend_undefined_reason"] = f"fewer than {min_points} windows with an impact ratio"
        return row
    x = defined["day"].to_numpy(dtype=float)
    y = defined["impact_ratio"].to_numpy(dtype=float)
    if np.ptp(x) == 0:
        row["trend_undefined_reason"] = "a single window"
        return row
    slope = float(np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2))
    row["slope_per_day"] = slope
    if slope < 0:
        row["days_to_threshold"] = (value - threshold) / -slope
    row["approaching_threshold"] = bool(value >= threshold and slope < 0 and row["days_to_threshold"] <= horizon)
    return row


def fairness_trends(
    series: pd.DataFrame,
    current: pd.DataFrame,
    previous: pd.DataFrame,
    settings: AnalysisSettings | None = None,
    *,
    as_of: dt.date | None = None,
    keys: Sequence[str] = TABLE_KEYS,
    windows: int = DEFAULT_SLOPE_WINDOWS,
    horizon_days: float = DEFAULT_HORIZON_DAYS,
    min_points: int = DEFAULT_MIN_POINTS,
) -> pd.DataFrame:
    """:func:`ratio_slopes` of the daily series joined with :func:`week_over_week` of the two weeks ending on as_of.

    Returns ``keys`` + group + the other columns of :data:`SLOPE_COLUMNS` and :data:`WOW_COLUMNS` (outer join: a
    group missing on one side has NaN / None there).
    """
    settings = settings or AnalysisSettings()
    keys = list(keys)
    slopes = ratio_slopes(series, as_of=as_of, keys=keys, windows=windows, horizon_days=horizon_days,
                          min_points=min_points, threshold=settings.threshold)  # fmt: skip
    wow = week_over_week(current, previous, settings, keys=keys)
    merged = slopes.merge(wow, on=[*keys, "group"], how="outer", sort=True)
    for col in ("adverse_now", "approaching_threshold", "significant", "worsening"):
        merged[col] = merged[col].astype("boolean")
    return merged.reset_index(drop=True)


__all__ = [
    "DEFAULT_HORIZON_DAYS",
    "DEFAULT_MIN_POINTS",
    "DEFAULT_SLOPE_WINDOWS",
    "SLOPE_COLUMNS",
    "WOW_COLUMNS",
    "fairness_trends",
    "log_ratio_change",
    "ratio_slopes",
    "week_over_week",
]
