"""LL144 scoring rates and their impact ratios (``docs/fairness-methods.md``, "Score and rank audits").

Population: the candidates of a tenant's window (for the default, every candidate with a ``shown`` event in the
window), each with the group and the score of its first shown event in the window.

Rules:

- M is the median of the window's *scored* candidates of the tenant, all groups together (``unknown`` included); for an
  even count it is the mean of the two middle scores (numpy's median, PostgreSQL's ``percentile_cont(0.5)``).
- Scoring rate of g = #(score > M in g) / n_g, n_g being g's candidates with a score. A score equal to M is *not*
  above the median ("scoring above the median"), so heavy ties at M can leave every rate below 0.5.
- A missing score leaves the candidate out of M, n and the rate; it is counted per group in ``missing_score``. A group
  whose candidates all lack a score has no rate (reason ``no scored candidates``).
- Impact ratios, reference group, the 2% rule, tests (Fisher / pooled z), Holm or Benjamini-Hochberg adjustment, Katz
  interval, shortfall, flip-flop, Cohen's h and the low-sample flag are those of
  :func:`fairness_pipeline.metrics.impact.impact_ratio_table`, applied to (n = scored candidates, x = above M). The
  2% share is a share of the scored candidates. When the best rate is 0 (e.g. every score equals M), every ratio is
  undefined (reason ``reference scoring rate is 0``).

Dimensions: the event proxies of ``settings.dimensions`` and their pairs, then every catalogue attribute dimension
the cells carry (``sex``, ``race_ethnicity``) and the catalogue intersections holding one (``sex+race_ethnicity``),
as the impact tables (``metrics.window.window_dimension_sets``). An unknown attribute is counted, never the reference;
a tenant without self-identification has all-unknown tables that raise nothing.

Stored windows read each day's shown candidates as arrays (``metrics.candidate_arrays``: the earliest day of each
candidate counts; attributes are those in force at the end of that day, looked up when the window is counted) and
:func:`coded_scoring_cells` counts one row per tenant and combination of dimension values
(:data:`SCORING_CELL_COLUMNS`); :func:`scoring_cells` computes the same cells from one row per candidate (tests,
oracles, small data).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from fairness_pipeline.catalogue import load_catalogue
from fairness_pipeline.events.vocabulary import DIMENSION_VALUES, DIMENSIONS
from fairness_pipeline.metrics.candidate_arrays import cell_frame
from fairness_pipeline.metrics.impact import IMPACT_COLUMNS, ZERO_REFERENCE_REASON, impact_ratio_tables
from fairness_pipeline.metrics.selection_rates import (
    EMPTY_GROUP_REASON,
    counts_by_dimension,
    dimension_name,
    is_intersection,
)
from fairness_pipeline.metrics.window import AnalysisSettings, window_dimension_sets

NO_SCORES_REASON = "no scored candidates"
ZERO_REFERENCE_SCORING_REASON = "reference scoring rate is 0"

SCORING_CELL_COLUMNS: tuple[str, ...] = ("n", "x", "missing_score", "median_score")
"""Value columns of a scoring cell table, after the key columns (``tenant_id``) and the dimension columns:
``n`` scored candidates, ``x`` of them with score > median, ``missing_score`` candidates without a score,
``median_score`` the median M of the key (the same on every row of a tenant; NaN when nobody has a score)."""

SCORING_COLUMNS: tuple[str, ...] = (
    "dimension",
    "median_score",
    "group",
    "n",
    "above_median",
    "missing_score",
    "scoring_rate",
    *IMPACT_COLUMNS[4:],  # share, reference_group, reference_rate, ... undefined_reason
)
"""Output columns after the key columns: ``IMPACT_COLUMNS`` with ``x`` named ``above_median`` and ``selection_rate``
named ``scoring_rate`` (``reference_rate`` is the reference group's scoring rate, ``shortfall`` counts candidates
above the median), plus ``median_score`` and ``missing_score``."""


def scoring_cells(
    candidates: pd.DataFrame, *, keys: Sequence[str] = ("tenant_id",), dimensions: Sequence[str] = DIMENSIONS
) -> pd.DataFrame:
    """Scoring cells from one row per candidate: columns ``keys``, ``dimensions`` and ``score`` (NaN when missing).

    Returns ``keys`` + ``dimensions`` + :data:`SCORING_CELL_COLUMNS`, one row per key and combination of dimension
    values present (missing values stay null, as SQL would return them).
    """
    keys, dims = list(keys), list(dimensions)
    missing = [c for c in (*keys, *dims, "score") if c not in candidates.columns]
    if missing:
        raise ValueError(f"candidate frame lacks columns {missing}")
    frame = candidates[[*keys, *dims]].copy()
    score = pd.to_numeric(candidates["score"], errors="coerce").astype(float)
    if keys:
        median = score.groupby([candidates[k] for k in keys], dropna=False).transform("median")
    else:
        median = pd.Series(score.median(), index=score.index)
    frame["n"] = score.notna().astype("int64")
    frame["x"] = (score > median).astype("int64")  # NaN > M and s > NaN are False
    frame["missing_score"] = score.isna().astype("int64")
    frame["median_score"] = median.astype(float)
    cells = frame.groupby([*keys, *dims], dropna=False, sort=True, as_index=False).agg(
        n=("n", "sum"), x=("x", "sum"), missing_score=("missing_score", "sum"), median_score=("median_score", "first")
    )
    return cells[[*keys, *dims, *SCORING_CELL_COLUMNS]].reset_index(drop=True)


def coded_scoring_cells(
    tenant_id: str,
    scores: np.ndarray,
    codes: np.ndarray,
    vocabularies: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """:func:`scoring_cells` of one tenant's candidates given as numbers: ``scores`` (NaN when missing) and ``codes``
    (one column per dimension of ``vocabularies``, default the event dimensions: 1-based position in its values, 0
    when missing), counted by ``metrics.candidate_arrays.cell_frame``; the same cells, missing values None."""
    vocabularies = DIMENSION_VALUES if vocabularies is None else vocabularies
    scores = np.asarray(scores, dtype=np.float64)
    scored = ~np.isnan(scores)
    median = float(np.median(scores[scored])) if scored.any() else math.nan
    counts = {
        "n": scored.astype(float),
        "x": (scores > median).astype(float),  # NaN > M and s > NaN are False
        "missing_score": (~scored).astype(float),
    }
    coded = np.asarray(codes, dtype=np.int64).reshape(len(scores), len(vocabularies))
    frame = cell_frame(coded, counts, vocabularies)
    frame.insert(0, "tenant_id", tenant_id)
    frame["median_score"] = median
    return frame[["tenant_id", *vocabularies, *SCORING_CELL_COLUMNS]]


def scoring_rate_ratios(
    cells: pd.DataFrame,
    settings: AnalysisSettings | None = None,
    *,
    keys: Sequence[str] = ("tenant_id",),
) -> pd.DataFrame:
    """Scoring rates and impact ratios per key, dimension (and pairwise intersection) and group.

    ``cells``: ``keys`` + the dimension columns of ``settings.dimensions`` (and any catalogue attribute columns) +
    :data:`SCORING_CELL_COLUMNS`. Returns ``keys`` + :data:`SCORING_COLUMNS`. The dimensions are those of
    ``metrics.window.window_dimension_sets``. Single dimensions list every allowed value (n = 0 when absent), like the
    selection-rate tables. Uses ``settings`` alpha, threshold, min_share, min_sample, dimensions and intersections.
    """
    settings = settings or AnalysisSettings()
    keys = list(keys)
    needed = [*keys, *settings.dimensions, "n", "x", "missing_score", "median_score"]
    missing = [c for c in needed if c not in cells.columns]
    if missing:
        raise ValueError(f"scoring cells lack columns {missing}")
    parts = []
    dimension_sets = window_dimension_sets(settings, cells.columns)
    grouped = cells.groupby(keys, sort=True, dropna=False) if keys else [((), cells)]
    for key_values, table in grouped:
        key_values = key_values if isinstance(key_values, tuple) else (key_values,)
        medians = pd.to_numeric(table["median_score"], errors="coerce").dropna().unique()
        if len(medians) > 1:
            raise ValueError(f"median_score differs within {dict(zip(keys, key_values, strict=True))}")
        median = float(medians[0]) if len(medians) else math.nan
        for dims in dimension_sets:
            part = _dimension_counts(table, dims)
            part.insert(0, "median_score", median)
            part.insert(0, "dimension", dimension_name(dims))
            for key, value in reversed(list(zip(keys, key_values, strict=True))):
                part.insert(0, key, value)
            parts.append(part)
    if not parts:
        return pd.DataFrame(columns=[*keys, *SCORING_COLUMNS])
    counts = pd.concat(parts, ignore_index=True)
    impacts = impact_ratio_tables(
        counts[[*keys, "dimension", "group", "n", "x"]],
        [*keys, "dimension"],
        intersectional=is_intersection(counts["dimension"]),
        **settings.impact_options(counts["dimension"]),
    )  # one vectorised pass over every table; rows stay in order
    missing_score = counts["missing_score"].to_numpy(dtype=np.int64)
    no_scores = (impacts["n"].to_numpy() == 0) & (missing_score > 0)
    impacts.loc[no_scores, "undefined_reason"] = NO_SCORES_REASON
    zero_reference = impacts["undefined_reason"] == ZERO_REFERENCE_REASON
    impacts.loc[zero_reference, "undefined_reason"] = ZERO_REFERENCE_SCORING_REASON
    impacts["undefined_reason"] = impacts["undefined_reason"].astype(object)
    impacts.insert(impacts.columns.get_loc("x") + 1, "missing_score", missing_score)
    impacts.insert(impacts.columns.get_loc("group"), "median_score", counts["median_score"].to_numpy(dtype=float))
    impacts = impacts.rename(columns={"x": "above_median", "selection_rate": "scoring_rate"})
    return impacts[[*keys, *SCORING_COLUMNS]].reset_index(drop=True)


def _dimension_counts(table: pd.DataFrame, dims: tuple[str, ...]) -> pd.DataFrame:
    """Per group of one key's dimension or intersection: scored candidates ``n``, above the median ``x`` and
    ``missing_score``, groups in label order (single dimensions: every allowed value, absent ones last)."""
    counts = counts_by_dimension(table, dims)
    absent = table.assign(n=table["missing_score"], x=0)
    missing = counts_by_dimension(absent, dims).set_index("group")["n"]
    groups = sorted(set(counts["group"]) | set(missing.index))
    catalogue = load_catalogue()
    if len(dims) == 1 and dims[0] in catalogue:
        groups += [g for g in catalogue.values(dims[0]) if g not in groups]
    counts = counts.set_index("group").reindex(groups, fill_value=0).rename_axis("group").reset_index()
    counts["missing_score"] = counts["group"].map(missing).fillna(0).astype("int64")
    return counts


__all__ = [
    "EMPTY_GROUP_REASON",
    "NO_SCORES_REASON",
    "SCORING_CELL_COLUMNS",
    "SCORING_COLUMNS",
    "ZERO_REFERENCE_SCORING_REASON",
    "coded_scoring_cells",
    "scoring_cells",
    "scoring_rate_ratios",
]
