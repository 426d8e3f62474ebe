"""SQL of the analysis tables: candidates per day, window counts, selection-rate frames, impact ratios, bias_metrics.

Days are UTC: a day D covers ``timestamp >= D 00:00 UTC`` and ``< D + 1 00:00 UTC``; ``%(day_start)s`` and
``%(day_end)s`` are those two instants.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import pandas as pd
from psycopg2 import sql

from fairness_pipeline.catalogue import load_catalogue
from fairness_pipeline.store.attributes import attribute_cells_statement
from fairness_pipeline.store.schema import (
    TENANT_FILTER,
    Column,
    Table,
    fetch_frame,
    insert_rows,
    missing_days,
    transaction,
)

CANDIDATE_DAILY_STAGES = Table(
    "candidate_daily_stages",
    description="Per tenant, day, stage and candidate: the first event of the day (groups, score, rank).",
    columns=(
        Column("tenant_id", "character varying(255)", "employer", nullable=False),
        Column("day", "date", "UTC day", nullable=False),
        Column("event_type", "character varying(50)", "funnel stage", nullable=False),
        Column("candidate_id", "character varying(255)", "candidate", nullable=False),
        Column("first_at", "timestamp with time zone", "first event of this stage that day", nullable=False),
        Column("company_tier", "character varying(50)", "dimensions of that first event"),
        Column("experience_band", "character varying(20)", "dimensions of that first event"),
        Column("specialty", "character varying(50)", "dimensions of that first event"),
        Column("score", "numeric(5,4)", "of that first event"),
        Column("rank", "integer", "of that first event"),
        Column("events", "integer", "events of this stage that day", nullable=False),
    ),
    key=("day", "tenant_id", "event_type", "candidate_id"),
)

CANDIDATE_DAILY_STAGES_DAYS = Table(
    "candidate_daily_stages_days",
    description="The days candidate_daily_stages holds, with their counts and when arrays were written.",
    columns=(
        Column("day", "date", nullable=False),
        Column("validated_events", "bigint", nullable=False),
        Column("candidate_rows", "bigint", nullable=False),
        Column("summarised_at", "timestamp with time zone", nullable=False),
        Column("arrays_written_at", "timestamp with time zone"),
    ),
    key=("day",),
)

SELECTION_RATE_FRAMES = Table(
    "selection_rate_frames",
    description="Selection rates per window, tenant, stage pair, dimension and group, with demographic parity.",
    columns=(
        Column("window_end", "date", "last day of the window (the partition)", nullable=False),
        Column("window_days", "integer", nullable=False),
        Column("tenant_id", "character varying(255)", "which table and group", nullable=False),
        Column("stage_pair", "text", "which table and group", nullable=False),
        Column("dimension", "text", "which table and group", nullable=False),
        Column("group_value", "text", "which table and group", nullable=False),
        Column("n", "bigint", "candidates in the population, selected", nullable=False),
        Column("x", "bigint", "candidates in the population, selected", nullable=False),
        Column("selection_rate", "double precision", "x / n per group and overall (fairlearn MetricFrame)"),
        Column("overall_rate", "double precision", "x / n per group and overall (fairlearn MetricFrame)"),
        Column("demographic_parity_ratio", "double precision", "min/max and max-min of the group rates"),
        Column("demographic_parity_difference", "double precision"),
        Column("undefined_reason", "text"),
        Column("computed_at", "timestamp with time zone", nullable=False),
    ),
    key=("window_end", "tenant_id", "stage_pair", "dimension", "group_value"),
)

IMPACT_RATIOS = Table(
    "impact_ratios",
    description="Impact ratios against the reference group per window, tenant, stage pair, dimension and group.",
    columns=(
        Column("window_end", "date", "which table and group", nullable=False),
        Column("window_days", "integer", nullable=False),
        Column("tenant_id", "character varying(255)", "which table and group", nullable=False),
        Column("stage_pair", "text", "which table and group", nullable=False),
        Column("dimension", "text", "which table and group", nullable=False),
        Column("group_value", "text", "which table and group", nullable=False),
        Column("n", "bigint", nullable=False),
        Column("x", "bigint", nullable=False),
        Column("selection_rate", "double precision"),
        Column("share", "double precision"),
        Column("reference_group", "text", "highest rate among groups with >= 2% of candidates"),
        Column("reference_rate", "double precision", "highest rate among groups with >= 2% of candidates"),
        Column("is_reference", "boolean", nullable=False),
        Column("excluded_small_share", "boolean", "2% rule; why a value is NULL", nullable=False),
        Column("impact_ratio", "double precision", "SR_g / SR_r; adverse when < 0.80 (strictly)"),
        Column("adverse_impact", "boolean", "SR_g / SR_r; adverse when < 0.80 (strictly)"),
        Column("test", "text", "Fisher or pooled z; Holm (BH for pairs)"),
        Column("statistic", "double precision", "Fisher or pooled z; Holm (BH for pairs)"),
        Column("p_value", "double precision", "Fisher or pooled z; Holm (BH for pairs)"),
        Column("p_adjusted", "double precision", "Fisher or pooled z; Holm (BH for pairs)"),
        Column("adjustment_method", "text"),
        Column("significant", "boolean", "Fisher or pooled z; Holm (BH for pairs)"),
        Column("ci_low", "double precision", "Katz 95% interval of the impact ratio"),
        Column("ci_high", "double precision", "Katz 95% interval of the impact ratio"),
        Column("shortfall", "integer", "practical significance"),
        Column("flip_flop", "boolean", "practical significance"),
        Column("flip_flop_ratio", "double precision"),
        Column("cohens_h", "double precision", "practical significance"),
        Column("low_sample", "boolean", "practical significance", nullable=False),
        Column("undefined_reason", "text", "2% rule; why a value is NULL"),
        Column("computed_at", "timestamp with time zone", nullable=False),
        Column("p_omnibus", "double precision"),
    ),
    key=("window_end", "tenant_id", "stage_pair", "dimension", "group_value"),
)

BIAS_METRICS = Table(
    "bias_metrics",
    description="The seed worker's metrics_json documents, one per tenant and window (or ad hoc).",
    columns=(
        Column("id", "integer", nullable=False),
        Column("tenant_id", "character varying(255)", nullable=False),
        Column("computed_at", "timestamp with time zone", nullable=False),
        Column("metrics_json", "jsonb", nullable=False),
        Column("window_end", "date"),
        Column("window_days", "integer"),
    ),
    key=("id",),
    unique=(("tenant_id", "computed_at"), ("tenant_id", "window_end")),
)


DELETE_CANDIDATE_DAY = "DELETE FROM candidate_daily_stages WHERE day = %(day)s"

INSERT_CANDIDATE_DAY = """
INSERT INTO candidate_daily_stages (tenant_id, day, event_type, candidate_id, first_at, company_tier,
    experience_band, specialty, score, rank, events)
SELECT DISTINCT ON (tenant_id, event_type, candidate_id)
    tenant_id, %(day)s::date, event_type, candidate_id, timestamp, company_tier, experience_band, specialty,
    score, rank, count(*) OVER (PARTITION BY tenant_id, event_type, candidate_id)
FROM validated_selection_events
WHERE timestamp >= %(day_start)s AND timestamp < %(day_end)s
ORDER BY tenant_id, event_type, candidate_id, timestamp, event_id
"""

RECORD_CANDIDATE_DAY = """
INSERT INTO candidate_daily_stages_days (day, validated_events, candidate_rows)
VALUES (%(day)s, %(validated_events)s, %(candidate_rows)s)
ON CONFLICT (day) DO UPDATE
SET validated_events = EXCLUDED.validated_events, candidate_rows = EXCLUDED.candidate_rows, summarised_at = now(),
    arrays_written_at = NULL
"""

SUMMARISED_DAYS = """
SELECT day FROM candidate_daily_stages_days WHERE day BETWEEN %(first_day)s AND %(last_day)s ORDER BY day
"""

# The population of a stage pair is every candidate with a baseline event in the window, in the groups of its first
# baseline event; it is selected when it also has a selection event in the window. The stage pairs arrive as three
# parallel arrays. One sort serves everything: `stages` walks each candidate's rows of the window ordered by stage and
# time, flags the first row of each stage (whose groups count) and ORs a bit per selection stage present (the bit is
# the stage's position in `selections`, so up to 62 pairs; other stages set bit 0). `firsts` keeps the first row of
# each stage with the value of each attribute in force at that row's first event (`store.attributes.in_force_joins`:
# one LEFT JOIN of the history per attribute, which the planner hash-joins; a tenant without attributes finds no rows,
# i.e. unknown). `cells` counts candidates per tenant, stage, groups and stage set (a few thousand rows), which the
# pairs then sum: no join of candidates with candidates, no copy of the population per pair. COLLATE "C" only makes
# the sort compare bytes.
WINDOW_CELLS = """
WITH pairs AS (
    SELECT * FROM unnest(%(pair_names)s::text[], %(baselines)s::text[], %(selections)s::text[])
        AS p(stage_pair, baseline, selection)
),
stages AS (
    SELECT tenant_id, candidate_id, first_at, event_type, company_tier, experience_band, specialty,
           event_type IS DISTINCT FROM lag(event_type) OVER w AS first_of_stage,
           bit_or(1::bigint << coalesce(array_position(%(selections)s::text[], event_type::text), 0)) OVER w AS stages
    FROM candidate_daily_stages
    WHERE day BETWEEN %(first_day)s AND %(last_day)s
      AND (%(tenant_id)s::text IS NULL OR tenant_id = %(tenant_id)s)
    WINDOW w AS (PARTITION BY candidate_id COLLATE "C", tenant_id COLLATE "C" ORDER BY event_type COLLATE "C", first_at
                 ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
),
firsts AS (
    SELECT s.tenant_id, s.event_type, s.company_tier, s.experience_band, s.specialty, s.stages{in_force}
    FROM stages s
    {joins}
    WHERE s.first_of_stage
),
cells AS (
    SELECT tenant_id, event_type, company_tier, experience_band, specialty{attributes}, stages,
           count(*) AS candidates
    FROM firsts
    GROUP BY tenant_id, event_type, company_tier, experience_band, specialty{attributes}, stages
)
SELECT c.tenant_id, p.stage_pair, c.company_tier, c.experience_band, c.specialty{named},
       sum(c.candidates)::bigint AS n,
       coalesce(sum(c.candidates) FILTER (
           WHERE c.stages & (1::bigint << array_position(%(selections)s::text[], p.selection)) <> 0), 0)::bigint AS x
FROM cells c
JOIN pairs p ON c.event_type = p.baseline
GROUP BY c.tenant_id, p.stage_pair, c.company_tier, c.experience_band, c.specialty{grouped}
ORDER BY 1, 2, 3, 4, 5
"""
"""Template of :func:`window_cells_statement` (``{...}``: ``attributes.attribute_cells_statement``, never data)."""


def window_cells_statement(attributes: Sequence[str]) -> sql.Composed:
    """WINDOW_CELLS counting ``attributes`` too: candidate counts per tenant, stage pair and combination of the event
    dimensions and the attributes, one column per attribute named by it (NULL: unknown)."""
    return attribute_cells_statement(WINDOW_CELLS, attributes, rows="s", cells="c")


WINDOW_CELLS_FROM_EVENTS = """
WITH pairs AS (
    SELECT * FROM unnest(%(pair_names)s::text[], %(baselines)s::text[], %(selections)s::text[])
        AS p(stage_pair, baseline, selection)
),
firsts AS MATERIALIZED (
    SELECT DISTINCT ON (tenant_id, event_type, candidate_id)
        tenant_id, event_type, candidate_id, company_tier, experience_band, specialty
    FROM selection_events
    WHERE timestamp >= %(window_start)s AND timestamp < %(window_stop)s
      AND (%(tenant_id)s::text IS NULL OR tenant_id = %(tenant_id)s)
    ORDER BY tenant_id, event_type, candidate_id, timestamp, event_id
)
SELECT b.tenant_id, p.stage_pair, b.company_tier, b.experience_band, b.specialty,
       count(*) AS n, count(s.candidate_id) AS x
FROM pairs p
JOIN firsts b ON b.event_type = p.baseline
LEFT JOIN firsts s ON s.tenant_id = b.tenant_id AND s.event_type = p.selection AND s.candidate_id = b.candidate_id
GROUP BY b.tenant_id, p.stage_pair, b.company_tier, b.experience_band, b.specialty
ORDER BY 1, 2, 3, 4, 5
"""
"""The same counts straight from ``selection_events`` (unvalidated): used by the seed-compatible ``worker``."""

DELETE_FRAMES_WINDOW = f"DELETE FROM selection_rate_frames WHERE window_end = %(window_end)s AND {TENANT_FILTER}"

INSERT_FRAMES = """
INSERT INTO selection_rate_frames (window_end, window_days, tenant_id, stage_pair, dimension, group_value, n, x,
    selection_rate, overall_rate, demographic_parity_ratio, demographic_parity_difference, undefined_reason)
VALUES %s
"""

FRAMES_WINDOW = f"""
SELECT tenant_id, stage_pair, dimension, group_value AS "group", n, x, selection_rate, overall_rate,
       demographic_parity_ratio AS dp_ratio, demographic_parity_difference AS dp_difference, undefined_reason
FROM selection_rate_frames
WHERE window_end = %(window_end)s AND {TENANT_FILTER}
ORDER BY tenant_id, stage_pair, dimension, group_value
"""

DELETE_IMPACTS_WINDOW = f"DELETE FROM impact_ratios WHERE window_end = %(window_end)s AND {TENANT_FILTER}"

INSERT_IMPACTS = """
INSERT INTO impact_ratios (window_end, window_days, tenant_id, stage_pair, dimension, group_value, n, x,
    selection_rate, share, reference_group, reference_rate, is_reference, excluded_small_share, impact_ratio,
    adverse_impact, test, statistic, p_value, p_omnibus, p_adjusted, adjustment_method, significant, ci_low, ci_high,
    shortfall, flip_flop, flip_flop_ratio, cohens_h, low_sample, undefined_reason)
VALUES %s
"""

IMPACTS_WINDOW = f"""
SELECT tenant_id, stage_pair, dimension, group_value AS "group", n, x, selection_rate, share, reference_group,
       reference_rate, is_reference, excluded_small_share, impact_ratio, adverse_impact, test, statistic, p_value,
       p_omnibus, p_adjusted, adjustment_method, significant, ci_low, ci_high, shortfall, flip_flop, flip_flop_ratio,
       cohens_h, low_sample, undefined_reason
FROM impact_ratios
WHERE window_end = %(window_end)s AND {TENANT_FILTER}
ORDER BY tenant_id, stage_pair, dimension, group_value
"""

DELETE_BIAS_METRICS_WINDOW = f"DELETE FROM bias_metrics WHERE window_end = %(window_end)s AND {TENANT_FILTER}"

INSERT_BIAS_METRICS = """
INSERT INTO bias_metrics (tenant_id, computed_at, metrics_json, window_end, window_days)
VALUES (%(tenant_id)s, %(computed_at)s, %(metrics_json)s, %(window_end)s, %(window_days)s)
"""

INSERT_BIAS_METRICS_ADHOC = """
INSERT INTO bias_metrics (tenant_id, computed_at, metrics_json)
VALUES (%(tenant_id)s, %(computed_at)s, %(metrics_json)s)
"""


LATE_EVENT_DAYS = """
SELECT (e.timestamp AT TIME ZONE 'UTC')::date AS day, e.tenant_id, count(*) AS events, max(e.created_at) AS latest
FROM selection_events e
JOIN candidate_daily_stages_days d ON d.day = (e.timestamp AT TIME ZONE 'UTC')::date
WHERE e.created_at > %(after)s AND e.created_at <= %(until)s
GROUP BY 1, 2
ORDER BY 1, 2
"""
"""Days already summarised that received events of a tenant inserted after ``after``: that tenant's windows of them
are stale."""


# --- functions ----------------------------------------------------------------------------------------------------


def replace_candidate_day(cur, bounds: Mapping[str, Any], validated_events: int) -> int:
    """Replace the day's candidate_daily_stages rows (first event per tenant, stage and candidate) and record the day
    as summarised; returns the rows written. The caller holds the day's candidate_daily_stages lock."""
    cur.execute(DELETE_CANDIDATE_DAY, bounds)
    cur.execute(INSERT_CANDIDATE_DAY, bounds)
    rows = cur.rowcount
    cur.execute(RECORD_CANDIDATE_DAY, {**bounds, "validated_events": validated_events, "candidate_rows": rows})
    return rows


def summarised_days(cur, first_day: date, last_day: date) -> set[date]:
    """Days from ``first_day`` to ``last_day`` whose candidate_daily_stages partition has been materialised."""
    cur.execute(SUMMARISED_DAYS, {"first_day": first_day, "last_day": last_day})
    return {row[0] for row in cur.fetchall()}


def missing_summary_days(cur, first_day: date, last_day: date) -> list[date]:
    """Days of the window whose candidate_daily_stages partition has not been materialised."""
    return missing_days(summarised_days(cur, first_day, last_day), first_day, last_day)


def pair_arrays(stage_pair_names: Sequence[str], stage_pairs: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """The stage pairs as the three parallel arrays the window statements take."""
    return {
        "pair_names": list(stage_pair_names),
        "baselines": [b for b, _ in stage_pairs],
        "selections": [s for _, s in stage_pairs],
    }


def window_cells(
    cur,
    stage_pair_names: Sequence[str],
    stage_pairs: Sequence[tuple[str, str]],
    first_day: date,
    last_day: date,
    tenant_id: str | None = None,
    attributes: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Candidate counts of the window per tenant, stage pair and dimension cell (the SQL does the counting): columns
    tenant_id, stage_pair, the event dimensions, one column per attribute (default: the catalogue's attribute
    dimensions; None = unknown), n, x."""
    if attributes is None:
        attributes = load_catalogue().attribute_dimensions
    params = {
        **pair_arrays(stage_pair_names, stage_pairs),
        "first_day": first_day,
        "last_day": last_day,
        "tenant_id": tenant_id,
    }
    return fetch_frame(cur, window_cells_statement(attributes), params)


FRAME_COLUMNS = [
    "tenant_id",
    "stage_pair",
    "dimension",
    "group",
    "n",
    "x",
    "selection_rate",
    "overall_rate",
    "dp_ratio",
    "dp_difference",
    "undefined_reason",
]
"""The columns of a selection-rate frame as ``metrics.selection_rates`` names them (and FRAMES_WINDOW reads them)."""


def replace_frames(cur, window_end: date, window_days: int, frames: pd.DataFrame, tenant_id: str | None = None) -> int:
    """Replace the window's selection_rate_frames rows (``tenant_id``'s only, when given); returns the rows written."""
    cur.execute(DELETE_FRAMES_WINDOW, {"window_end": window_end, "tenant_id": tenant_id})
    return insert_rows(cur, INSERT_FRAMES, frames, FRAME_COLUMNS, (window_end, window_days))


def frames_window(cur, window_end: date, tenant_id: str | None = None) -> pd.DataFrame:
    """The window's stored selection-rate frames (``tenant_id``'s only, when given)."""
    return fetch_frame(cur, FRAMES_WINDOW, {"window_end": window_end, "tenant_id": tenant_id})


def replace_impacts(
    cur,
    window_end: date,
    window_days: int,
    impacts: pd.DataFrame,
    columns: Sequence[str],
    tenant_id: str | None = None,
) -> int:
    """Replace the window's impact_ratios rows (``tenant_id``'s only, when given) with ``impacts[columns]``; returns
    the rows written."""
    cur.execute(DELETE_IMPACTS_WINDOW, {"window_end": window_end, "tenant_id": tenant_id})
    return insert_rows(cur, INSERT_IMPACTS, impacts, columns, (window_end, window_days))


def impacts_window(cur, window_end: date, tenant_id: str | None = None) -> pd.DataFrame:
    """The window's stored impact ratios (``tenant_id``'s only, when given)."""
    return fetch_frame(cur, IMPACTS_WINDOW, {"window_end": window_end, "tenant_id": tenant_id})


def replace_bias_metrics(
    cur,
    window_end: date,
    window_days: int,
    computed_at: datetime,
    documents: Mapping[str, dict],
    tenant_id: str | None = None,
) -> int:
    """Replace the window's bias_metrics rows (``tenant_id``'s only, when given) with one JSON document per tenant;
    returns the rows written."""
    cur.execute(DELETE_BIAS_METRICS_WINDOW, {"window_end": window_end, "tenant_id": tenant_id})
    for tenant, document in documents.items():
        cur.execute(
            INSERT_BIAS_METRICS,
            {
                "tenant_id": tenant,
                "computed_at": computed_at,
                "metrics_json": json.dumps(document),
                "window_end": window_end,
                "window_days": window_days,
            },
        )
    return len(documents)


def insert_adhoc_bias_metrics(conn, documents: Mapping[str, dict], computed_at: datetime) -> int:
    """Store ad-hoc bias_metrics documents, one per tenant (no window: the seed worker's shape), in one transaction;
    returns how many."""
    with transaction(conn) as cur:
        for tenant_id, document in documents.items():
            cur.execute(
                INSERT_BIAS_METRICS_ADHOC,
                {"tenant_id": tenant_id, "computed_at": computed_at, "metrics_json": json.dumps(document)},
            )
    return len(documents)


def late_event_days(cur, after: datetime, until: datetime) -> list[tuple[date, str, int, datetime]]:
    """Summarised days that received events inserted after ``after`` (up to ``until``): day, tenant, events,
    latest."""
    cur.execute(LATE_EVENT_DAYS, {"after": after, "until": until})
    return cur.fetchall()
