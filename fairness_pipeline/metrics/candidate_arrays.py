"""Counting a window's candidates from per-day arrays: the numpy counterpart of the SQL that sorts candidate rows.

Each day stores, per tenant and event type, its candidates as arrays in the same order (``candidate_day_arrays``):
a 64-bit key of the candidate id, the score and the dimension codes of the candidate's first event of that type on the
day. A window concatenates its days in day order; a candidate's first event of a type in the window is then the row
of its earliest day (:func:`earliest_rows`). Two ids with the same 64-bit key would count as one candidate: for a
million candidates in a window the chance of any such pair is about 3 in 100 million.

Dimension codes are each value's 1-based position in its vocabulary (``events.vocabulary.DIMENSION_VALUES``), 0 for a
missing value; negative codes (a value outside the vocabulary) are refused.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fairness_pipeline.events.vocabulary import DIMENSION_VALUES, DIMENSIONS


@dataclass(frozen=True)
class StageArrays:
    """One tenant's rows of one event type over a window, days in order: ``keys`` (int64), ``scores`` (float64, NaN
    when missing) and ``codes`` (int64, one column per dimension of :data:`DIMENSIONS`)."""

    keys: np.ndarray
    scores: np.ndarray
    codes: np.ndarray

    @classmethod
    def concatenate(cls, days: Sequence[tuple[bytes, bytes, bytes]]) -> StageArrays:
        """From the stored big-endian bytes of each day (keys, scores, codes), in day order."""
        keys = np.concatenate([np.frombuffer(k, dtype=">i8") for k, _, _ in days]).astype(np.int64)
        scores = np.concatenate([np.frombuffer(s, dtype=">f8") for _, s, _ in days]).astype(np.float64)
        codes = np.concatenate([np.frombuffer(c, dtype=">i2") for _, _, c in days]).astype(np.int64)
        codes = codes.reshape(len(keys), len(DIMENSIONS))
        for i, dim in enumerate(DIMENSIONS):
            if (codes[:, i] < 0).any():
                raise ValueError(f"{dim} values outside the vocabulary {list(DIMENSION_VALUES[dim])}")
        return cls(keys, scores, codes)

    def first(self) -> StageArrays:
        """Each candidate's row of its earliest day, in key order."""
        rows = earliest_rows(self.keys)
        return StageArrays(self.keys[rows], self.scores[rows], self.codes[rows])


def earliest_rows(keys: np.ndarray) -> np.ndarray:
    """Positions of the first row of each key, rows being given in time order (days ascending): the rows of each
    candidate's earliest day, in key order. One stable sort, no Python loop."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    return order[first]


def _cell_sizes() -> list[int]:
    return [len(DIMENSION_VALUES[d]) + 1 for d in DIMENSIONS]


def cell_frame(codes: np.ndarray, counts: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per combination of dimension values present (any count > 0): the dimension values (None when missing) and the
    ``counts``, each summed by ``np.bincount`` over the rows' ``codes``."""
    sizes = _cell_sizes()
    combined = np.ravel_multi_index(tuple(codes.T), sizes) if len(codes) else np.zeros(0, dtype=np.int64)
    summed = {
        name: np.bincount(combined, weights=values, minlength=math.prod(sizes)) for name, values in counts.items()
    }
    present = np.flatnonzero(np.sum(list(summed.values()), axis=0) > 0)
    frame = pd.DataFrame(index=range(len(present)))
    for dim, position in zip(DIMENSIONS, np.unravel_index(present, sizes), strict=True):
        frame[dim] = np.array([None, *DIMENSION_VALUES[dim]], dtype=object)[position]
    for name, values in summed.items():
        frame[name] = values[present].astype(np.int64)
    return frame


def stage_pair_cells(
    tenant_id: str, stages: dict[str, StageArrays], stage_pairs: Sequence[tuple[str, str]], pair_names: Sequence[str]
) -> pd.DataFrame:
    """A tenant's window cells (``store.analysis.WINDOW_CELLS``'s columns: tenant_id, stage_pair, the dimensions,
    n, x): per stage pair, the candidates with a baseline event in the window, in the groups of their first baseline
    event (``n``), and those of them with a selection event in the window (``x``); cells with n = 0 left out."""
    firsts = {stage: arrays.first() for stage, arrays in stages.items()}
    parts = []
    for (baseline, selection), name in zip(stage_pairs, pair_names, strict=True):
        population = firsts.get(baseline)
        if population is None or not len(population.keys):
            continue
        selected_keys = firsts[selection].keys if selection in firsts else np.zeros(0, dtype=np.int64)
        selected = np.isin(population.keys, selected_keys, assume_unique=True)  # both hold each key once
        cells = cell_frame(population.codes, {"n": np.ones(len(selected)), "x": selected.astype(float)})
        cells.insert(0, "stage_pair", name)
        cells.insert(0, "tenant_id", tenant_id)
        parts.append(cells)
    columns = ["tenant_id", "stage_pair", *DIMENSIONS, "n", "x"]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


__all__ = ["StageArrays", "cell_frame", "earliest_rows", "stage_pair_cells"]
