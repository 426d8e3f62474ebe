"""Log selection events from an application's request path.

The logging functions never raise: a search must not fail because bias logging did. They return a result that says
what happened; rows the table cannot hold are kept in ``selection_event_rejects`` with the reason, like ingestion.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from fairness_pipeline.events.model import SelectionEvent
from fairness_pipeline.ingest.loader import IngestCounts, load_chunk
from fairness_pipeline.ingest.reader import ParsedChunk

logger = logging.getLogger(__name__)

API_SOURCE = "api"


@dataclass(frozen=True)
class LogResult:
    counts: IngestCounts
    error: str | None = None
    """Set when nothing could be written (e.g. the database is unreachable); the events were not stored."""

    @property
    def ok(self) -> bool:
        return self.error is None and self.counts.rejected == 0


def log_selection_events_batch(conn, events: Sequence[SelectionEvent], *, source: str = API_SOURCE) -> LogResult:
    """Write ``events`` with ``ON CONFLICT (event_id) DO NOTHING`` in one transaction; never raises."""
    if not events:
        return LogResult(IngestCounts())
    chunk = ParsedChunk(
        line_numbers=list(range(1, len(events) + 1)),  # position in the batch
        raw_records=[repr(event) for event in events],
        rows=[event.as_row() for event in events],
    )
    try:
        counts = load_chunk(conn, chunk, source)
    except Exception as exc:
        logger.error("failed to log %d selection event(s): %s", len(events), exc)
        return LogResult(IngestCounts(read=len(events)), error=f"{type(exc).__name__}: {exc}")
    if counts.rejected:
        logger.warning(
            "%d of %d selection event(s) rejected; see selection_event_rejects", counts.rejected, len(events)
        )
    return LogResult(counts)


def log_selection_event(conn, event: SelectionEvent, *, source: str = API_SOURCE) -> LogResult:
    """Write one event; never raises."""
    return log_selection_events_batch(conn, [event], source=source)
