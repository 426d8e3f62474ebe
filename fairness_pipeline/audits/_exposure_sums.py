"""The exposure audit's sums of a set of searches, which add up across days and are stored once per day.

Private to ``audits.exposure`` (its public names are re-exported there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fairness_pipeline.audits._exposure_bootstrap import _bootstrap
from fairness_pipeline.audits._exposure_layout import _SUMS, ExposureLayout


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
        return ExposureSums(
            self.searches + other.searches,
            self.totals + other.totals,
            self.shown + other.shown,
            self.group_searches + other.group_searches,
            replicates,
        )

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
    def unpack(
        cls,
        layout: ExposureLayout,
        n_boot: int,
        searches: int,
        totals: bytes,
        shown: bytes,
        group_searches: bytes,
        replicates: bytes | None,
    ) -> ExposureSums:
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
