"""Load in-memory event frames (from the generator or an application) through the same checks as files."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from fairness_pipeline.events.vocabulary import EVENT_COLUMNS
from fairness_pipeline.ingest.loader import IngestCounts, load_chunk
from fairness_pipeline.ingest.reader import ParsedChunk


def frame_to_chunk(frame: pd.DataFrame, first_position: int = 1) -> ParsedChunk:
    """Text rows of ``frame`` (``EVENT_COLUMNS``), numbered by position from ``first_position``."""
    text = frame[list(EVENT_COLUMNS)].copy()
    text["timestamp"] = pd.to_datetime(text["timestamp"], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S.%f%z")
    text = text.astype("string").fillna("")
    rows = text.to_numpy(dtype=object).tolist()
    positions = list(range(first_position, first_position + len(rows)))
    return ParsedChunk(line_numbers=positions, raw_records=[",".join(row) for row in rows], rows=rows)


def load_frames(conn, frames: Iterable[pd.DataFrame], *, source: str) -> IngestCounts:
    """Store each frame as one chunk (one transaction) and return the total counts."""
    totals = IngestCounts()
    position = 1
    for frame in frames:
        totals += load_chunk(conn, frame_to_chunk(frame, position), source)
        position += len(frame)
    return totals
