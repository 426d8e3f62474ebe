"""Selection rates per group and demographic parity, from aggregated counts.

A *counts* frame holds one (tenant, window, stage pair, dimension): columns ``group`` (str), ``n`` (population) and
``x`` (selected), one row per group. Rates are computed with fairlearn's ``MetricFrame`` fed with weighted rows (two
rows per group, never one row per event), which gives exactly ``x / n``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from fairness_pipeline.events.vocabulary import DIMENSIONS, UNKNOWN_GROUP

COUNT_COLUMNS: tuple[str, ...] = ("group", "n", "x")
EMPTY_GROUP_REASON = "empty group"
INTERSECTION_SEPARATOR = "+"
"""Joins dimension names: ``company_tier+experience_band``."""
GROUP_SEPARATOR = "|"
"""Joins group values of an intersection: ``startup|0-3``."""


@dataclass(frozen=True)
class SelectionRateFrame:
    """Selection rates of one counts frame.

    ``by_group`` has columns group, n, x, selection_rate (NaN when n = 0) and undefined_reason (None or text).
    ``dp_ratio`` (min rate / max rate) and ``dp_difference`` (max rate - min rate) are None when fewer than two groups
    have a defined rate; ``dp_ratio`` is also None when every rate is 0 (0 / 0).
    """

    by_group: pd.DataFrame
    overall_rate: float | None
    dp_ratio: float | None
    dp_difference: float | None


def validate_counts(counts: pd.DataFrame, keys: list[str] | None = None) -> pd.DataFrame:
    """Return a clean copy of a counts frame (group str, n and x int64), or raise ``ValueError``.

    Checks: the three columns exist, groups are non-null and unique (within each combination of ``keys`` when
    given), 0 <= x <= n, counts are whole numbers.
    """
    missing = [c for c in COUNT_COLUMNS if c not in counts.columns]
    if missing:
        raise ValueError(f"counts frame lacks columns {missing}")
    out = counts.loc[:, [*(keys or []), *COUNT_COLUMNS]].reset_index(drop=True)
    if out["group"].isna().any():
        raise ValueError(f"null group in counts frame; map missing values to {UNKNOWN_GROUP!r} first")
    duplicated = out.duplicated([*(keys or []), "group"])
    if duplicated.any():
        dupes = sorted(out.loc[duplicated, "group"].astype(str).unique())
        raise ValueError(f"duplicate groups in counts frame: {dupes}")
    for col in ("n", "x"):
        values = pd.to_numeric(out[col], errors="raise")
        if values.isna().any() or not np.all(np.mod(values.to_numpy(dtype=float), 1) == 0):
            raise ValueError(f"column {col!r} must hold whole numbers")
        out[col] = values.astype("int64")
    if (out["x"] < 0).any() or (out["x"] > out["n"]).any():
        raise ValueError("counts must satisfy 0 <= x <= n")
    out["group"] = out["group"].astype(str).astype(object)
    return out


FRAME_COLUMNS: tuple[str, ...] = (
    "group",
    "n",
    "x",
    "selection_rate",
    "overall_rate",
    "dp_ratio",
    "dp_difference",
    "undefined_reason",
)


def selection_rate_frames(counts: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Selection rates and demographic parity for many counts tables at once, with one fairlearn ``MetricFrame``.

    ``counts`` holds the ``keys`` columns (one combination per table, e.g. tenant, stage pair, dimension) plus
    group, n, x. The tables are passed to fairlearn as its *control features*, so each gets its own overall rate,
    ratio and difference. Each group with n > 0 becomes two weighted rows (selected=1 with weight x, selected=0 with
    weight n - x; zero weights dropped). Returns the ``keys`` columns followed by ``FRAME_COLUMNS``, one row per group.
    Groups with n = 0 get no rate (NaN) and the reason ``"empty group"``; parity is None (NaN) for a table with fewer
    than two defined rates, and the ratio also when every rate is 0.
    """
    for key in keys:
        if key not in counts.columns:
            raise ValueError(f"counts lack key column {key!r}")
    if not len(counts):
        return pd.DataFrame(columns=[*keys, *FRAME_COLUMNS])
    clean = validate_counts(counts, keys)
    table = clean[keys].astype(str).agg("\x1f".join, axis=1) if keys else pd.Series("", index=clean.index)
    clean["_table"] = table.to_numpy(dtype=object)

    populated = clean[clean["n"] > 0]
    result = clean.copy()
    result["selection_rate"] = np.nan
    result[["overall_rate", "dp_ratio", "dp_difference"]] = np.nan
    if len(populated):
        from fairlearn.metrics import MetricFrame, selection_rate  # slow import (about 2 s): keep it local

        weights = np.column_stack([populated["x"], populated["n"] - populated["x"]]).ravel()
        keep = weights > 0
        selected = np.tile(np.array([1, 0]), len(populated))[keep]
        frame = MetricFrame(
            metrics={"selection_rate": selection_rate},
            y_true=selected,  # selection_rate reads y_pred only; the selected flag belongs there
            y_pred=selected,
            sensitive_features=pd.Series(np.repeat(populated["group"].to_numpy(dtype=object), 2)[keep], name="group"),
            control_features=pd.Series(np.repeat(populated["_table"].to_numpy(dtype=object), 2)[keep], name="_table"),
            sample_params={"selection_rate": {"sample_weight": weights[keep]}},
        )
        rates = frame.by_group["selection_rate"]
        index = pd.MultiIndex.from_arrays([result["_table"], result["group"]])
        result["selection_rate"] = rates.reindex(index).to_numpy(dtype=float)
        per_table = pd.DataFrame(
            {
                "overall_rate": frame.overall["selection_rate"],
                "dp_ratio": frame.ratio(method="between_groups")["selection_rate"],
                "dp_difference": frame.difference(method="between_groups")["selection_rate"],
                "defined": populated.groupby("_table")["group"].size(),
                "max_rate": rates.groupby(level=0).max(),
            }
        )
        per_table.loc[per_table["defined"] < 2, ["dp_ratio", "dp_difference"]] = np.nan
        per_table.loc[per_table["max_rate"] == 0, "dp_ratio"] = np.nan  # 0 / 0
        for column in ("overall_rate", "dp_ratio", "dp_difference"):
            result[column] = result["_table"].map(per_table[column]).astype(float)
    result.loc[result["n"] == 0, "selection_rate"] = np.nan
    result["undefined_reason"] = np.where(result["n"] == 0, EMPTY_GROUP_REASON, None)
    return result[[*keys, *FRAME_COLUMNS]]


def selection_rate_frame(counts: pd.DataFrame) -> SelectionRateFrame:
    """Per-group selection rates, overall rate and demographic parity ratio and difference of one counts table."""
    rows = selection_rate_frames(counts[list(COUNT_COLUMNS)], keys=[])
    by_group = rows[["group", "n", "x", "selection_rate", "undefined_reason"]].reset_index(drop=True)
    by_group["undefined_reason"] = by_group["undefined_reason"].astype(object).where(by_group["n"] == 0, None)

    def scalar(column: str) -> float | None:
        values = rows[column].dropna()
        return float(values.iloc[0]) if len(values) else None

    return SelectionRateFrame(
        by_group=by_group,
        overall_rate=scalar("overall_rate"),
        dp_ratio=scalar("dp_ratio"),
        dp_difference=scalar("dp_difference"),
    )


def dimension_name(dimensions: tuple[str, ...]) -> str:
    """Name of a dimension or intersection, e.g. ``company_tier+experience_band``."""
    return INTERSECTION_SEPARATOR.join(dimensions)


def is_intersection(dimensions: pd.Series) -> np.ndarray:
    """Per row, whether the dimension name is a pairwise intersection (``a+b``)."""
    return dimensions.astype(str).str.contains(INTERSECTION_SEPARATOR, regex=False).to_numpy(dtype=bool)


def analysis_dimensions(dims: tuple[str, ...] = DIMENSIONS, *, pairs: bool = True) -> list[tuple[str, ...]]:
    """The dimensions to analyse: each single dimension, then (if ``pairs``) every pair in the given order."""
    singles = [(d,) for d in dims]
    return singles + (list(combinations(dims, 2)) if pairs else [])


def counts_by_dimension(cells: pd.DataFrame, dimensions: tuple[str, ...]) -> pd.DataFrame:
    """Sum a cell table (dimension columns plus ``n`` and ``x``) to per-group counts for one dimension or intersection.

    Missing dimension values (null or empty string) become ``unknown``. Intersection groups join the values with
    ``|`` in the order of ``dimensions``. Returns columns group, n, x sorted by group.
    """
    if not dimensions:
        raise ValueError("at least one dimension is needed")
    missing = [c for c in (*dimensions, "n", "x") if c not in cells.columns]
    if missing:
        raise ValueError(f"cell table lacks columns {missing}")
    group = group_labels(cells, dimensions)
    summed = (
        pd.DataFrame({"group": group.to_numpy(dtype=object), "n": cells["n"].to_numpy(), "x": cells["x"].to_numpy()})
        .groupby("group", sort=True, as_index=False)[["n", "x"]]
        .sum()
    )
    summed["group"] = summed["group"].astype(object)
    summed[["n", "x"]] = summed[["n", "x"]].astype("int64")
    return summed.reset_index(drop=True)


def group_labels(frame: pd.DataFrame, dimensions: Sequence[str]) -> pd.Series:
    """Group label of each row for a dimension or intersection.

    A null or blank value is ``unknown``; intersection values are joined with ``|`` in the order of ``dimensions``.
    """
    missing = [d for d in dimensions if d not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks dimension columns {missing}")
    label: pd.Series | None = None
    for dim in dimensions:
        values = frame[dim].astype(object).where(frame[dim].notna(), UNKNOWN_GROUP).astype(str)
        values = values.where(values.str.strip() != "", UNKNOWN_GROUP)
        label = values if label is None else label + GROUP_SEPARATOR + values
    assert label is not None
    return label.astype(object)


def group_codes(frame: pd.DataFrame, dimensions: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """``pd.factorize(group_labels(frame, dimensions), sort=True)`` without building a label per row.

    Each dimension column is factorised once; only its distinct values are cleaned (null or blank -> ``unknown``) and
    only the combinations present are turned into labels. Returns (code per row, sorted labels).
    """
    missing = [d for d in dimensions if d not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks dimension columns {missing}")
    if not dimensions:
        raise ValueError("at least one dimension is needed")
    combined = np.zeros(len(frame), dtype=np.int64)
    value_lists: list[list[str]] = []
    for dim in dimensions:
        raw_codes, uniques = pd.factorize(frame[dim], use_na_sentinel=True)
        cleaned = [UNKNOWN_GROUP if (u is None or str(u).strip() == "") else str(u) for u in uniques]
        values = sorted(set(cleaned) | {UNKNOWN_GROUP})
        position = {v: i for i, v in enumerate(values)}
        lookup = np.array([position[c] for c in cleaned] + [position[UNKNOWN_GROUP]], dtype=np.int64)
        combined = combined * len(values) + lookup[raw_codes]  # code -1 (null) picks the last entry: unknown
        value_lists.append(values)
    n_combinations = math.prod(len(values) for values in value_lists)
    if n_combinations <= max(len(frame), 1 << 16):  # a lookup table over all combinations: no sort of the rows
        present = np.flatnonzero(np.bincount(combined, minlength=n_combinations))
        dense = np.zeros(n_combinations, dtype=np.int64)
        dense[present] = np.arange(len(present))
        codes = dense[combined]
    else:
        present, codes = np.unique(combined, return_inverse=True)
    labels = []
    for code in present.tolist():
        parts = []
        for values in reversed(value_lists):
            code, index = divmod(code, len(values))
            parts.append(values[index])
        labels.append(GROUP_SEPARATOR.join(reversed(parts)))
    order = np.argsort(np.array(labels, dtype=object), kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[codes.ravel()], [labels[i] for i in order]
