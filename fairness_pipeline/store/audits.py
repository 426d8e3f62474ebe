"""SQL of the audit assets: per-search exposure aggregates, scoring cells, impact-ratio series, and their writes.

Time bounds are UTC instants (``%(window_start)s`` inclusive, ``%(window_stop)s`` exclusive); day bounds are dates.
The statements aggregate in the database: Python receives one row per search and dimension cell (exposure, slates)
or per dimension cell (scoring), never one row per event. Search rows also carry the candidates' self-identified
attribute values in force at each impression (``store.attributes.IN_FORCE_VALUES``), so that exposure and slates
cover the catalogue's attribute dimensions; a tenant-day asked for recomputation after it was summarised (attributes
loaded or deleted since) is re-aggregated by the next exposure window (:func:`refresh_stale_searches`).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd
from psycopg2 import sql

from fairness_pipeline.audits import exposure, scoring, slates, trends
from fairness_pipeline.catalogue import load_catalogue
from fairness_pipeline.events.vocabulary import DIMENSION_VALUES, DIMENSIONS
from fairness_pipeline.metrics import candidate_arrays as candidate_arrays_module
from fairness_pipeline.metrics.window import TABLE_KEYS, AnalysisSettings, group_counts
from fairness_pipeline.store.attributes import (
    IN_FORCE_VALUES,
    attribute_periods,
    attribute_periods_within,
    attributed_tenants,
)
from fairness_pipeline.store.binary_copy import read_binary_copy, read_binary_records
from fairness_pipeline.store.partition_lock import lock_partition
from fairness_pipeline.store.schema import TENANT_FILTER, Column, Table, fetch_frame, insert_rows, missing_days

SEARCH_DAILY_AGGREGATES = Table(
    "search_daily_aggregates",
    description="Per tenant, day, search and dimension cell: sums over the search's shown impressions.",
    columns=(
        Column("tenant_id", "character varying(255)", "a search, on the day of its first shown event", nullable=False),
        Column("day", "date", "a search, on the day of its first shown event", nullable=False),
        Column("search_id", "character varying(255)", "a search, on the day of its first shown event", nullable=False),
        Column("company_tier", "character varying(50)", "one combination of dimension values (NULL = unknown)"),
        Column("experience_band", "character varying(20)", "one combination of dimension values (NULL = unknown)"),
        Column("specialty", "character varying(50)", "one combination of dimension values (NULL = unknown)"),
        Column("shown", "integer", "impressions; with a rank; at rank <= 10; with rank and score", nullable=False),
        Column("ranked", "integer", "impressions; with a rank; at rank <= 10; with rank and score", nullable=False),
        Column(
            "weight_sum", "double precision", "sum of 1 / log2(1 + rank) (over ranked; over scored)", nullable=False
        ),
        Column("top_k", "integer", "impressions; with a rank; at rank <= 10; with rank and score", nullable=False),
        Column("scored", "integer", "impressions; with a rank; at rank <= 10; with rank and score", nullable=False),
        Column(
            "score_sum", "double precision", "sum of scores; of 1 / log2(1 + rank) if ordered by score", nullable=False
        ),
        Column(
            "scored_weight_sum",
            "double precision",
            "sum of 1 / log2(1 + rank) (over ranked; over scored)",
            nullable=False,
        ),
        Column(
            "merit_weight_sum",
            "double precision",
            "sum of scores; of 1 / log2(1 + rank) if ordered by score",
            nullable=False,
        ),
        Column("search_number", "integer", nullable=False),
        Column(
            "attribute_values",
            "text[]",
            "each attribute of the day's `attributes` in force at the impression (NULL: tenant without any)",
        ),
    ),
    key=(),
    unique=(("day", "tenant_id", "search_id"),),
)

SEARCH_DAILY_AGGREGATES_DAYS = Table(
    "search_daily_aggregates_days",
    description="The days search_daily_aggregates holds: searches, rows and tenants per day.",
    columns=(
        Column("day", "date", nullable=False),
        Column("searches", "bigint", nullable=False),
        Column("aggregate_rows", "bigint", nullable=False),
        Column("aggregated_at", "timestamp with time zone", nullable=False),
        Column("tenants", "text[]", nullable=False),
        Column("attributes", "text[]", "the attributes whose values the day's rows carry, in order", nullable=False),
    ),
    key=("day",),
)

EXPOSURE_DAY_SUMS = Table(
    "exposure_day_sums",
    description="Per day, layout, bootstrap setting and tenant: exposure sums with their replicates.",
    columns=(
        Column("tenant_id", "character varying(255)", nullable=False),
        Column("day", "date", nullable=False),
        Column("layout_key", "bigint", nullable=False),
        Column("n_boot", "integer", nullable=False),
        Column("bootstrap_seed", "bigint", nullable=False),
        Column("searches", "integer", nullable=False),
        Column("totals", "bytea", nullable=False),
        Column("shown", "bytea", nullable=False),
        Column("group_searches", "bytea", nullable=False),
        Column("replicates", "bytea"),
        Column("computed_at", "timestamp with time zone", nullable=False),
    ),
    key=("day", "layout_key", "n_boot", "bootstrap_seed", "tenant_id"),
)

CANDIDATE_DAY_ARRAYS = Table(
    "candidate_day_arrays",
    description="Per day, tenant and stage: the day's candidates as packed arrays (keys, scores, groups).",
    columns=(
        Column("tenant_id", "character varying(255)", nullable=False),
        Column("day", "date", nullable=False),
        Column("event_type", "character varying(50)", nullable=False),
        Column("candidates", "integer", nullable=False),
        Column("candidate_keys", "bytea", nullable=False),
        Column("scores", "bytea", nullable=False),
        Column("dimension_codes", "bytea", nullable=False),
        Column("computed_at", "timestamp with time zone", nullable=False),
    ),
    key=("day", "tenant_id", "event_type"),
)

SCORING_RATE_RATIOS = Table(
    "scoring_rate_ratios",
    description="LL144 scoring rates and their impact ratios per window, tenant, dimension and group.",
    columns=(
        Column("window_end", "date", "which table and group (pairs: `a+b`, `x|y`)", nullable=False),
        Column("window_days", "integer", nullable=False),
        Column("tenant_id", "character varying(255)", "which table and group (pairs: `a+b`, `x|y`)", nullable=False),
        Column("dimension", "text", "which table and group (pairs: `a+b`, `x|y`)", nullable=False),
        Column("group_value", "text", "which table and group (pairs: `a+b`, `x|y`)", nullable=False),
        Column("median_score", "double precision", "median M of the tenant's scored candidates in the window"),
        Column("n", "bigint", "scored candidates, with score > M, without a score", nullable=False),
        Column("above_median", "bigint", "scored candidates, with score > M, without a score", nullable=False),
        Column("missing_score", "bigint", "scored candidates, with score > M, without a score", nullable=False),
        Column("scoring_rate", "double precision", "above_median / n; highest-rate group"),
        Column("share", "double precision"),
        Column("reference_group", "text", "above_median / n; highest-rate group"),
        Column("reference_rate", "double precision", "above_median / n; highest-rate group"),
        Column("is_reference", "boolean", nullable=False),
        Column("excluded_small_share", "boolean", "2% rule; why a value is NULL", nullable=False),
        Column("impact_ratio", "double precision", "rate / reference rate; adverse when < 0.80"),
        Column("adverse_impact", "boolean", "rate / reference rate; adverse when < 0.80"),
        Column("test", "text", "Fisher or pooled z; Holm (BH for pairs)"),
        Column("statistic", "double precision"),
        Column("p_value", "double precision", "Fisher or pooled z; Holm (BH for pairs)"),
        Column("p_adjusted", "double precision", "Fisher or pooled z; Holm (BH for pairs)"),
        Column("adjustment_method", "text"),
        Column("significant", "boolean", "Fisher or pooled z; Holm (BH for pairs)"),
        Column("ci_low", "double precision", "as for selection rates"),
        Column("ci_high", "double precision", "as for selection rates"),
        Column("shortfall", "integer", "as for selection rates"),
        Column("flip_flop", "boolean", "as for selection rates"),
        Column("flip_flop_ratio", "double precision"),
        Column("cohens_h", "double precision", "as for selection rates"),
        Column("low_sample", "boolean", "as for selection rates", nullable=False),
        Column("undefined_reason", "text", "2% rule; why a value is NULL"),
        Column("computed_at", "timestamp with time zone", nullable=False),
        Column("p_omnibus", "double precision"),
    ),
    key=("window_end", "tenant_id", "dimension", "group_value"),
)

RANK_EXPOSURE = Table(
    "rank_exposure",
    description="Position-discounted exposure, exposure ratios, skew@k and merit ratios per window and group.",
    columns=(
        Column("window_end", "date", "which table and group", nullable=False),
        Column("window_days", "integer", nullable=False),
        Column("tenant_id", "character varying(255)", "which table and group", nullable=False),
        Column("dimension", "text", "which table and group", nullable=False),
        Column("group_value", "text", "which table and group", nullable=False),
        Column("searches", "bigint", "searches showing the group; impressions", nullable=False),
        Column("shown", "bigint", "searches showing the group; impressions", nullable=False),
        Column("ranked", "bigint", "searches showing the group; impressions", nullable=False),
        Column("missing_rank", "bigint", "searches showing the group; impressions", nullable=False),
        Column("share", "double precision", "searches showing the group; impressions"),
        Column("exposure", "double precision", "mean 1 / log2(1 + rank) over the group's ranked impressions"),
        Column("exposure_ci_low", "double precision"),
        Column("exposure_ci_high", "double precision"),
        Column("reference_group", "text"),
        Column("reference_exposure", "double precision"),
        Column("is_reference", "boolean", nullable=False),
        Column("excluded_small_share", "boolean", nullable=False),
        Column("exposure_ratio", "double precision", "exposure / best-exposed group's; low when < 0.80"),
        Column("ratio_ci_low", "double precision"),
        Column("ratio_ci_high", "double precision"),
        Column("low_exposure", "boolean"),
        Column("p_value", "double precision", "bootstrap over searches; Holm (BH for pairs)"),
        Column("p_adjusted", "double precision", "bootstrap over searches; Holm (BH for pairs)"),
        Column("adjustment_method", "text"),
        Column("significant", "boolean", "bootstrap over searches; Holm (BH for pairs)"),
        Column("top_k", "integer", "share of top-k impressions / share of all (k = 10)", nullable=False),
        Column("skew_at_k", "double precision", "share of top-k impressions / share of all (k = 10)"),
        Column("skew_ci_low", "double precision"),
        Column("skew_ci_high", "double precision"),
        Column("scored", "bigint", nullable=False),
        Column("mean_score", "double precision", "exposure per unit of score against the reference"),
        Column("treatment_ratio", "double precision", "exposure per unit of score against the reference"),
        Column("treatment_ci_low", "double precision"),
        Column("treatment_ci_high", "double precision"),
        Column("treatment_p_value", "double precision"),
        Column("treatment_p_adjusted", "double precision"),
        Column("treatment_significant", "boolean"),
        Column("merit_ratio", "double precision", "exposure / exposure if slates were ordered by score"),
        Column("merit_ci_low", "double precision"),
        Column("merit_ci_high", "double precision"),
        Column("merit_p_value", "double precision"),
        Column("merit_p_adjusted", "double precision"),
        Column("merit_significant", "boolean"),
        Column("low_sample", "boolean", "searches < 20; why NULL", nullable=False),
        Column("n_boot", "integer", "searches < 20; why NULL", nullable=False),
        Column("undefined_reason", "text", "searches < 20; why NULL"),
        Column("score_undefined_reason", "text", "searches < 20; why NULL"),
        Column("computed_at", "timestamp with time zone", nullable=False),
    ),
    key=("window_end", "tenant_id", "dimension", "group_value"),
)

SLATE_CONCENTRATION = Table(
    "slate_concentration",
    description="Per day, tenant and dimension: slates with more than 70% of one group, against chance.",
    columns=(
        Column("day", "date", "searches whose first shown event is on the day", nullable=False),
        Column("tenant_id", "character varying(255)", "searches whose first shown event is on the day", nullable=False),
        Column("dimension", "text", "searches whose first shown event is on the day", nullable=False),
        Column("searches", "bigint", "slates; of them with >= min_slate shown candidates", nullable=False),
        Column("assessed", "bigint", "slates; of them with >= min_slate shown candidates", nullable=False),
        Column("too_small", "bigint", "slates; of them with >= min_slate shown candidates", nullable=False),
        Column("concentrated", "bigint", "slates with > 70% from one group; / assessed", nullable=False),
        Column("concentrated_share", "double precision", "slates with > 70% from one group; / assessed"),
        Column(
            "expected_share",
            "double precision",
            "chance share from the day's group shares; one-sided binomial test; Holm across dimensions",
        ),
        Column(
            "excess_p_value",
            "double precision",
            "chance share from the day's group shares; one-sided binomial test; Holm across dimensions",
        ),
        Column(
            "excess_p_adjusted",
            "double precision",
            "chance share from the day's group shares; one-sided binomial test; Holm across dimensions",
        ),
        Column(
            "excess_significant",
            "boolean",
            "chance share from the day's group shares; one-sided binomial test; Holm across dimensions",
        ),
        Column("top_group", "text", "the group dominating most concentrated slates"),
        Column("concentration", "double precision", nullable=False),
        Column("min_slate", "integer", nullable=False),
        Column("undefined_reason", "text"),
        Column("computed_at", "timestamp with time zone", nullable=False),
    ),
    key=("day", "tenant_id", "dimension"),
)

SLATE_CONCENTRATION_GROUPS = Table(
    "slate_concentration_groups",
    description="Per day, tenant and dimension: the groups dominating concentrated slates.",
    columns=(
        Column("day", "date", nullable=False),
        Column("tenant_id", "character varying(255)", nullable=False),
        Column("dimension", "text", nullable=False),
        Column("group_value", "text", nullable=False),
        Column("concentrated", "bigint", nullable=False),
        Column("share_of_concentrated", "double precision", nullable=False),
        Column("share_of_assessed", "double precision", nullable=False),
        Column("computed_at", "timestamp with time zone", nullable=False),
    ),
    key=("day", "tenant_id", "dimension", "group_value"),
)

TREND_WEEK_COUNTS = Table(
    "trend_week_counts",
    description="Group counts of 7-day windows, kept for the trends run a week later.",
    columns=(
        Column("week_end", "date", nullable=False),
        Column("settings_key", "text", nullable=False),
        Column("tenant_id", "character varying(255)", nullable=False),
        Column("stage_pair", "text", nullable=False),
        Column("dimension", "text", nullable=False),
        Column("group_value", "text", nullable=False),
        Column("n", "bigint", nullable=False),
        Column("x", "bigint", nullable=False),
        Column("computed_at", "timestamp with time zone", nullable=False),
    ),
    key=("week_end", "settings_key", "tenant_id", "stage_pair", "dimension", "group_value"),
)

FAIRNESS_TRENDS = Table(
    "fairness_trends",
    description="Impact-ratio slopes (approaching threshold) and week-over-week changes (worsening).",
    columns=(
        Column("window_end", "date", "which series (as of window_end)", nullable=False),
        Column("window_days", "integer", nullable=False),
        Column("tenant_id", "character varying(255)", "which series (as of window_end)", nullable=False),
        Column("stage_pair", "text", "which series (as of window_end)", nullable=False),
        Column("dimension", "text", "which series (as of window_end)", nullable=False),
        Column("group_value", "text", "which series (as of window_end)", nullable=False),
        Column("latest_ratio", "double precision", "least-squares slope of the last 14 daily windows"),
        Column("windows_used", "integer", "least-squares slope of the last 14 daily windows"),
        Column("slope_per_day", "double precision", "least-squares slope of the last 14 daily windows"),
        Column("days_to_threshold", "double precision", ">= 0.80 and reaching it within 30 days"),
        Column("adverse_now", "boolean", ">= 0.80 and reaching it within 30 days"),
        Column("approaching_threshold", "boolean", ">= 0.80 and reaching it within 30 days"),
        Column("trend_undefined_reason", "text", "n < 20 in a week; why NULL"),
        Column("reference_group", "text", "7-day windows ending on D and on D-7"),
        Column("n_current", "bigint"),
        Column("x_current", "bigint", "7-day windows ending on D and on D-7"),
        Column("n_previous", "bigint"),
        Column("x_previous", "bigint", "7-day windows ending on D and on D-7"),
        Column("ratio_current", "double precision", "impact ratios against this week's r"),
        Column("ratio_previous", "double precision", "impact ratios against this week's r"),
        Column("ratio_change", "double precision", "impact ratios against this week's r"),
        Column("log_change", "double precision", "impact ratios against this week's r"),
        Column("se", "double precision", "Katz z-test of the log change; Holm/BH"),
        Column("z", "double precision", "Katz z-test of the log change; Holm/BH"),
        Column("p_value", "double precision", "Katz z-test of the log change; Holm/BH"),
        Column("p_adjusted", "double precision", "Katz z-test of the log change; Holm/BH"),
        Column("adjustment_method", "text"),
        Column("significant", "boolean", "Katz z-test of the log change; Holm/BH"),
        Column("worsening", "boolean", "Katz z-test of the log change; Holm/BH"),
        Column("low_sample", "boolean", "n < 20 in a week; why NULL"),
        Column("wow_undefined_reason", "text", "n < 20 in a week; why NULL"),
        Column("computed_at", "timestamp with time zone", nullable=False),
        Column("improving", "boolean"),
    ),
    key=("window_end", "tenant_id", "stage_pair", "dimension", "group_value"),
)


# Shown impressions of the searches that start in [window_start, window_stop) (one day, for search_daily_aggregates):
# - repeated shown events of one (search, candidate) count once: the first (timestamp, then event_id) is kept;
# - a search belongs to the UTC day of its first shown event, so its impressions are read from `scan_start` (a day
#   earlier) to decide where it starts; impressions at or after `window_stop` are not read (the day's snapshot);
# - a rank below 1 counts as missing (the validation suite rejects them, the rule holds anyway);
# - merit ranks: a search's scored impressions' ranks sorted ascending are handed out by score descending (ties by
#   rank, then candidate), `audits.exposure.search_aggregates` being the reference. Scored impressions sort first in
#   both windows, so the n-th by score gets the n-th smallest rank (nth_value), without a join;
# - attributes: for the tenants in `%(attributed_tenants)s` (those that loaded any), the value of each of
#   `%(attributes)s` in force at the impression (`store.attributes.IN_FORCE_VALUES`: an index probe per impression of
#   the day's searches); other tenants' values are NULL (all unknown) with no probe;
# - `%(tenant_ids)s`: NULL for every tenant, or the tenants to re-aggregate (their search numbers are the same).
# Window functions only (no join between intermediate results): every step streams over the sorted impressions. Sums
# are ordered aggregates so that a re-run gives the same floating-point values whatever the plan.
SEARCH_AGGREGATES = f"""
WITH shown AS (
    SELECT DISTINCT ON (tenant_id, search_id, candidate_id)
        tenant_id, search_id, candidate_id, timestamp AS first_at, company_tier, experience_band, specialty,
        CASE WHEN rank >= 1 THEN rank END AS rank, score::float8 AS score
    FROM validated_selection_events
    WHERE event_type = 'shown' AND timestamp >= %(scan_start)s AND timestamp < %(window_stop)s
      AND (%(tenant_ids)s::text[] IS NULL OR tenant_id = ANY(%(tenant_ids)s::text[]))
    ORDER BY tenant_id, search_id, candidate_id, timestamp, event_id
),
dated AS (
    SELECT *, min(first_at) OVER (PARTITION BY tenant_id, search_id) AS search_start,
           rank IS NOT NULL AND score IS NOT NULL AS is_scored
    FROM shown
),
slotted AS (
    SELECT *, row_number() OVER (PARTITION BY tenant_id, search_id
                                 ORDER BY is_scored DESC, score DESC, rank, candidate_id) AS by_score
    FROM dated
    WHERE search_start >= %(window_start)s
),
merit AS (
    SELECT *, ln(2::float8) / ln(1 + rank::float8) AS weight,
           ln(2::float8) / ln(1 + nth_value(rank, by_score::int) OVER (
               PARTITION BY tenant_id, search_id ORDER BY is_scored DESC, rank, candidate_id
               ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)::float8) AS merit_weight,
           CASE WHEN tenant_id = ANY(%(attributed_tenants)s::text[])
                THEN {IN_FORCE_VALUES.format(alias="slotted")} END AS attribute_values
    FROM slotted
)
SELECT tenant_id, (search_start AT TIME ZONE 'UTC')::date AS day, search_id,
       dense_rank() OVER (PARTITION BY tenant_id ORDER BY search_id COLLATE "C")::int4 AS search_number,
       company_tier, experience_band, specialty, attribute_values,
       count(*) AS shown,
       count(rank) AS ranked,
       coalesce(sum(weight ORDER BY candidate_id), 0) AS weight_sum,
       count(*) FILTER (WHERE rank <= %(top_k)s) AS top_k,
       count(*) FILTER (WHERE is_scored) AS scored,
       coalesce(sum(score ORDER BY candidate_id) FILTER (WHERE is_scored), 0) AS score_sum,
       coalesce(sum(weight ORDER BY candidate_id) FILTER (WHERE is_scored), 0) AS scored_weight_sum,
       coalesce(sum(merit_weight ORDER BY candidate_id) FILTER (WHERE is_scored), 0) AS merit_weight_sum
FROM merit
GROUP BY tenant_id, search_id, search_start, company_tier, experience_band, specialty, attribute_values
ORDER BY tenant_id, search_id, search_start, company_tier, experience_band, specialty, attribute_values
"""

SEARCH_AGGREGATE_COLUMNS = """tenant_id, day, search_id, search_number, company_tier, experience_band, specialty, shown,
    ranked, weight_sum, top_k, scored, score_sum, scored_weight_sum, merit_weight_sum"""
"""The columns :func:`search_aggregates` reads (:func:`exposure_window` reads the attribute values too, coded)."""

SEARCH_INSERT_COLUMNS = """tenant_id, day, search_id, search_number, company_tier, experience_band, specialty,
    attribute_values, shown, ranked, weight_sum, top_k, scored, score_sum, scored_weight_sum, merit_weight_sum"""

DELETE_SEARCH_DAY = "DELETE FROM search_daily_aggregates WHERE day = %(day)s"

DELETE_SEARCH_TENANTS_DAY = (
    "DELETE FROM search_daily_aggregates WHERE day = %(day)s AND tenant_id = ANY(%(tenant_ids)s::text[])"
)

INSERT_SEARCH_DAY = f"INSERT INTO search_daily_aggregates ({SEARCH_INSERT_COLUMNS})\n{SEARCH_AGGREGATES}"
"""The searches that start on the day (``window_start`` .. ``window_stop`` = the day's bounds)."""

RECORD_SEARCH_DAY = """
INSERT INTO search_daily_aggregates_days (day, searches, aggregate_rows, tenants, attributes)
SELECT %(day)s, count(DISTINCT (tenant_id, search_id)), count(*),
       coalesce(array_agg(DISTINCT tenant_id::text ORDER BY tenant_id::text), '{}'), %(attributes)s::text[]
FROM search_daily_aggregates WHERE day = %(day)s
ON CONFLICT (day) DO UPDATE
SET searches = EXCLUDED.searches, aggregate_rows = EXCLUDED.aggregate_rows, tenants = EXCLUDED.tenants,
    attributes = EXCLUDED.attributes, aggregated_at = now()
RETURNING searches
"""

STALE_SEARCH_DAYS = """
SELECT d.day, d.attributes IS DISTINCT FROM %(attributes)s::text[] AS attributes_differ,
       coalesce((SELECT array_agg(DISTINCT r.tenant_id::text ORDER BY r.tenant_id::text) FROM recompute_requests r
                 WHERE r.day = d.day AND r.requested_at > d.aggregated_at), '{}') AS requested
FROM search_daily_aggregates_days d
WHERE d.day BETWEEN %(first_day)s AND %(last_day)s
  AND (d.attributes IS DISTINCT FROM %(attributes)s::text[]
       OR EXISTS (SELECT 1 FROM recompute_requests r WHERE r.day = d.day AND r.requested_at > d.aggregated_at))
ORDER BY d.day
"""
"""Aggregated days summarised with other attributes than the catalogue's (all their tenants are stale), or with tenants
asked for recomputation after the day was summarised (a load or deletion of attributes, an erasure)."""

DELETE_TENANTS_EXPOSURE_SUMS_DAY = (
    "DELETE FROM exposure_day_sums WHERE day = %(day)s AND tenant_id = ANY(%(tenant_ids)s::text[])"
)

AGGREGATED_DAYS = """
SELECT day FROM search_daily_aggregates_days WHERE day BETWEEN %(first_day)s AND %(last_day)s ORDER BY day
"""

SEARCH_DAYS = f"""
COPY (
    SELECT {SEARCH_AGGREGATE_COLUMNS}
    FROM search_daily_aggregates
    WHERE day BETWEEN {{first_day}} AND {{last_day}}
    ORDER BY day, tenant_id, search_id, company_tier, experience_band, specialty, attribute_values
) TO STDOUT WITH (FORMAT csv, HEADER true, NULL '\\N')
"""
"""The stored rows of the days as text, in a stable order, through COPY (several times faster than a cursor), for
reading them as they are stored (tests); the audits read :data:`SEARCH_WINDOW_CODES`. The two placeholders
are filled with ``psycopg2.sql.Literal`` values (COPY takes no bind parameters)."""

WINDOW_TENANTS = """
SELECT DISTINCT tenant FROM search_daily_aggregates_days, unnest(tenants) AS tenant
WHERE day BETWEEN %(first_day)s AND %(last_day)s ORDER BY tenant
"""


def code_of(column: str | sql.Composable, values: Sequence[str], sql_type: str = "int2") -> sql.Composed:
    """A SQL expression coding ``column`` (a column name or an expression) as its 1-based position in ``values``: 0
    when NULL or blank, -1 otherwise (also for an empty ``values``, e.g. a window without tenants). A CASE of
    literals: per row it costs a few comparisons (``array_position`` costs several times more)."""
    name = sql.Identifier(column) if isinstance(column, str) else column
    otherwise = sql.SQL("CASE WHEN nullif(btrim({name}), '') IS NULL THEN 0 ELSE -1 END").format(name=name)
    if values:
        branches = [sql.SQL("WHEN {} THEN {}").format(sql.Literal(v), sql.Literal(i)) for i, v in enumerate(values, 1)]
        otherwise = sql.SQL("CASE {name} {branches} ELSE {otherwise} END").format(
            name=name, branches=sql.SQL(" ").join(branches), otherwise=otherwise
        )
    return sql.SQL("({})::{}").format(otherwise, sql.SQL(sql_type))


CODE_COLUMNS: tuple[tuple[str, str], ...] = (("tenant", "int4"), *((dim, "int2") for dim in DIMENSIONS))
"""The leading columns of the coded binary reads: what :func:`coded_columns` puts in a statement's ``{codes}``."""


def coded_columns(tenants: Sequence[str]) -> sql.Composed:
    """The ``{codes}`` of a coded binary read: the tenant's position in ``tenants``, then each dimension's in its
    vocabulary (:func:`code_of`), in the order of :data:`CODE_COLUMNS`."""
    codes = [code_of("tenant_id", tenants, "int4"), *(code_of(dim, DIMENSION_VALUES[dim]) for dim in DIMENSIONS)]
    return sql.SQL(", ").join(codes)


def attribute_codes(attributes: Sequence[str]) -> tuple[sql.Composed, sql.Composed]:
    """The ``{positions}`` and ``{attribute_codes}`` of :data:`SEARCH_WINDOW_CODES`: where each attribute sits in its
    day's ``attributes`` (NULL when the day was summarised without it: unknown), and the value there coded by
    :func:`code_of` in the catalogue's values."""
    catalogue = load_catalogue()
    positions = [
        sql.SQL("array_position(attributes, {}) AS {}").format(sql.Literal(name), sql.Identifier(f"position_{i}"))
        for i, name in enumerate(attributes)
    ]
    codes = [
        sql.SQL("{} AS {}").format(
            code_of(sql.SQL("attribute_values[{}]").format(sql.Identifier(f"position_{i}")), catalogue.values(name)),
            sql.Identifier(name),
        )
        for i, name in enumerate(attributes)
    ]
    return sql.SQL("").join(sql.SQL(", {}").format(p) for p in positions), sql.SQL("").join(
        sql.SQL(", {}").format(c) for c in codes
    )


# The stored searches of a window as fixed-width numbers, for `store.binary_copy` (the exposure bootstrap reads about
# one row per impression: binary doubles instead of printed ones, codes instead of text). The tenant and dimension
# values are coded by `coded_columns`, the attributes by `attribute_codes`; a search is (day_offset, search_number);
# the reader orders the rows, so the statement needs no sort. Placeholders are filled with `psycopg2.sql` values (COPY
# takes no bind parameters).
SEARCH_WINDOW_CODES = """
COPY (
    WITH days AS (
        SELECT day{positions} FROM search_daily_aggregates_days WHERE day BETWEEN {first_day} AND {last_day}
    )
    SELECT {codes}{attribute_codes}, (day - {first_day}::date)::int4 AS day_offset, search_number::int4,
           shown::int4, ranked::int4, weight_sum::float8, top_k::int4, scored::int4, score_sum::float8,
           scored_weight_sum::float8, merit_weight_sum::float8
    FROM search_daily_aggregates LEFT JOIN days USING (day)
    WHERE day BETWEEN {first_day} AND {last_day}
) TO STDOUT WITH (FORMAT binary)
"""
SEARCH_WINDOW_CODE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("day_offset", "int4"),
    ("search_number", "int4"),
    ("shown", "int4"),
    ("ranked", "int4"),
    ("weight_sum", "float8"),
    ("top_k", "int4"),
    ("scored", "int4"),
    ("score_sum", "float8"),
    ("scored_weight_sum", "float8"),
    ("merit_weight_sum", "float8"),
)
"""The columns of :data:`SEARCH_WINDOW_CODES` after :data:`CODE_COLUMNS` and the attributes' codes (int2 each), and
their PostgreSQL types, in order."""


# Windows that count candidates read each day's candidates as arrays (candidate_day_arrays: per tenant, day and event
# type, ordered by a 64-bit key of the candidate id, written once with candidate_daily_stages) and de-duplicate them in
# numpy (`metrics.candidate_arrays`), so no window sorts candidate rows: the scoring-rate population (shown) and the
# trends' weekly cells (every stage).
DAYS_WITHOUT_ARRAYS = """
SELECT day FROM candidate_daily_stages_days
WHERE day BETWEEN %(first_day)s AND %(last_day)s AND arrays_written_at IS NULL
ORDER BY day
"""

DELETE_CANDIDATE_ARRAYS = "DELETE FROM candidate_day_arrays WHERE day = %(day)s"

INSERT_CANDIDATE_ARRAYS = """
INSERT INTO candidate_day_arrays (tenant_id, day, event_type, candidates, candidate_keys, scores, dimension_codes)
SELECT tenant_id, day, event_type, count(*)::int4,
       string_agg(int8send(key), ''::bytea ORDER BY key, candidate_id COLLATE "C"),
       string_agg(float8send(coalesce(score::float8, 'NaN')), ''::bytea ORDER BY key, candidate_id COLLATE "C"),
       string_agg({codes}, ''::bytea ORDER BY key, candidate_id COLLATE "C")
FROM (SELECT *, hashtextextended(candidate_id, 0) AS key FROM candidate_daily_stages WHERE day = %(day)s) AS rows
GROUP BY tenant_id, day, event_type
ON CONFLICT (day, tenant_id, event_type) DO UPDATE
SET candidates = EXCLUDED.candidates, candidate_keys = EXCLUDED.candidate_keys, scores = EXCLUDED.scores,
    dimension_codes = EXCLUDED.dimension_codes, computed_at = now()
"""
"""One row per tenant and event type of the day; ``{codes}`` is :func:`dimension_code_bytes`."""

RECORD_CANDIDATE_ARRAYS = "UPDATE candidate_daily_stages_days SET arrays_written_at = now() WHERE day = %(day)s"


def dimension_code_bytes() -> sql.Composed:
    """Each dimension's :func:`code_of` as two big-endian bytes, concatenated in :data:`DIMENSIONS` order."""
    codes = (sql.SQL("int2send({})").format(code_of(dim, DIMENSION_VALUES[dim])) for dim in DIMENSIONS)
    return sql.SQL(" || ").join(codes)


CANDIDATE_ARRAYS_WINDOW = f"""
COPY (
    SELECT tenant_id::text, event_type::text, (day - %(first_day)s::date)::int4, candidate_keys, scores,
           dimension_codes
    FROM candidate_day_arrays
    WHERE day BETWEEN %(first_day)s AND %(last_day)s AND {TENANT_FILTER} AND event_type = ANY(%(event_types)s::text[])
    ORDER BY tenant_id, event_type, day
) TO STDOUT WITH (FORMAT binary)
"""
"""The window's per-day arrays of some event types, in day order per tenant and event type, with each day's offset
from the first day (``store.binary_copy.read_binary_records``; the driver quotes the parameters in, as COPY takes
none)."""
CANDIDATE_ARRAYS_WINDOW_KINDS = ("text", "text", "int4", "bytea", "bytea", "bytea")

DELETE_SCORING_WINDOW = f"DELETE FROM scoring_rate_ratios WHERE window_end = %(window_end)s AND {TENANT_FILTER}"

INSERT_SCORING = """
INSERT INTO scoring_rate_ratios (window_end, window_days, tenant_id, dimension, median_score, group_value, n,
    above_median, missing_score, scoring_rate, share, reference_group, reference_rate, is_reference,
    excluded_small_share, impact_ratio, adverse_impact, test, statistic, p_value, p_omnibus, p_adjusted,
    adjustment_method, significant, ci_low, ci_high, shortfall, flip_flop, flip_flop_ratio, cohens_h, low_sample,
    undefined_reason)
VALUES %s
"""

SCORING_WINDOW = f"""
SELECT tenant_id, dimension, group_value AS "group", median_score, n, above_median, missing_score, scoring_rate, share,
       reference_group, reference_rate, is_reference, excluded_small_share, impact_ratio, adverse_impact, test,
       statistic, p_value, p_omnibus, p_adjusted, adjustment_method, significant, ci_low, ci_high, shortfall,
       flip_flop, flip_flop_ratio, cohens_h, low_sample, undefined_reason
FROM scoring_rate_ratios
WHERE window_end = %(window_end)s AND {TENANT_FILTER}
ORDER BY tenant_id, dimension, group_value
"""

EXPOSURE_SUM_PARAMS = "layout_key = %(layout_key)s AND n_boot = %(n_boot)s AND bootstrap_seed = %(bootstrap_seed)s"
"""The parameters under which stored exposure day sums are reused."""

EXPOSURE_SUM_DAYS = f"""
SELECT d.day, d.tenants,
       coalesce((SELECT array_agg(s.tenant_id::text ORDER BY s.tenant_id::text) FROM exposure_day_sums s
                 WHERE s.day = d.day AND {EXPOSURE_SUM_PARAMS}), '{{}}') AS stored
FROM search_daily_aggregates_days d
WHERE d.day BETWEEN %(first_day)s AND %(last_day)s
ORDER BY d.day
"""
"""Per aggregated day of the window: its tenants and those whose exposure sums are stored for these parameters."""

DELETE_EXPOSURE_SUMS_DAY = f"DELETE FROM exposure_day_sums WHERE day = %(day)s AND {EXPOSURE_SUM_PARAMS}"

DELETE_ALL_EXPOSURE_SUMS_DAY = "DELETE FROM exposure_day_sums WHERE day = %(day)s"
"""Run with every re-aggregation of a day: its stored sums no longer hold."""

INSERT_EXPOSURE_SUMS = """
INSERT INTO exposure_day_sums (tenant_id, day, layout_key, n_boot, bootstrap_seed, searches, totals, shown,
                               group_searches, replicates)
VALUES (%(tenant_id)s, %(day)s, %(layout_key)s, %(n_boot)s, %(bootstrap_seed)s, %(searches)s, %(totals)s, %(shown)s,
        %(group_searches)s, %(replicates)s)
ON CONFLICT (day, layout_key, n_boot, bootstrap_seed, tenant_id) DO UPDATE
SET searches = EXCLUDED.searches, totals = EXCLUDED.totals, shown = EXCLUDED.shown,
    group_searches = EXCLUDED.group_searches, replicates = EXCLUDED.replicates, computed_at = now()
"""
"""Upserts: the event layer and a window that lacks the day may write the same row at once."""

EXPOSURE_SUMS_WINDOW = f"""
COPY (
    SELECT tenant_id::text, searches::int4, totals, shown, group_searches, replicates
    FROM exposure_day_sums
    WHERE day BETWEEN %(first_day)s AND %(last_day)s AND {TENANT_FILTER} AND {EXPOSURE_SUM_PARAMS}
    ORDER BY tenant_id, day
) TO STDOUT WITH (FORMAT binary)
"""
"""The stored day sums of a window through a binary COPY (``store.binary_copy.read_binary_records``): ``bytea``
arrives as raw bytes, not as hexadecimal text. COPY takes no bind parameters: the driver quotes them in
(``cursor.mogrify``)."""
EXPOSURE_SUMS_WINDOW_KINDS = ("text", "int4", "bytea", "bytea", "bytea", "bytea")

DELETE_EXPOSURE_WINDOW = f"DELETE FROM rank_exposure WHERE window_end = %(window_end)s AND {TENANT_FILTER}"

INSERT_EXPOSURE = """
INSERT INTO rank_exposure (window_end, window_days, top_k, tenant_id, dimension, group_value, searches, shown, ranked,
    missing_rank, share, exposure, exposure_ci_low, exposure_ci_high, reference_group, reference_exposure,
    is_reference, excluded_small_share, exposure_ratio, ratio_ci_low, ratio_ci_high, low_exposure, p_value,
    p_adjusted, adjustment_method, significant, skew_at_k, skew_ci_low, skew_ci_high, scored, mean_score,
    treatment_ratio, treatment_ci_low, treatment_ci_high, treatment_p_value, treatment_p_adjusted,
    treatment_significant, merit_ratio, merit_ci_low, merit_ci_high, merit_p_value, merit_p_adjusted,
    merit_significant, low_sample, n_boot, undefined_reason, score_undefined_reason)
VALUES %s
"""

EXPOSURE_WINDOW = f"""
SELECT tenant_id, dimension, group_value AS "group", searches, shown, ranked, missing_rank, share, exposure,
       exposure_ci_low, exposure_ci_high, reference_group, reference_exposure, is_reference, excluded_small_share,
       exposure_ratio, ratio_ci_low, ratio_ci_high, low_exposure, p_value, p_adjusted, adjustment_method, significant,
       top_k, skew_at_k, skew_ci_low, skew_ci_high, scored, mean_score, treatment_ratio, treatment_ci_low,
       treatment_ci_high, treatment_p_value, treatment_p_adjusted, treatment_significant, merit_ratio, merit_ci_low,
       merit_ci_high, merit_p_value, merit_p_adjusted, merit_significant, low_sample, n_boot, undefined_reason,
       score_undefined_reason
FROM rank_exposure
WHERE window_end = %(window_end)s AND {TENANT_FILTER}
ORDER BY tenant_id, dimension, group_value
"""

DELETE_SLATES_DAY = "DELETE FROM slate_concentration WHERE day = %(day)s"

DELETE_SLATE_GROUPS_DAY = "DELETE FROM slate_concentration_groups WHERE day = %(day)s"

INSERT_SLATES = """
INSERT INTO slate_concentration (concentration, min_slate, tenant_id, day, dimension, searches, assessed, too_small,
    concentrated, concentrated_share, expected_share, excess_p_value, excess_p_adjusted, excess_significant, top_group,
    undefined_reason)
VALUES %s
"""

INSERT_SLATE_GROUPS = """
INSERT INTO slate_concentration_groups (tenant_id, day, dimension, group_value, concentrated, share_of_concentrated,
    share_of_assessed)
VALUES %s
"""

SLATES_DAYS = f"""
SELECT tenant_id, day, dimension, searches, assessed, too_small, concentrated, concentrated_share, expected_share,
       excess_p_value, excess_p_adjusted, excess_significant, top_group, undefined_reason
FROM slate_concentration
WHERE day BETWEEN %(first_day)s AND %(last_day)s AND {TENANT_FILTER}
ORDER BY tenant_id, day, dimension
"""

SLATE_GROUPS_DAYS = f"""
SELECT tenant_id, day, dimension, group_value AS "group", concentrated, share_of_concentrated, share_of_assessed
FROM slate_concentration_groups
WHERE day BETWEEN %(first_day)s AND %(last_day)s AND {TENANT_FILTER}
ORDER BY tenant_id, day, dimension, group_value
"""

# The impact-ratio series of the daily windows ending in [first_day, last_day], for one window length only (a window
# of another length is another series).
IMPACT_SERIES = f"""
SELECT tenant_id, stage_pair, dimension, group_value AS "group", window_end, impact_ratio
FROM impact_ratios
WHERE window_end BETWEEN %(first_day)s AND %(last_day)s AND {TENANT_FILTER} AND window_days = %(window_days)s
ORDER BY tenant_id, stage_pair, dimension, group_value, window_end
"""

WEEK_COUNTS = f"""
SELECT tenant_id, stage_pair, dimension, group_value AS "group", n, x
FROM trend_week_counts
WHERE week_end = %(week_end)s AND {TENANT_FILTER} AND settings_key = %(settings_key)s
  AND computed_at >= (SELECT coalesce(max(summarised_at), '-infinity') FROM candidate_daily_stages_days
                      WHERE day BETWEEN %(first_day)s AND %(week_end)s)
ORDER BY tenant_id, stage_pair, dimension, group_value
"""
"""The stored group counts of the week ending on ``week_end``, if none of its days was summarised after them."""

DELETE_WEEK_COUNTS = f"""
DELETE FROM trend_week_counts
WHERE week_end = %(week_end)s AND {TENANT_FILTER} AND split_part(settings_key, '#', 1) = %(settings_base)s
"""
"""The week's stored counts under these settings, whatever attribute digest they were stored with."""

INSERT_WEEK_COUNTS = """
INSERT INTO trend_week_counts (week_end, settings_key, tenant_id, stage_pair, dimension, group_value, n, x)
VALUES %s
ON CONFLICT (week_end, settings_key, tenant_id, stage_pair, dimension, group_value) DO UPDATE
SET n = EXCLUDED.n, x = EXCLUDED.x, computed_at = now()
"""

DELETE_TRENDS_WINDOW = f"DELETE FROM fairness_trends WHERE window_end = %(window_end)s AND {TENANT_FILTER}"

INSERT_TRENDS = """
INSERT INTO fairness_trends (window_end, window_days, tenant_id, stage_pair, dimension, group_value, latest_ratio,
    windows_used, slope_per_day, days_to_threshold, adverse_now, approaching_threshold, trend_undefined_reason,
    reference_group, n_current, x_current, n_previous, x_previous, ratio_current, ratio_previous, ratio_change,
    log_change, se, z, p_value, p_adjusted, adjustment_method, significant, worsening, improving, low_sample,
    wow_undefined_reason)
VALUES %s
"""

TRENDS_WINDOW = f"""
SELECT tenant_id, stage_pair, dimension, group_value AS "group", latest_ratio, windows_used, slope_per_day,
       days_to_threshold, adverse_now, approaching_threshold, trend_undefined_reason, reference_group, n_current,
       x_current, n_previous, x_previous, ratio_current, ratio_previous, ratio_change, log_change, se, z, p_value,
       p_adjusted, adjustment_method, significant, worsening, improving, low_sample, wow_undefined_reason
FROM fairness_trends
WHERE window_end = %(window_end)s AND {TENANT_FILTER}
ORDER BY tenant_id, stage_pair, dimension, group_value
"""


# --- search aggregates and exposure day sums ---------------------------------------------------------------------

NULL_MARKER = "\\N"
SEARCH_TEXT_COLUMNS = ("tenant_id", "search_id", *DIMENSIONS)
SEARCH_LOOKBACK = timedelta(days=1)
"""Shown events are read from this long before a day so that a search running over midnight belongs to the day of its
first shown event only."""


def _search_day_params(cur, bounds: Mapping[str, Any], top_k: int, tenant_ids: Sequence[str] | None) -> dict[str, Any]:
    """The parameters of :data:`INSERT_SEARCH_DAY` and its companions for a day (``tenant_ids``: None for all)."""
    return {
        "day": bounds["day"],
        "scan_start": bounds["day_start"] - SEARCH_LOOKBACK,
        "window_start": bounds["day_start"],
        "window_stop": bounds["day_end"],
        "top_k": top_k,
        "tenant_ids": None if tenant_ids is None else list(tenant_ids),
        "attributes": list(load_catalogue().attribute_dimensions),
        "attributed_tenants": attributed_tenants(cur),
    }


def replace_search_day(cur, bounds: Mapping[str, Any], top_k: int) -> tuple[int, int]:
    """Replace the day's search aggregates (and drop its exposure day sums, which depend on them) and record the day;
    returns (aggregate rows, searches). The caller holds the day's search_daily_aggregates lock."""
    params = _search_day_params(cur, bounds, top_k, None)
    cur.execute(DELETE_SEARCH_DAY, params)
    cur.execute(DELETE_ALL_EXPOSURE_SUMS_DAY, params)
    cur.execute(INSERT_SEARCH_DAY, params)
    rows = cur.rowcount
    cur.execute(RECORD_SEARCH_DAY, params)
    return rows, cur.fetchone()[0]


def refresh_stale_searches(cur, first_day: date, last_day: date, top_k: int = exposure.DEFAULT_TOP_K) -> list[date]:
    """Re-aggregate, under each day's lock, the stale tenants of the days (``STALE_SEARCH_DAYS``: attributes loaded or
    deleted, or an erasure, after the day was summarised; every tenant of a day summarised with other attributes
    than the catalogue's) and drop their exposure day sums. Returns the days re-aggregated."""
    attributes = list(load_catalogue().attribute_dimensions)
    window = {"first_day": first_day, "last_day": last_day, "attributes": attributes}
    cur.execute(STALE_SEARCH_DAYS, window)
    refreshed = []
    for day in [row[0] for row in cur.fetchall()]:
        lock_partition(cur, "search_daily_aggregates", day)
        cur.execute(STALE_SEARCH_DAYS, {**window, "first_day": day, "last_day": day})  # again, under the lock
        row = cur.fetchone()
        if row is None:
            continue  # another transaction refreshed it meanwhile
        _, attributes_differ, requested = row
        bounds = day_bounds_utc(day)
        if attributes_differ:
            replace_search_day(cur, bounds, top_k)
        else:
            params = _search_day_params(cur, bounds, top_k, requested)
            cur.execute(DELETE_SEARCH_TENANTS_DAY, params)
            cur.execute(DELETE_TENANTS_EXPOSURE_SUMS_DAY, params)
            cur.execute(INSERT_SEARCH_DAY, params)
            cur.execute(RECORD_SEARCH_DAY, params)
        refreshed.append(day)
    return refreshed


def day_bounds_utc(day: date) -> dict[str, Any]:
    """A UTC day's bounds as :func:`replace_search_day` takes them."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return {"day": day, "day_start": start, "day_end": start + timedelta(days=1)}


def search_aggregates(cur, first_day: date, last_day: date) -> pd.DataFrame:
    """The stored per (tenant, day, search, dimension values) sums of the searches that start in the days
    (``audits.exposure.AGGREGATE_COLUMNS``), in a stable order; missing dimension values are NaN."""
    statement = sql.SQL(SEARCH_DAYS).format(first_day=sql.Literal(first_day), last_day=sql.Literal(last_day))
    buffer = io.StringIO()
    cur.copy_expert(statement.as_string(cur.connection), buffer)
    buffer.seek(0)
    frame = pd.read_csv(
        buffer,
        dtype={c: object for c in (*SEARCH_TEXT_COLUMNS, "day")},  # plain str: the audits group them fastest
        keep_default_na=False,
        na_values=[NULL_MARKER],
        float_precision="round_trip",  # the exact doubles PostgreSQL printed (shortest round-trip text)
    )
    frame["day"] = pd.to_datetime(frame["day"], format="%Y-%m-%d").dt.date
    return frame


def exposure_window(cur, first_day: date, last_day: date) -> pd.DataFrame:
    """The window's stored search sums as ``audits.exposure.rank_exposure`` takes them, read through one binary COPY of
    numbers (tenant and dimensions coded by :func:`coded_columns`, the catalogue's attributes by
    :func:`attribute_codes`): ``search_id`` is an integer that sorts as (day, search id) within a tenant,
    ``tenant_id``, the dimensions and the attributes are categoricals (missing = NaN: unknown), rows in (tenant,
    search, dimension codes) order. Raises ValueError on a tenant not listed for the window's days or a dimension
    value outside the vocabulary."""
    cur.execute(WINDOW_TENANTS, {"first_day": first_day, "last_day": last_day})
    tenants = [row[0] for row in cur.fetchall()]
    catalogue = load_catalogue()
    attributes = catalogue.attribute_dimensions
    positions, attribute_columns = attribute_codes(attributes)
    composed = sql.SQL(SEARCH_WINDOW_CODES).format(
        codes=coded_columns(tenants),
        positions=positions,
        attribute_codes=attribute_columns,
        first_day=sql.Literal(first_day),
        last_day=sql.Literal(last_day),
    )
    columns = (*CODE_COLUMNS, *((name, "int2") for name in attributes), *SEARCH_WINDOW_CODE_COLUMNS)
    arrays = read_binary_copy(cur, composed.as_string(cur.connection), columns)
    if (arrays["tenant"] < 1).any():
        raise ValueError(f"the window holds rows of tenants other than {tenants}")
    tenant_id = pd.Categorical.from_codes(arrays.pop("tenant").astype(np.int64) - 1, categories=tenants)
    dimensions = {}
    for dim in (*DIMENSIONS, *attributes):
        values = DIMENSION_VALUES[dim] if dim in DIMENSION_VALUES else catalogue.values(dim)
        if (arrays[dim] < 0).any():
            raise ValueError(f"{dim} values outside the vocabulary {list(values)}")
        dimensions[dim] = pd.Categorical.from_codes(arrays[dim].astype(np.int64) - 1, categories=values)
    search = (arrays.pop("day_offset").astype(np.int64) << 32) | arrays.pop("search_number").astype(np.int64)
    keys = [dimensions[dim].codes for dim in reversed(dimensions)] + [search, tenant_id.codes]
    order = np.lexsort(keys)  # one row order whatever the physical order: the same float sums on every read
    frame = pd.DataFrame({"tenant_id": tenant_id[order], "search_id": search[order]})
    for dim, values in dimensions.items():
        frame[dim] = values[order]
    for column in exposure.AGGREGATE_COLUMNS:
        frame[column] = arrays[column][order]
    return frame


def missing_search_days(cur, first_day: date, last_day: date) -> list[date]:
    """Days of the window whose search_daily_aggregates partition has not been materialised."""
    cur.execute(AGGREGATED_DAYS, {"first_day": first_day, "last_day": last_day})
    return missing_days({row[0] for row in cur.fetchall()}, first_day, last_day)


def store_exposure_day_sums(cur, layout: exposure.ExposureLayout, n_boot: int, seed: int, day: date) -> int:
    """Compute and store (replacing) each tenant's exposure sums of the day from its search aggregates, the searches
    resampled from ``audits.exposure.stratum_rng(seed, (tenant,), day)``. Returns the number of tenants. The sums
    are part of the day's search_daily_aggregates partition: written under its lock."""
    params = {"day": day, "layout_key": layout.fingerprint, "n_boot": n_boot, "bootstrap_seed": seed}
    lock_partition(cur, "search_daily_aggregates", day)
    cur.execute(DELETE_EXPOSURE_SUMS_DAY, params)
    aggregates = exposure_window(cur, day, day)
    tenants = 0
    for tenant, table in aggregates.groupby("tenant_id", sort=True, observed=True):
        rng = exposure.stratum_rng(seed, (tenant,), day) if n_boot else None
        sums = exposure.exposure_sums(table, layout, rng, n_boot)
        cur.execute(INSERT_EXPOSURE_SUMS, {**params, "tenant_id": tenant, **sums.pack()})
        tenants += 1
    return tenants


def exposure_window_sums(
    cur,
    layout: exposure.ExposureLayout,
    n_boot: int,
    seed: int,
    first_day: date,
    last_day: date,
    tenant_id: str | None = None,
) -> tuple[dict[tuple, exposure.ExposureSums], list[date]]:
    """Per tenant, the window's exposure sums: the stored per-day sums (``exposure_day_sums``), after re-aggregating
    the stale tenant-days (:func:`refresh_stale_searches`: attributes loaded or deleted since) and computing and
    storing the sums of the days that lack them (:func:`store_exposure_day_sums`, every tenant of such a day). Returns
    the sums (``tenant_id``'s only, when given) and the days computed."""
    params = {
        "first_day": first_day,
        "last_day": last_day,
        "layout_key": layout.fingerprint,
        "n_boot": n_boot,
        "bootstrap_seed": seed,
        "tenant_id": tenant_id,
    }
    refresh_stale_searches(cur, first_day, last_day)
    cur.execute(EXPOSURE_SUM_DAYS, params)
    computed = [day for day, tenants, stored in cur.fetchall() if sorted(tenants) != sorted(stored)]
    for day in computed:
        store_exposure_day_sums(cur, layout, n_boot, seed, day)
    statement = cur.mogrify(EXPOSURE_SUMS_WINDOW, params).decode()
    window: dict[tuple, exposure.ExposureSums] = {}
    for tenant, searches, totals, shown, group_searches, replicates in read_binary_records(
        cur, statement, EXPOSURE_SUMS_WINDOW_KINDS
    ):
        sums = exposure.ExposureSums.unpack(layout, n_boot, searches, totals, shown, group_searches, replicates)
        window[(tenant,)] = window[(tenant,)] + sums if (tenant,) in window else sums
    return window, computed


# --- candidate arrays ---------------------------------------------------------------------------------------------


def store_candidate_arrays(cur, day: date) -> None:
    """Write the day's candidates as arrays per tenant and event type (``candidate_day_arrays``, read by the windows
    that count candidates in numpy) and mark the day as done; SQL does the work. The arrays are part of the day's
    candidate_daily_stages partition: written under its lock."""
    lock_partition(cur, "candidate_daily_stages", day)
    cur.execute(DELETE_CANDIDATE_ARRAYS, {"day": day})
    cur.execute(sql.SQL(INSERT_CANDIDATE_ARRAYS).format(codes=dimension_code_bytes()), {"day": day})
    cur.execute(RECORD_CANDIDATE_ARRAYS, {"day": day})


def candidate_arrays(
    cur, first_day: date, last_day: date, event_types: Sequence[str], tenant_id: str | None = None
) -> dict[str, dict[str, candidate_arrays_module.StageArrays]]:
    """Per tenant and event type, the window's candidates as arrays (``metrics.candidate_arrays``), days in order and
    each row's day offset in ``days``, from ``candidate_day_arrays`` (written with candidate_daily_stages; here for
    days summarised before they existed); ``tenant_id``'s only, when given. Raises ValueError on a dimension value
    outside the vocabulary."""
    window = {"first_day": first_day, "last_day": last_day}
    cur.execute(DAYS_WITHOUT_ARRAYS, window)
    for (day,) in cur.fetchall():
        store_candidate_arrays(cur, day)
    params = {**window, "event_types": list(event_types), "tenant_id": tenant_id}
    statement = cur.mogrify(CANDIDATE_ARRAYS_WINDOW, params).decode()
    days: dict[tuple[str, str], list[tuple]] = {}
    for tenant, event_type, offset, keys, scores, codes in read_binary_records(
        cur, statement, CANDIDATE_ARRAYS_WINDOW_KINDS
    ):
        days.setdefault((tenant, event_type), []).append((offset, (keys, scores, codes)))
    out: dict[str, dict[str, candidate_arrays_module.StageArrays]] = {}
    for (tenant, event_type), parts in days.items():
        out.setdefault(tenant, {})[event_type] = candidate_arrays_module.StageArrays.concatenate(
            [part for _, part in parts], offsets=[offset for offset, _ in parts]
        )
    return out


def scoring_cells(
    cur,
    first_day: date,
    last_day: date,
    *,
    periods: candidate_arrays_module.AttributePeriods | None = None,
    tenant_id: str | None = None,
) -> pd.DataFrame:
    """Scoring cells of the window (``audits.scoring.SCORING_CELL_COLUMNS``): each candidate's first shown event of
    the window, from the per-day arrays (:func:`candidate_arrays`), with its catalogue attributes in force at the end
    of that event's day (``periods``, default read for the window), counted by ``audits.scoring.coded_scoring_cells``;
    missing values None; ``tenant_id``'s only, when given. Columns: tenant_id, the event dimensions, the attributes,
    the scoring cell columns."""
    arrays = candidate_arrays(cur, first_day, last_day, ["shown"], tenant_id)
    if periods is None:
        periods = attribute_periods(cur, first_day, last_day, tenants=sorted(arrays))  # tenants without: no cost
    vocabularies = candidate_arrays_module.with_attributes(periods)
    frames = []
    for tenant, stages in arrays.items():
        first = stages["shown"].first()
        codes = candidate_arrays_module.attach_attributes(tenant, first, periods)
        frames.append(scoring.coded_scoring_cells(tenant, first.scores, codes, vocabularies))
    if not frames:
        return pd.DataFrame(columns=["tenant_id", *vocabularies, *scoring.SCORING_CELL_COLUMNS])
    return pd.concat(frames, ignore_index=True)


def window_cells_from_arrays(
    cur,
    settings: AnalysisSettings,
    window_end: date,
    *,
    periods: candidate_arrays_module.AttributePeriods | None = None,
    tenant_id: str | None = None,
) -> pd.DataFrame:
    """``store.analysis.window_cells`` of the window (the same cells, attribute columns included), counted in numpy
    from the per-day arrays; the attributes are those in force at the end of the day of each candidate's first
    baseline event (``periods``, default read for the window: ``metrics.candidate_arrays`` on the one difference)."""
    first_day, last_day = settings.window(window_end)
    stages = sorted({stage for pair in settings.stage_pairs for stage in pair})
    arrays = candidate_arrays(cur, first_day, last_day, stages, tenant_id)
    if periods is None:
        periods = attribute_periods(cur, first_day, last_day, tenants=sorted(arrays))  # tenants without: no cost
    frames = [
        candidate_arrays_module.stage_pair_cells(
            tenant, stage_arrays, settings.stage_pairs, settings.stage_pair_names, attributes=periods
        )
        for tenant, stage_arrays in arrays.items()
    ]
    columns = ["tenant_id", "stage_pair", *candidate_arrays_module.with_attributes(periods), "n", "x"]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True).sort_values(columns[:-2], na_position="last", ignore_index=True)


# --- audit tables -------------------------------------------------------------------------------------------------

SCORING_INSERT_COLUMNS = ["tenant_id", "dimension", *scoring.SCORING_COLUMNS[1:]]
EXPOSURE_INSERT_COLUMNS = ["tenant_id", *exposure.EXPOSURE_COLUMNS]
SLATE_INSERT_COLUMNS = ["tenant_id", "day", *slates.SUMMARY_COLUMNS]
SLATE_GROUP_INSERT_COLUMNS = ["tenant_id", "day", *slates.DOMINANT_COLUMNS]
TREND_INSERT_COLUMNS = [*TABLE_KEYS, "group", *trends.SLOPE_COLUMNS[2:], *trends.WOW_COLUMNS[1:]]
TREND_INTEGER_COLUMNS = ("windows_used", "n_current", "x_current", "n_previous", "x_previous")


def replace_scoring(cur, window_end: date, window_days: int, table: pd.DataFrame, tenant_id: str | None = None) -> int:
    """Replace the window's scoring_rate_ratios rows; returns the rows written."""
    cur.execute(DELETE_SCORING_WINDOW, {"window_end": window_end, "tenant_id": tenant_id})
    return insert_rows(cur, INSERT_SCORING, table, SCORING_INSERT_COLUMNS, (window_end, window_days))


def replace_exposure(
    cur, window_end: date, window_days: int, top_k: int, table: pd.DataFrame, tenant_id: str | None = None
) -> int:
    """Replace the window's rank_exposure rows; returns the rows written."""
    cur.execute(DELETE_EXPOSURE_WINDOW, {"window_end": window_end, "tenant_id": tenant_id})
    return insert_rows(cur, INSERT_EXPOSURE, table, EXPOSURE_INSERT_COLUMNS, (window_end, window_days, top_k))


def replace_slates(
    cur, day: date, concentration: float, min_slate: int, summary: pd.DataFrame, dominant: pd.DataFrame
) -> int:
    """Replace the day's slate_concentration and slate_concentration_groups rows; returns the summary rows written."""
    cur.execute(DELETE_SLATES_DAY, {"day": day})
    cur.execute(DELETE_SLATE_GROUPS_DAY, {"day": day})
    written = insert_rows(cur, INSERT_SLATES, summary, SLATE_INSERT_COLUMNS, (concentration, min_slate))
    insert_rows(cur, INSERT_SLATE_GROUPS, dominant, SLATE_GROUP_INSERT_COLUMNS)
    return written


def impact_series(cur, first_day: date, last_day: date, window_days: int, tenant_id: str | None = None) -> pd.DataFrame:
    """The stored impact ratios of the windows ending from ``first_day`` to ``last_day`` (the trends' series),
    ``tenant_id``'s only, when given."""
    params = {"first_day": first_day, "last_day": last_day, "window_days": window_days, "tenant_id": tenant_id}
    return fetch_frame(cur, IMPACT_SERIES, params)


def replace_trends(cur, as_of: date, window_days: int, table: pd.DataFrame, tenant_id: str | None = None) -> int:
    """Replace the fairness_trends rows as of ``as_of`` (counts stored as integers); returns the rows written."""
    cur.execute(DELETE_TRENDS_WINDOW, {"window_end": as_of, "tenant_id": tenant_id})
    if table.empty:
        return 0
    table = table.astype({c: "Int64" for c in TREND_INTEGER_COLUMNS if c in table.columns})
    return insert_rows(cur, INSERT_TRENDS, table, TREND_INSERT_COLUMNS, (as_of, window_days))


def trend_week_counts(
    cur, weekly: AnalysisSettings, as_of: date, tenant_id: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The trends' two weeks as of ``as_of``: the previous week's :func:`week_counts` (ending ``weekly.window_days``
    earlier, the stored ones when still valid) and this week's (counted), the earlier week first (the days and weeks
    this writes are locked in ascending order); ``tenant_id``'s only, when given. The attribute periods of both weeks
    are read once."""
    days = weekly.window_days
    previous_end = as_of - timedelta(days=days)
    first_day = weekly.window(previous_end)[0]
    # every tenant in scope, not only those with arrays: the digests must not depend on the arrays
    periods = attribute_periods(cur, first_day, as_of, tenants=None if tenant_id is None else [tenant_id])
    offset = (as_of - first_day).days + 1 - days
    previous = week_counts(
        cur, weekly, previous_end, periods=attribute_periods_within(periods, 0, days), tenant_id=tenant_id
    )
    current = week_counts(
        cur, weekly, as_of, reuse=False, periods=attribute_periods_within(periods, offset, days), tenant_id=tenant_id
    )
    return previous, current


def week_counts(
    cur,
    weekly: AnalysisSettings,
    week_end: date,
    *,
    reuse: bool = True,
    periods: candidate_arrays_module.AttributePeriods | None = None,
    tenant_id: str | None = None,
) -> pd.DataFrame:
    """Group counts (``metrics.window.group_counts``, the catalogue attributes included) of the 7-day window ending on
    ``week_end``: the stored ones when ``reuse`` and still valid (``attrs["stored"]`` True: no day of the week
    summarised again since, and the same attribute values in force on each day of it, checked by a digest of the
    week's attribute periods, so a self-identification load or an erasure after the counts invalidates them),
    otherwise counted from the per-day candidate arrays and stored for the trends run a week later. ``periods``: the
    week's attribute periods of the tenants in scope (default: read here). ``tenant_id``: that tenant's counts only,
    stored and checked apart from the others' (None: every tenant, always counted)."""
    first_day = weekly.window(week_end)[0]
    if periods is None:
        # every tenant in scope, not only those with arrays: the digest must not depend on the arrays
        periods = attribute_periods(cur, first_day, week_end, tenants=None if tenant_id is None else [tenant_id])
    elif periods.window_days != weekly.window_days:
        raise ValueError(f"periods of {periods.window_days} days for a week of {weekly.window_days}")
    base = week_settings_key(weekly)
    key = {
        "week_end": week_end,
        "first_day": first_day,
        "settings_key": f"{base}{WEEK_DIGEST_SEPARATOR}{periods.fingerprint()[:32]}",
        "settings_base": base,
        "tenant_id": tenant_id,
    }
    columns = [*TABLE_KEYS, "group", "n", "x"]
    if reuse and tenant_id is not None:  # a read of every tenant counts afresh: the store may hold some tenants only
        cur.execute(WEEK_COUNTS, key)
        rows = cur.fetchall()
        if rows:
            counts = pd.DataFrame(rows, columns=columns).astype({"n": "int64", "x": "int64"})
            counts.attrs["stored"] = True
            return counts
    cells = window_cells_from_arrays(cur, weekly, week_end, periods=periods, tenant_id=tenant_id)
    counts = group_counts(cells, weekly)
    lock_partition(cur, "trend_week_counts", week_end)
    cur.execute(DELETE_WEEK_COUNTS, key)
    insert_rows(cur, INSERT_WEEK_COUNTS, counts, columns, (week_end, key["settings_key"]))
    counts.attrs["stored"] = False
    return counts


WEEK_DIGEST_SEPARATOR = "#"
"""Separates a stored week's settings from the digest of its attribute periods in ``settings_key``."""


def week_settings_key(weekly: AnalysisSettings) -> str:
    """What the stored week counts depend on besides the data: the stage pairs, the analysed dimensions and the
    catalogue's attribute dimensions and intersections."""
    pairs = ",".join(f"{baseline}>{selection}" for baseline, selection in weekly.stage_pairs)
    catalogue = load_catalogue()
    attributes = "+".join(catalogue.attribute_dimensions)
    intersections = ",".join(catalogue.intersection_names)
    return (
        f"{pairs};{'+'.join(weekly.dimensions)};intersections={weekly.intersections};attributes={attributes};"
        f"catalogue_intersections={intersections}"
    )


def window_audits(
    cur, window_end: date, first_day: date, last_day: date, tenant_id: str | None = None
) -> dict[str, pd.DataFrame]:
    """The stored audits of a window as ``metrics.seed_format.audit_metrics_json`` takes them: scoring rates,
    exposure and trends of the window, slates and their dominant groups of its days (``tenant_id``'s only, when
    given)."""
    window = {"window_end": window_end, "tenant_id": tenant_id}
    days = {"first_day": first_day, "last_day": last_day, "tenant_id": tenant_id}
    return {
        "scoring": fetch_frame(cur, SCORING_WINDOW, window),
        "exposure": fetch_frame(cur, EXPOSURE_WINDOW, window),
        "slates": fetch_frame(cur, SLATES_DAYS, days),
        "slate_groups": fetch_frame(cur, SLATE_GROUPS_DAYS, days),
        "trends": fetch_frame(cur, TRENDS_WINDOW, window),
    }
