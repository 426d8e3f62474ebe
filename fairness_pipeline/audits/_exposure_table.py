"""The exposure audit's output table: per key, dimension and group the statistics of the sums, with intervals and
adjusted p-values from the bootstrap replicates.

Private to ``audits.exposure`` (its public names are re-exported there).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fairness_pipeline.audits._common import adjust_p_values, bootstrap_p_value, dimension_name
from fairness_pipeline.audits._exposure_bootstrap import DEFAULT_N_BOOT, _max_reference_p_values
from fairness_pipeline.audits._exposure_layout import (
    _C,
    _MW,
    _N,
    _RESAMPLED,
    _SUMS,
    _SW,
    _T,
    _U,
    _W,
    ExposureLayout,
    allowed_values,
)
from fairness_pipeline.audits._exposure_sums import ExposureSums
from fairness_pipeline.metrics.impact import UNKNOWN_GROUP_REASON, unknown_mask
from fairness_pipeline.metrics.selection_rates import INTERSECTION_SEPARATOR
from fairness_pipeline.metrics.window import AnalysisSettings

EXPOSURE_COLUMNS: tuple[str, ...] = (
    "dimension",
    "group",
    "searches",
    "shown",
    "ranked",
    "missing_rank",
    "share",
    "exposure",
    "exposure_ci_low",
    "exposure_ci_high",
    "reference_group",
    "reference_exposure",
    "is_reference",
    "excluded_small_share",
    "exposure_ratio",
    "ratio_ci_low",
    "ratio_ci_high",
    "low_exposure",
    "p_value",
    "p_adjusted",
    "adjustment_method",
    "significant",
    "skew_at_k",
    "skew_ci_low",
    "skew_ci_high",
    "scored",
    "mean_score",
    "treatment_ratio",
    "treatment_ci_low",
    "treatment_ci_high",
    "treatment_p_value",
    "treatment_p_adjusted",
    "treatment_significant",
    "merit_ratio",
    "merit_ci_low",
    "merit_ci_high",
    "merit_p_value",
    "merit_p_adjusted",
    "merit_significant",
    "low_sample",
    "n_boot",
    "undefined_reason",
    "score_undefined_reason",
)
"""Output columns after the key columns. ``searches`` = searches showing the group; ``share`` = share of the key's
ranked impressions; ``low_exposure`` = exposure_ratio < threshold; ``significant`` etc. = adjusted p < alpha (exposure
ratio and treatment ratio against the reference, merit ratio against 1); ``low_sample`` = searches < min_sample;
``undefined_reason`` explains missing exposure or ratio, ``score_undefined_reason`` missing score-based measures."""

NO_RANKED_REASON = "no ranked impressions"
NO_SHOWN_REASON = "no shown impressions"
NO_SCORED_REASON = "no impressions with rank and score"
NO_MERIT_REASON = "merit_weight_sum not provided"
ZERO_SCORE_REASON = "mean score is 0"


_OUTPUT_NAMES: dict[str, tuple[str, str, str | None]] = {
    "exposure": ("exposure", "exposure", None),
    "ratio": ("exposure_ratio", "ratio", "p_value"),
    "skew": ("skew_at_k", "skew", None),
    "treatment": ("treatment_ratio", "treatment", "treatment_p_value"),
    "merit": ("merit_ratio", "merit", "merit_p_value"),
}
"""Per statistic: value column, prefix of its interval columns, p-value column (None: not tested)."""


@dataclass
class _Block:
    """One (key, dimension) table as reported: per group the ``totals`` of :data:`_SUMS` (shape (len(_SUMS),
    groups)), shown impressions and searches showing it."""

    dims: tuple[str, ...]
    groups: list[str]
    totals: np.ndarray
    shown: np.ndarray
    searches: np.ndarray


def _reported_blocks(layout: ExposureLayout, sums: ExposureSums, n_boot: int) -> list[tuple[_Block, np.ndarray | None]]:
    """Each table's block and resampled sums (n_boot, len(_SUMS), groups; ``scored`` NaN), keeping the groups shown
    in the sums plus, for a single dimension, every allowed value (so an absent group is reported as absent). Groups
    come in label order, absent allowed values last in vocabulary order."""
    offsets = layout.offsets
    full: list[np.ndarray | None] = [None] * len(layout.tables)
    if sums.replicates is not None:
        at = 0
        for i in layout.resampled:
            size = layout.size(i)
            boot = np.full((n_boot, len(_SUMS), size), np.nan)
            width = len(_RESAMPLED) * size
            boot[:, _RESAMPLED, :] = sums.replicates[:, at : at + width].reshape(n_boot, len(_RESAMPLED), size)
            full[i] = boot
            at += width
        for i, (source, mapping) in layout.derived.items():
            indicator = np.zeros((layout.size(source), layout.size(i)))
            indicator[np.arange(len(mapping)), mapping] = 1.0
            full[i] = full[source] @ indicator  # NaN (``scored``) stays NaN
    out = []
    for i, dims in enumerate(layout.tables):
        columns = slice(offsets[i], offsets[i + 1])
        labels = layout.labels(i)
        shown = sums.shown[columns]
        allowed = allowed_values(dims[0]) if len(dims) == 1 else ()
        present = sorted(labels[g] for g in range(len(labels)) if shown[g] > 0)
        keep_labels = present + [v for v in allowed if v not in present]
        index = {label: g for g, label in enumerate(labels)}
        keep = np.array([index[label] for label in keep_labels], dtype=np.int64)
        block = _Block(
            dims, keep_labels, sums.totals[:, columns][:, keep], shown[keep], sums.group_searches[columns][keep]
        )
        boot = full[i][..., keep] if full[i] is not None else None
        out.append((block, boot))
    return out


def exposure_table(
    sums_by_key: dict[tuple, ExposureSums],
    layout: ExposureLayout,
    settings: AnalysisSettings,
    *,
    keys: Sequence[str] = ("tenant_id",),
    n_boot: int = DEFAULT_N_BOOT,
    has_merit: bool = True,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """The output rows (``keys`` + :data:`EXPOSURE_COLUMNS`) of each key's sums, keys in sorted order."""
    keys = list(keys)
    parts = []
    for key_values in sorted(sums_by_key):
        prefix = dict(zip(keys, key_values, strict=True))
        sums = sums_by_key[key_values]
        for block, resampled in _reported_blocks(layout, sums, n_boot):
            rows = _block_rows(block, resampled, settings, has_merit, confidence, n_boot)
            parts.extend({**prefix, **row} for row in rows)
    return _set_dtypes(pd.DataFrame(parts, columns=[*keys, *EXPOSURE_COLUMNS]))


def _statistics(sums: np.ndarray, reference: int | None) -> dict[str, np.ndarray]:
    """Statistics from sums of shape (..., len(_SUMS), groups); ratios use the fixed ``reference`` column."""
    with np.errstate(divide="ignore", invalid="ignore"):
        n, w, top = sums[..., _N, :], sums[..., _W, :], sums[..., _T, :]
        exposure = w / n
        skew = (top / top.sum(axis=-1, keepdims=True)) / (n / n.sum(axis=-1, keepdims=True))
        per_score = sums[..., _SW, :] / sums[..., _U, :]
        merit = sums[..., _SW, :] / sums[..., _MW, :]
        if reference is None:
            ratio = treatment = np.full(exposure.shape, np.nan)
        else:
            ratio = exposure / exposure[..., reference : reference + 1]
            treatment = per_score / per_score[..., reference : reference + 1]
    return {"exposure": exposure, "ratio": ratio, "skew": skew, "treatment": treatment, "merit": merit}


def _reference(
    groups: list[str], ranked: np.ndarray, exposure: np.ndarray, min_share: float
) -> tuple[int | None, bool, np.ndarray]:
    """Index of the best-exposed group (see module doc), whether any group reaches ``min_share``, and the pool the
    reference is chosen from (a mask over the groups). ``unknown`` groups (and intersection cells with an unknown
    part) are never in the pool; shares are of all ranked impressions, unknown included, as in the impact tables."""
    total = ranked.sum()
    unknown = unknown_mask(np.asarray(groups, dtype=object))
    populated = [i for i in range(len(groups)) if ranked[i] > 0 and not unknown[i]]
    eligible = [i for i in populated if ranked[i] / total >= min_share]
    pool = eligible or populated
    mask = np.zeros(len(groups), dtype=bool)
    mask[pool] = True
    if not pool:
        return None, False, mask
    best = min(pool, key=lambda i: (-exposure[i], -ranked[i], groups[i]))
    return best, bool(eligible), mask


def _block_rows(
    block: _Block,
    boot: np.ndarray | None,
    settings: AnalysisSettings,
    has_merit: bool,
    confidence: float,
    n_boot: int,
) -> list[dict[str, Any]]:
    """The output rows of one (key, dimension) table, with p-values adjusted within the table."""
    totals = block.totals
    ranked, scored, score_sum = totals[_N], totals[_C], totals[_U]
    point = _statistics(totals, None)
    reference, any_eligible, pool = _reference(block.groups, ranked, point["exposure"], settings.min_share)
    point = _statistics(totals, reference)
    resampled = _statistics(boot, reference) if boot is not None else None
    max_p = None
    if boot is not None and reference is not None:
        max_p = _max_reference_p_values(totals, boot, reference, pool)
    total_ranked = ranked.sum()
    tail = (1 - confidence) / 2
    unknown = unknown_mask(np.asarray(block.groups, dtype=object))
    rows: list[dict[str, Any]] = []
    for i, group in enumerate(block.groups):
        share = ranked[i] / total_ranked if total_ranked else math.nan
        excluded = any_eligible and not share >= settings.min_share and not unknown[i]
        row: dict[str, Any] = dict.fromkeys(EXPOSURE_COLUMNS)
        row.update(
            dimension=dimension_name(block.dims),
            group=group,
            searches=int(block.searches[i]),
            shown=int(block.shown[i]),
            ranked=int(ranked[i]),
            missing_rank=int(block.shown[i] - ranked[i]),
            share=share,
            reference_group=block.groups[reference] if reference is not None else None,
            reference_exposure=point["exposure"][reference] if reference is not None else math.nan,
            is_reference=i == reference,
            excluded_small_share=excluded,
            scored=int(scored[i]),
            mean_score=score_sum[i] / scored[i] if scored[i] else math.nan,
            low_sample=bool(block.searches[i] < settings.min_sample),
            n_boot=n_boot,
        )
        compared = ranked[i] > 0 and not excluded and not unknown[i]
        row["undefined_reason"] = (
            (NO_RANKED_REASON if block.shown[i] else NO_SHOWN_REASON)
            if ranked[i] == 0
            else UNKNOWN_GROUP_REASON
            if unknown[i]
            else f"excluded: under {settings.min_share:.0%} of ranked impressions"
            if excluded
            else None
        )
        ref_scored = reference is not None and scored[reference] > 0 and score_sum[reference] > 0
        score_reason = (
            NO_SCORED_REASON
            if scored[i] == 0
            else ZERO_SCORE_REASON
            if score_sum[i] == 0
            else row["undefined_reason"]
            if not compared
            else "reference group has no scored impressions"
            if not ref_scored
            else None
        )
        if not has_merit and score_reason is None:
            score_reason = NO_MERIT_REASON
        row["score_undefined_reason"] = score_reason
        values = {
            "exposure": ranked[i] > 0,
            "skew": ranked[i] > 0,
            "ratio": compared,
            "treatment": compared and scored[i] > 0 and score_sum[i] > 0 and ref_scored,
            "merit": has_merit and scored[i] > 0 and not excluded and not unknown[i],
        }
        for stat, defined in values.items():
            column, prefix, p_column = _OUTPUT_NAMES[stat]
            if not defined:
                row[column] = math.nan
                continue
            row[column] = float(point[stat][i])
            if resampled is None:
                continue
            sample = resampled[stat][:, i]
            finite = sample[np.isfinite(sample)]
            if finite.size:
                row[f"{prefix}_ci_low"], row[f"{prefix}_ci_high"] = np.quantile(finite, [tail, 1 - tail]).tolist()
            if stat == "merit":
                with np.errstate(divide="ignore"):
                    row[p_column] = bootstrap_p_value(np.log(sample))
            elif p_column and i != reference and max_p is not None:  # the reference's own ratios are 1
                p_value = max_p[0 if stat == "ratio" else 1][i]
                row[p_column] = None if math.isnan(p_value) else float(p_value)
        if compared:
            row["low_exposure"] = bool(row["exposure_ratio"] < settings.threshold)
        rows.append(row)
    intersectional = INTERSECTION_SEPARATOR in dimension_name(block.dims)
    for p_col, adj_col, sig_col in (
        ("p_value", "p_adjusted", "significant"),
        ("treatment_p_value", "treatment_p_adjusted", "treatment_significant"),
        ("merit_p_value", "merit_p_adjusted", "merit_significant"),
    ):
        tested = [row for row in rows if row[p_col] is not None and not math.isnan(row[p_col])]
        if tested:
            adjusted, method = adjust_p_values([row[p_col] for row in tested], intersectional)
            for row, p in zip(tested, adjusted, strict=True):
                row[adj_col], row[sig_col] = p, p < settings.alpha
                if p_col == "p_value":
                    row["adjustment_method"] = method
    return rows


def _set_dtypes(table: pd.DataFrame) -> pd.DataFrame:
    """int64 counts, float64 measures (NaN when undefined), nullable booleans, object text (None when missing)."""
    for col in ("searches", "shown", "ranked", "missing_rank", "scored", "n_boot"):
        table[col] = table[col].astype("int64")
    for col in ("is_reference", "excluded_small_share", "low_sample"):
        table[col] = table[col].astype(bool)
    for col in ("low_exposure", "significant", "treatment_significant", "merit_significant"):
        table[col] = pd.array([None if v is None or v is pd.NA else bool(v) for v in table[col]], dtype="boolean")
    text = ("dimension", "group", "reference_group", "adjustment_method", "undefined_reason", "score_undefined_reason")
    for col in text:
        values = [None if v is None or v is pd.NA or v != v else v for v in table[col]]
        table[col] = pd.Series(values, index=table.index, dtype=object)
    for col in EXPOSURE_COLUMNS:
        if col not in text and table[col].dtype == object:
            table[col] = table[col].astype("float64")
    return table
