"""Risk components: each a number in [0, 1] where 0 is no concern and 1 is the worst case, with its formula.

Notation. One *impact table* is one stage pair and one dimension (or intersection) of one tenant and window.

- ``t`` = 0.80, the four-fifths threshold; ``IR_g`` the impact ratio of group g against the reference group r.
- ``gap(IR) = clip((t - IR) / t, 0, 1)``: 0 at or above 0.80, 0.5 at 0.40, 1 at 0.
- ``s = min(n_g * x_r / n_r, x_r)``: the selections behind the comparison of g with r, counted as the smaller of
  the reference's selections and the selections g would have at the reference's rate. Candidates are the wrong unit:
  a shown->hired table of 5,000 candidates per group with 3 hires in the reference says almost nothing about a
  ratio, and the information in a ratio (the inverse of the Katz variance of its log, about ``s / 2`` when both
  groups have ``s`` selections) grows with selections. It does not use g's own selections, so the weight does not
  vanish when g has none (IR = 0 on 100 expected selections is strong evidence).
- ``e(s) = s / (s + h)`` with ``h`` = 20 selections: the weight of the evidence behind a gap; 0.13 at 3 selections,
  0.5 at 20, 0.83 at 100, 0.98 at 1,000.
- ``w_d`` = 1 for a single dimension, 0.5 for an intersection (intersections are many small, overlapping cells
  adjusted with Benjamini-Hochberg, so one of them counts half as much as a single dimension).

Components (``None`` when their input is absent; the composite then shares the weights among the others):

- ``adverse_impact`` = max over compared groups of ``w_d * gap(IR_g) * e(s)``. Compared groups: not the
  reference, not left out under the 2% rule, with a defined ratio. **Resampled** in the bootstrap.
- ``evidence`` = max over adverse groups that are significant after adjustment and practically significant (no
  flip-flop) of ``w_d * min(1, log10(p_adjusted) / log10(0.001))``: 0 with no such finding, 0.43 at p = 0.05,
  0.67 at 0.01, 1 at 0.001 or below. Not resampled: it is already a statement about sampling uncertainty, and
  re-running Fisher/z tests with Holm/BH per resample would be a different, approximate statistic.
- ``scoring_rate`` = the ``adverse_impact`` formula on the scoring-rate audit (x = candidates scoring above the
  window's median, n = all scored). **Resampled**.
- ``exposure`` = max over groups (not left out under the 2% rule) of ``w_d * gap(exposure ratio)``; exposure ratio =
  Exp(g) / max Exp. Not resampled (position weights are not binomial counts).
- ``slate`` = max over dimensions of (concentrated slates / assessed slates), summed over the rows given (e.g. the
  days of the window). Not resampled.
- ``trend`` = max over group series of ``w_d * n_last / (n_last + 20) * clip(-drop / 0.20, 0, 1)``, ``drop`` the fitted
  change of the impact ratio over the last 90 days (least-squares slope times the days spanned, at least 14 points):
  a fitted fall of 0.20 (parity 1.0 down to the 0.80 line) or more counts fully. Not resampled.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from fairness_pipeline.audits import RISK_AUDITS
from fairness_pipeline.metrics.impact import can_be_reference, unknown_mask
from fairness_pipeline.metrics.selection_rates import INTERSECTION_SEPARATOR
from fairness_pipeline.metrics.window import DEFAULT_ANALYSIS

COMPONENTS: tuple[str, ...] = ("adverse_impact", "evidence", "scoring_rate", "exposure", "slate", "trend")
"""Known component names, in the order reports list them."""
RESAMPLED: frozenset[str] = frozenset({"adverse_impact", "scoring_rate"})
"""Components recomputed on every bootstrap resample (those computed from binomial group counts)."""
AUDIT_NAMES: tuple[str, ...] = RISK_AUDITS

FORMULAS: dict[str, str] = {
    "adverse_impact": "max over compared groups of w_d * clip((0.80 - IR) / 0.80, 0, 1) * s / (s + 20), "
    "s = min(n_g * x_r / n_r, x_r) selections",
    "evidence": "max over significant, practically significant adverse groups of "
    "w_d * min(1, log10(p_adjusted) / log10(0.001))",
    "scoring_rate": "adverse_impact formula on scoring rates (share of each group scoring above the median)",
    "exposure": "max over groups of w_d * clip((0.80 - exposure ratio) / 0.80, 0, 1)",
    "slate": "max over dimensions of concentrated slates / slates",
    "trend": "max over group series of w_d * n / (n + 20) * clip(-fitted 90-day change of IR / 0.20, 0, 1)",
}


@dataclass(frozen=True)
class ComponentSettings:
    """Constants of the component formulas (module docstring); each is a documented default."""

    threshold: float = DEFAULT_ANALYSIS.threshold
    evidence_half_n: float = 20.0
    """``h`` of the evidence weight: selections for the count components, candidates for the trend."""
    intersection_weight: float = 0.5
    strong_p: float = 0.001
    trend_full_drop: float = 0.20
    trend_days: int = DEFAULT_ANALYSIS.trend_days
    trend_min_points: int = 14
    min_share: float = DEFAULT_ANALYSIS.min_share
    min_reference_candidates: int = DEFAULT_ANALYSIS.min_reference_candidates
    """A group can be the reference of a count table only with this many candidates (metrics.impact's rule)."""
    min_reference_selections: int = DEFAULT_ANALYSIS.min_reference_selections
    """... and this many selections (observed counts decide, so the pool is the same in every resample)."""


@dataclass(frozen=True)
class ComponentValue:
    """One component: its value (None when its input is absent), what drove it, and whether it is resampled."""

    name: str
    value: float | None
    driver: dict[str, Any] | None = None
    note: str = ""

    @property
    def available(self) -> bool:
        return self.value is not None

    @property
    def resampled(self) -> bool:
        return self.name in RESAMPLED

    @property
    def formula(self) -> str:
        return FORMULAS[self.name]


def is_intersection(dimension: str) -> bool:
    return INTERSECTION_SEPARATOR in str(dimension)


def dimension_weight(dimension: str, settings: ComponentSettings) -> float:
    """``w_d``: 1 for a single dimension, ``settings.intersection_weight`` for an intersection."""
    return settings.intersection_weight if is_intersection(dimension) else 1.0


def gap(ratio: np.ndarray | float, threshold: float) -> np.ndarray:
    """How far ratios fall below the threshold, as a share of it, in [0, 1]; NaN (undefined) gives 0."""
    values = np.clip((threshold - np.asarray(ratio, dtype=float)) / threshold, 0.0, 1.0)
    return np.nan_to_num(values, nan=0.0)


def evidence_weight(n: np.ndarray | float, half_n: float) -> np.ndarray:
    """``n / (n + half_n)``: how much a gap measured on ``n`` (selections, or candidates for trends) counts."""
    n = np.asarray(n, dtype=float)
    return n / (n + half_n)


def comparison_selections(n_g: np.ndarray, x_r: np.ndarray, n_r: np.ndarray) -> np.ndarray:
    """``s = min(n_g * x_r / n_r, x_r)``: the selections behind comparing g with r (module docstring)."""
    n_g, x_r, n_r = (np.asarray(v, dtype=float) for v in (n_g, x_r, n_r))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n_r > 0, np.minimum(n_g * x_r / np.where(n_r > 0, n_r, 1.0), x_r), 0.0)


# --- count tables: the part of the composite that the bootstrap recomputes -------------------------------------------


@dataclass(frozen=True)
class CountTable:
    """One impact table reduced to what the count-based formula needs: its *eligible* groups only.

    Eligible: n > 0 and not left out under the 2% rule (every non-empty group when none reaches 2%). Only they can be
    the reference or be compared, so the others play no part. ``can_reference`` marks the groups that may be the
    reference (as in ``metrics.impact``: not ``unknown``, at least ``min_reference_candidates`` candidates and
    ``min_reference_selections`` selections); ``compared`` the groups compared with it (not ``unknown``). Groups are
    ordered by n descending, then name, so that ``argmax`` over tied rates picks the reference as
    ``metrics.impact.choose_reference`` does.
    """

    stage_pair: str
    dimension: str
    weight: float
    groups: tuple[str, ...]
    n: np.ndarray
    x: np.ndarray
    can_reference: np.ndarray
    compared: np.ndarray


@dataclass(frozen=True)
class CountTables:
    """Count tables laid end to end: ``n`` and ``x`` concatenate every table's groups (``offsets`` slice them)."""

    tables: tuple[CountTable, ...]
    offsets: tuple[int, ...]
    n: np.ndarray = field(repr=False)
    x: np.ndarray = field(repr=False)

    @property
    def empty(self) -> bool:
        return not self.tables


def count_tables(frame: pd.DataFrame | None, settings: ComponentSettings, default_stage_pair: str = "") -> CountTables:
    """Count tables from an impact-like frame (columns dimension, group, n, x; optionally stage_pair and
    excluded_small_share). Without ``excluded_small_share`` the 2% rule is applied here with ``settings.min_share``.
    """
    if frame is None or frame.empty:
        return CountTables((), (0,), np.zeros(0), np.zeros(0))
    if "stage_pair" in frame.columns:
        pairs = frame["stage_pair"].astype(str)
    else:
        pairs = pd.Series(default_stage_pair, index=frame.index)
    dims = frame["dimension"].astype(str)
    n_all = frame["n"].to_numpy(dtype=float)
    x_all = frame["x"].to_numpy(dtype=float)
    groups_all = frame["group"].astype(str).to_numpy()
    given = frame["excluded_small_share"].to_numpy(dtype=bool) if "excluded_small_share" in frame.columns else None
    tables: list[CountTable] = []
    for (pair, dimension), index in sorted(pd.DataFrame({"p": pairs, "d": dims}).groupby(["p", "d"]).indices.items()):
        n, x, groups = n_all[index], x_all[index], groups_all[index]
        if given is not None:
            excluded = given[index]
        else:
            meets = (n > 0) & (n / max(n.sum(), 1.0) >= settings.min_share)
            excluded = ~meets if meets.any() else np.zeros(len(n), dtype=bool)
        keep = (n > 0) & ~excluded
        if not keep.any():
            continue
        n, x, groups = n[keep], x[keep], groups[keep]
        order = np.lexsort((groups, -n))  # n descending, then name
        n, x, groups = n[order], x[order], groups[order]
        unknown = unknown_mask(groups)
        known = ~unknown
        can_reference = can_be_reference(
            n, x, unknown, settings.min_reference_candidates, settings.min_reference_selections
        )
        if not can_reference.any():
            continue  # no eligible reference: nothing is compared in this table
        tables.append(
            CountTable(
                str(pair),
                str(dimension),
                dimension_weight(str(dimension), settings),
                tuple(groups.tolist()),
                n,
                x,
                can_reference,
                known,
            )
        )
    offsets = tuple(np.cumsum([0, *(len(t.groups) for t in tables)]).tolist())
    n = np.concatenate([t.n for t in tables]) if tables else np.zeros(0)
    x = np.concatenate([t.x for t in tables]) if tables else np.zeros(0)
    return CountTables(tuple(tables), offsets, n, x)


def adverse_impact_from_counts(
    tables: CountTables, x: np.ndarray, settings: ComponentSettings
) -> tuple[np.ndarray, list[dict[str, Any] | None]]:
    """The ``adverse_impact`` formula for each row of ``x`` (shape (B, groups of all tables)).

    Per table and row: the reference is the eligible group with the highest rate; IR_g = x_g n_r / (n_g x_r) (the
    impact module's arithmetic); undefined when x_r = 0. Returns the values (B,) and, for B = 1, the driving group.
    """
    x = np.atleast_2d(np.asarray(x, dtype=float))
    best = np.zeros(x.shape[0])
    drivers: list[dict[str, Any] | None] = [None] * x.shape[0]
    for table, start, stop in zip(tables.tables, tables.offsets[:-1], tables.offsets[1:], strict=True):
        xs, n = x[:, start:stop], table.n
        rates = xs / n
        ref = np.argmax(np.where(table.can_reference, rates, -np.inf), axis=1)
        x_r = np.take_along_axis(xs, ref[:, None], axis=1)
        n_r = n[ref][:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(x_r > 0, (xs * n_r) / (n * x_r), np.nan)
        compared = (np.arange(len(n))[None, :] != ref[:, None]) & table.compared
        selections = comparison_selections(n, x_r, n_r)
        score = np.where(
            compared,
            table.weight * gap(ratio, settings.threshold) * evidence_weight(selections, settings.evidence_half_n),
            0.0,
        )
        table_best = score.max(axis=1)
        if x.shape[0] == 1 and table_best[0] > best[0]:
            g = int(np.argmax(score[0]))
            drivers[0] = {
                "stage_pair": table.stage_pair,
                "dimension": table.dimension,
                "group": table.groups[g],
                "impact_ratio": float(ratio[0, g]),
                "n": int(n[g]),
                "x": int(xs[0, g]),
                "reference_group": table.groups[int(ref[0])],
                "gap": float(gap(ratio[0, g], settings.threshold)),
                "selections": float(selections[0, g]),
                "evidence_weight": float(evidence_weight(selections[0, g], settings.evidence_half_n)),
            }
        best = np.maximum(best, table_best)
    return best, drivers


# --- components read from tables as they are (not resampled) ---------------------------------------------------------


def _compared(impacts: pd.DataFrame) -> pd.DataFrame:
    """Rows of non-reference groups with a defined impact ratio (not excluded, not empty)."""
    if impacts.empty:
        return impacts
    return impacts[impacts["impact_ratio"].notna() & ~impacts["is_reference"].astype(bool)]


def _flag(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame[column].astype("boolean").fillna(False).astype(bool)


def adverse_impact(impacts: pd.DataFrame, settings: ComponentSettings) -> ComponentValue:
    tables = count_tables(impacts, settings)
    if not len(_compared(impacts)):
        return ComponentValue("adverse_impact", None, note="no group could be compared with a reference group")
    values, drivers = adverse_impact_from_counts(tables, tables.x[None, :], settings)
    return ComponentValue("adverse_impact", float(values[0]), drivers[0])


def evidence(impacts: pd.DataFrame, settings: ComponentSettings) -> ComponentValue:
    rows = _compared(impacts)
    if not len(rows):
        return ComponentValue("evidence", None, note="no group could be compared with a reference group")
    found = rows[_flag(rows, "adverse_impact") & _flag(rows, "significant") & ~_flag(rows, "flip_flop")]
    if found.empty:
        return ComponentValue("evidence", 0.0, note="no significant, practically significant adverse impact")
    p = found["p_adjusted"].astype(float).clip(lower=1e-300)
    strength = np.minimum(1.0, np.log10(p) / math.log10(settings.strong_p))
    weights = found["dimension"].map(lambda d: dimension_weight(d, settings)).astype(float)
    scores = (weights * strength).to_numpy()
    row = found.iloc[int(np.argmax(scores))]
    driver = {
        "stage_pair": row["stage_pair"],
        "dimension": row["dimension"],
        "group": row["group"],
        "impact_ratio": float(row["impact_ratio"]),
        "p_adjusted": float(row["p_adjusted"]),
        "adjustment_method": row["adjustment_method"],
        "n": int(row["n"]),
        "x": int(row["x"]),
        "findings": len(found),
    }
    return ComponentValue("evidence", float(scores.max()), driver)


def scoring_rate(audit: pd.DataFrame | None, settings: ComponentSettings) -> ComponentValue:
    if audit is None or audit.empty:
        return ComponentValue("scoring_rate", None, note="no scoring-rate audit")
    tables = count_tables(audit, settings, default_stage_pair="scores")
    values, drivers = adverse_impact_from_counts(tables, tables.x[None, :], settings)
    return ComponentValue("scoring_rate", float(values[0]), drivers[0])


def exposure(audit: pd.DataFrame | None, settings: ComponentSettings) -> ComponentValue:
    if audit is None or audit.empty:
        return ComponentValue("exposure", None, note="no exposure audit")
    rows = audit[audit["exposure_ratio"].notna()]
    if "excluded_small_share" in rows.columns:
        rows = rows[~rows["excluded_small_share"].astype("boolean").fillna(False).astype(bool)]
    if rows.empty:
        return ComponentValue("exposure", None, note="no defined exposure ratio")
    weights = rows["dimension"].map(lambda d: dimension_weight(d, settings)).astype(float).to_numpy()
    scores = weights * gap(rows["exposure_ratio"].to_numpy(dtype=float), settings.threshold)
    row = rows.iloc[int(np.argmax(scores))]
    driver = {"dimension": row["dimension"], "group": row["group"], "exposure_ratio": float(row["exposure_ratio"])}
    return ComponentValue("exposure", float(scores.max()), driver)


def slate(audit: pd.DataFrame | None, settings: ComponentSettings) -> ComponentValue:
    if audit is None or audit.empty:
        return ComponentValue("slate", None, note="no slate audit")
    sums = audit.groupby("dimension", sort=True)[["slates", "concentrated"]].sum()
    sums = sums[sums["slates"] > 0]
    if sums.empty:
        return ComponentValue("slate", None, note="no slates")
    shares = sums["concentrated"] / sums["slates"]
    weights = np.array([dimension_weight(d, settings) for d in shares.index])
    scores = weights * shares.to_numpy(dtype=float)
    dim = shares.index[int(np.argmax(scores))]
    driver = {
        "dimension": dim,
        "concentrated": int(sums.loc[dim, "concentrated"]),
        "slates": int(sums.loc[dim, "slates"]),
        "share": float(shares[dim]),
    }
    return ComponentValue("slate", float(scores.max()), driver)


def trend(trends: pd.DataFrame | None, settings: ComponentSettings, window_end: date | None = None) -> ComponentValue:
    """Worsening impact-ratio series over the last ``trend_days`` days (see the module docstring)."""
    if trends is None or trends.empty:
        return ComponentValue("trend", None, note="no trend series")
    work = trends[trends["impact_ratio"].notna()].copy()
    work["day"] = pd.to_datetime(work["window_end"]).dt.date
    last = window_end or max(work["day"], default=None)
    if last is None:
        return ComponentValue("trend", None, note="no trend series")
    work = work[(work["day"] > last - timedelta(days=settings.trend_days)) & (work["day"] <= last)]
    best, driver = None, None
    for (pair, dimension, group), series in work.groupby(["stage_pair", "dimension", "group"], sort=True):
        if len(series) < settings.trend_min_points:
            continue
        series = series.sort_values("day")
        days = np.array([(d - series["day"].iloc[0]).days for d in series["day"]], dtype=float)
        if days[-1] <= 0:
            continue
        ratios = series["impact_ratio"].to_numpy(dtype=float)
        slope = float(np.sum((days - days.mean()) * (ratios - ratios.mean())) / np.sum((days - days.mean()) ** 2))
        change = slope * days[-1]
        n_last = float(series["n"].iloc[-1])
        score = (
            dimension_weight(str(dimension), settings)
            * float(evidence_weight(n_last, settings.evidence_half_n))
            * min(1.0, max(0.0, -change / settings.trend_full_drop))
        )
        if best is None or score > best:
            best = score
            driver = {
                "stage_pair": pair,
                "dimension": dimension,
                "group": group,
                "fitted_change": change,
                "days": int(days[-1]),
                "points": len(series),
                "last_impact_ratio": float(ratios[-1]),
                "n": int(n_last),
            }
    if best is None:
        return ComponentValue("trend", None, note=f"no series with {settings.trend_min_points} or more points")
    return ComponentValue("trend", best, driver if best > 0 else None)


def all_components(
    impacts: pd.DataFrame,
    audits: Mapping[str, pd.DataFrame] | None,
    trends: pd.DataFrame | None,
    settings: ComponentSettings,
    window_end: date | None = None,
) -> dict[str, ComponentValue]:
    """Every component, in ``COMPONENTS`` order."""
    audits = audits or {}
    unknown = sorted(set(audits) - set(AUDIT_NAMES))
    if unknown:
        raise ValueError(f"unknown audit tables {unknown}; expected some of {list(AUDIT_NAMES)}")
    return {
        "adverse_impact": adverse_impact(impacts, settings),
        "evidence": evidence(impacts, settings),
        "scoring_rate": scoring_rate(normalise(audits.get("scoring_rate"), "scoring_rate"), settings),
        "exposure": exposure(normalise(audits.get("exposure"), "exposure"), settings),
        "slate": slate(normalise(audits.get("slate"), "slate"), settings),
        "trend": trend(normalise(trends, "trend"), settings, window_end),
    }


AUDIT_COLUMNS: dict[str, tuple[str, ...]] = {
    "scoring_rate": ("dimension", "group", "n", "x"),
    "exposure": ("dimension", "group", "exposure_ratio"),
    "slate": ("dimension", "slates", "concentrated"),
    "trend": ("window_end", "stage_pair", "dimension", "group", "n", "impact_ratio"),
}
"""Required columns of each optional input (``stage_pair`` is optional in the scoring-rate audit)."""
COLUMN_ALIASES: dict[str, dict[str, str]] = {
    "scoring_rate": {"group_value": "group", "above_median": "x"},
    "exposure": {"group_value": "group"},
    "slate": {"assessed": "slates"},
    "trend": {"group_value": "group"},
}
"""Column names of the database tables (scoring_rate_ratios, rank_exposure, slate_concentration, impact_ratios)
accepted for the names above."""


def normalise(frame: pd.DataFrame | None, name: str) -> pd.DataFrame | None:
    """An optional input with database column names renamed (``COLUMN_ALIASES``) and its required columns checked."""
    if frame is None:
        return None
    renames = {a: c for a, c in COLUMN_ALIASES[name].items() if a in frame.columns and c not in frame.columns}
    frame = frame.rename(columns=renames) if renames else frame
    missing = [c for c in AUDIT_COLUMNS[name] if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} table lacks columns {missing}")
    return frame
