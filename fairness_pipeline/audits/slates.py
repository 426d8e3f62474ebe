"""Concentrated slates (seed 001, BIAS-05): searches whose shown slate has more than 70% of its candidates in one group.

Rules:

- A search's slate is its shown impressions (with or without rank or score); its size is their number.
- The slate is *concentrated* on a dimension when its largest group holds strictly more than ``concentration`` (0.70)
  of the slate: 14 of 20 (70%) is not concentrated, 15 of 20 is. Compared exactly (fractions, no float tolerance).
- On an event dimension (the inferred proxies) ``unknown`` (missing value) is a group like any other, so a slate of
  mostly unknown candidates is concentrated on ``unknown`` and reported as such (a data-quality signal rather than a
  ranking one).
- On a candidate-attribute dimension of the catalogue (self-identified ``sex``, ``race_ethnicity``, and the catalogue
  intersections holding one), ``unknown`` means the candidate did not answer, which says nothing about the slate: as
  in the impact tables it is never evidence. A slate is judged on its self-identified candidates only (their number
  is its size for ``min_slate``; the chance model uses the known groups' shares), so a tenant without
  self-identification has no assessed slate on these dimensions (``NO_SELF_IDENTIFIED_REASON``) and nothing raised.
- Slates with fewer than ``min_slate`` (5) shown candidates are not assessed: a slate of one is trivially 100% one
  group. They are counted in ``too_small`` and left out of the share and the test.
- ``expected_share``: the probability that a slate of the same size is concentrated when its candidates are drawn
  independently with the (key, dimension)'s group shares of shown impressions, averaged over the assessed slates.
  For ``concentration >= 0.5`` at most one group can exceed it, so the probability is exactly
  sum_g P(Binomial(size, p_g) > concentration * size). ``excess_p_value`` is the one-sided binomial test of the
  concentrated count against that mean probability (conservative: the exact null is Poisson-binomial, whose variance
  is at most the binomial's). Adjustment: Holm across the dimensions of one key (tenant and day), then Bonferroni
  across the ``window_days`` days of a metric window (``excess_p_adjusted = min(1, window_days * holm_p)``). A day
  is stored once and read by every window that contains it, and a window reads its days' flags together (the
  "significant days" of a report): Bonferroni across its days keeps the chance of any significant day in a window of
  fair data within alpha, with no day needing the others. ``window_days=1`` gives the per-day Holm alone. Real
  searches target a specialty or level, so chance is a low bar: the share is the headline, the test says whether it
  exceeds chance.

Input: the per-search aggregates of :mod:`fairness_pipeline.audits.exposure` (one row per key, search_id and
dimension values, with ``shown``; ``store.audits.exposure_window`` adds the catalogue's attribute dimensions as
columns), with the day among the keys: ``keys=("tenant_id", "day")``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd
from scipy.stats import binom, binomtest

from fairness_pipeline.audits._common import adjust_p_values, dimension_name, group_codes
from fairness_pipeline.catalogue import load_catalogue
from fairness_pipeline.events.vocabulary import DIMENSIONS
from fairness_pipeline.metrics.impact import unknown_mask
from fairness_pipeline.metrics.window import DEFAULT_ANALYSIS, AnalysisSettings, window_dimension_sets

DEFAULT_CONCENTRATION = 0.70
DEFAULT_MIN_SLATE = 5
DEFAULT_WINDOW_DAYS = DEFAULT_ANALYSIS.window_days
"""Days of the metric window whose days are adjusted together (Bonferroni across days)."""
ADJUSTMENT_METHOD = "holm across dimensions, bonferroni across the window's days"
NO_ASSESSED_REASON = "no slate of at least the minimum size"
NO_SELF_IDENTIFIED_REASON = "no self-identified candidate shown"

SUMMARY_COLUMNS: tuple[str, ...] = (
    "dimension",
    "searches",
    "assessed",
    "too_small",
    "concentrated",
    "concentrated_share",
    "expected_share",
    "excess_p_value",
    "excess_p_adjusted",
    "excess_significant",
    "top_group",
    "undefined_reason",
)
"""After the key columns: ``searches`` = assessed + too_small; ``concentrated_share`` = concentrated / assessed;
``top_group`` = the group dominating most concentrated slates (ties: name), None when none is concentrated."""

DOMINANT_COLUMNS: tuple[str, ...] = ("dimension", "group", "concentrated", "share_of_concentrated", "share_of_assessed")
"""After the key columns, one row per group dominating at least one concentrated slate."""


@dataclass(frozen=True)
class SlateConcentration:
    summary: pd.DataFrame
    """``keys`` + :data:`SUMMARY_COLUMNS`, one row per key and dimension."""
    dominant: pd.DataFrame
    """``keys`` + :data:`DOMINANT_COLUMNS`: which groups dominate the concentrated slates."""


def slate_concentration(
    aggregates: pd.DataFrame,
    *,
    keys: Sequence[str] = ("tenant_id", "day"),
    dimensions: Sequence[str] = DIMENSIONS,
    pairs: bool = False,
    concentration: float = DEFAULT_CONCENTRATION,
    min_slate: int = DEFAULT_MIN_SLATE,
    alpha: float = DEFAULT_ANALYSIS.alpha,
    window_days: int = DEFAULT_WINDOW_DAYS,
    attributes: Sequence[str] | None = None,
) -> SlateConcentration:
    """Count and share of concentrated slates per key (tenant, day) and dimension, and the groups that dominate.

    ``aggregates``: ``keys`` + ``search_id`` + ``dimensions`` + ``shown`` (more columns are ignored). ``pairs`` adds
    the pairwise intersections (off by default: the seed asks per dimension) and the catalogue intersections of the
    attributes. ``window_days``: the days of a window the adjustment covers (module docstring). ``attributes``: the
    catalogue attribute dimensions analysed (default: those ``aggregates`` has as columns), after ``dimensions``.
    """
    keys = list(keys)
    if attributes is None:
        attributes = [name for name in load_catalogue().attribute_dimensions if name in aggregates.columns]
    attributes = list(attributes)
    needed = [*keys, "search_id", *dimensions, *attributes, "shown"]
    missing = [c for c in needed if c not in aggregates.columns]
    if missing:
        raise ValueError(f"slate aggregates lack columns {missing}")
    if not 0 < concentration < 1 or min_slate < 1 or window_days < 1:
        raise ValueError("concentration must be in (0, 1), min_slate and window_days at least 1")
    limit = Fraction(concentration).limit_denominator(10**6)
    frame = aggregates.reset_index(drop=True)
    if frame.empty:
        empty_summary = _adjust(pd.DataFrame(columns=[*keys, *SUMMARY_COLUMNS]), keys, alpha, window_days)
        return SlateConcentration(empty_summary, pd.DataFrame(columns=[*keys, *DOMINANT_COLUMNS]))
    shown = pd.to_numeric(frame["shown"]).to_numpy(dtype=np.int64)
    search_of_row = frame.groupby([*keys, "search_id"], sort=True, dropna=False).ngroup().to_numpy()
    n_searches = int(search_of_row.max()) + 1 if len(frame) else 0
    size = np.bincount(search_of_row, weights=shown, minlength=n_searches).astype(np.int64)
    first_rows = pd.Series(np.arange(len(frame))).groupby(search_of_row).first().to_numpy()
    search_keys = frame.loc[first_rows, keys].reset_index(drop=True)
    key_of_search = search_keys.groupby(keys, sort=True, dropna=False).ngroup().to_numpy() if keys else 0 * size
    key_values = search_keys.drop_duplicates().reset_index(drop=True) if keys else pd.DataFrame(index=[0])
    has_slate = size > 0
    n_keys = len(key_values) if len(frame) else 0
    settings = AnalysisSettings(dimensions=tuple(dimensions), intersections=pairs)
    summaries, dominants = [], []
    for dims in window_dimension_sets(settings, (*dimensions, *attributes)):
        name = dimension_name(dims)
        codes, groups = group_codes(frame, dims)
        n_groups = len(groups)
        weights, table_size = shown, size
        self_identified = bool(set(dims) & set(attributes))
        if self_identified:  # only the self-identified members of a slate count (module docstring)
            weights = np.where(unknown_mask(np.asarray(groups, dtype=object))[codes], 0, shown)
            table_size = np.bincount(search_of_row, weights=weights, minlength=n_searches).astype(np.int64)
        assessed = has_slate & (table_size >= min_slate)
        per_search = np.bincount(search_of_row * n_groups + codes, weights=weights, minlength=n_searches * n_groups)
        per_search = per_search.reshape(n_searches, n_groups).astype(np.int64)
        top = per_search.argmax(axis=1)  # ties: the first group by name (irrelevant when concentrated)
        top_count = per_search.max(axis=1)
        concentrated = assessed & (top_count * limit.denominator > limit.numerator * table_size)
        shares = np.bincount(
            key_of_search[search_of_row] * n_groups + codes, weights=weights, minlength=n_keys * n_groups
        ).reshape(n_keys, n_groups)
        for k in range(n_keys):
            mine = key_of_search == k
            prefix = key_values.iloc[k].to_dict() if keys else {}
            probs = shares[k] / shares[k].sum() if shares[k].sum() else shares[k]
            summary, dominant = _key_rows(
                name,
                table_size[mine & assessed],
                int((mine & has_slate & ~assessed).sum()),
                top[mine & concentrated],
                [str(g) for g in groups],
                probs,
                limit,
            )
            if self_identified and not shares[k].sum():
                summary["undefined_reason"] = NO_SELF_IDENTIFIED_REASON
            summaries.append({**prefix, **summary})
            dominants.extend({**prefix, **row} for row in dominant)
    summary = pd.DataFrame(summaries, columns=[*keys, *SUMMARY_COLUMNS])
    summary = _adjust(summary, keys, alpha, window_days)
    dominant = pd.DataFrame(dominants, columns=[*keys, *DOMINANT_COLUMNS])
    return SlateConcentration(summary=summary.reset_index(drop=True), dominant=dominant.reset_index(drop=True))


def concentration_probability(size: int, group_shares: Sequence[float], concentration: float) -> float:
    """P(a slate of ``size`` independent draws with these group shares has one group above ``concentration``).

    Exact for ``concentration >= 0.5`` (the events are disjoint); an upper bound (union bound) below.
    """
    limit = Fraction(concentration).limit_denominator(10**6)
    return float(_chance(np.array([size]), np.asarray(group_shares, dtype=float), limit)[0])


def _chance(sizes: np.ndarray, probs: np.ndarray, limit: Fraction) -> np.ndarray:
    """Chance probability of a concentrated slate for each size (see :func:`concentration_probability`)."""
    at_most = (limit.numerator * sizes) // limit.denominator  # largest count that is not above the limit
    return np.minimum(1.0, binom.sf(at_most[:, None], sizes[:, None], probs[None, :]).sum(axis=1))


def _key_rows(
    dimension: str,
    sizes: np.ndarray,
    too_small: int,
    dominant_codes: np.ndarray,
    groups: list[str],
    probs: np.ndarray,
    limit: Fraction,
) -> tuple[dict[str, object], list[dict[str, object]]]:
    """Summary row and dominant-group rows of one key and dimension, from its assessed slates' sizes."""
    assessed = int(sizes.size)
    concentrated = int(dominant_codes.size)
    row: dict[str, object] = dict.fromkeys(SUMMARY_COLUMNS)
    row.update(
        dimension=dimension,
        searches=assessed + too_small,
        assessed=assessed,
        too_small=too_small,
        concentrated=concentrated,
    )
    dominant: list[dict[str, object]] = []
    if not assessed:
        row.update(concentrated_share=math.nan, expected_share=math.nan, undefined_reason=NO_ASSESSED_REASON)
        return row, dominant
    distinct, counts = np.unique(sizes, return_counts=True)
    expected_share = min(1.0, float((_chance(distinct, probs, limit) * counts).sum()) / assessed)
    row.update(
        concentrated_share=concentrated / assessed,
        expected_share=expected_share,
        excess_p_value=float(binomtest(concentrated, assessed, expected_share, alternative="greater").pvalue),
    )
    if concentrated:
        by_group = np.bincount(dominant_codes, minlength=len(groups))
        order = sorted(np.flatnonzero(by_group), key=lambda g: (-by_group[g], groups[g]))
        row["top_group"] = groups[order[0]]
        for g in order:
            dominant.append(
                {
                    "dimension": dimension,
                    "group": groups[g],
                    "concentrated": int(by_group[g]),
                    "share_of_concentrated": by_group[g] / concentrated,
                    "share_of_assessed": by_group[g] / assessed,
                }
            )
    return row, dominant


def _adjust(summary: pd.DataFrame, keys: list[str], alpha: float, window_days: int) -> pd.DataFrame:
    """Holm across the dimensions of each key (Benjamini-Hochberg when intersections are among them), times
    ``window_days`` (Bonferroni across the days of a window), capped at 1."""
    summary = summary.astype({"excess_p_value": float, "excess_p_adjusted": float})
    summary["excess_significant"] = pd.array([pd.NA] * len(summary), dtype="boolean")
    groups = summary.groupby(keys, sort=False, dropna=False).groups.values() if keys else [summary.index]
    for index in groups:
        part = summary.loc[index]
        tested = part.index[part["excess_p_value"].notna()]
        if len(tested):
            intersectional = part["dimension"].str.contains("+", regex=False).any()
            adjusted, _ = adjust_p_values(summary.loc[tested, "excess_p_value"].tolist(), intersectional)
            adjusted = [min(1.0, p * window_days) for p in adjusted]
            summary.loc[tested, "excess_p_adjusted"] = adjusted
            summary.loc[tested, "excess_significant"] = [p < alpha for p in adjusted]
    for col in ("searches", "assessed", "too_small", "concentrated"):
        summary[col] = summary[col].astype("int64")
    for col in ("concentrated_share", "expected_share"):
        summary[col] = summary[col].astype(float)
    for col in ("dimension", "top_group", "undefined_reason"):
        summary[col] = pd.Series(
            [None if v is None or v != v else v for v in summary[col]], index=summary.index, dtype=object
        )
    return summary


__all__ = [
    "ADJUSTMENT_METHOD",
    "DEFAULT_CONCENTRATION",
    "DEFAULT_MIN_SLATE",
    "DEFAULT_WINDOW_DAYS",
    "DOMINANT_COLUMNS",
    "SUMMARY_COLUMNS",
    "SlateConcentration",
    "concentration_probability",
    "slate_concentration",
]
