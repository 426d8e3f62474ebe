"""The exposure audit's group axis: the per-search sums it reads and the fixed layout of every table's groups.

Private to ``audits.exposure`` (its public names are re-exported there).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fairness_pipeline.audits._common import stable_seed
from fairness_pipeline.catalogue import load_catalogue
from fairness_pipeline.events.vocabulary import DIMENSION_VALUES, UNKNOWN_GROUP
from fairness_pipeline.metrics.selection_rates import GROUP_SEPARATOR
from fairness_pipeline.metrics.window import AnalysisSettings, window_dimension_sets

DEFAULT_TOP_K = 10

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


def position_weight(rank: Any) -> Any:
    """v(j) = 1 / log2(1 + j), elementwise (rank >= 1)."""
    return 1.0 / np.log2(1.0 + np.asarray(rank, dtype=float))


@dataclass(frozen=True)
class ExposureLayout:
    """Fixed group columns of every (dimension) table: all combinations of each dimension's values, ``unknown``
    included, so that sums of different days and searches line up and can be added.

    ``tables`` are the dimension sets of the impact tables (``metrics.window.window_dimension_sets``) in order: the
    event dimensions and their pairs, then the catalogue's attribute dimensions (self-identified ``sex``,
    ``race_ethnicity``) and the catalogue intersections holding one; ``values`` the sorted values per dimension. A
    single dimension that is part of an intersection is *derived*: its resampled sums are those of the first such
    intersection's groups, added up, so only the other tables are resampled (``resampled``).
    """

    tables: tuple[tuple[str, ...], ...]
    values: dict[str, tuple[str, ...]]

    @classmethod
    def build(
        cls,
        settings: AnalysisSettings,
        present: dict[str, Any] | None = None,
        *,
        attributes: Sequence[str] | None = None,
    ) -> ExposureLayout:
        """The layout of ``settings``' dimensions and of ``attributes`` (default: the catalogue's attribute
        dimensions) over their allowed values plus any ``present`` values (per dimension)."""
        present = present or {}
        catalogue = load_catalogue()
        attributes = catalogue.attribute_dimensions if attributes is None else tuple(attributes)
        values = {}
        for dim in (*settings.dimensions, *attributes):
            seen = {_clean(v) for v in present.get(dim, ())}
            allowed = allowed_values(dim)
            values[dim] = tuple(sorted(set(allowed) | seen | {UNKNOWN_GROUP}))
        tables = tuple(window_dimension_sets(settings, (*settings.dimensions, *attributes)))
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
        """Each row's column within each table (a catalogue attribute the frame lacks as a column is unknown on every
        row: no self-identification). Raises ValueError on a value outside the layout or a missing event dimension."""
        attributes = load_catalogue().attribute_dimensions
        per_dim = {
            dim: _value_codes(frame[dim], self.values[dim])
            if dim in frame.columns or dim not in attributes
            else np.full(len(frame), self.values[dim].index(UNKNOWN_GROUP), dtype=np.int64)
            for dim in self.values
        }
        codes = []
        for i, dims in enumerate(self.tables):
            combined = np.zeros(len(frame), dtype=np.int64)
            for dim, size in zip(dims, self.shape(i), strict=True):
                combined = combined * size + per_dim[dim]
            codes.append(combined)
        return codes


def allowed_values(dimension: str) -> tuple[str, ...]:
    """The declared values of an event dimension (the vocabulary) or of a catalogue attribute dimension."""
    if dimension in DIMENSION_VALUES:
        return DIMENSION_VALUES[dimension]
    catalogue = load_catalogue()
    return catalogue.values(dimension) if dimension in catalogue else ()


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
