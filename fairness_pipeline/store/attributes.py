"""Candidate attributes in PostgreSQL: storing loaded values with their history, erasing a person, and reading the
value in force at a candidate's first baseline event.

Tables (migration 017): ``candidate_attributes`` holds the value in force now per (tenant, candidate, attribute),
``candidate_attribute_history`` every value with ``valid_from``/``valid_to`` (a candidate's first value, and its first
known value after only unknown ones, is in force from ``-infinity``: it describes the person, also before it was
collected; a changed value from its ``collected_at``),
``candidate_attribute_rejects`` the input rows that could not be stored. A NULL value is ``unknown``.

The audits that count candidates in numpy read each tenant's history as compact arrays (migration 023:
``candidate_attribute_snapshots``, one row per tenant and attribute, versioned in ``candidate_attribute_tenants``):
dropped by every load or erasure that changes the tenant's values, built again at the end of a load or by the first
audit that needs them, so a window reads a few rows instead of scanning every tenant's history.

A load or a deletion that changes a tenant's values makes what was summarised with the old ones stale in the same
transaction (:func:`mark_searches_stale`): the tenant's exposure day sums are dropped and its summarised days are
asked for recomputation (``recompute_requests``), which windows and the erasure recompute sensor act on.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd
from psycopg2 import Binary, sql

from fairness_pipeline.catalogue import load_catalogue
from fairness_pipeline.metrics.candidate_arrays import AttributePeriods, AttributeSnapshot
from fairness_pipeline.store.binary_copy import read_binary_records
from fairness_pipeline.store.partition_lock import lock_partition
from fairness_pipeline.store.schema import Column, Table

CANDIDATE_ATTRIBUTES = Table(
    "candidate_attributes",
    description="Self-identified attributes in force now: one row per tenant, candidate and attribute (NULL: unknown).",
    columns=(
        Column("tenant_id", "character varying(255)", nullable=False),
        Column("candidate_id", "character varying(255)", nullable=False),
        Column("attribute", "character varying(50)", nullable=False),
        Column("value", "character varying(100)"),
        Column("source", "text", nullable=False),
        Column("collected_at", "timestamp with time zone", nullable=False),
        Column("changed_at", "timestamp with time zone", nullable=False),
    ),
    key=("tenant_id", "candidate_id", "attribute"),
)

CANDIDATE_ATTRIBUTE_HISTORY = Table(
    "candidate_attribute_history",
    description="Every value a candidate's attribute has had, with the period it was in force.",
    columns=(
        Column("tenant_id", "character varying(255)", nullable=False),
        Column("candidate_id", "character varying(255)", nullable=False),
        Column("attribute", "character varying(50)", nullable=False),
        Column("value", "character varying(100)"),
        Column("source", "text", nullable=False),
        Column("collected_at", "timestamp with time zone", nullable=False),
        Column("valid_from", "timestamp with time zone", nullable=False),
        Column("valid_to", "timestamp with time zone"),
    ),
    key=("tenant_id", "candidate_id", "attribute", "valid_from"),
    unique=(("tenant_id", "candidate_id", "attribute"),),
)

CANDIDATE_ATTRIBUTE_REJECTS = Table(
    "candidate_attribute_rejects",
    description="Self-identification rows that could not be stored, with the reason.",
    columns=(
        Column("id", "bigint", nullable=False),
        Column("source", "text", nullable=False),
        Column("line_number", "bigint", nullable=False),
        Column("tenant_id", "text"),
        Column("candidate_id", "text"),
        Column("raw_record", "text", nullable=False),
        Column("reason", "text", nullable=False),
        Column("received_at", "timestamp with time zone", nullable=False),
    ),
    key=("id",),
)


CANDIDATE_ATTRIBUTE_TENANTS = Table(
    "candidate_attribute_tenants",
    description="Tenants holding attributes: the version of their values and the version their snapshots were built "
    "from.",
    columns=(
        Column("tenant_id", "character varying(255)", nullable=False),
        Column("version", "bigint", "bumped by every load or erasure that changes the tenant's values", nullable=False),
        Column("built_version", "bigint", "the version the snapshots hold (NULL: none built)"),
    ),
    key=("tenant_id",),
)

CANDIDATE_ATTRIBUTE_SNAPSHOTS = Table(
    "candidate_attribute_snapshots",
    description="Per tenant and attribute, the known values' periods as packed arrays ordered by candidate key.",
    columns=(
        Column("tenant_id", "character varying(255)", nullable=False),
        Column("attribute", "character varying(50)", nullable=False),
        Column("version", "bigint", nullable=False),
        Column("value_names", "text[]", nullable=False),
        Column("periods", "integer", nullable=False),
        Column("candidate_keys", "bytea", nullable=False),
        Column("from_days", "bytea", nullable=False),
        Column("to_days", "bytea", nullable=False),
        Column("value_codes", "bytea", nullable=False),
    ),
    key=("tenant_id", "attribute"),
)

# --- loading -------------------------------------------------------------------------------------------------------

CREATE_STAGING = """
CREATE TEMPORARY TABLE IF NOT EXISTS attribute_staging (
    line_number BIGINT NOT NULL, tenant_id TEXT NOT NULL, candidate_id TEXT NOT NULL, attribute TEXT NOT NULL,
    value TEXT, collected_at TIMESTAMP WITH TIME ZONE NOT NULL
) ON COMMIT DROP
"""
COPY_STAGING = (
    "COPY attribute_staging (line_number, tenant_id, candidate_id, attribute, value, collected_at) "
    "FROM STDIN WITH (FORMAT csv, NULL '\\N')"
)
TRUNCATE_STAGING = "TRUNCATE attribute_staging"

# The staged values that differ from the value in force (or are the candidate's first), with when each takes effect:
# a first value from -infinity; a candidate's first known value, after only unknown ones, from -infinity too (it
# replaces that unknown history: the answer describes the person, also before it was given); any other change from
# its collected_at, kept after the value it replaces even when an older answer is loaded after a newer one. The
# LATERAL ... LIMIT keeps each lookup a probe of an index: a join would scan the whole history for every chunk
# (measured: 2.6 s per 100k values against 1.5M rows, growing with the table).
CREATE_CHANGES = """
CREATE TEMPORARY TABLE attribute_changes ON COMMIT DROP AS
SELECT c.line_number, c.tenant_id, c.candidate_id, c.attribute, c.value, c.collected_at, c.replaces, c.first_known,
       CASE WHEN NOT c.replaces OR c.first_known THEN '-infinity'::timestamptz
            ELSE greatest(c.collected_at, c.previous_from + interval '1 microsecond') END AS valid_from,
       CASE WHEN NOT c.replaces OR c.first_known THEN c.collected_at
            ELSE greatest(c.collected_at, c.previous_from + interval '1 microsecond') END AS changed_at
FROM (
    SELECT s.*, h.valid_from AS previous_from, h.valid_from IS NOT NULL AS replaces,
           h.valid_from IS NOT NULL AND h.value IS NULL AND s.value IS NOT NULL AND NOT EXISTS (
               SELECT 1 FROM candidate_attribute_history k
               WHERE k.tenant_id = s.tenant_id AND k.candidate_id = s.candidate_id AND k.attribute = s.attribute
                 AND k.value IS NOT NULL
           ) AS first_known
    FROM attribute_staging s
    LEFT JOIN LATERAL (
        SELECT h.valid_from, h.value
        FROM candidate_attribute_history h
        WHERE h.tenant_id = s.tenant_id AND h.candidate_id = s.candidate_id AND h.attribute = s.attribute
          AND h.valid_to IS NULL
        LIMIT 1
    ) h ON true
    WHERE h.valid_from IS NULL OR h.value IS DISTINCT FROM s.value
) c
"""
DROP_CHANGES = "DROP TABLE attribute_changes"

DELETE_UNKNOWN_HISTORY = """
DELETE FROM candidate_attribute_history h
USING attribute_changes c
WHERE c.first_known AND h.tenant_id = c.tenant_id AND h.candidate_id = c.candidate_id AND h.attribute = c.attribute
"""

CLOSE_REPLACED = """
UPDATE candidate_attribute_history h
SET valid_to = c.valid_from
FROM attribute_changes c
WHERE c.replaces AND NOT c.first_known AND h.valid_to IS NULL
  AND h.tenant_id = c.tenant_id AND h.candidate_id = c.candidate_id AND h.attribute = c.attribute
"""

INSERT_HISTORY = """
INSERT INTO candidate_attribute_history (tenant_id, candidate_id, attribute, value, source, collected_at, valid_from)
SELECT tenant_id, candidate_id, attribute, value, %(source)s, collected_at, valid_from
FROM attribute_changes
"""

UPSERT_CURRENT = """
INSERT INTO candidate_attributes (tenant_id, candidate_id, attribute, value, source, collected_at, changed_at)
SELECT tenant_id, candidate_id, attribute, value, %(source)s, collected_at, changed_at
FROM attribute_changes
ON CONFLICT (tenant_id, candidate_id, attribute) DO UPDATE
SET value = EXCLUDED.value, source = EXCLUDED.source, collected_at = EXCLUDED.collected_at,
    changed_at = EXCLUDED.changed_at
"""

CHANGED_LINES = "SELECT DISTINCT line_number FROM attribute_changes"
CHANGED_TENANTS = "SELECT DISTINCT tenant_id FROM attribute_changes"

COPY_REJECTS = (
    "COPY candidate_attribute_rejects (source, line_number, tenant_id, candidate_id, raw_record, reason) "
    "FROM STDIN WITH (FORMAT csv, NULL '\\N')"
)

ANALYZE_TABLES = "ANALYZE candidate_attributes; ANALYZE candidate_attribute_history"


@dataclass(frozen=True)
class AttributeRow:
    """One input line's answers: ``values`` maps each attribute to its code, None for unknown."""

    line_number: int
    tenant_id: str
    candidate_id: str
    collected_at: datetime
    values: dict[str, str | None]


@dataclass(frozen=True)
class AttributeReject:
    line_number: int
    raw_record: str
    reason: str
    tenant_id: str | None = None
    candidate_id: str | None = None


def _rounds(rows: Sequence[AttributeRow]) -> list[list[AttributeRow]]:
    """Rows split so that each round holds a candidate at most once (round k: the k-th line of each candidate), so
    that lines apply in file order."""
    seen: dict[tuple[str, str], int] = {}
    rounds: list[list[AttributeRow]] = []
    for row in rows:
        key = (row.tenant_id, row.candidate_id)
        index = seen[key] = seen.get(key, -1) + 1
        if index == len(rounds):
            rounds.append([])
        rounds[index].append(row)
    return rounds


def _csv_bytes(records: list[tuple]) -> io.BytesIO:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerows(tuple("\\N" if v is None else v for v in record) for record in records)
    return io.BytesIO(buffer.getvalue().replace("\x00", "\\x00").encode("utf-8", "backslashreplace"))


def store_attribute_rows(
    conn, rows: Sequence[AttributeRow], rejects: Sequence[AttributeReject], source: str
) -> tuple[int, int]:
    """Store one chunk's rows and rejects in a single transaction; return (stored, unchanged) line counts.

    A line is stored when at least one of its attributes is new for the candidate or differs from the value in force
    (which it replaces, closing the old value's history row); otherwise it is unchanged and nothing is written.
    Several lines of one candidate apply in file order. The tenants whose values changed have their searches marked
    stale in the same transaction (:func:`mark_searches_stale`).
    """
    changed: set[int] = set()
    tenants: set[str] = set()
    with conn, conn.cursor() as cur:
        if rows:
            cur.execute(CREATE_STAGING)
        for batch in _rounds(rows):
            cur.execute(TRUNCATE_STAGING)
            staged = [
                (row.line_number, row.tenant_id, row.candidate_id, attribute, value, row.collected_at.isoformat())
                for row in batch
                for attribute, value in row.values.items()
            ]
            cur.copy_expert(COPY_STAGING, _csv_bytes(staged))
            cur.execute(CREATE_CHANGES)
            cur.execute(DELETE_UNKNOWN_HISTORY)
            cur.execute(CLOSE_REPLACED)
            cur.execute(INSERT_HISTORY, {"source": source})
            cur.execute(UPSERT_CURRENT, {"source": source})
            cur.execute(CHANGED_LINES)
            changed.update(line for (line,) in cur.fetchall())
            cur.execute(CHANGED_TENANTS)
            tenants.update(tenant for (tenant,) in cur.fetchall())
            cur.execute(DROP_CHANGES)
        if rejects:
            records = [(source, r.line_number, r.tenant_id, r.candidate_id, r.raw_record, r.reason) for r in rejects]
            cur.copy_expert(COPY_REJECTS, _csv_bytes(records))
        drop_snapshots(cur, sorted(tenants))
        mark_searches_stale(cur, sorted(tenants), "attributes loaded")
    return len(changed), len(rows) - len(changed)


def analyze_attributes(conn) -> None:
    """Refresh the planner's statistics after a load."""
    with conn, conn.cursor() as cur:
        cur.execute(ANALYZE_TABLES)


# --- erasing -------------------------------------------------------------------------------------------------------

PERSON_HAS_HISTORY = """EXISTS (
    SELECT 1 FROM candidate_attribute_history WHERE tenant_id = %(tenant_id)s AND candidate_id = %(candidate_id)s
)"""
ERASE_ATTRIBUTES: dict[str, str] = {
    "candidate_attribute_snapshots": (
        f"UPDATE candidate_attribute_tenants SET version = version + 1 "
        f"WHERE tenant_id = %(tenant_id)s AND {PERSON_HAS_HISTORY};\n"
        f"DELETE FROM candidate_attribute_snapshots WHERE tenant_id = %(tenant_id)s AND {PERSON_HAS_HISTORY}"
    ),
    **{
        table: f"DELETE FROM {table} WHERE tenant_id = %(tenant_id)s AND candidate_id = %(candidate_id)s"
        for table in ("candidate_attributes", "candidate_attribute_history", "candidate_attribute_rejects")
    },
}
"""One person's rows in each attributes table (constant table names; the ids are parameters), in this order: ``erase``
runs them beside the events' statements. The snapshots hold a 64-bit key of each id: the tenant's are dropped whole
when the person has history (before it is deleted; two statements, so that the delete, after the tenant's lock, sees
what a builder committed meanwhile) and rebuilt by the next audit that reads them."""


def delete_candidate(conn, tenant_id: str, candidate_id: str) -> dict[str, int]:
    """Erase one person's attributes, their history and their rejected input rows; return the rows deleted."""
    names = {
        "candidate_attributes": "attributes",
        "candidate_attribute_history": "history",
        "candidate_attribute_rejects": "rejects",
    }
    deleted = {}
    with conn, conn.cursor() as cur:
        for table, statement in ERASE_ATTRIBUTES.items():  # the snapshots' rows are the tenant's: not counted
            cur.execute(statement, {"tenant_id": tenant_id, "candidate_id": candidate_id})
            if table in names:
                deleted[names[table]] = cur.rowcount
        if deleted["attributes"] or deleted["history"]:
            mark_searches_stale(cur, [tenant_id], "attributes deleted")
    return deleted


# --- snapshots: each tenant's history as arrays, for the audits ---------------------------------------------------

BUMP_VERSIONS = """
INSERT INTO candidate_attribute_tenants (tenant_id, version)
SELECT tenant_id, 1 FROM unnest(%(tenants)s::text[]) AS t(tenant_id) ORDER BY tenant_id
ON CONFLICT (tenant_id) DO UPDATE SET version = candidate_attribute_tenants.version + 1
"""
DELETE_SNAPSHOTS = "DELETE FROM candidate_attribute_snapshots WHERE tenant_id = ANY(%(tenants)s::text[])"


def drop_snapshots(cur, tenants: Sequence[str]) -> None:
    """After a change of ``tenants``' values (in its transaction): bump their version, which waits for a builder
    holding the tenant's row, then drop their snapshots, in a statement of its own so that it sees what such a
    builder committed."""
    if tenants:
        cur.execute(BUMP_VERSIONS, {"tenants": sorted(tenants)})
        cur.execute(DELETE_SNAPSHOTS, {"tenants": list(tenants)})


LOCK_TENANT_VERSION = """
SELECT version, built_version FROM candidate_attribute_tenants WHERE tenant_id = %(tenant_id)s FOR UPDATE
"""

# One tenant's known values, one row per attribute and value: the candidates' keys and the UTC day numbers (days since
# 1970-01-01) of each period's valid_from and valid_to, open ends as the int4 extremes. The value is in force at the
# end of day d (instant E_d - 1 microsecond, E_d = the midnight after d) when valid_from < E_d <= valid_to, i.e.
# from_day <= d < to_day with from_day = floor(valid_from / 1 day) and to_day = floor(valid_to / 1 day).
TENANT_HISTORY_PERIODS = """
COPY (
    SELECT attribute::text, value::text,
           string_agg(int8send(hashtextextended(candidate_id, 0)), ''::bytea) AS keys,
           string_agg(int4send(from_day), ''::bytea) AS from_days,
           string_agg(int4send(to_day), ''::bytea) AS to_days
    FROM (
        SELECT attribute, value, candidate_id,
               CASE WHEN valid_from = '-infinity' THEN -2147483648
                    ELSE floor(extract(epoch FROM valid_from) / 86400)::int4 END AS from_day,
               CASE WHEN valid_to IS NULL THEN 2147483647
                    ELSE floor(extract(epoch FROM valid_to) / 86400)::int4 END AS to_day
        FROM candidate_attribute_history
        WHERE tenant_id = %(tenant_id)s AND value IS NOT NULL
    ) AS periods
    GROUP BY attribute, value
) TO STDOUT WITH (FORMAT binary)
"""
TENANT_HISTORY_PERIODS_KINDS = ("text", "text", "bytea", "bytea", "bytea")

INSERT_SNAPSHOT = """
INSERT INTO candidate_attribute_snapshots (
    tenant_id, attribute, version, value_names, periods, candidate_keys, from_days, to_days, value_codes
) VALUES (%(tenant_id)s, %(attribute)s, %(version)s, %(value_names)s, %(periods)s, %(keys)s, %(from_days)s,
          %(to_days)s, %(codes)s)
"""
MARK_BUILT = "UPDATE candidate_attribute_tenants SET built_version = %(version)s WHERE tenant_id = %(tenant_id)s"


def build_snapshots(cur, tenant_id: str) -> None:
    """Build ``tenant_id``'s snapshots from its history unless another transaction did: under the tenant's row lock,
    held to the end of the caller's transaction (a load or erasure of the tenant waits for it, then drops them)."""
    cur.execute(LOCK_TENANT_VERSION, {"tenant_id": tenant_id})
    row = cur.fetchone()
    if row is None or row[0] == row[1]:
        return
    version = row[0]
    statement = cur.mogrify(TENANT_HISTORY_PERIODS, {"tenant_id": tenant_id}).decode()
    groups: dict[str, list[tuple]] = {}
    for attribute, value, *arrays in read_binary_records(cur, statement, TENANT_HISTORY_PERIODS_KINDS):
        groups.setdefault(attribute, []).append((value, *arrays))
    cur.execute(DELETE_SNAPSHOTS, {"tenants": [tenant_id]})
    for attribute, value_groups in sorted(groups.items()):
        snapshot = AttributeSnapshot.from_value_groups(tenant_id, attribute, value_groups)
        keys, from_days, to_days, codes = (Binary(array) for array in snapshot.to_bytes())
        cur.execute(
            INSERT_SNAPSHOT,
            {
                "tenant_id": tenant_id,
                "attribute": attribute,
                "version": version,
                "value_names": list(snapshot.values),
                "periods": len(snapshot.keys),
                "keys": keys,
                "from_days": from_days,
                "to_days": to_days,
                "codes": codes,
            },
        )
    cur.execute(MARK_BUILT, {"tenant_id": tenant_id, "version": version})


STALE_SNAPSHOT_TENANTS = """
SELECT tenant_id FROM candidate_attribute_tenants WHERE built_version IS DISTINCT FROM version ORDER BY tenant_id
"""


def build_stale_snapshots(conn) -> list[str]:
    """Build the snapshots of every tenant whose values changed since they were built, one transaction per tenant
    (a load ends with it, so that the next audit reads them ready); returns the tenants built."""
    with conn, conn.cursor() as cur:
        cur.execute(STALE_SNAPSHOT_TENANTS)
        tenants = [tenant for (tenant,) in cur.fetchall()]
    for tenant in tenants:
        with conn, conn.cursor() as cur:
            build_snapshots(cur, tenant)
    return tenants


# Every tenant in scope with its snapshots of ``attributes``, in one statement (one MVCC snapshot): ``current`` 0 when
# the tenant's snapshots are missing or older than its values (then built and read again).
READ_SNAPSHOTS = """
COPY (
    SELECT t.tenant_id::text, (t.built_version IS NOT DISTINCT FROM t.version)::int::int2 AS current,
           s.attribute::text, array_to_json(s.value_names)::text, s.candidate_keys, s.from_days, s.to_days,
           s.value_codes
    FROM candidate_attribute_tenants t
    LEFT JOIN candidate_attribute_snapshots s
      ON s.tenant_id = t.tenant_id AND s.version = t.version AND s.attribute = ANY(%(attributes)s::text[])
    WHERE %(tenants)s::text[] IS NULL OR t.tenant_id = ANY(%(tenants)s::text[])
    ORDER BY t.tenant_id, s.attribute
) TO STDOUT WITH (FORMAT binary)
"""
"""Read with ``store.binary_copy.read_binary_records`` (COPY takes no bind parameters: the driver quotes them in)."""
READ_SNAPSHOTS_KINDS = ("text", "int2", "text", "text", "bytea", "bytea", "bytea", "bytea")


def attribute_snapshots(
    cur, attributes: Sequence[str], tenants: Sequence[str] | None = None
) -> list[AttributeSnapshot]:
    """The snapshots of ``attributes`` of ``tenants`` (None: all), current with their values: those missing or out of
    date are built first (in the caller's transaction)."""
    params = {"tenants": None if tenants is None else list(tenants), "attributes": list(attributes)}
    statement = cur.mogrify(READ_SNAPSHOTS, params).decode()
    for _ in range(3):  # a load committed between a build and the read makes one more round
        rows = read_binary_records(cur, statement, READ_SNAPSHOTS_KINDS)
        stale = sorted({tenant for tenant, current, *_ in rows if not current})
        if not stale:
            return [
                AttributeSnapshot.from_bytes(tenant, attribute, json.loads(values), *arrays)
                for tenant, _, attribute, values, *arrays in rows
                if attribute is not None
            ]
        for tenant in stale:
            build_snapshots(cur, tenant)
    raise RuntimeError(f"attribute snapshots of {', '.join(stale)} changed during three reads")


# --- staleness of what was summarised with them -------------------------------------------------------------------

DELETE_TENANT_EXPOSURE_SUMS = "DELETE FROM exposure_day_sums WHERE tenant_id = ANY(%(tenants)s::text[])"

TENANT_SEARCH_DAYS = """
SELECT day, array_agg(tenant ORDER BY tenant)
FROM search_daily_aggregates_days, unnest(tenants) AS tenant
WHERE tenant = ANY(%(tenants)s::text[])
GROUP BY day
ORDER BY day
"""

REQUEST_TENANT_RECOMPUTE = """
INSERT INTO recompute_requests (day, tenant_id, reason, requested_at)
SELECT day, tenant_id, %(reason)s, clock_timestamp()
FROM unnest(%(days)s::date[], %(tenant_ids)s::text[]) AS r(day, tenant_id)
"""
"""``clock_timestamp()``, not the transaction's start: taken after the days' locks, so that a summary written
before it (by a transaction that could not see these values) is older than the request, hence stale."""


def mark_searches_stale(cur, tenants: Sequence[str], reason: str) -> int:
    """After a change of ``tenants``' attributes: drop their stored exposure day sums and ask for the recomputation
    (``recompute_requests``) of every day whose searches were summarised with their values, under each day's
    search_daily_aggregates lock. A window re-aggregates a tenant-day asked for after it was summarised
    (``store.audits.refresh_stale_searches``), and the erasure recompute sensor re-runs the days. Returns the
    tenant-days asked for."""
    if not tenants:
        return 0
    cur.execute(DELETE_TENANT_EXPOSURE_SUMS, {"tenants": list(tenants)})
    cur.execute(TENANT_SEARCH_DAYS, {"tenants": list(tenants)})
    days = cur.fetchall()
    for day, _ in days:  # ascending, as the pipeline's transactions take them
        lock_partition(cur, "search_daily_aggregates", day)
    pairs = [(day, tenant) for day, day_tenants in days for tenant in day_tenants]
    if pairs:
        params = {"days": [d for d, _ in pairs], "tenant_ids": [t for _, t in pairs], "reason": reason}
        cur.execute(REQUEST_TENANT_RECOMPUTE, params)
    return len(pairs)


# --- reading -------------------------------------------------------------------------------------------------------

IN_FORCE_VALUES = """
ARRAY(
    SELECT h.value
    FROM unnest(%(attributes)s::text[]) WITH ORDINALITY AS a(attribute, position)
    LEFT JOIN candidate_attribute_history h
      ON h.tenant_id = {alias}.tenant_id AND h.candidate_id = {alias}.candidate_id AND h.attribute = a.attribute
     AND h.valid_from <= {alias}.first_at AND ({alias}.first_at < h.valid_to OR h.valid_to IS NULL)
    ORDER BY a.position
)"""
"""Per candidate row ``{alias}`` (tenant_id, candidate_id, first_at): the value of each of ``%(attributes)s`` in
force at ``first_at``, in that order (NULL: unknown or never loaded). Only the alias is formatted in, never data.
An index probe per row: where many rows need values, :func:`in_force_joins` lets the planner hash-join instead."""


@dataclass(frozen=True)
class InForceJoins:
    """SQL pieces giving each row of ``alias`` the value of each attribute in force at its ``first_at``: ``joins``
    (after the row's FROM item) and ``columns`` (``attribute_0``, ``attribute_1``, ... in the attributes' order)."""

    joins: sql.Composable
    columns: sql.Composable


def in_force_joins(alias: str, attributes: Sequence[str]) -> InForceJoins:
    """One LEFT JOIN of ``candidate_attribute_history`` per attribute on (tenant_id, candidate_id, attribute) with
    the in-force condition (``valid_from <= first_at < valid_to``, NULL ``valid_to``: still in force), so that the
    planner can hash-join each attribute's history once instead of probing it per row. Periods of one attribute do not
    overlap, so a row matches at most one value per attribute; no match is NULL (unknown), as is a tenant without any
    attributes. The statement's ``%(tenant_id)s`` (None: every tenant) also restricts the history hashed to one
    tenant's rows (the filter reaches the history's scan) rather than every tenant's. The attribute names enter as
    quoted literals (the catalogue's names), the alias as an identifier."""
    row = sql.Identifier(alias)
    joins, columns = [], []
    for position, attribute in enumerate(attributes):
        history = sql.Identifier(f"in_force_{position}")
        joins.append(
            sql.SQL(
                "LEFT JOIN candidate_attribute_history {h} ON {h}.tenant_id = {row}.tenant_id "
                "AND {h}.candidate_id = {row}.candidate_id AND {h}.attribute = {attribute} "
                "AND {h}.valid_from <= {row}.first_at AND ({row}.first_at < {h}.valid_to OR {h}.valid_to IS NULL) "
                "AND (%(tenant_id)s::text IS NULL OR {h}.tenant_id = %(tenant_id)s)"
            ).format(h=history, row=row, attribute=sql.Literal(attribute))
        )
        columns.append(sql.SQL("{}.value AS {}").format(history, sql.Identifier(f"attribute_{position}")))
    return InForceJoins(joins=sql.SQL("\n").join(joins), columns=sql.SQL(", ").join(columns))


ATTRIBUTE_VALUES_AT = f"""
WITH firsts AS (
    SELECT DISTINCT ON (candidate_id) tenant_id, candidate_id, timestamp AS first_at
    FROM selection_events
    WHERE tenant_id = %(tenant_id)s AND event_type = %(baseline_event)s
      AND timestamp >= %(window_start)s AND timestamp < %(window_stop)s
    ORDER BY candidate_id, timestamp, event_id
)
SELECT f.candidate_id, f.first_at, {IN_FORCE_VALUES.format(alias="f")} AS attribute_values
FROM firsts f
ORDER BY f.candidate_id
"""

WINDOW_CELLS_WITH_ATTRIBUTES = """
WITH pairs AS (
    SELECT * FROM unnest(%(pair_names)s::text[], %(baselines)s::text[], %(selections)s::text[])
        AS p(stage_pair, baseline, selection)
),
firsts AS MATERIALIZED (
    SELECT DISTINCT ON (tenant_id, event_type, candidate_id)
        tenant_id, event_type, candidate_id, timestamp AS first_at, company_tier, experience_band, specialty
    FROM selection_events
    WHERE timestamp >= %(window_start)s AND timestamp < %(window_stop)s
      AND (%(tenant_id)s::text IS NULL OR tenant_id = %(tenant_id)s)
    ORDER BY tenant_id, event_type, candidate_id, timestamp, event_id
),
baselines AS MATERIALIZED (
    SELECT b.tenant_id, b.event_type, b.candidate_id, b.company_tier, b.experience_band, b.specialty{in_force}
    FROM firsts b
    {joins}
)
SELECT b.tenant_id, p.stage_pair, b.company_tier, b.experience_band, b.specialty{named},
       count(*) AS n, count(s.candidate_id) AS x
FROM pairs p
JOIN baselines b ON b.event_type = p.baseline
LEFT JOIN firsts s ON s.tenant_id = b.tenant_id AND s.event_type = p.selection AND s.candidate_id = b.candidate_id
GROUP BY b.tenant_id, p.stage_pair, b.company_tier, b.experience_band, b.specialty{grouped}
ORDER BY 1, 2, 3, 4, 5
"""
"""Candidate counts per tenant, stage pair and combination of the event dimensions and the attributes: the population
is the candidates with a baseline event in the window, in the groups of their first baseline event (attributes: the
values in force at that event, looked up once per candidate and stage by :func:`in_force_joins`: ``baselines`` is
materialised so that the planner, which cannot estimate a CTE's stage filter, joins rather than probes); ``x``
counts those with a selection event in the window. From ``selection_events`` (unvalidated), as the seed-compatible
worker counts. ``{...}`` are composed with ``psycopg2.sql`` (``attribute_cells_statement``), never data."""


def attribute_cells_statement(template: str, attributes: Sequence[str], *, rows: str, cells: str) -> sql.Composed:
    """A cell-counting ``template`` composed for ``attributes``: ``{joins}`` and ``{in_force}`` give each row of
    alias ``rows`` (tenant_id, candidate_id, first_at) the columns ``attribute_0``, ... (:func:`in_force_joins`);
    ``{attributes}`` lists those columns, ``{grouped}`` the same of alias ``cells`` and ``{named}`` those named by
    their attributes; each after a comma, all empty for no attributes."""
    in_force = in_force_joins(rows, attributes)
    internal = [sql.Identifier(f"attribute_{position}") for position in range(len(attributes))]
    prefixed = [sql.SQL("{}.{}").format(sql.Identifier(cells), column) for column in internal]
    named = [sql.SQL("{} AS {}").format(c, sql.Identifier(name)) for c, name in zip(prefixed, attributes, strict=True)]

    def listed(parts: Sequence[sql.Composable]) -> sql.Composable:
        return sql.SQL("").join(sql.SQL(", {}").format(part) for part in parts)

    return sql.SQL(template).format(
        in_force=sql.SQL(", {}").format(in_force.columns) if attributes else sql.SQL(""),
        joins=in_force.joins,
        attributes=listed(internal),
        named=listed(named),
        grouped=listed(prefixed),
    )


def spread_attribute_values(frame: pd.DataFrame, attributes: Sequence[str]) -> pd.DataFrame:
    """The ``attribute_values`` array column as one column per attribute (None: unknown)."""
    values = frame.pop("attribute_values")
    for position, attribute in enumerate(attributes):
        frame[attribute] = [row[position] if row is not None else None for row in values]
    return frame


def attribute_values_at(
    conn,
    tenant_id: str,
    attributes: Sequence[str],
    window_start: datetime,
    window_stop: datetime,
    baseline_event: str = "shown",
) -> pd.DataFrame:
    """Each candidate of ``tenant_id`` with a ``baseline_event`` in [window_start, window_stop): its first such event
    (``first_at``) and the value of each attribute in force then (None: unknown). One row per candidate."""
    params = {
        "tenant_id": tenant_id,
        "attributes": list(attributes),
        "baseline_event": baseline_event,
        "window_start": window_start,
        "window_stop": window_stop,
    }
    with conn.cursor() as cur:
        cur.execute(ATTRIBUTE_VALUES_AT, params)
        frame = pd.DataFrame(cur.fetchall(), columns=["candidate_id", "first_at", "attribute_values"])
    return spread_attribute_values(frame, attributes)


def window_cells_with_attributes(
    conn,
    *,
    stage_pairs: Sequence[tuple[str, str, str]],
    attributes: Sequence[str],
    window_start: datetime,
    window_stop: datetime,
    tenant_id: str | None = None,
) -> pd.DataFrame:
    """Cell counts (tenant_id, stage_pair, the event dimensions, one column per attribute, n, x) of a window;
    ``stage_pairs`` holds (name, baseline event, selection event)."""
    params = {
        "pair_names": [name for name, _, _ in stage_pairs],
        "baselines": [baseline for _, baseline, _ in stage_pairs],
        "selections": [selection for _, _, selection in stage_pairs],
        "window_start": window_start,
        "window_stop": window_stop,
        "tenant_id": tenant_id,
    }
    statement = attribute_cells_statement(WINDOW_CELLS_WITH_ATTRIBUTES, attributes, rows="b", cells="b")
    with conn.cursor() as cur:
        cur.execute(statement, params)
        return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


def attribute_periods(
    cur,
    first_day: date,
    last_day: date,
    *,
    tenants: Sequence[str] | None = None,
    attributes: Sequence[str] | None = None,
) -> AttributePeriods:
    """The known values of ``attributes`` (default: the catalogue's attribute dimensions) of ``tenants`` (None: all)
    over the days ``first_day`` .. ``last_day``, as day periods keyed by candidate key, from the tenants' snapshots
    (:func:`attribute_snapshots`). ``AttributePeriods.codes_at`` gives the value in force at the end of a day."""
    names, vocabularies = _vocabularies(attributes)
    window_days = (last_day - first_day).days + 1
    if not names or (tenants is not None and not len(tenants)):
        return AttributePeriods.from_snapshots(names, vocabularies, 0, window_days, [])
    snapshots = attribute_snapshots(cur, names, tenants)
    first = (first_day - EPOCH_DAY).days
    return AttributePeriods.from_snapshots(names, vocabularies, first, window_days, snapshots)


EPOCH_DAY = date(1970, 1, 1)
"""Day number 0 of the snapshots' days."""


def _vocabularies(attributes: Sequence[str] | None) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The attribute names (default: the catalogue's attribute dimensions) and their catalogue vocabularies."""
    catalogue = load_catalogue()
    names = tuple(catalogue.attribute_dimensions if attributes is None else attributes)
    return names, [tuple(catalogue.values(name)) if name in catalogue else () for name in names]


def attribute_periods_within(periods: AttributePeriods, first: int, days: int) -> AttributePeriods:
    """``periods`` (read by :func:`attribute_periods`) of the ``days`` days from offset ``first``: the same as reading
    those days, fingerprint included, without reading the history again."""
    return periods.within(first, days, _vocabularies(periods.names)[1])


ATTRIBUTED_TENANTS = """
WITH RECURSIVE tenants AS (
    (SELECT tenant_id FROM candidate_attributes ORDER BY tenant_id LIMIT 1)
    UNION ALL
    SELECT (SELECT c.tenant_id FROM candidate_attributes c WHERE c.tenant_id > t.tenant_id
            ORDER BY c.tenant_id LIMIT 1)
    FROM tenants t
    WHERE t.tenant_id IS NOT NULL
)
SELECT tenant_id::text FROM tenants WHERE tenant_id IS NOT NULL
"""
"""The tenants holding any attribute row, by a skip scan of the key (one index probe per tenant, not a table scan)."""


def attributed_tenants(cur) -> list[str]:
    """The tenants that have loaded any self-identification (other tenants' attributes are all unknown)."""
    cur.execute(ATTRIBUTED_TENANTS)
    return [tenant for (tenant,) in cur.fetchall()]


# --- counting (tests and the command line check what the tables hold) ---------------------------------------------

TABLE_COUNTS = """
SELECT (SELECT count(*) FROM candidate_attributes), (SELECT count(*) FROM candidate_attribute_history),
       (SELECT count(*) FROM candidate_attribute_rejects)
"""


def table_counts(conn) -> dict[str, int]:
    """Rows of the three attribute tables."""
    with conn.cursor() as cur:
        cur.execute(TABLE_COUNTS)
        current, history, rejects = cur.fetchone()
    return {"attributes": current, "history": history, "rejects": rejects}
