"""Position-discounted exposure per group, with a seeded, vectorised bootstrap over searches.

Definitions (Singh and Joachims 2018; ``docs/fairness-methods.md``):

- Position weight v(j) = 1 / log2(1 + j) for rank j >= 1 (v(1) = 1, v(3) = 0.5, v(7) = 1/3).
- Exposure of group g = mean v over g's shown impressions with a rank. Exposure ratio = Exp(g) / Exp(r), r being the
  *best-exposed* group among groups holding at least ``min_share`` of the ranked impressions (the highest exposure
  overall when none does; ties: more impressions, then the group name). Groups under ``min_share`` are reported but
  not compared, as in the impact-ratio tables.
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
one row per event -- and optionally the search's ``day``. :func:`search_aggregates` builds them from one row per
impression (tests, oracles, and the reference for the SQL).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fairness_pipeline.audits._common import (
    adjust_p_values,
    analysis_dimensions,
    bootstrap_p_value,
    dimension_name,
    is_finding,
    stable_seed,
)
from fairness_pipeline.events.vocabulary import DIMENSION_VALUES, DIMENSIONS, UNKNOWN_GROUP
from fairness_pipeline.metrics.selection_rates import GROUP_SEPARATOR, INTERSECTION_SEPARATOR
from fairness_pipeline.metrics.window import AnalysisSettings

DEFAULT_TOP_K = 10
DEFAULT_N_BOOT = 1000
_MAX_CELLS = 4_000_000
"""Upper bound on resamples x searches held in memory at once (the bootstrap runs in chunks)."""

AGGREGATE_COLUMNS: tuple[str, ...] = (
    "shown",
    "ranked",
    "weight_sum",
    "top_k",
    "scored",
    "score_sum",
    "scored_weight_sum",
    "merit_weight_sum",
)
"""Per (key, search_id, dimension values): ``shown`` impressions; ``ranked`` of them with a rank >= 1; ``weight_sum``
= sum of v(rank) over ranked; ``top_k`` = ranked with rank <= k; ``scored`` = ranked with a score; ``score_sum`` =
sum of scores over those; ``scored_weight_sum`` = sum of v(rank) over those; ``merit_weight_sum`` = sum of v(merit
rank) over those, where the merit ranks of a search are its scored impressions' ranks sorted ascending and handed out
by score descending, ties by rank (optional column: without it the merit columns are NaN)."""

_SUMS: tuple[str, ...] = AGGREGATE_COLUMNS[1:]  # summed per block, in this order
_N, _W, _T, _C, _U, _SW, _MW = range(len(_SUMS))
_RESAMPLED = np.array([_N, _W, _T, _U, _SW, _MW])
"""The sums the statistics use (``scored`` only counts), the only ones the bootstrap recomputes."""

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


def position_weight(rank: Any) -> Any:
    """v(j) = 1 / log2(1 + j), elementwise (rank >= 1)."""
    return 1.0 / np.log2(1.0 + np.asarray(rank, dtype=float))


def search_aggregates(
    impressions: pd.DataFrame,
    *,
    keys: Sequence[str] = ("tenant_id",),
    dimensions: Sequence[str] = DIMENSIONS,
    k: int = DEFAULT_TOP_K,
) -> pd.DataFrame:
    """Per-search aggregates from one row per shown impression (``keys``, ``search_id``, dimensions, rank, score).

    Returns ``keys`` + search_id + dimensions + :data:`AGGREGATE_COLUMNS`, one row per combination present (missing
    dimension values stay null). This is the reference implementation of what SQL should compute.
    """
    keys, dims = list(keys), list(dimensions)
    needed = [*keys, "search_id", *dims, "rank", "score"]
    missing = [c for c in needed if c not in impressions.columns]
    if missing:
        raise ValueError(f"impression frame lacks columns {missing}")
    frame = impressions[[*keys, "search_id", *dims]].reset_index(drop=True).copy()
    rank = pd.to_numeric(impressions["rank"], errors="coerce").astype(float).reset_index(drop=True)
    score = pd.to_numeric(impressions["score"], errors="coerce").astype(float).reset_index(drop=True)
    ranked = rank.notna() & (rank >= 1)
    scored = ranked & score.notna()
    weight = pd.Series(np.where(ranked, position_weight(rank.where(ranked, 1.0)), 0.0))
    frame["shown"] = 1
    frame["ranked"] = ranked.astype("int64")
    frame["weight_sum"] = weight
    frame["top_k"] = (ranked & (rank <= k)).astype("int64")
    frame["scored"] = scored.astype("int64")
    frame["score_sum"] = score.where(scored, 0.0)
    frame["scored_weight_sum"] = weight.where(scored, 0.0)
    frame["merit_weight_sum"] = 0.0
    search = [*keys, "search_id"]
    sub = pd.DataFrame({"rank": rank, "score": score}).assign(**{c: frame[c] for c in search})[scored]
    if len(sub):
        by_rank = sub.sort_values([*search, "rank"], kind="stable")
        by_score = sub.sort_values([*search, "score", "rank"], ascending=[*[True] * len(search), False, True],
                                   kind="stable")  # fmt: skip
        slot_rank = by_rank.groupby(search, sort=False, dropna=False).cumcount()
        slot_score = by_score.groupby(search, sort=False, dropna=False).cumcount()
        positions = pd.Series(by_rank["rank"].to_numpy(), index=pd.MultiIndex.from_frame(
            by_rank[search].assign(slot=slot_rank.to_numpy())))  # fmt: skip
        merit_rank = positions.reindex(pd.MultiIndex.from_frame(by_score[search].assign(slot=slot_score.to_numpy())))
        frame.loc[by_score.index, "merit_weight_sum"] = position_weight(merit_rank.to_numpy())
    out = frame.groupby([*keys, "search_id", *dims], dropna=False, sort=True, as_index=False)[
        list(AGGREGATE_COLUMNS)
    ].sum()
    for col in ("shown", "ranked", "top_k", "scored"):
        out[col] = out[col].astype("int64")
    return out.reset_index(drop=True)


@dataclass(frozen=True)
class ExposureLayout:
    """Fixed group columns of every (dimension) table: all combinations of each dimension's values, ``unknown``
    included, so that sums of different days and searches line up and can be added.

    ``tables`` are ``analysis_dimensions`` in order; ``values`` the sorted values per dimension. A single dimension that
    is part of an intersection is *derived*: its resampled sums are those of the first such intersection's groups,
    added up, so only the other tables are resampled (``resampled``).
    """

    tables: tuple[tuple[str, ...], ...]
    values: dict[str, tuple[str, ...]]

    @classmethod
    def build(cls, settings: AnalysisSettings, present: dict[str, Any] | None = None) -> ExposureLayout:
        """The layout of ``settings``' dimensions over the vocabulary plus any ``present`` values (per dimension)."""
        present = present or {}
        values = {}
        for dim in settings.dimensions:
            seen = {_clean(v) for v in present.get(dim, ())}
            values[dim] = tuple(sorted(set(DIMENSION_VALUES.get(dim, ())) | seen | {UNKNOWN_GROUP}))
        tables = tuple(analysis_dimensions(settings.dimensions, pairs=settings.intersections))
        return cls(tables, values)

    def shape(self, table: int) -> tuple[int, ...]:
        return tuple(len(self.values[d]) for d in self.tables[table])

    def size(self, table: int) -> int:
        return math.prod(self.shape(table))

    @property
    def offsets(self) -> list[int]:
        """Start of each table on the flat group axis (last entry: total groups)."""
        return [0, *np.cumsum([self.size(i) for i in range(len(self.tables))]).tolist()]

    def labels(self, table: int) -> list[str]:
        """Group labels of a table in column order (``a|b`` for intersections)."""
        parts = [self.values[d] for d in self.tables[table]]
        return [GROUP_SEPARATOR.join(combo) for combo in itertools.product(*parts)]

    @property
    def derived(self) -> dict[int, tuple[int, np.ndarray]]:
        """Single tables summed from an intersection: index -> (intersection index, single column of each group)."""
        out = {}
        for i, dims in enumerate(self.tables):
            if len(dims) != 1:
                continue
            for k, pair in enumerate(self.tables):
                if len(pair) > 1 and dims[0] in pair:
                    position = np.unravel_index(np.arange(self.size(k)), self.shape(k))
                    out[i] = (k, np.asarray(position[pair.index(dims[0])], dtype=np.int64))
                    break
        return out

    @property
    def resampled(self) -> list[int]:
        derived = self.derived
        return [i for i in range(len(self.tables)) if i not in derived]

    @property
    def replicate_width(self) -> int:
        return len(_RESAMPLED) * sum(self.size(i) for i in self.resampled)

    @property
    def fingerprint(self) -> int:
        """A stable number naming this layout (stored sums are only reused under the same one)."""
        return stable_seed(*("+".join(t) for t in self.tables), *(f"{d}={','.join(v)}" for d, v in self.values.items()))

    def row_codes(self, frame: pd.DataFrame) -> list[np.ndarray]:
        """Each row's column within each table. Raises ValueError on a value outside the layout."""
        per_dim = {dim: _value_codes(frame[dim], self.values[dim]) for dim in self.values}
        codes = []
        for i, dims in enumerate(self.tables):
            combined = np.zeros(len(frame), dtype=np.int64)
            for dim, size in zip(dims, self.shape(i), strict=True):
                combined = combined * size + per_dim[dim]
            codes.append(combined)
        return codes


def _clean(value: Any) -> str:
    return UNKNOWN_GROUP if value is None or value != value or str(value).strip() == "" else str(value)


def _value_codes(column: pd.Series, values: tuple[str, ...]) -> np.ndarray:
    """Position of each row's value in ``values`` (null or blank: ``unknown``), factorising the column once."""
    raw, uniques = pd.factorize(column, use_na_sentinel=True)
    position = {v: i for i, v in enumerate(values)}
    cleaned = [_clean(u) for u in uniques]
    outside = sorted(set(cleaned) - position.keys())
    if outside:
        raise ValueError(f"{column.name} values {outside} are not in the layout {list(values)}")
    return np.array([position[c] for c in cleaned] + [position[UNKNOWN_GROUP]], dtype=np.int64)[raw]


@dataclass
class ExposureSums:
    """What the statistics of one key need from a set of searches, on a layout's flat group axis: ``totals`` of
    :data:`_SUMS` (shape (len(_SUMS), groups)), ``shown`` impressions and ``group_searches`` (searches showing the
    group) per group, the number of ``searches``, and the bootstrap ``replicates``: per resample, the resampled sums
    of the resampled tables (shape (n_boot, layout.replicate_width); None without a bootstrap).

    Sums of disjoint sets of searches add up (``+``): a window's sums are its days' sums, and so are its replicates
    when each day's searches are resampled on their own (a bootstrap stratified by day).
    """

    searches: int
    totals: np.ndarray
    shown: np.ndarray
    group_searches: np.ndarray
    replicates: np.ndarray | None

    def __add__(self, other: ExposureSums) -> ExposureSums:
        if (self.replicates is None) != (other.replicates is None):
            raise ValueError("cannot add sums with and without bootstrap replicates")
        replicates = None
        if self.replicates is not None and other.replicates is not None:
            replicates = self.replicates.astype(np.float64) + other.replicates
        return ExposureSums(self.searches + other.searches, self.totals + other.totals, self.shown + other.shown,
                            self.group_searches + other.group_searches, replicates)  # fmt: skip

    def pack(self) -> dict[str, Any]:
        """Plain values and bytes for storage (float64 sums, int64 search counts, float32 replicates)."""
        return {
            "searches": self.searches,
            "totals": self.totals.astype("<f8").tobytes(),
            "shown": self.shown.astype("<f8").tobytes(),
            "group_searches": self.group_searches.astype("<i8").tobytes(),
            "replicates": None if self.replicates is None else self.replicates.astype("<f4").tobytes(),
        }

    @classmethod
    def unpack(cls, layout: ExposureLayout, n_boot: int, searches: int, totals: bytes, shown: bytes,
               group_searches: bytes, replicates: bytes | None) -> ExposureSums:  # fmt: skip
        """The inverse of :meth:`pack` for ``layout`` and ``n_boot``; ValueError when the sizes do not match."""
        groups = layout.offsets[-1]
        arrays = (
            np.frombuffer(totals, dtype="<f8"),
            np.frombuffer(shown, dtype="<f8"),
            np.frombuffer(group_searches, dtype="<i8"),
        )
        if [a.size for a in arrays] != [len(_SUMS) * groups, groups, groups]:
            raise ValueError("stored exposure sums do not fit the layout")
        boot = None
        if replicates is not None:
            boot = np.frombuffer(replicates, dtype="<f4")
            if boot.size != n_boot * layout.replicate_width:
                raise ValueError("stored exposure replicates do not fit the layout and n_boot")
            boot = boot.reshape(n_boot, layout.replicate_width)
        return cls(int(searches), arrays[0].reshape(len(_SUMS), groups), arrays[1], arrays[2], boot)


def stratum_rng(seed: int, key_values: Sequence[Any], day: Any = None) -> np.random.Generator:
    """The random stream of one key's searches (of one day, when the bootstrap is stratified by day)."""
    parts = [*key_values] if day is None else [*key_values, str(day)]
    return np.random.default_rng([seed, stable_seed(*parts)])


def exposure_sums(
    table: pd.DataFrame, layout: ExposureLayout, rng: np.random.Generator | None, n_boot: int
) -> ExposureSums:
    """The :class:`ExposureSums` of one stratum's rows (one key, or one key and day): ``search_id``, the layout's
    dimensions and :data:`AGGREGATE_COLUMNS`. Searches are numbered in ``search_id`` order and resampled with
    replacement ``n_boot`` times from ``rng`` (no bootstrap when ``rng`` is None or ``n_boot`` is 0)."""
    search_codes = pd.factorize(table["search_id"], sort=True)[0].astype(np.int64)
    n_searches = int(search_codes.max()) + 1 if len(search_codes) else 0
    values = np.column_stack(
        [table[c].to_numpy(dtype=float) if c in table.columns else np.zeros(len(table)) for c in _SUMS]
    )
    shown = table["shown"].to_numpy(dtype=float)
    codes = layout.row_codes(table)
    offsets = layout.offsets
    totals = np.zeros((len(_SUMS), offsets[-1]))
    shown_by_group = np.zeros(offsets[-1])
    group_searches = np.zeros(offsets[-1], dtype=np.int64)
    for i, row_codes in enumerate(codes):
        size, at = layout.size(i), offsets[i]
        for j in range(len(_SUMS)):
            totals[j, at : at + size] = np.bincount(row_codes, weights=values[:, j], minlength=size)
        shown_by_group[at : at + size] = np.bincount(row_codes, weights=shown, minlength=size)
        pairs = np.bincount(search_codes * size + row_codes, minlength=n_searches * size)
        group_searches[at : at + size] = (pairs.reshape(n_searches, size) > 0).sum(axis=0)
    replicates = None
    if rng is not None and n_boot:
        replicates = _bootstrap(layout, codes, search_codes, n_searches, values, rng, n_boot)
    return ExposureSums(n_searches, totals, shown_by_group, group_searches, replicates)


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
    sums carry about 7 significant digits, far below the resampling noise).
    """
    matrix = np.zeros((n_searches, layout.replicate_width), np.float32)
    at = 0
    for i in layout.resampled:  # per search: the table's sums of each resampled column, group by group
        size = layout.size(i)
        flat = search_codes * size + codes[i]
        for j in _RESAMPLED:
            sums = np.bincount(flat, weights=values[:, j], minlength=n_searches * size)
            matrix[:, at : at + size] = sums.reshape(n_searches, size)
            at += size
    results = np.zeros((n_boot, matrix.shape[1]), dtype=np.float32)
    if n_searches == 0:
        return results
    chunk = max(1, min(n_boot, _MAX_CELLS // n_searches))
    for start in range(0, n_boot, chunk):
        rows = min(chunk, n_boot - start)
        draws = rng.integers(0, n_searches, size=(rows, n_searches))
        draws += (np.arange(rows) * n_searches)[:, None]
        counts = np.bincount(draws.ravel(), minlength=rows * n_searches).reshape(rows, n_searches)
        np.matmul(counts.astype(np.float32), matrix, out=results[start : start + rows])
    return results


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
        allowed = DIMENSION_VALUES.get(dims[0], ()) if len(dims) == 1 else ()
        present = sorted(labels[g] for g in range(len(labels)) if shown[g] > 0)
        keep_labels = present + [v for v in allowed if v not in present]
        index = {label: g for g, label in enumerate(labels)}
        keep = np.array([index[label] for label in keep_labels], dtype=np.int64)
        block = _Block(dims, keep_labels, sums.totals[:, columns][:, keep], shown[keep],
                       sums.group_searches[columns][keep])  # fmt: skip
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
    :data:`AGGREGATE_COLUMNS` (``merit_weight_sum`` optional), and optionally ``day``: with it, each day's searches
    are resampled on their own (stratified by day, :func:`stratum_rng` per key and day), as stored windows are.
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
    layout = ExposureLayout.build(settings, {d: pd.unique(aggregates[d]) for d in settings.dimensions})
    by_day = "day" in aggregates.columns
    sums_by_key: dict[tuple, ExposureSums] = {}
    grouped = aggregates.groupby(keys, sort=True, dropna=False, observed=True) if keys else [((), aggregates)]
    for key_values, table in grouped:
        key_values = key_values if isinstance(key_values, tuple) else (key_values,)
        strata = table.groupby("day", sort=True) if by_day else [(None, table)]
        for day, part in strata:
            sums = exposure_sums(part, layout, stratum_rng(seed, key_values, day), n_boot)
            sums_by_key[key_values] = sums_by_key[key_values] + sums if key_values in sums_by_key else sums
    return exposure_table(sums_by_key, layout, settings, keys=keys, n_boot=n_boot, has_merit=has_merit,
                          confidence=confidence)  # fmt: skip


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
    reference is chosen from (a mask over the groups)."""
    total = ranked.sum()
    populated = [i for i in range(len(groups)) if ranked[i] > 0]
    eligible = [i for i in populated if ranked[i] / total >= min_share]
    pool = eligible or populated
    mask = np.zeros(len(groups), dtype=bool)
    mask[pool] = True
    if not pool:
        return None, False, mask
    best = min(pool, key=lambda i: (-exposure[i], -ranked[i], groups[i]))
    return best, bool(eligible), mask


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
    rows: list[dict[str, Any]] = []
    for i, group in enumerate(block.groups):
        share = ranked[i] / total_ranked if total_ranked else math.nan
        excluded = any_eligible and not share >= settings.min_share
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
        compared = ranked[i] > 0 and not excluded
        row["undefined_reason"] = (
            (NO_RANKED_REASON if block.shown[i] else NO_SHOWN_REASON) if ranked[i] == 0
            else f"excluded: under {settings.min_share:.0%} of ranked impressions" if excluded
            else None
        )  # fmt: skip
        ref_scored = reference is not None and scored[reference] > 0 and score_sum[reference] > 0
        score_reason = (
            NO_SCORED_REASON if scored[i] == 0
            else ZERO_SCORE_REASON if score_sum[i] == 0
            else row["undefined_reason"] if not compared
            else "reference group has no scored impressions" if not ref_scored
            else None
        )  # fmt: skip
        if not has_merit and score_reason is None:
            score_reason = NO_MERIT_REASON
        row["score_undefined_reason"] = score_reason
        values = {
            "exposure": ranked[i] > 0,
            "skew": ranked[i] > 0,
            "ratio": compared,
            "treatment": compared and scored[i] > 0 and score_sum[i] > 0 and ref_scored,
            "merit": has_merit and scored[i] > 0 and not excluded,
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


def rank_findings(table: pd.DataFrame, threshold: float) -> pd.Series:
    """Rows that are findings: a significant exposure ratio, or a significant treatment ratio, below ``threshold``
    (statistically and practically significant; a significant 0.99 is not a finding)."""
    return is_finding(table, "significant", "exposure_ratio", threshold) | is_finding(
        table, "treatment_significant", "treatment_ratio", threshold
    )


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


__all__ = [
    "AGGREGATE_COLUMNS",
    "DEFAULT_N_BOOT",
    "DEFAULT_TOP_K",
    "EXPOSURE_COLUMNS",
    "ExposureLayout",
    "ExposureSums",
    "exposure_sums",
    "exposure_table",
    "position_weight",
    "rank_exposure",
    "rank_findings",
    "search_aggregates",
    "stratum_rng",
]
