"""SQL of the audit assets: per-search exposure aggregates, scoring cells, impact-ratio series, and their writes.

Time bounds are UTC instants (``%(window_start)s`` inclusive, ``%(window_stop)s`` exclusive); day bounds are dates.
The statements aggregate in the database: Python receives one row per search and dimension cell (exposure, slates)
or per dimension cell (scoring), never one row per event.
"""

from collections.abc import Sequence

from psycopg2 import sql

from fairness_pipeline.events.vocabulary import DIMENSION_VALUES, DIMENSIONS

# Shown impressions of the searches that start in [window_start, window_stop) (one day, for search_daily_aggregates):
# - repeated shown events of one (search, candidate) count once: the first (timestamp, then event_id) is kept;
# - a search belongs to the UTC day of its first shown event, so its impressions are read from `scan_start` (a day
#   earlier) to decide where it starts; impressions at or after `window_stop` are not read (the day's snapshot);
# - a rank below 1 counts as missing (the validation suite rejects them, the rule holds anyway);
# - merit ranks: a search's scored impressions' ranks sorted ascending are handed out by score descending (ties by
#   rank, then candidate), `audits.exposure.search_aggregates` being the reference. Scored impressions sort first in
#   both windows, so the n-th by score gets the n-th smallest rank (nth_value), without a join.
# Window functions only (no join between intermediate results): every step streams over the sorted impressions. Sums
# are ordered aggregates so that a re-run gives the same floating-point values whatever the plan.
SEARCH_AGGREGATES = """
WITH shown AS (
    SELECT DISTINCT ON (tenant_id, search_id, candidate_id)
        tenant_id, search_id, candidate_id, timestamp, company_tier, experience_band, specialty,
        CASE WHEN rank >= 1 THEN rank END AS rank, score::float8 AS score
    FROM validated_selection_events
    WHERE event_type = 'shown' AND timestamp >= %(scan_start)s AND timestamp < %(window_stop)s
    ORDER BY tenant_id, search_id, candidate_id, timestamp, event_id
),
dated AS (
    SELECT *, min(timestamp) OVER (PARTITION BY tenant_id, search_id) AS search_start,
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
               ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)::float8) AS merit_weight
    FROM slotted
)
SELECT tenant_id, (search_start AT TIME ZONE 'UTC')::date AS day, search_id,
       dense_rank() OVER (PARTITION BY tenant_id ORDER BY search_id COLLATE "C")::int4 AS search_number,
       company_tier, experience_band, specialty,
       count(*) AS shown,
       count(rank) AS ranked,
       coalesce(sum(weight ORDER BY candidate_id), 0) AS weight_sum,
       count(*) FILTER (WHERE rank <= %(top_k)s) AS top_k,
       count(*) FILTER (WHERE is_scored) AS scored,
       coalesce(sum(score ORDER BY candidate_id) FILTER (WHERE is_scored), 0) AS score_sum,
       coalesce(sum(weight ORDER BY candidate_id) FILTER (WHERE is_scored), 0) AS scored_weight_sum,
       coalesce(sum(merit_weight ORDER BY candidate_id) FILTER (WHERE is_scored), 0) AS merit_weight_sum
FROM merit
GROUP BY tenant_id, search_id, search_start, company_tier, experience_band, specialty
ORDER BY tenant_id, search_id, search_start, company_tier, experience_band, specialty
"""

SEARCH_AGGREGATE_COLUMNS = """tenant_id, day, search_id, search_number, company_tier, experience_band, specialty, shown,
    ranked, weight_sum, top_k, scored, score_sum, scored_weight_sum, merit_weight_sum"""

DELETE_SEARCH_DAY = "DELETE FROM search_daily_aggregates WHERE day = %(day)s"

INSERT_SEARCH_DAY = f"INSERT INTO search_daily_aggregates ({SEARCH_AGGREGATE_COLUMNS})\n{SEARCH_AGGREGATES}"
"""The searches that start on the day (``window_start`` .. ``window_stop`` = the day's bounds)."""

RECORD_SEARCH_DAY = """
INSERT INTO search_daily_aggregates_days (day, searches, aggregate_rows, tenants)
SELECT %(day)s, count(DISTINCT (tenant_id, search_id)), count(*),
       coalesce(array_agg(DISTINCT tenant_id::text ORDER BY tenant_id::text), '{}')
FROM search_daily_aggregates WHERE day = %(day)s
ON CONFLICT (day) DO UPDATE
SET searches = EXCLUDED.searches, aggregate_rows = EXCLUDED.aggregate_rows, tenants = EXCLUDED.tenants,
    aggregated_at = now()
RETURNING searches
"""

AGGREGATED_DAYS = """
SELECT day FROM search_daily_aggregates_days WHERE day BETWEEN %(first_day)s AND %(last_day)s ORDER BY day
"""

SEARCH_DAYS = f"""
COPY (
    SELECT {SEARCH_AGGREGATE_COLUMNS}
    FROM search_daily_aggregates
    WHERE day BETWEEN {{first_day}} AND {{last_day}}
    ORDER BY day, tenant_id, search_id, company_tier, experience_band, specialty
) TO STDOUT WITH (FORMAT csv, HEADER true, NULL '\\N')
"""
"""The stored rows of the days as text, in a stable order, through COPY (several times faster than a cursor), for
reading them as they are stored (tests); the audits read :data:`SEARCH_WINDOW_CODES`. The two placeholders
are filled with ``psycopg2.sql.Literal`` values (COPY takes no bind parameters)."""

WINDOW_TENANTS = """
SELECT DISTINCT tenant FROM search_daily_aggregates_days, unnest(tenants) AS tenant
WHERE day BETWEEN %(first_day)s AND %(last_day)s ORDER BY tenant
"""


def code_of(column: str, values: Sequence[str], sql_type: str = "int2") -> sql.Composed:
    """A SQL expression coding ``column`` as its 1-based position in ``values``: 0 when NULL or blank, -1 otherwise
    (also for an empty ``values``, e.g. a window without tenants). A CASE of literals: per row it costs a few
    comparisons (``array_position`` costs several times more)."""
    name = sql.Identifier(column)
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


# The stored searches of a window as fixed-width numbers, for `store.binary_copy` (the exposure bootstrap reads about
# one row per impression: binary doubles instead of printed ones, codes instead of text). The tenant and dimension
# values are coded by `coded_columns`; a search is (day_offset, search_number); the reader orders the rows, so
# the statement needs no sort. Placeholders are filled with `psycopg2.sql` values (COPY takes no bind parameters).
SEARCH_WINDOW_CODES = """
COPY (
    SELECT {codes}, (day - {first_day}::date)::int4 AS day_offset, search_number::int4, shown::int4, ranked::int4,
           weight_sum::float8, top_k::int4, scored::int4, score_sum::float8, scored_weight_sum::float8,
           merit_weight_sum::float8
    FROM search_daily_aggregates
    WHERE day BETWEEN {first_day} AND {last_day}
) TO STDOUT WITH (FORMAT binary)
"""
SEARCH_WINDOW_CODE_COLUMNS: tuple[tuple[str, str], ...] = (
    *CODE_COLUMNS,
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
"""The columns of :data:`SEARCH_WINDOW_CODES` and their PostgreSQL types, in order."""


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


CANDIDATE_ARRAYS_WINDOW = """
COPY (
    SELECT tenant_id::text, event_type::text, candidate_keys, scores, dimension_codes
    FROM candidate_day_arrays
    WHERE day BETWEEN %(first_day)s AND %(last_day)s AND event_type = ANY(%(event_types)s::text[])
    ORDER BY tenant_id, event_type, day
) TO STDOUT WITH (FORMAT binary)
"""
"""The window's per-day arrays of some event types, in day order per tenant and event type
(``store.binary_copy.read_binary_records``; the driver quotes the parameters in, as COPY takes none)."""
CANDIDATE_ARRAYS_WINDOW_KINDS = ("text", "text", "bytea", "bytea", "bytea")

DELETE_SCORING_WINDOW = "DELETE FROM scoring_rate_ratios WHERE window_end = %(window_end)s"

INSERT_SCORING = """
INSERT INTO scoring_rate_ratios (window_end, window_days, tenant_id, dimension, median_score, group_value, n,
    above_median, missing_score, scoring_rate, share, reference_group, reference_rate, is_reference,
    excluded_small_share, impact_ratio, adverse_impact, test, statistic, p_value, p_omnibus, p_adjusted,
    adjustment_method, significant, ci_low, ci_high, shortfall, flip_flop, flip_flop_ratio, cohens_h, low_sample,
    undefined_reason)
VALUES %s
"""

SCORING_WINDOW = """
SELECT tenant_id, dimension, group_value AS "group", median_score, n, above_median, missing_score, scoring_rate, share,
       reference_group, reference_rate, is_reference, excluded_small_share, impact_ratio, adverse_impact, test,
       statistic, p_value, p_omnibus, p_adjusted, adjustment_method, significant, ci_low, ci_high, shortfall,
       flip_flop, flip_flop_ratio, cohens_h, low_sample, undefined_reason
FROM scoring_rate_ratios
WHERE window_end = %(window_end)s
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
    WHERE day BETWEEN %(first_day)s AND %(last_day)s AND {EXPOSURE_SUM_PARAMS}
    ORDER BY tenant_id, day
) TO STDOUT WITH (FORMAT binary)
"""
"""The stored day sums of a window through a binary COPY (``store.binary_copy.read_binary_records``): ``bytea``
arrives as raw bytes, not as hexadecimal text. COPY takes no bind parameters: the driver quotes them in
(``cursor.mogrify``)."""
EXPOSURE_SUMS_WINDOW_KINDS = ("text", "int4", "bytea", "bytea", "bytea", "bytea")

DELETE_EXPOSURE_WINDOW = "DELETE FROM rank_exposure WHERE window_end = %(window_end)s"

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

EXPOSURE_WINDOW = """
SELECT tenant_id, dimension, group_value AS "group", searches, shown, ranked, missing_rank, share, exposure,
       exposure_ci_low, exposure_ci_high, reference_group, reference_exposure, is_reference, excluded_small_share,
       exposure_ratio, ratio_ci_low, ratio_ci_high, low_exposure, p_value, p_adjusted, adjustment_method, significant,
       top_k, skew_at_k, skew_ci_low, skew_ci_high, scored, mean_score, treatment_ratio, treatment_ci_low,
       treatment_ci_high, treatment_p_value, treatment_p_adjusted, treatment_significant, merit_ratio, merit_ci_low,
       merit_ci_high, merit_p_value, merit_p_adjusted, merit_significant, low_sample, n_boot, undefined_reason,
       score_undefined_reason
FROM rank_exposure
WHERE window_end = %(window_end)s
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

SLATES_DAYS = """
SELECT tenant_id, day, dimension, searches, assessed, too_small, concentrated, concentrated_share, expected_share,
       excess_p_value, excess_p_adjusted, excess_significant, top_group, undefined_reason
FROM slate_concentration
WHERE day BETWEEN %(first_day)s AND %(last_day)s
ORDER BY tenant_id, day, dimension
"""

SLATE_GROUPS_DAYS = """
SELECT tenant_id, day, dimension, group_value AS "group", concentrated, share_of_concentrated, share_of_assessed
FROM slate_concentration_groups
WHERE day BETWEEN %(first_day)s AND %(last_day)s
ORDER BY tenant_id, day, dimension, group_value
"""

# The impact-ratio series of the daily windows ending in [first_day, last_day], for one window length only (a window
# of another length is another series).
IMPACT_SERIES = """
SELECT tenant_id, stage_pair, dimension, group_value AS "group", window_end, impact_ratio
FROM impact_ratios
WHERE window_end BETWEEN %(first_day)s AND %(last_day)s AND window_days = %(window_days)s
ORDER BY tenant_id, stage_pair, dimension, group_value, window_end
"""

WEEK_COUNTS = """
SELECT tenant_id, stage_pair, dimension, group_value AS "group", n, x
FROM trend_week_counts
WHERE week_end = %(week_end)s AND settings_key = %(settings_key)s
  AND computed_at >= (SELECT coalesce(max(summarised_at), '-infinity') FROM candidate_daily_stages_days
                      WHERE day BETWEEN %(first_day)s AND %(week_end)s)
ORDER BY tenant_id, stage_pair, dimension, group_value
"""
"""The stored group counts of the week ending on ``week_end``, if none of its days was summarised after them."""

DELETE_WEEK_COUNTS = "DELETE FROM trend_week_counts WHERE week_end = %(week_end)s AND settings_key = %(settings_key)s"

INSERT_WEEK_COUNTS = """
INSERT INTO trend_week_counts (week_end, settings_key, tenant_id, stage_pair, dimension, group_value, n, x)
VALUES %s
ON CONFLICT (week_end, settings_key, tenant_id, stage_pair, dimension, group_value) DO UPDATE
SET n = EXCLUDED.n, x = EXCLUDED.x, computed_at = now()
"""

DELETE_TRENDS_WINDOW = "DELETE FROM fairness_trends WHERE window_end = %(window_end)s"

INSERT_TRENDS = """
INSERT INTO fairness_trends (window_end, window_days, tenant_id, stage_pair, dimension, group_value, latest_ratio,
    windows_used, slope_per_day, days_to_threshold, adverse_now, approaching_threshold, trend_undefined_reason,
    reference_group, n_current, x_current, n_previous, x_previous, ratio_current, ratio_previous, ratio_change,
    log_change, se, z, p_value, p_adjusted, adjustment_method, significant, worsening, improving, low_sample,
    wow_undefined_reason)
VALUES %s
"""

TRENDS_WINDOW = """
SELECT tenant_id, stage_pair, dimension, group_value AS "group", latest_ratio, windows_used, slope_per_day,
       days_to_threshold, adverse_now, approaching_threshold, trend_undefined_reason, reference_group, n_current,
       x_current, n_previous, x_previous, ratio_current, ratio_previous, ratio_change, log_change, se, z, p_value,
       p_adjusted, adjustment_method, significant, worsening, improving, low_sample, wow_undefined_reason
FROM fairness_trends
WHERE window_end = %(window_end)s
ORDER BY tenant_id, stage_pair, dimension, group_value
"""
