"""The exposure audit's bootstrap over searches: the random streams, the resampled sums, and the p-values that choose
the best-exposed reference again in every resample.

Private to ``audits.exposure`` (its public names are re-exported there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fairness_pipeline.audits._common import stable_seed
from fairness_pipeline.audits._exposure_layout import _N, _RESAMPLED, _SW, _U, _W, ExposureLayout

DEFAULT_N_BOOT = 1000
_MAX_CELLS = 4_000_000
"""Upper bound on resamples x searches held in memory at once (the bootstrap runs in chunks)."""


def stratum_rng(seed: int, key_values: Sequence[Any], day: Any = None) -> np.random.Generator:
    """The random stream of one key's searches (of one day, when the bootstrap is stratified by day)."""
    parts = [*key_values] if day is None else [*key_values, str(day)]
    return np.random.default_rng([seed, stable_seed(*parts)])


def _bootstrap(
    layout: ExposureLayout,
    codes: list[np.ndarray],
    search_codes: np.ndarray,
    n_searches: int,
    values: np.ndarray,
    rng: np.random.Generator,
    n_boot: int,
) -> np.ndarray:
    """Resampled sums of the resampled tables, shape (n_boot, layout.replicate_width): searches drawn with replacement.

    Each resample is a row of multinomial counts (how often each search is drawn), built from ``rng.integers``; the
    sums of all tables come from one float32 matrix product per chunk of resamples (counts are exact in float32; the
    sums carry about 7 significant digits, far below the resampling noise). A table whose rows all fall in one group
    (an attribute table of a tenant without self-identification: all ``unknown``) is not multiplied: that group's
    resampled sums are the resampled totals, read off the first table multiplied.
    """
    starts = dict(zip(layout.resampled, np.cumsum([0, *(_width(layout, i) for i in layout.resampled)]), strict=False))
    constant = {i: int(codes[i][0]) for i in layout.resampled if codes[i].size and (codes[i] == codes[i][0]).all()}
    multiplied = [i for i in layout.resampled if i not in constant] or layout.resampled[:1]
    for i in multiplied:
        constant.pop(i, None)
    matrix = np.zeros((n_searches, sum(_width(layout, i) for i in multiplied)), np.float32)
    at = 0
    for i in multiplied:  # per search: the table's sums of each resampled column, group by group
        size = layout.size(i)
        flat = search_codes * size + codes[i]
        for j in _RESAMPLED:
            sums = np.bincount(flat, weights=values[:, j], minlength=n_searches * size)
            matrix[:, at : at + size] = sums.reshape(n_searches, size)
            at += size
    results = np.zeros((n_boot, layout.replicate_width), dtype=np.float32)
    if n_searches == 0:
        return results
    product = np.zeros((n_boot, matrix.shape[1]), dtype=np.float32)
    chunk = max(1, min(n_boot, _MAX_CELLS // n_searches))
    for start in range(0, n_boot, chunk):
        rows = min(chunk, n_boot - start)
        draws = rng.integers(0, n_searches, size=(rows, n_searches))
        draws += (np.arange(rows) * n_searches)[:, None]
        counts = np.bincount(draws.ravel(), minlength=rows * n_searches).reshape(rows, n_searches)
        np.matmul(counts.astype(np.float32), matrix, out=product[start : start + rows])
    at = 0
    for i in multiplied:
        results[:, starts[i] : starts[i] + _width(layout, i)] = product[:, at : at + _width(layout, i)]
        at += _width(layout, i)
    source_size = layout.size(multiplied[0])
    for i, group in constant.items():
        size = layout.size(i)
        for k in range(len(_RESAMPLED)):  # the group's column of each resampled sum: the source table's total
            block = product[:, k * source_size : (k + 1) * source_size]
            results[:, starts[i] + k * size + group] = block.sum(axis=1, dtype=np.float32)
    return results


def _width(layout: ExposureLayout, table: int) -> int:
    """Columns of one resampled table in the replicates: each resampled sum of each of its groups."""
    return len(_RESAMPLED) * layout.size(table)


def _max_reference_p_values(
    totals: np.ndarray, boot: np.ndarray, reference: int, pool: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap p-values of the exposure ratio (one-sided, below the best) and of the treatment ratio (two-sided) that
    repeat the choice of the reference in every resample.

    The reference is the best-exposed group of the data, so testing against it as if it had been named in advance
    overstates every gap. Under the least favourable null (equal exposures and equal exposure per unit of score),
    the observed log ratio of g is ``d_g - max_h d_h`` with ``d`` the estimation errors of log exposure; the bootstrap
    gives the errors' distribution as ``d*_g = log Exp*_g - log Exp_g``. So in every resample the reference is chosen
    again, as the pool group with the largest ``d*`` (the best-exposed group of a resample of null data), and

    - exposure: ``D*_g = d*_g - d*_ref*`` against the observed ``log(Exp_g / Exp_ref)``;
      ``p = (#(D* <= D) + 1) / (B + 1)`` (the ratio to the maximum is at most 1: one direction only);
    - treatment: with ``t*_g = log T*_g - log T_g`` (T = exposure per unit of mean score),
      ``U*_g = t*_g - t*_ref*`` against ``log treatment_ratio_g``; two-sided,
      ``min(1, 2 min(#(U* <= U) + 1, #(U* >= U) + 1) / (B + 1))``.

    Resamples where a statistic is undefined are left out of its count. Returns two arrays over the groups (NaN where
    undefined).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        n, w = totals[_N], totals[_W]
        per_score = totals[_SW] / totals[_U]
        log_exposure, log_score = np.log(w / n), np.log(per_score)
        errors = np.log(boot[:, _W, :] / boot[:, _N, :]) - log_exposure
        score_errors = np.log(boot[:, _SW, :] / boot[:, _U, :]) - log_score
    candidates = np.where(pool[None, :] & np.isfinite(errors), errors, -np.inf)
    chosen = candidates.argmax(axis=1)
    rows = np.arange(len(chosen))
    usable = np.isfinite(candidates[rows, chosen])
    null_ratio = (errors - errors[rows, chosen][:, None])[usable]
    null_treatment = (score_errors - score_errors[rows, chosen][:, None])[usable]
    observed_ratio = log_exposure - log_exposure[reference]
    observed_treatment = log_score - log_score[reference]
    ratio_p = np.full(len(n), np.nan)
    treatment_p = np.full(len(n), np.nan)
    for g in range(len(n)):
        ratio = null_ratio[:, g][np.isfinite(null_ratio[:, g])]
        if ratio.size and np.isfinite(observed_ratio[g]):
            ratio_p[g] = (np.count_nonzero(ratio <= observed_ratio[g]) + 1) / (ratio.size + 1)
        treatment = null_treatment[:, g][np.isfinite(null_treatment[:, g])]
        if treatment.size and np.isfinite(observed_treatment[g]):
            below = np.count_nonzero(treatment <= observed_treatment[g]) + 1
            above = np.count_nonzero(treatment >= observed_treatment[g]) + 1
            treatment_p[g] = min(1.0, 2 * min(below, above) / (treatment.size + 1))
    return ratio_p, treatment_p
