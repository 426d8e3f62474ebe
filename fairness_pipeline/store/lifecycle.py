"""SQL of the data lifecycle: retention (delete what is older than the policy allows, record what went) and the
erasure of one candidate (every row holding the id, in one transaction, recorded without the id).

The tables each operation touches are declared once, below: :data:`RETAINED_TABLES` (category, table, the column
that dates a row) and :data:`ERASABLE_TABLES` (table, the statement that removes the person's rows). Adding a table
that holds candidate ids is one line in :data:`ERASABLE_TABLES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

from psycopg2 import sql
from psycopg2.extras import Json

from fairness_pipeline.store.attributes import ERASE_ATTRIBUTES
from fairness_pipeline.store.partition_lock import lock_partition
from fairness_pipeline.store.schema import Column, Table

RETENTION_DELETIONS = Table(
    "retention_deletions",
    description="What each retention run deleted: table, rows and cutoff.",
    columns=(
        Column("id", "bigint", nullable=False),
        Column("applied_at", "timestamp with time zone", nullable=False),
        Column("category", "text", nullable=False),
        Column("table_name", "text", nullable=False),
        Column("rows", "bigint", nullable=False),
        Column("cutoff", "date", nullable=False),
    ),
    key=("id",),
)

CANDIDATE_ERASURES = Table(
    "candidate_erasures",
    description="Each erasure: when, tenant, rows per table and days (never the candidate id).",
    columns=(
        Column("id", "bigint", nullable=False),
        Column("erased_at", "timestamp with time zone", nullable=False),
        Column("tenant_id", "character varying(255)", nullable=False),
        Column("subject_hash", "text"),
        Column("rows_by_table", "jsonb", nullable=False),
        Column("days", "date[]", nullable=False),
    ),
    key=("id",),
)

RECOMPUTE_REQUESTS = Table(
    "recompute_requests",
    description="Tenant-days to recompute after an erasure (read by the erasure recompute sensor).",
    columns=(
        Column("id", "bigint", nullable=False),
        Column("day", "date", nullable=False),
        Column("tenant_id", "character varying(255)", nullable=False),
        Column("reason", "text", nullable=False),
        Column("requested_at", "timestamp with time zone", nullable=False),
    ),
    key=("id",),
)

# --- retention -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetainedTable:
    """A table under the retention policy: its rows dated by ``column`` (a DATE, or a TIMESTAMPTZ read in UTC)."""

    category: str
    table: str
    column: str
    timestamp: bool = False


RETAINED_TABLES: tuple[RetainedTable, ...] = (
    RetainedTable("events", "selection_events", "timestamp", timestamp=True),
    RetainedTable("events", "validated_selection_events", "timestamp", timestamp=True),
    RetainedTable("events", "candidate_daily_stages", "day"),
    RetainedTable("events", "candidate_daily_stages_days", "day"),
    RetainedTable("events", "search_daily_aggregates", "day"),
    RetainedTable("events", "search_daily_aggregates_days", "day"),
    RetainedTable("rejects", "selection_event_rejects", "received_at", timestamp=True),
    RetainedTable("quarantine", "quarantined_selection_events", "timestamp", timestamp=True),
    RetainedTable("arrays", "candidate_day_arrays", "day"),
    RetainedTable("arrays", "exposure_day_sums", "day"),
    RetainedTable("results", "selection_rate_frames", "window_end"),
    RetainedTable("results", "impact_ratios", "window_end"),
    RetainedTable("results", "scoring_rate_ratios", "window_end"),
    RetainedTable("results", "rank_exposure", "window_end"),
    RetainedTable("results", "slate_concentration", "day"),
    RetainedTable("results", "slate_concentration_groups", "day"),
    RetainedTable("results", "fairness_trends", "window_end"),
    RetainedTable("results", "trend_week_counts", "week_end"),
    RetainedTable("results", "risk_assessments", "window_end"),
    RetainedTable("results", "bias_metrics", "computed_at", timestamp=True),
    RetainedTable("reports", "fairness_reports", "window_end"),
)
"""Every table retention prunes, by policy category. Alerts, reviews and the lifecycle records are kept."""

COUNT_OLDER = "SELECT count(*) FROM {table} WHERE {column} < %(cutoff)s"
DELETE_OLDER = "DELETE FROM {table} WHERE {column} < %(cutoff)s"
RESET_DROPPED_ARRAYS = """
UPDATE candidate_daily_stages_days SET arrays_written_at = NULL
WHERE day < %(cutoff)s AND arrays_written_at IS NOT NULL
"""
"""Days whose arrays retention removed while their candidate rows stay: a window rebuilds them instead of reading
nothing."""
RECORD_DELETION = """
INSERT INTO retention_deletions (applied_at, category, table_name, rows, cutoff)
VALUES (%(applied_at)s, %(category)s, %(table)s, %(rows)s, %(cutoff)s)
"""


@dataclass(frozen=True)
class TableRetention:
    """Rows of one table older than the cutoff: counted (dry run) or deleted."""

    category: str
    table: str
    cutoff: date
    rows: int

    def as_dict(self) -> dict[str, object]:
        return {"category": self.category, "table": self.table, "cutoff": self.cutoff.isoformat(), "rows": self.rows}


def _older(statement: str, retained: RetainedTable) -> sql.Composed:
    return sql.SQL(statement).format(table=sql.Identifier(retained.table), column=sql.Identifier(retained.column))


def _cutoff_value(retained: RetainedTable, cutoff: date) -> date | datetime:
    return datetime.combine(cutoff, time(), tzinfo=UTC) if retained.timestamp else cutoff


def count_expired(conn, cutoffs: Mapping[str, date]) -> list[TableRetention]:
    """Per retained table, the rows older than its category's cutoff (nothing deleted)."""
    found = []
    with conn, conn.cursor() as cur:
        for retained in RETAINED_TABLES:
            cutoff = cutoffs[retained.category]
            cur.execute(_older(COUNT_OLDER, retained), {"cutoff": _cutoff_value(retained, cutoff)})
            found.append(TableRetention(retained.category, retained.table, cutoff, cur.fetchone()[0]))
    return found


def delete_expired(conn, cutoffs: Mapping[str, date], applied_at: datetime | None = None) -> list[TableRetention]:
    """Delete, table by table (one transaction each, with its record in ``retention_deletions``), the rows older
    than their category's cutoff; return what was removed."""
    applied_at = applied_at or datetime.now(UTC)
    removed = []
    for retained in RETAINED_TABLES:
        cutoff = cutoffs[retained.category]
        with conn, conn.cursor() as cur:
            cur.execute(_older(DELETE_OLDER, retained), {"cutoff": _cutoff_value(retained, cutoff)})
            rows = cur.rowcount
            if retained.table == "candidate_day_arrays":
                cur.execute(RESET_DROPPED_ARRAYS, {"cutoff": cutoff})
            record = TableRetention(retained.category, retained.table, cutoff, rows)
            cur.execute(RECORD_DELETION, {"applied_at": applied_at, **record.as_dict()})
        removed.append(record)
    return removed


# --- erasure ---------------------------------------------------------------------------------------------------

DELETE_PERSON_EVENTS = """
DELETE FROM selection_events
WHERE tenant_id = %(tenant_id)s AND candidate_id = %(candidate_id)s
RETURNING event_id, (timestamp AT TIME ZONE 'UTC')::date
"""
"""First, so that the other statements know the person's event ids and days."""

QUARANTINED_DAYS = """
SELECT DISTINCT (timestamp AT TIME ZONE 'UTC')::date FROM quarantined_selection_events
WHERE tenant_id = %(tenant_id)s AND candidate_id = %(candidate_id)s
"""
"""Quarantine has its own retention: it may hold the person's rows of days whose events are gone."""

ERASE_VALIDATED = "DELETE FROM validated_selection_events WHERE event_id = ANY(%(event_ids)s::text[])"
"""Validated rows are copies of events kept as long (same category): the person's event ids find them all."""
ERASE_QUARANTINED = """
DELETE FROM quarantined_selection_events WHERE tenant_id = %(tenant_id)s AND candidate_id = %(candidate_id)s
"""
ERASE_DAY_SUMMARIES = """
DELETE FROM candidate_daily_stages
WHERE day = ANY(%(days)s::date[]) AND tenant_id = %(tenant_id)s AND candidate_id = %(candidate_id)s
"""
ERASE_DAY_ARRAYS = "DELETE FROM candidate_day_arrays WHERE day = ANY(%(days)s::date[]) AND tenant_id = %(tenant_id)s"
"""The arrays hold a 64-bit key of each id: the person's tenant-days are dropped whole and rebuilt by the next window
from the erased day summaries (``ERASED_DAYS_ARRAYS_STALE``)."""


ERASE_REJECTS = """
DELETE FROM selection_event_rejects WHERE raw_record ~ %(candidate_pattern)s AND raw_record ~ %(tenant_pattern)s
"""
"""Rejected lines have no columns: those holding both ids as whole fields."""


@dataclass(frozen=True)
class ErasableTable:
    """A table holding candidate ids and the statement removing one person's rows. The statement may use
    ``%(tenant_id)s``, ``%(candidate_id)s``, ``%(event_ids)s`` (the person's deleted events), ``%(days)s`` (their UTC
    days and those of their quarantined rows) and ``%(candidate_pattern)s`` / ``%(tenant_pattern)s`` (regular
    expressions matching the ids as whole fields of a raw line)."""

    table: str
    delete: str


ERASABLE_TABLES: tuple[ErasableTable, ...] = (
    ErasableTable("validated_selection_events", ERASE_VALIDATED),
    ErasableTable("quarantined_selection_events", ERASE_QUARANTINED),
    ErasableTable("candidate_daily_stages", ERASE_DAY_SUMMARIES),
    ErasableTable("candidate_day_arrays", ERASE_DAY_ARRAYS),
    ErasableTable("selection_event_rejects", ERASE_REJECTS),
    *(ErasableTable(table, statement) for table, statement in ERASE_ATTRIBUTES.items()),
)
"""Every table besides ``selection_events`` (erased first, :data:`DELETE_PERSON_EVENTS`) that holds a candidate id or
a key of it."""

ERASED_DAYS_ARRAYS_STALE = """
UPDATE candidate_daily_stages_days SET arrays_written_at = NULL WHERE day = ANY(%(days)s::date[])
"""
"""The windows rebuild the arrays of the person's days from candidate_daily_stages (``DAYS_WITHOUT_ARRAYS``)."""

RECORD_ERASURE = """
INSERT INTO candidate_erasures (erased_at, tenant_id, subject_hash, rows_by_table, days)
VALUES (%(erased_at)s, %(tenant_id)s, %(subject_hash)s, %(rows_by_table)s, %(days)s)
RETURNING id
"""

REQUEST_RECOMPUTE = """
INSERT INTO recompute_requests (day, tenant_id, reason)
SELECT unnest(%(days)s::date[]), %(tenant_id)s, %(reason)s
"""

RECOMPUTE_DAYS_BETWEEN = """
SELECT day, tenant_id, count(*), max(requested_at)
FROM recompute_requests
WHERE requested_at > %(after)s AND requested_at <= %(until)s
GROUP BY day, tenant_id
ORDER BY day, tenant_id
"""
"""Tenant-days asked for recomputation in (after, until], as the late-events sensor reads late events."""

LATEST_RECOMPUTE_REQUEST = "SELECT max(requested_at) FROM recompute_requests"

LOCKED_WRITERS = ("validated_selection_events", "candidate_daily_stages", "search_daily_aggregates")
"""Partition writers that read the person's events: an erasure holds their locks on its days, so a run that read
the events before the erasure commits first (and its rows are then erased), and one that starts after reads none."""


@dataclass(frozen=True)
class Erasure:
    """What an erasure removed: rows per table, the UTC days it touched, and its record's id."""

    record_id: int
    rows_by_table: dict[str, int]
    days: list[date] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(self.rows_by_table.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "erasure_id": self.record_id,
            "rows": self.rows,
            "rows_by_table": self.rows_by_table,
            "days": [day.isoformat() for day in self.days],
        }


def erase_candidate(
    conn,
    tenant_id: str,
    candidate_id: str,
    *,
    subject_hash: str | None,
    candidate_pattern: str,
    tenant_pattern: str,
) -> Erasure:
    """Remove every row holding the candidate's id in one transaction, record the erasure (counts, days, the
    ``subject_hash`` given or nothing of the id) and ask for the recomputation of the days it touched."""
    params: dict[str, object] = {"tenant_id": tenant_id, "candidate_id": candidate_id}
    with conn, conn.cursor() as cur:
        cur.execute(DELETE_PERSON_EVENTS, params)
        deleted = cur.fetchall()
        event_ids = [row[0] for row in deleted]
        cur.execute(QUARANTINED_DAYS, params)
        days = sorted({row[1] for row in deleted} | {row[0] for row in cur.fetchall()})
        for writer in LOCKED_WRITERS:
            for day in days:  # ascending, as the pipeline's transactions take them
                lock_partition(cur, writer, day)
        params.update(
            event_ids=event_ids, days=days, candidate_pattern=candidate_pattern, tenant_pattern=tenant_pattern
        )
        rows_by_table = {"selection_events": len(event_ids)}
        for erasable in ERASABLE_TABLES:
            cur.execute(erasable.delete, params)
            rows_by_table[erasable.table] = cur.rowcount
        cur.execute(ERASED_DAYS_ARRAYS_STALE, params)
        cur.execute(
            RECORD_ERASURE,
            {
                "erased_at": datetime.now(UTC),
                "tenant_id": tenant_id,
                "subject_hash": subject_hash,
                "rows_by_table": Json(rows_by_table),
                "days": days,
            },
        )
        record_id = cur.fetchone()[0]
        if days:
            cur.execute(REQUEST_RECOMPUTE, {"days": days, "tenant_id": tenant_id, "reason": f"erasure {record_id}"})
    return Erasure(record_id, rows_by_table, days)


def recompute_requests(conn, after: datetime, until: datetime) -> list[tuple[date, str, int, datetime]]:
    """(day, tenant, requests, latest request time) of the tenant-days asked for recomputation in (after, until]."""
    with conn, conn.cursor() as cur:
        cur.execute(RECOMPUTE_DAYS_BETWEEN, {"after": after, "until": until})
        return cur.fetchall()


def latest_recompute_request(conn) -> datetime | None:
    """When the latest recomputation was asked for, or None."""
    with conn, conn.cursor() as cur:
        cur.execute(LATEST_RECOMPUTE_REQUEST)
        return cur.fetchone()[0]
