"""SQL of the validation layer: a day of raw events read for the suite, its validated and quarantined rows replaced.

Days are UTC: ``%(day_start)s`` and ``%(day_end)s`` are the instants that bound the day.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from psycopg2 import sql

from fairness_pipeline.events.vocabulary import EVENT_COLUMNS
from fairness_pipeline.store.events import SELECTION_EVENTS
from fairness_pipeline.store.schema import Column, Table

VALIDATED_SELECTION_EVENTS = Table(
    "validated_selection_events",
    columns=(
        *SELECTION_EVENTS.columns,
        Column("validated_at", "timestamp with time zone", "when the row passed the suite", nullable=False),
    ),
    key=SELECTION_EVENTS.key,
    description="Raw events of the day that pass the Great Expectations suite (the stored row as it is).",
)

QUARANTINED_SELECTION_EVENTS = Table(
    "quarantined_selection_events",
    columns=(
        *SELECTION_EVENTS.columns,
        Column("failed_expectations", "text[]", "every expectation the row fails", nullable=False),
        Column("quarantined_at", "timestamp with time zone", "when the row was quarantined", nullable=False),
    ),
    key=SELECTION_EVENTS.key,
    description="Raw events of the day that fail the suite, with the expectations they fail.",
)


RAW_DAY_EVENTS = """
COPY (
    SELECT event_id, timestamp, candidate_id, event_type, search_id, tenant_id, user_id_hash,
           company_tier, experience_band, specialty, rank, score, created_at
    FROM selection_events
    WHERE timestamp >= {day_start} AND timestamp < {day_end}
    ORDER BY event_id
) TO STDOUT WITH (FORMAT csv, HEADER true, NULL '\\N')
"""
"""COPY cannot take bind parameters: the two placeholders are filled with ``psycopg2.sql.Literal`` values. NULL is
written as ``\\N`` so that an empty string stays distinguishable from a missing value."""

DELETE_VALIDATED_DAY = """
DELETE FROM validated_selection_events WHERE timestamp >= %(day_start)s AND timestamp < %(day_end)s
"""

DELETE_QUARANTINED_DAY = """
DELETE FROM quarantined_selection_events WHERE timestamp >= %(day_start)s AND timestamp < %(day_end)s
"""

INSERT_QUARANTINED = """
INSERT INTO quarantined_selection_events
SELECT e.*, q.failed_expectations
FROM selection_events e
JOIN jsonb_to_recordset(%(quarantine)s::jsonb) AS q(event_id TEXT, failed_expectations TEXT[])
  ON q.event_id = e.event_id
"""

INSERT_VALIDATED_DAY = """
INSERT INTO validated_selection_events
SELECT e.*
FROM selection_events e
WHERE e.timestamp >= %(day_start)s AND e.timestamp < %(day_end)s
  AND NOT EXISTS (SELECT 1 FROM quarantined_selection_events q WHERE q.event_id = e.event_id)
"""

DAY_RECONCILIATION = """
SELECT
    (SELECT count(*) FROM selection_events WHERE timestamp >= %(day_start)s AND timestamp < %(day_end)s),
    (SELECT count(*) FROM validated_selection_events WHERE timestamp >= %(day_start)s AND timestamp < %(day_end)s),
    (SELECT count(*) FROM quarantined_selection_events WHERE timestamp >= %(day_start)s AND timestamp < %(day_end)s)
"""

QUARANTINE_REASONS_DAY = """
SELECT reason, count(*)
FROM quarantined_selection_events, unnest(failed_expectations) AS reason
WHERE timestamp >= %(day_start)s AND timestamp < %(day_end)s
GROUP BY reason ORDER BY count(*) DESC, reason
"""


NULL_MARKER = "\\N"


def read_raw_day(cur, bounds: Mapping[str, Any]) -> pd.DataFrame:
    """One day of raw events through COPY (fast), typed as the validation suite expects."""
    buffer = io.StringIO()
    statement = sql.SQL(RAW_DAY_EVENTS).format(
        day_start=sql.Literal(bounds["day_start"]), day_end=sql.Literal(bounds["day_end"])
    )
    cur.copy_expert(statement.as_string(cur.connection), buffer)
    buffer.seek(0)
    text_columns = [c for c in EVENT_COLUMNS if c not in ("timestamp", "rank", "score")]
    frame = pd.read_csv(
        buffer,
        dtype={c: "string" for c in text_columns} | {"rank": "Int64", "score": "float64"},
        keep_default_na=False,
        na_values=[NULL_MARKER],
    )
    for column in ("timestamp", "created_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    return frame


def replace_validated_day(
    cur, bounds: Mapping[str, Any], event_ids: Sequence[str], failed: Sequence[Sequence[str]]
) -> tuple[int, int, int]:
    """Replace the day's validated and quarantined rows: the events named in ``event_ids`` are quarantined with
    their failed expectations, every other raw event of the day is validated. Returns the day's counts (raw,
    validated, quarantined) as stored afterwards."""
    quarantine = [
        {"event_id": event_id, "failed_expectations": list(names)}
        for event_id, names in zip(event_ids, failed, strict=True)
    ]
    cur.execute(DELETE_VALIDATED_DAY, bounds)
    cur.execute(DELETE_QUARANTINED_DAY, bounds)
    cur.execute(INSERT_QUARANTINED, {"quarantine": json.dumps(quarantine)})
    cur.execute(INSERT_VALIDATED_DAY, bounds)
    return day_counts(cur, bounds)


def day_counts(cur, bounds: Mapping[str, Any]) -> tuple[int, int, int]:
    """The day's raw, validated and quarantined event counts."""
    cur.execute(DAY_RECONCILIATION, bounds)
    raw, validated, quarantined = cur.fetchone()
    return raw, validated, quarantined
