"""SQL of selection_events: ingestion (COPY into a session-local staging table, then one insert that skips
duplicates), what is stored, and the tenants the command line knows."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fairness_pipeline.ingest.counts import IngestCounts
from fairness_pipeline.ingest.reader import Reject
from fairness_pipeline.ingest.storable import STORED_COLUMNS
from fairness_pipeline.store.schema import Column, Table, transaction

if TYPE_CHECKING:
    import pyarrow as pa

    from fairness_pipeline.ingest.prepared import PreparedChunk

SELECTION_EVENTS = Table(
    "selection_events",
    description="Every funnel event as logged or ingested, one row per event_id.",
    columns=(
        Column("event_id", "character varying(64)", "unique event id", nullable=False),
        Column("timestamp", "timestamp with time zone", "when the event happened (partition day, UTC)", nullable=False),
        Column("candidate_id", "character varying(255)", "candidate (never shown in reports)", nullable=False),
        Column("event_type", "character varying(50)", "funnel stage", nullable=False),
        Column("search_id", "character varying(255)", "search the candidate was shown in", nullable=False),
        Column("tenant_id", "character varying(255)", "employer", nullable=False),
        Column("user_id_hash", "character varying(64)", "SHA-256 of the recruiter", nullable=False),
        Column("company_tier", "character varying(50)", "proxy dimension; NULL = unknown"),
        Column("experience_band", "character varying(20)", "proxy dimension; NULL = unknown"),
        Column("specialty", "character varying(50)", "proxy dimension; NULL = unknown"),
        Column("rank", "integer", "position in the search results"),
        Column("score", "numeric(5,4)", "match score"),
        Column("created_at", "timestamp with time zone", "when the row was stored", nullable=False),
    ),
    key=("event_id",),
)

SELECTION_EVENT_REJECTS = Table(
    "selection_event_rejects",
    description="Input records that could not be stored, with their source, line number and reason.",
    columns=(
        Column("id", "bigint", nullable=False),
        Column("source", "text", nullable=False),
        Column("line_number", "bigint"),
        Column("raw_record", "text", nullable=False),
        Column("reason", "text", nullable=False),
        Column("received_at", "timestamp with time zone", nullable=False),
    ),
    key=("id",),
)


CREATE_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS selection_events_staging (
    line_number     BIGINT,
    event_id        VARCHAR(64),
    timestamp       TIMESTAMPTZ,
    candidate_id    VARCHAR(255),
    event_type      VARCHAR(50),
    search_id       VARCHAR(255),
    tenant_id       VARCHAR(255),
    user_id_hash    VARCHAR(64),
    company_tier    VARCHAR(50),
    experience_band VARCHAR(20),
    specialty       VARCHAR(50),
    rank            INTEGER,
    score           NUMERIC(5, 4)
) ON COMMIT DELETE ROWS
"""

COPY_STAGING = """
COPY selection_events_staging (line_number, event_id, timestamp, candidate_id, event_type, search_id, tenant_id,
    user_id_hash, company_tier, experience_band, specialty, rank, score)
FROM STDIN WITH (FORMAT csv)
"""

INSERT_FROM_STAGING = """
INSERT INTO selection_events (event_id, timestamp, candidate_id, event_type, search_id, tenant_id, user_id_hash,
    company_tier, experience_band, specialty, rank, score)
SELECT event_id, timestamp, candidate_id, event_type, search_id, tenant_id, user_id_hash,
    company_tier, experience_band, specialty, rank, score
FROM selection_events_staging
ORDER BY line_number
ON CONFLICT (event_id) DO NOTHING
"""

STAGED_ROWS = """
SELECT line_number FROM selection_events_staging ORDER BY line_number
"""

INSERT_ONE_FROM_STAGING = """
INSERT INTO selection_events (event_id, timestamp, candidate_id, event_type, search_id, tenant_id, user_id_hash,
    company_tier, experience_band, specialty, rank, score)
SELECT event_id, timestamp, candidate_id, event_type, search_id, tenant_id, user_id_hash,
    company_tier, experience_band, specialty, rank, score
FROM selection_events_staging
WHERE line_number = %s
ON CONFLICT (event_id) DO NOTHING
"""

COPY_REJECTS = """
COPY selection_event_rejects (source, line_number, raw_record, reason) FROM STDIN WITH (FORMAT csv)
"""

COUNT_REJECTS_FOR_SOURCE = "SELECT count(*) FROM selection_event_rejects WHERE source = %s"

CONFLICTING_STAGED_LINES = """
SELECT s.line_number
FROM selection_events_staging AS s
JOIN selection_events AS e USING (event_id)
WHERE (s.timestamp, s.candidate_id, s.event_type, s.search_id, s.tenant_id, s.user_id_hash, s.company_tier,
       s.experience_band, s.specialty, s.rank, s.score)
    IS DISTINCT FROM
      (e.timestamp, e.candidate_id, e.event_type, e.search_id, e.tenant_id, e.user_id_hash, e.company_tier,
       e.experience_band, e.specialty, e.rank, e.score)
ORDER BY s.line_number
"""
"""Staged rows whose ``event_id`` is stored with other content (run after the insert: a row just inserted matches
itself; of two staged rows with one id, the one not inserted is compared with the one that was)."""

ANALYZE_EVENTS = "ANALYZE selection_events"
ANALYZE_REJECTS = "ANALYZE selection_event_rejects"

RAW_DAY_OBSERVATION = """
SELECT count(*), max(created_at)
FROM selection_events
WHERE timestamp >= %(day_start)s AND timestamp < %(day_end)s
"""

LATEST_CREATED_AT = "SELECT max(created_at) FROM selection_events"


# --- what is stored --------------------------------------------------------------------------------------------

STORED_SUMMARY = """
SELECT tenant_id, event_type, count(*) AS events, count(DISTINCT candidate_id) AS candidates,
       min(timestamp)::date AS first_day, max(timestamp)::date AS last_day
FROM selection_events
GROUP BY tenant_id, event_type
ORDER BY tenant_id, array_position(ARRAY['shown', 'clicked', 'shortlisted', 'contacted', 'interviewed', 'hired'],
                                   event_type::text)
"""


TENANT_EXISTS = """
SELECT EXISTS (SELECT 1 FROM selection_events WHERE tenant_id = %(tenant_id)s)
    OR EXISTS (SELECT 1 FROM fairness_reports WHERE tenant_id = %(tenant_id)s)
    OR EXISTS (SELECT 1 FROM fairness_alerts WHERE tenant_id = %(tenant_id)s)
"""

# The distinct tenants of selection_events by a skip scan of its (tenant_id, timestamp) index: one index probe per
# tenant instead of reading every event.
TENANTS = """
WITH RECURSIVE event_tenants AS (
    (SELECT tenant_id FROM selection_events ORDER BY tenant_id LIMIT 1)
    UNION ALL
    SELECT (SELECT e.tenant_id FROM selection_events e WHERE e.tenant_id > t.tenant_id ORDER BY e.tenant_id LIMIT 1)
    FROM event_tenants t
    WHERE t.tenant_id IS NOT NULL
)
SELECT tenant_id FROM event_tenants WHERE tenant_id IS NOT NULL
UNION SELECT tenant_id FROM fairness_reports
UNION SELECT tenant_id FROM fairness_alerts
ORDER BY 1
"""


def observe_raw_day(cur, bounds: Mapping[str, Any]) -> tuple[int, datetime | None]:
    """The day's stored event count and latest ``created_at``."""
    cur.execute(RAW_DAY_OBSERVATION, bounds)
    count, latest = cur.fetchone()
    return count, latest


def latest_created_at(cur) -> datetime | None:
    """When the newest stored event was inserted (None when there is none)."""
    cur.execute(LATEST_CREATED_AT)
    return cur.fetchone()[0]


def stored_summary(conn) -> list[tuple]:
    """Per tenant and event type: events, candidates, first and last day, in funnel order."""
    with transaction(conn) as cur:
        cur.execute(STORED_SUMMARY)
        return cur.fetchall()


def check_tenant(conn, tenant_id: str) -> tuple[bool, list[str]]:
    """Whether some events, report or alert belong to the tenant, and if not, every tenant that has some (sorted).
    Read only: ends the transaction it opens."""
    try:
        with conn.cursor() as cur:
            cur.execute(TENANT_EXISTS, {"tenant_id": tenant_id})
            if cur.fetchone()[0]:
                return True, []
            cur.execute(TENANTS)
            return False, [row[0] for row in cur.fetchall()]
    finally:
        conn.rollback()


# --- loading ------------------------------------------------------------------------------------------------------

SESSION_SETTINGS = "SET LOCAL TimeZone = 'UTC'"
"""For the load transaction only: the COPY input holds UTC times without an offset."""
COPY_DIRECT = f"COPY selection_events ({', '.join(STORED_COLUMNS)}) FROM STDIN WITH (FORMAT csv)"
"""Straight into the table: about a third less work for the server than staging + ``INSERT .. ON CONFLICT``, but the
whole COPY fails on the first duplicate ``event_id`` (it is then undone and the chunk goes through staging)."""
COPY_BLOCK_BYTES = 1 << 20


def analyze(conn, counts: IngestCounts) -> None:
    """Refresh the planner's statistics of the tables a load wrote to (a bulk COPY leaves them stale), and summarise
    the new block ranges of the events' BRIN indexes."""
    from fairness_pipeline.store.event_indexes import summarize_event_ranges

    written = ((ANALYZE_EVENTS, counts.inserted), (ANALYZE_REJECTS, counts.rejected))
    statements = [statement for statement, rows in written if rows]
    if statements:
        with conn, conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
            if counts.inserted:
                summarize_event_ranges(cur)


def store_prepared(conn, prepared: PreparedChunk, source: str, *, direct: bool = False) -> IngestCounts:
    """Store a prepared chunk in a single transaction: COPY to staging, insert skipping duplicates, keep rejects.

    With ``direct``, first try to COPY the rows straight into the table (in a savepoint); if that fails for any reason
    (a duplicate, a rule the pre-checks missed, a deadlock), it is undone and the chunk takes the staging path.
    """
    import psycopg2

    storable, rejects = prepared.storable, list(prepared.rejects)
    with conn, conn.cursor() as cur:
        cur.execute(SESSION_SETTINGS)
        inserted, failed = 0, 0
        copied = False
        if direct and storable.num_rows and prepared.direct_data:
            cur.execute("SAVEPOINT direct_copy")
            try:
                cur.copy_expert(COPY_DIRECT, io.BytesIO(prepared.direct_data), size=COPY_BLOCK_BYTES)
                cur.execute("RELEASE SAVEPOINT direct_copy")
                inserted, copied = storable.num_rows, True
            except psycopg2.Error:
                cur.execute("ROLLBACK TO SAVEPOINT direct_copy")
        if storable.num_rows and not copied:
            cur.execute(CREATE_STAGING)
            cur.copy_expert(COPY_STAGING, io.BytesIO(prepared.staging_data()), size=COPY_BLOCK_BYTES)
            try:
                cur.execute("SAVEPOINT bulk_insert")
                cur.execute(INSERT_FROM_STAGING)
                inserted = cur.rowcount
                cur.execute("RELEASE SAVEPOINT bulk_insert")
            except Exception:  # a rule the pre-checks missed: fall back to row-by-row so one row cannot sink the rest
                cur.execute("ROLLBACK TO SAVEPOINT bulk_insert")
                inserted, late_rejects = _insert_row_by_row(cur, storable, prepared.raw_by_line())
                rejects.extend(late_rejects)
                failed = len(late_rejects)
        if storable.num_rows > inserted + failed:  # duplicates: those with other content are rejected
            conflicts = _conflicting(cur, prepared, {r.line_number for r in rejects[len(prepared.rejects) :]})
            rejects.extend(conflicts)
            failed += len(conflicts)
        if rejects:
            cur.copy_expert(COPY_REJECTS, _rejects_data(source, rejects))
    duplicates = storable.num_rows - failed - inserted
    return IngestCounts(read=prepared.read, inserted=inserted, duplicates=duplicates, rejected=len(rejects))


CONFLICT_REASON = "conflicting duplicate of a stored event_id"


def _conflicting(cur, prepared: PreparedChunk, rejected_lines: set[int]) -> list[Reject]:
    """Staged rows whose ``event_id`` is stored with other content (compared column by column, in SQL)."""
    cur.execute(CONFLICTING_STAGED_LINES)
    lines = [line for (line,) in cur.fetchall() if line not in rejected_lines]
    if not lines:
        return []
    raw_by_line = prepared.raw_by_line()
    return [Reject(line, raw_by_line[line], CONFLICT_REASON) for line in lines]


def _insert_row_by_row(cur, storable: pa.Table, raw_by_line: dict[int, str]) -> tuple[int, list[Reject]]:
    import psycopg2

    inserted, rejects = 0, []
    for line_number in storable.column("line_number").to_pylist():
        cur.execute("SAVEPOINT one_row")
        try:
            cur.execute(INSERT_ONE_FROM_STAGING, (line_number,))
            inserted += cur.rowcount
            cur.execute("RELEASE SAVEPOINT one_row")
        except psycopg2.Error as exc:
            cur.execute("ROLLBACK TO SAVEPOINT one_row")
            message = (exc.pgerror or str(exc)).strip().splitlines()[0]
            rejects.append(Reject(line_number, raw_by_line[line_number], f"database: {message}"))
    return inserted, rejects


def _rejects_data(source: str, rejects: list[Reject]) -> io.BytesIO:
    """The rejects as COPY input, storable whatever they quote: NUL (which PostgreSQL text cannot hold) is written
    as the four characters ``\\x00`` and lone surrogates as ``\\udc80``-style escapes."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows((source, r.line_number, r.raw_record, r.reason) for r in rejects)
    text = buffer.getvalue().replace("\x00", "\\x00")
    return io.BytesIO(text.encode("utf-8", "backslashreplace"))
