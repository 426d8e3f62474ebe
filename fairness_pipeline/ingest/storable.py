"""Vectorised checks that decide whether parsed text values can be stored in ``selection_events``.

These are the table's own rules (types, NOT NULL, CHECK lists, column sizes), applied before the insert so that one
bad row is rejected with a reason instead of failing the whole batch. Rules about what is *valid* beyond what can be
stored (scores in [0, 1], ranks >= 1, no future timestamps, ...) belong to the Great Expectations suite.

The checks run on Arrow arrays; numbers are parsed once per distinct text (ranks and scores repeat a lot) with the same
pandas functions as ever, and reasons are only written for the rows that fail.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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

FREE_TEXT_COLUMNS: tuple[str, ...] = tuple(c for c in REQUIRED_COLUMNS if c not in ("timestamp", "event_type"))
"""Columns stored as the text given (other columns must parse or be one of a list)."""

INT32_MAX = 2**31 - 1
ISO_DATE_START = r"^[0-9]{4}-?[0-9]{2}-?[0-9]{2}"
"""How a timestamp starts: an ISO 8601 calendar date (extended or basic format)."""


@dataclass
class CheckedColumns:
    """Typed values of every row (``STORED_COLUMNS``), which rows cannot be stored, and why (for those rows only)."""

    table: pa.Table
    bad: np.ndarray
    reasons: list[str]


def text_columns(rows: list[list[str]]) -> list[pa.Array]:
    """Rows of text values (``EVENT_COLUMNS`` order) as Arrow string arrays; None is ''."""
    if not rows:
        return [pa.array([], pa.string()) for _ in EVENT_COLUMNS]
    return [pa.array(list(values), pa.string()).fill_null("") for values in zip(*rows, strict=True)]


def check_columns(columns: Sequence[pa.Array]) -> CheckedColumns:
    """Type the text ``columns`` (``EVENT_COLUMNS`` order) and find the rows the table cannot hold.

    Values are stripped of surrounding whitespace first. The reasons of a row are joined with '; '.
    """
    text = {name: _strip(column) for name, column in zip(EVENT_COLUMNS, columns, strict=True)}
    rows = len(text["event_id"])
    empty = {name: _numpy(pc.equal(column, "")) for name, column in text.items()}
    rules: list[tuple[np.ndarray, Callable[[int], str]]] = []

    def flag(mask: np.ndarray, message: Callable[[int], str]) -> None:
        rules.append((mask, message))

    def quoted(name: str, template: str) -> Callable[[int], str]:
        return lambda i: template.format(text[name][i].as_py())

    for name in REQUIRED_COLUMNS:
        flag(empty[name], lambda i, name=name: f"empty {name}")
    for name, limit in MAX_LENGTHS.items():
        flag(_numpy(pc.utf8_length(text[name])) > limit, lambda i, n=name, k=limit: f"{n} longer than {k} characters")
    for name in FREE_TEXT_COLUMNS:  # PostgreSQL text cannot hold NUL
        flag(_numpy(pc.match_substring(text[name], "\x00")), lambda i, name=name: f"NUL character in {name}")

    flag(
        ~empty["event_type"] & ~_numpy(pc.is_in(text["event_type"], pa.array(EVENT_TYPES))),
        quoted("event_type", "unknown event_type '{}'"),
    )
    for name, allowed in DIMENSION_VALUES.items():
        known = _numpy(pc.is_in(text[name], pa.array(allowed)))
        flag(~empty[name] & ~known, quoted(name, f"unknown {name} '{{}}'"))

    timestamps = pd.to_datetime(
        pd.Series(text["timestamp"].to_numpy(zero_copy_only=False), dtype="string"),
        utc=True,
        errors="coerce",
        format="ISO8601",
    )
    # pandas also reads words ("now", "today") and partial dates ("2026"): a timestamp starts with a calendar date
    dated = _numpy(pc.match_substring_regex(text["timestamp"], ISO_DATE_START))
    flag(~empty["timestamp"] & (timestamps.isna().to_numpy() | ~dated), quoted("timestamp", "bad timestamp '{}'"))

    rank, bad_rank = _numbers(text["rank"], _bad_rank)
    flag(bad_rank, quoted("rank", "bad rank '{}' (not an integer)"))
    score, bad_score = _numbers(text["score"], _bad_score)
    flag(bad_score, quoted("score", "bad score '{}' (not a number that NUMERIC(5,4) can hold)"))

    bad = np.zeros(rows, dtype=bool)
    for mask, _ in rules:
        bad |= mask
    positions = np.flatnonzero(bad).tolist()
    found: dict[int, list[str]] = {i: [] for i in positions}
    for mask, message in rules:
        for i in np.flatnonzero(mask).tolist():
            found[i].append(message(i))

    typed = dict(text)
    typed["timestamp"] = pa.array(timestamps)
    no_rank = np.isnan(rank)
    typed["rank"] = pa.array(np.round(np.where(no_rank, 0, rank)).astype(np.int64), mask=no_rank)
    typed["score"] = pa.array(score, mask=np.isnan(score))
    for name in DIMENSION_VALUES:
        typed[name] = pc.if_else(empty[name], pa.scalar(None, pa.string()), text[name])
    table = pa.table({name: typed[name] for name in STORED_COLUMNS})
    return CheckedColumns(table, bad, ["; ".join(found[i]) for i in positions])


def _numpy(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return values.to_numpy(zero_copy_only=False)


def _strip(column: pa.Array) -> pa.Array:
    """``str.strip()`` of every value: only values that start or end with a space or a non-ASCII character are
    touched, and those with Python's own ``strip``."""
    column = column.fill_null("")
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not pa.types.is_string(column.type):
        column = column.cast(pa.string())
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int32)[column.offset : column.offset + len(column) + 1]
    data_buffer = column.buffers()[2]
    if data_buffer is None or offsets[-1] == offsets[0]:
        return column
    data = np.frombuffer(data_buffer, dtype=np.uint8)
    starts, ends = offsets[:-1], offsets[1:]
    filled = np.flatnonzero(ends > starts)
    first, last = data[starts[filled]], data[ends[filled] - 1]
    # Whitespace is ASCII below '!' or non-ASCII (whose UTF-8 bytes are all >= 0x80).
    edge = (first <= 0x20) | (first >= 0x80) | (last <= 0x20) | (last >= 0x80)
    touched = filled[edge]
    if not len(touched):
        return column
    values = column.take(pa.array(touched)).to_pylist()
    stripped = [value.strip() for value in values]
    changed = [k for k, (a, b) in enumerate(zip(values, stripped, strict=True)) if a != b]
    if not changed:
        return column
    mask = np.zeros(len(column), dtype=bool)
    mask[touched[changed]] = True
    return pc.replace_with_mask(column, pa.array(mask), pa.array([stripped[k] for k in changed], pa.string()))


def _numbers(column: pa.Array, is_bad: Callable[[pd.Series, pd.Series], pd.Series]) -> tuple[np.ndarray, np.ndarray]:
    """Parse each distinct text once with ``pd.to_numeric``: values (NaN when empty or bad) and the bad mask."""
    encoded = pc.dictionary_encode(column)
    texts = pd.Series(encoded.dictionary.to_pylist(), dtype="string")
    numbers = pd.to_numeric(texts.replace("", None), errors="coerce")
    bad = ((texts != "") & is_bad(texts, numbers)).to_numpy(dtype=bool)
    values = numbers.astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
    values[bad] = np.nan
    codes = _numpy(encoded.indices)
    return values[codes], bad[codes]


def _bad_rank(texts: pd.Series, rank: pd.Series) -> pd.Series:
    return rank.isna() | (rank != np.floor(rank)) | (rank.abs() > INT32_MAX)


def _bad_score(texts: pd.Series, score: pd.Series) -> pd.Series:
    return score.isna() | ~np.isfinite(score) | (score.abs() > SCORE_MAX_STORABLE)
