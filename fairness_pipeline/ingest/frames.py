"""Load in-memory event frames (from the generator or an application) through the same checks as files."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fairness_pipeline.events.vocabulary import EVENT_COLUMNS
from fairness_pipeline.ingest.loader import IngestCounts, store_all
from fairness_pipeline.ingest.prepared import PreparedChunk, prepare_chunk
from fairness_pipeline.ingest.reader import ParsedChunk


def frame_to_chunk(frame: pd.DataFrame, first_position: int = 1) -> ParsedChunk:
    """Text values of ``frame`` (``EVENT_COLUMNS``), numbered by position from ``first_position``.

    Timestamps become ISO 8601 UTC text (``2026-01-05T13:45:12.123456+00:00``); missing values are ''.
    """
    columns = [_timestamp_text(frame[name]) if name == "timestamp" else _text(frame[name]) for name in EVENT_COLUMNS]
    raw_records = pc.binary_join_element_wise(*columns, ",").to_pylist()
    positions = list(range(first_position, first_position + len(frame)))
    return ParsedChunk(line_numbers=positions, raw_records=raw_records, columns=columns)


def _text(series: pd.Series) -> pa.Array:
    return _array(pa.array(series.astype("string").fillna(""), pa.string()))


def _timestamp_text(series: pd.Series) -> pa.Array:
    stamps = pd.to_datetime(series, utc=True).dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    text = pa.array(np.datetime_as_string(stamps, unit="us").astype(object), pa.string())
    text = pc.binary_join_element_wise(text, "+00:00", "")
    return _array(pc.if_else(pa.array(np.isnat(stamps)), "", text))


def _array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def load_frames(conn, frames: Iterable[pd.DataFrame], *, source: str) -> IngestCounts:
    """Store each frame as one chunk (one transaction) and return the total counts."""

    def prepared() -> Iterator[PreparedChunk]:
        position = 1
        for frame in frames:
            yield prepare_chunk(frame_to_chunk(frame, position), direct=True)
            position += len(frame)

    return store_all(conn, prepared(), source)
