"""Helpers shared by the audits: group labels, multiple-testing adjustment, bootstrap p-values."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from fairness_pipeline.metrics.impact import benjamini_hochberg, holm
from fairness_pipeline.metrics.selection_rates import (
    analysis_dimensions,
    dimension_name,
    group_codes,
    group_labels,
)

__all__ = [
    "adjust_p_values",
    "analysis_dimensions",
    "bootstrap_p_value",
    "dimension_name",
    "group_codes",
    "group_labels",
    "is_finding",
    "stable_seed",
]


def adjust_p_values(p_values: Sequence[float], intersectional: bool) -> tuple[list[float], str]:
    """Holm (single dimensions) or Benjamini-Hochberg (intersections) adjusted p-values and the method's name."""
    values = [float(p) for p in p_values]
    if intersectional:
        return benjamini_hochberg(values), "fdr_bh"
    return holm(values), "holm"


def bootstrap_p_value(log_stats: np.ndarray) -> float:
    """Two-sided bootstrap p-value of H0: statistic = 0, from resampled values of a log statistic.

    ``min(1, 2 * min(#(d >= 0) + 1, #(d <= 0) + 1) / (B + 1))`` over the B defined (finite) resamples: the smallest
    level at which the percentile interval excludes 0, with the usual +1 Monte Carlo correction. NaN when no resample
    is defined.
    """
    finite = log_stats[np.isfinite(log_stats)]
    if finite.size == 0:
        return float("nan")
    above = int(np.count_nonzero(finite >= 0)) + 1
    below = int(np.count_nonzero(finite <= 0)) + 1
    return float(min(1.0, 2 * min(above, below) / (finite.size + 1)))


def stable_seed(*parts: object) -> int:
    """A platform-independent 32-bit number for seeding per-table random streams (CRC-32 of the parts' text)."""
    return zlib.crc32("\x1f".join(str(p) for p in parts).encode("utf-8"))


def is_finding(table: pd.DataFrame, significant: str, ratio: str, threshold: float) -> pd.Series:
    """Statistically and practically significant: ``significant`` true and ``ratio`` strictly below ``threshold``
    (the practical threshold, ``AnalysisSettings.threshold``, 0.80 by default). Missing values are not findings."""
    flag = table[significant].astype("boolean").fillna(False).astype(bool)
    return flag & (pd.to_numeric(table[ratio], errors="coerce") < threshold).fillna(False).astype(bool)
