"""Vectorised checks that decide whether parsed text values can be stored in ``selection_events``.

These are the table's own rules (types, NOT NULL, CHECK lists, column sizes), applied before the insert so that one
bad row is rejected with a reason instead of failing the whole batch. Rules about what is *valid* beyond what can be
stored (scores in [0, 1], ranks >= 1, no future timestamps, ...) belong to the Great Expectations suite.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fairness_pipeline.events.vocabulary import (
    DIMENSION_VALUES,
    EVENT_COLUMNS,
    EVENT_TYPES,
    MAX_LENGTHS,
    REQUIRED_COLUMNS,
    SCORE_MAX_STORABLE,
)

STORED_COLUMNS = EVENT_COLUMNS
"""Columns written to ``selection_events`` by ingestion; ``created_at`` takes the server's time."""


def check_rows(rows: list[list[str]]) -> tuple[pd.DataFrame, pd.Series]:
    """Type the text ``rows`` (``EVENT_COLUMNS`` order) and give each row's reject reason ('' when storable).

    Returns the typed frame (all rows, same order) and the reasons; reasons of a row are joined with '; '.
    """
    text = pd.DataFrame(rows, columns=list(EVENT_COLUMNS), dtype="string").fillna("")
    text = text.apply(lambda column: column.str.strip())
    reasons = pd.Series("", index=text.index, dtype="string")

    def flag(mask: pd.Series, message: pd.Series | str) -> None:
        mask = mask.fillna(False).astype(bool)
        if mask.any():
            added = message[mask] if isinstance(message, pd.Series) else message
            current = reasons[mask]
            reasons[mask] = current.where(current == "", current + "; ") + added

    for column in REQUIRED_COLUMNS:
        flag(text[column] == "", f"empty {column}")
    for column, limit in MAX_LENGTHS.items():
        flag(text[column].str.len() > limit, f"{column} longer than {limit} characters")

    flag(
        (text["event_type"] != "") & ~text["event_type"].isin(EVENT_TYPES),
        "unknown event_type '" + text["event_type"] + "'",
    )
    for column, allowed in DIMENSION_VALUES.items():
        flag((text[column] != "") & ~text[column].isin(allowed), f"unknown {column} '" + text[column] + "'")

    timestamps = pd.to_datetime(text["timestamp"], utc=True, errors="coerce", format="ISO8601")
    flag((text["timestamp"] != "") & timestamps.isna(), "bad timestamp '" + text["timestamp"] + "'")

    rank = pd.to_numeric(text["rank"].replace("", None), errors="coerce")
    bad_rank = (text["rank"] != "") & (rank.isna() | (rank != np.floor(rank)) | (rank.abs() > 2**31 - 1))
    flag(bad_rank, "bad rank '" + text["rank"] + "' (not an integer)")

    score = pd.to_numeric(text["score"].replace("", None), errors="coerce")
    bad_score = (text["score"] != "") & (score.isna() | ~np.isfinite(score) | (score.abs() > SCORE_MAX_STORABLE))
    flag(bad_score, "bad score '" + text["score"] + "' (not a number that NUMERIC(5,4) can hold)")

    typed = text.copy()
    typed["timestamp"] = timestamps
    typed["rank"] = rank.where(~bad_rank).round().astype("Int64")
    typed["score"] = score.where(~bad_score)
    for column in DIMENSION_VALUES:
        typed[column] = text[column].replace("", pd.NA)
    return typed, reasons
