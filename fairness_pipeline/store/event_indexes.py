"""The BRIN indexes of ``selection_events`` (migration 019) after a bulk load.

Block ranges filled after a BRIN index was built carry no summary until a VACUUM, and a scan must read every such
range: after a load, a day's query would read the whole load. Summarising the new ranges reads them once.
"""

from __future__ import annotations

EVENT_BRIN_INDEXES = ("idx_selection_events_timestamp_brin", "idx_selection_events_created_at_brin")

SUMMARIZE_NEW_RANGES = """
SELECT coalesce(sum(brin_summarize_new_values(to_regclass(name))), 0)::bigint
FROM unnest(%(indexes)s::text[]) AS name
WHERE to_regclass(name) IS NOT NULL
"""
"""Summarise the block ranges without a summary; returns how many were summarised (indexes absent are skipped)."""


def summarize_event_ranges(cur) -> int:
    """Summarise the event BRIN indexes' new block ranges; the number of ranges summarised."""
    cur.execute(SUMMARIZE_NEW_RANGES, {"indexes": list(EVENT_BRIN_INDEXES)})
    return cur.fetchone()[0]
