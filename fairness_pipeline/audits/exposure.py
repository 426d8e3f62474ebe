"""Position-discounted exposure per group, with a seeded, vectorised bootstrap over searches.

Definitions (Singh and Joachims 2018; ``docs/fairness-methods.md``):

- Position weight v(j) = 1 / log2(1 + j) for rank j >= 1 (v(1) = 1, v(3) = 0.5, v(7) = 1/3).
- Exposure of group g = mean v over g's shown impressions with a rank. Exposure ratio = Exp(g) / Exp(r), r being the
  *best-exposed* known group among groups holding at least ``min_share`` of the ranked impressions (the highest
  exposure among known groups when none does; ties: more impressions, then the group name). As in the impact-ratio
  tables, ``unknown`` (and an intersection cell with an unknown part) is reported with its exposure and skew but never
  the reference and never compared, and groups under ``min_share`` are reported but not compared.
- Dimensions: the event dimensions of ``settings`` and their pairs, and the catalogue's attribute dimensions
  (self-identified ``sex``, ``race_ethnicity``, joined per impression in SQL: the value in force at the impression)
  with the catalogue intersections holding one (``sex+race_ethnicity``), as the impact tables
  (``metrics.window.window_dimension_sets``). A tenant without self-identification has all-unknown attribute tables:
  no reference, nothing compared, nothing raised.
- Skew@k of g = (g's share of the impressions at rank <= k) / (g's share of all ranked impressions); k (10 by default)
  is the one SQL used for ``top_k``.
- Exposure relative to score, two ways:
  ``treatment_ratio`` = (Exp(g) / mean score of g) / (Exp(r) / mean score of r), Singh and Joachims' disparate
  treatment ratio, over the impressions with both a rank and a score. Because position weights fall faster than
  scores, a group ranked low *because* it scores low also gets a ratio below 1.
  ``merit_ratio`` = g's exposure / the exposure g would get if every slate were ordered by score (ties in score keep
  the shown order), over the same impressions. A group that scores the same but is ranked lower has a merit ratio
  below 1; a group ranked exactly by its scores has 1, whatever its scores. The slate's positions are reassigned among
  its scored impressions (sorted ranks to scores in descending order), so the total exposure of a slate is unchanged.

Rules: an impression without a rank (or with a rank below 1) is excluded from exposure and counted in
``missing_rank``; an impression without a score is excluded from the score-based measures only. Unknown dimension
values are the ``unknown`` group. A group with no ranked impression has no exposure (reason given), never 0.

Uncertainty: the searches of one key (tenant) are resampled with replacement ``n_boot`` times (multinomial counts,
searches in ``search_id`` order); with a ``day`` column each day's searches are resampled on their own, from the
stream ``np.random.default_rng([seed, crc32(key, day)])`` (a bootstrap stratified by day: a window's resample is
the union of one resample per day, so its sums are the days' sums added up, see :class:`ExposureSums`). Every
statistic is recomputed from the resampled sums (float32, see ``_bootstrap``); percentile intervals hold the
reference group fixed. p-values: the exposure ratio (one-sided, below the best) and the treatment ratio (two-sided)
repeat the choice of the best-exposed reference in every resample (``_max_reference_p_values``), since the reference
is chosen by the data; the merit ratio, tested against 1, has the two-sided bootstrap p-value of log(merit) = 0.
Adjusted with Holm (single dimensions) or Benjamini-Hochberg (intersections) per (key, dimension) and statistic.

Practical significance: a ratio is a *finding* only when it is significant and below ``settings.threshold`` (0.80 by
default, the one practical threshold of the project, declared in ``metrics.window.AnalysisSettings``):
``low_exposure`` marks exposure ratios below it, and :func:`rank_findings` reads the treatment ratio against the
same line, so a significant 0.99 is never a finding.

Input: one row per (key, search, combination of dimension values) with the sums of :data:`AGGREGATE_COLUMNS` -- never
one row per event -- and optionally the search's ``day``. ``audits.from_events.search_aggregates`` builds them from
one row per impression (tests, oracles, and the reference for the SQL).

Layout: this module is the public face (fairlearn's ``_metric_frame.py`` pattern); the work is in private siblings:
``_exposure_layout`` (the sums read and the group axis), ``_exposure_sums`` (sums of a set of searches, added up and
stored per day), ``_exposure_bootstrap`` (resampling and the reference-choosing p-values) and ``_exposure_table``
(the statistics and output rows).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from fairness_pipeline.audits._common import is_finding
from fairness_pipeline.audits._exposure_bootstrap import DEFAULT_N_BOOT, stratum_rng
from fairness_pipeline.audits._exposure_layout import AGGREGATE_COLUMNS, DEFAULT_TOP_K, ExposureLayout, position_weight
from fairness_pipeline.audits._exposure_sums import ExposureSums, exposure_sums
from fairness_pipeline.audits._exposure_table import (
    EXPOSURE_COLUMNS,
    NO_MERIT_REASON,
    NO_RANKED_REASON,
    NO_SCORED_REASON,
    NO_SHOWN_REASON,
    ZERO_SCORE_REASON,
    exposure_table,
)
from fairness_pipeline.catalogue import load_catalogue
from fairness_pipeline.metrics.window import AnalysisSettings


def rank_exposure(
    aggregates: pd.DataFrame,
    settings: AnalysisSettings | None = None,
    *,
    keys: Sequence[str] = ("tenant_id",),
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Exposure, exposure ratio, skew@k and exposure relative to score per key, dimension and group, with bootstrap.

    ``aggregates``: ``keys`` + ``search_id`` + the dimension columns of ``settings.dimensions`` +
    :data:`AGGREGATE_COLUMNS` (``merit_weight_sum`` optional), any catalogue attribute dimension as a column (its
    tables are analysed), and optionally ``day``: with it, each day's searches are resampled on their own
    (stratified by day, :func:`stratum_rng` per key and day), as stored windows are.
    Returns ``keys`` + :data:`EXPOSURE_COLUMNS`. Uses ``settings`` alpha, threshold (for ``low_exposure``),
    min_share, min_sample (searches), dimensions and intersections. ``n_boot = 0`` skips the bootstrap (intervals and
    p-values NaN).
    """
    settings = settings or AnalysisSettings()
    keys = list(keys)
    needed = [*keys, "search_id", *settings.dimensions, *AGGREGATE_COLUMNS[:-1]]
    missing = [c for c in needed if c not in aggregates.columns]
    if missing:
        raise ValueError(f"exposure aggregates lack columns {missing}")
    if n_boot < 0 or not 0 < confidence < 1:
        raise ValueError("n_boot must be >= 0 and confidence in (0, 1)")
    has_merit = "merit_weight_sum" in aggregates.columns
    if has_merit and aggregates["merit_weight_sum"].isna().any():
        raise ValueError("merit_weight_sum holds nulls: give 0 for cells without scored impressions")
    attributes = [name for name in load_catalogue().attribute_dimensions if name in aggregates.columns]
    present = {d: pd.unique(aggregates[d]) for d in (*settings.dimensions, *attributes)}
    layout = ExposureLayout.build(settings, present, attributes=attributes)
    by_day = "day" in aggregates.columns
    sums_by_key: dict[tuple, ExposureSums] = {}
    grouped = aggregates.groupby(keys, sort=True, dropna=False, observed=True) if keys else [((), aggregates)]
    for key_values, table in grouped:
        key_values = key_values if isinstance(key_values, tuple) else (key_values,)
        strata = table.groupby("day", sort=True) if by_day else [(None, table)]
        for day, part in strata:
            sums = exposure_sums(part, layout, stratum_rng(seed, key_values, day), n_boot)
            sums_by_key[key_values] = sums_by_key[key_values] + sums if key_values in sums_by_key else sums
    return exposure_table(
        sums_by_key, layout, settings, keys=keys, n_boot=n_boot, has_merit=has_merit, confidence=confidence
    )


def rank_findings(table: pd.DataFrame, threshold: float) -> pd.Series:
    """Rows that are findings: a significant exposure ratio, or a significant treatment ratio, below ``threshold``
    (statistically and practically significant; a significant 0.99 is not a finding)."""
    return is_finding(table, "significant", "exposure_ratio", threshold) | is_finding(
        table, "treatment_significant", "treatment_ratio", threshold
    )


__all__ = [
    "AGGREGATE_COLUMNS",
    "DEFAULT_N_BOOT",
    "DEFAULT_TOP_K",
    "EXPOSURE_COLUMNS",
    "NO_MERIT_REASON",
    "NO_RANKED_REASON",
    "NO_SCORED_REASON",
    "NO_SHOWN_REASON",
    "ZERO_SCORE_REASON",
    "ExposureLayout",
    "ExposureSums",
    "exposure_sums",
    "exposure_table",
    "position_weight",
    "rank_exposure",
    "rank_findings",
    "stratum_rng",
]
