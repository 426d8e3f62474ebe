"""Counting candidates from per-day arrays: hand-worked cases (the SQL and pandas oracles are in test_audit_assets)."""

from __future__ import annotations

import numpy as np
import pytest

from fairness_pipeline.events.vocabulary import DIMENSIONS
from fairness_pipeline.metrics.candidate_arrays import StageArrays, earliest_rows, stage_pair_cells


def _day(rows: list[tuple[int, float, tuple[int, int, int]]]) -> tuple[bytes, bytes, bytes]:
    """One stored day: (key, score, codes) rows as the big-endian bytes PostgreSQL writes."""
    keys = np.array([k for k, _, _ in rows], dtype=">i8").tobytes()
    scores = np.array([s for _, s, _ in rows], dtype=">f8").tobytes()
    codes = np.array([c for _, _, c in rows], dtype=">i2").reshape(-1).tobytes()
    return keys, scores, codes


def test_earliest_rows_keep_each_keys_first_row() -> None:
    # rows in day order: key 7 on days 1 and 3, key 2 on days 2 and 3, key 5 on day 3
    keys = np.array([7, 2, 7, 2, 5], dtype=np.int64)
    assert earliest_rows(keys).tolist() == [1, 4, 0]  # in key order: 2 (row 1), 5 (row 4), 7 (row 0)
    assert earliest_rows(np.zeros(0, dtype=np.int64)).tolist() == []


def test_stage_pair_cells_by_hand() -> None:
    faang, startup = (1, 0, 0), (3, 0, 0)  # company_tier codes: faang, startup; other dimensions missing
    shown = StageArrays.concatenate(
        [
            _day([(1, 0.5, faang), (2, 0.4, faang), (3, 0.3, startup)]),  # day 1
            _day([(1, 0.9, startup), (4, np.nan, startup)]),  # day 2: candidate 1 again, in another group
        ]
    )
    clicked = StageArrays.concatenate([_day([(1, 0.5, faang)]), _day([(4, 0.1, startup), (9, 0.2, faang)])])
    cells = stage_pair_cells("t1", {"shown": shown, "clicked": clicked}, [("shown", "clicked")], ["shown->clicked"])
    by_tier = cells.set_index("company_tier")
    # candidate 1 counts once, in faang (its first day); 9 was clicked without being shown: not in the population
    assert by_tier.loc["faang", ["n", "x"]].tolist() == [2, 1]
    assert by_tier.loc["startup", ["n", "x"]].tolist() == [2, 1]
    assert cells["experience_band"].isna().all() and list(cells.columns) == [
        "tenant_id",
        "stage_pair",
        *DIMENSIONS,
        "n",
        "x",
    ]
    assert stage_pair_cells("t1", {"clicked": clicked}, [("shown", "clicked")], ["shown->clicked"]).empty


def test_codes_outside_the_vocabulary_are_refused() -> None:
    with pytest.raises(ValueError, match="company_tier values outside the vocabulary"):
        StageArrays.concatenate([_day([(1, 0.5, (-1, 0, 0))])])
