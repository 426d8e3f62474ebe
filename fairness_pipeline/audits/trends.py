"""Impact-ratio trends: week-over-week change with a significance test, and "approaching threshold" flags.

Week over week (:func:`week_over_week`): for a day D, the 7-day window D-6..D ("current") against the non-overlapping
previous one D-13..D-7 ("previous"), from per-group counts of each window (unique candidates, as for the 30-day
windows). The reference group r is chosen once, on the two weeks pooled (highest rate among eligible groups, as in
``metrics.impact``), and both weeks' ratios are computed against it: the same pair of groups in both weeks, and a
choice that treats the weeks alike, so that without a change the test statistic is symmetric about 0 (choosing r on
the current week alone made the current ratios fall by selection: 1,546 falls against 7 rises on fair data). The
test is a z-test on the difference of log impact ratios with Katz variances, the two weeks taken as independent
samples:

    d = ln IR_cur - ln IR_prev,  Var = sum over both weeks of (1/x_g - 1/n_g + 1/x_r - 1/n_r),  z = d / sqrt(Var)

two-sided p from the normal distribution, Holm-adjusted across the groups of one (tenant, stage pair, dimension)
table (Benjamini-Hochberg for intersections). This is the Wald test of the week x group interaction in a saturated
log-binomial model. When x_g is 0 in a week, 0.5 is added to that week's four cells first (as for the Katz interval).
Undefined (with a reason): the reference itself, groups left out on the pooled weeks (empty, ``unknown``, under
``min_share``, no eligible reference), a group with no candidates in either week, a reference rate of 0 in either
week. ``worsening`` = significant and d < 0; ``improving`` = significant and d > 0.

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

from fairness_pipeline.metrics.impact import adjusted_p_values, first_reasons, impact_ratio_tables, katz_log_ratio
from fairness_pipeline.metrics.selection_rates import is_intersection, validate_counts
from fairness_pipeline.metrics.window import DEFAULT_ANALYSIS, TABLE_KEYS, AnalysisSettings

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
    "improving",
    "low_sample",
    "wow_undefined_reason",
)
"""After ``keys``: counts of both weeks (the group's), ratios against the reference of both weeks pooled,
ratio_change = ratio_current / ratio_previous, log_change = d (0.5-corrected when a count is 0), se = sqrt(Var), z,
p-values; worsening / improving = significant with d < 0 / d > 0; ``low_sample`` = n_g < min_sample in either week."""

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
    """Week-over-week change of impact ratios per table and group (see the module doc), vectorised over all tables.

    ``current`` and ``previous``: ``keys`` + group, n, x, the per-group counts of the two 7-day windows (e.g.
    ``metrics.window.group_counts`` of each window's cells). Returns ``keys`` + :data:`WOW_COLUMNS`, one row per group
    of either week, sorted by ``keys``.
    """
    settings = settings or AnalysisSettings()
    keys = list(keys)
    cur = validate_counts(current, keys)
    prev = validate_counts(previous, keys)
    pooled = (
        pd.concat([cur, prev], ignore_index=True)
        .groupby([*keys, "group"], sort=False, as_index=False)[["n", "x"]]
        .sum()
    )
    if keys:
        pooled = pooled.sort_values(keys, kind="stable", ignore_index=True)
    intersectional = is_intersection(pooled["dimension"]) if "dimension" in keys else False
    dimensions = pooled["dimension"] if "dimension" in keys else None
    impacts = impact_ratio_tables(
        pooled, keys, intersectional=intersectional, **settings.impact_options(dimensions)
    )  # the reference and every exclusion decided on both weeks pooled: the same for both weeks
    x, n = _counts_of(cur, impacts, keys, "group")
    x_r, n_r = _counts_of(cur, impacts, keys, "reference_group")
    x_p, n_p = _counts_of(prev, impacts, keys, "group")
    x_rp, n_rp = _counts_of(prev, impacts, keys, "reference_group")

    out = impacts[[*keys, "group", "reference_group"]].copy()
    out["n_current"], out["x_current"], out["n_previous"], out["x_previous"] = n, x, n_p, x_p
    undefined = impacts["undefined_reason"]
    reasons = first_reasons(
        [
            (undefined.notna().to_numpy(), "both weeks: " + undefined.astype(str)),
            (impacts["is_reference"].to_numpy(dtype=bool), "reference group"),
            (n == 0, "no candidates in the current week"),
            (n_p == 0, "no candidates in the previous week"),
            ((n_r == 0) | (x_r == 0), "reference selection rate is 0 in the current week"),
            ((n_rp == 0) | (x_rp == 0), "reference selection rate is 0 in the previous week"),
        ],
        len(out),
    )
    tested = reasons == None  # noqa: E711 (elementwise on an object array)
    columns = {
        c: np.full(len(out), np.nan)
        for c in ("ratio_current", "ratio_previous", "ratio_change", "log_change", "se", "z", "p_value", "p_adjusted")
    }
    if tested.any():
        g, gn, r, rn = x[tested], n[tested], x_r[tested], n_r[tested]
        pg, pgn, pr, prn = x_p[tested], n_p[tested], x_rp[tested], n_rp[tested]
        with np.errstate(divide="ignore", invalid="ignore"):
            columns["ratio_current"][tested] = (g * rn) / (gn * r)
            columns["ratio_previous"][tested] = (pg * prn) / (pgn * pr)
            columns["ratio_change"][tested] = np.where(
                pg > 0, columns["ratio_current"][tested] / columns["ratio_previous"][tested], np.nan
            )
        change, se, z, p_value = log_ratio_change((g, gn, r, rn), (pg, pgn, pr, prn))
        columns["log_change"][tested], columns["se"][tested] = change, se
        columns["z"][tested], columns["p_value"][tested] = z, p_value
        family = impacts[keys].groupby(keys, sort=False).ngroup().to_numpy() if keys else np.zeros(len(out), int)
        fdr = np.broadcast_to(np.asarray(intersectional, dtype=bool), (len(out),))[tested]
        columns["p_adjusted"][tested] = adjusted_p_values(p_value, family[tested], fdr)
    for name, values in columns.items():
        out[name] = values
    significant = np.where(tested, columns["p_adjusted"] < settings.alpha, False)
    out["adjustment_method"] = np.where(
        tested, np.where(np.broadcast_to(intersectional, (len(out),)), "fdr_bh", "holm"), None
    ).astype(object)
    out["significant"] = pd.array(np.where(tested, significant, None).tolist(), dtype="boolean")
    for flag, direction in (("worsening", -1), ("improving", 1)):
        moved = significant & (np.sign(columns["log_change"]) == direction)
        out[flag] = pd.array(np.where(tested, moved, None).tolist(), dtype="boolean")
    out["low_sample"] = np.minimum(n, n_p) < settings.min_sample
    out["wow_undefined_reason"] = reasons
    for col in ("n_current", "x_current", "n_previous", "x_previous"):
        out[col] = out[col].astype("int64")
    for col in ("group", "reference_group", "adjustment_method", "wow_undefined_reason"):
        out[col] = out[col].astype(object)
    return out[[*keys, *WOW_COLUMNS]].reset_index(drop=True)


def _counts_of(
    counts: pd.DataFrame, rows: pd.DataFrame, keys: list[str], group_column: str
) -> tuple[np.ndarray, np.ndarray]:
    """(x, n) in ``counts`` of the group named in ``rows[group_column]`` of the same table; (0, 0) when absent."""
    lookup = counts.set_index([*keys, "group"])[["x", "n"]] if len(counts) else None
    if lookup is None or not len(rows):
        return np.zeros(len(rows), dtype=np.int64), np.zeros(len(rows), dtype=np.int64)
    wanted = pd.MultiIndex.from_arrays([*(rows[k] for k in keys), rows[group_column]])
    found = lookup.reindex(wanted)
    return (
        found["x"].fillna(0).to_numpy(dtype=np.int64),
        found["n"].fillna(0).to_numpy(dtype=np.int64),
    )


def log_ratio_change(current: tuple, previous: tuple) -> tuple:
    """(d, se, z, p) for two weeks' (x_g, n_g, x_r, n_r), scalars or arrays; requires n_g, n_r > 0 and x_r > 0 in
    both weeks."""
    (log_now, var_now), (log_before, var_before) = katz_log_ratio(*current), katz_log_ratio(*previous)
    change = log_now - log_before
    se = np.sqrt(var_now + var_before)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, change / np.where(se > 0, se, 1), np.where(change == 0, 0.0, np.copysign(np.inf, change)))
    return change, se, z, 2 * norm.sf(np.abs(z))


def ratio_slopes(
    series: pd.DataFrame,
    *,
    as_of: dt.date | None = None,
    keys: Sequence[str] = TABLE_KEYS,
    windows: int = DEFAULT_SLOPE_WINDOWS,
    horizon_days: float = DEFAULT_HORIZON_DAYS,
    min_points: int = DEFAULT_MIN_POINTS,
    threshold: float = DEFAULT_ANALYSIS.threshold,
) -> pd.DataFrame:
    """Slope of each group's impact-ratio series and the "approaching threshold" flag (see the module doc).

    ``series``: ``keys`` + group + window_end (date) + impact_ratio (NaN when undefined), one row per daily window, as
    stored in the impact-ratio table. ``as_of`` defaults to the latest window_end. Returns ``keys`` +
    :data:`SLOPE_COLUMNS`, one row per (keys, group) with any row in the last ``windows`` days, sorted by them. One
    grouping for all series, then numpy per series (about 1,600 series per window take milliseconds).
    """
    keys = list(keys)
    missing = [c for c in (*keys, "group", "window_end", "impact_ratio") if c not in series.columns]
    if missing:
        raise ValueError(f"impact-ratio series lacks columns {missing}")
    if windows < 2 or min_points < 2:
        raise ValueError("windows and min_points must be at least 2")
    frame = series[[*keys, "group", "window_end", "impact_ratio"]].copy()
    frame["window_end"] = pd.to_datetime(frame["window_end"]).dt.date
    if as_of is None and len(frame):
        as_of = max(frame["window_end"])
    if as_of is not None:
        first = as_of - dt.timedelta(days=windows - 1)
        frame = frame[(frame["window_end"] >= first) & (frame["window_end"] <= as_of)].reset_index(drop=True)
    if frame.duplicated([*keys, "group", "window_end"]).any():
        raise ValueError("impact-ratio series has more than one row per group and window_end")
    rows = []
    if len(frame):
        codes = frame.groupby([*keys, "group"], sort=True, dropna=False).ngroup().to_numpy()
        order = np.argsort(codes, kind="stable")  # series by series, rows in their given order
        bounds = np.flatnonzero(np.diff(codes[order])) + 1
        days = np.array([(d - as_of).days for d in frame["window_end"]], dtype=float)
        ratios = pd.to_numeric(frame["impact_ratio"], errors="coerce").to_numpy(dtype=float)
        labels = {c: frame[c].tolist() for c in (*keys, "group")}
        for rows_of_series in np.split(order, bounds):
            row: dict[str, Any] = {c: values[rows_of_series[0]] for c, values in labels.items()}
            series_days, series_ratios = days[rows_of_series], ratios[rows_of_series]
            row.update(_slope_row(series_days, series_ratios, as_of, horizon_days, min_points, threshold))
            rows.append(row)
    out = pd.DataFrame(rows, columns=[*keys, *SLOPE_COLUMNS])
    out["windows_used"] = out["windows_used"].astype("int64")
    for col in ("latest_ratio", "slope_per_day", "days_to_threshold"):
        out[col] = out[col].astype(float)
    for col in ("adverse_now", "approaching_threshold"):
        out[col] = pd.array([None if v is None else bool(v) for v in out[col]], dtype="boolean")
    return out


def _slope_row(
    days: np.ndarray, ratios: np.ndarray, as_of: dt.date, horizon: float, min_points: int, threshold: float
) -> dict[str, Any]:
    """The slope columns of one series: ``days`` before ``as_of`` (0 = as_of, negative before), ``ratios`` NaN when
    undefined."""
    defined = np.isfinite(ratios)
    x, y = days[defined], ratios[defined]
    row: dict[str, Any] = dict.fromkeys(("latest_ratio", "slope_per_day", "days_to_threshold"), math.nan)
    row.update(as_of=as_of, windows_used=int(defined.sum()), adverse_now=None, approaching_threshold=None)
    row["trend_undefined_reason"] = None
    latest = y[x == 0]
    if latest.size == 0:
        row["trend_undefined_reason"] = "no impact ratio for the as-of window"
        return row
    row["latest_ratio"] = value = float(latest[0])
    row["adverse_now"] = value < threshold
    if x.size < min_points:
        row["trend_undefined_reason"] = f"fewer than {min_points} windows with an impact ratio"
        return row
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
    slopes = ratio_slopes(
        series,
        as_of=as_of,
        keys=keys,
        windows=windows,
        horizon_days=horizon_days,
        min_points=min_points,
        threshold=settings.threshold,
    )
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
