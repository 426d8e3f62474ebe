"""SQL of the daily assets: observe raw events, validate, summarise candidates per day, count windows, store results.

Days are UTC: a day D covers ``timestamp >= D 00:00 UTC`` and ``< D + 1 00:00 UTC``; ``%(day_start)s`` and
``%(day_end)s`` are those two instants.
"""

RAW_DAY_OBSERVATION = """
SELECT count(*), max(created_at)
FROM selection_events
WHERE timestamp >= %(day_start)s AND timestamp < %(day_end)s
"""

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
# the stage's position in `selections`, so up to 62 pairs; other stages set bit 0). `cells` counts candidates per
# tenant, stage, groups and stage set (a few thousand rows), which the pairs then sum: no join of candidates with
# candidates, no copy of the population per pair. COLLATE "C" only makes the sort compare bytes.
WINDOW_CELLS = """
WITH pairs AS (
    SELECT * FROM unnest(%(pair_names)s::text[], %(baselines)s::text[], %(selections)s::text[])
        AS p(stage_pair, baseline, selection)
),
stages AS (
    SELECT tenant_id, event_type, company_tier, experience_band, specialty,
           event_type IS DISTINCT FROM lag(event_type) OVER w AS first_of_stage,
           bit_or(1::bigint << coalesce(array_position(%(selections)s::text[], event_type::text), 0)) OVER w AS stages
    FROM candidate_daily_stages
    WHERE day BETWEEN %(first_day)s AND %(last_day)s
      AND (%(tenant_id)s::text IS NULL OR tenant_id = %(tenant_id)s)
    WINDOW w AS (PARTITION BY candidate_id COLLATE "C", tenant_id COLLATE "C" ORDER BY event_type COLLATE "C", first_at
                 ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
),
cells AS (
    SELECT tenant_id, event_type, company_tier, experience_band, specialty, stages,
           count(*) FILTER (WHERE first_of_stage) AS candidates
    FROM stages
    GROUP BY tenant_id, event_type, company_tier, experience_band, specialty, stages
)
SELECT c.tenant_id, p.stage_pair, c.company_tier, c.experience_band, c.specialty,
       sum(c.candidates)::bigint AS n,
       coalesce(sum(c.candidates) FILTER (
           WHERE c.stages & (1::bigint << array_position(%(selections)s::text[], p.selection)) <> 0), 0)::bigint AS x
FROM cells c
JOIN pairs p ON c.event_type = p.baseline
GROUP BY c.tenant_id, p.stage_pair, c.company_tier, c.experience_band, c.specialty
HAVING sum(c.candidates) > 0
ORDER BY 1, 2, 3, 4, 5
"""

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

DELETE_FRAMES_WINDOW = "DELETE FROM selection_rate_frames WHERE window_end = %(window_end)s"

INSERT_FRAMES = """
INSERT INTO selection_rate_frames (window_end, window_days, tenant_id, stage_pair, dimension, group_value, n, x,
    selection_rate, overall_rate, demographic_parity_ratio, demographic_parity_difference, undefined_reason)
VALUES %s
"""

FRAMES_WINDOW = """
SELECT tenant_id, stage_pair, dimension, group_value AS "group", n, x, selection_rate, overall_rate,
       demographic_parity_ratio AS dp_ratio, demographic_parity_difference AS dp_difference, undefined_reason
FROM selection_rate_frames
WHERE window_end = %(window_end)s
ORDER BY tenant_id, stage_pair, dimension, group_value
"""

DELETE_IMPACTS_WINDOW = "DELETE FROM impact_ratios WHERE window_end = %(window_end)s"

INSERT_IMPACTS = """
INSERT INTO impact_ratios (window_end, window_days, tenant_id, stage_pair, dimension, group_value, n, x,
    selection_rate, share, reference_group, reference_rate, is_reference, excluded_small_share, impact_ratio,
    adverse_impact, test, statistic, p_value, p_omnibus, p_adjusted, adjustment_method, significant, ci_low, ci_high,
    shortfall, flip_flop, flip_flop_ratio, cohens_h, low_sample, undefined_reason)
VALUES %s
"""

IMPACTS_WINDOW = """
SELECT tenant_id, stage_pair, dimension, group_value AS "group", n, x, selection_rate, share, reference_group,
       reference_rate, is_reference, excluded_small_share, impact_ratio, adverse_impact, test, statistic, p_value,
       p_omnibus, p_adjusted, adjustment_method, significant, ci_low, ci_high, shortfall, flip_flop, flip_flop_ratio,
       cohens_h, low_sample, undefined_reason
FROM impact_ratios
WHERE window_end = %(window_end)s
ORDER BY tenant_id, stage_pair, dimension, group_value
"""

DELETE_BIAS_METRICS_WINDOW = "DELETE FROM bias_metrics WHERE window_end = %(window_end)s"

INSERT_BIAS_METRICS = """
INSERT INTO bias_metrics (tenant_id, computed_at, metrics_json, window_end, window_days)
VALUES (%(tenant_id)s, %(computed_at)s, %(metrics_json)s, %(window_end)s, %(window_days)s)
"""

INSERT_BIAS_METRICS_ADHOC = """
INSERT INTO bias_metrics (tenant_id, computed_at, metrics_json)
VALUES (%(tenant_id)s, %(computed_at)s, %(metrics_json)s)
"""

LATEST_CREATED_AT = "SELECT max(created_at) FROM selection_events"

LATE_EVENT_DAYS = """
SELECT (e.timestamp AT TIME ZONE 'UTC')::date AS day, count(*) AS events, max(e.created_at) AS latest
FROM selection_events e
JOIN candidate_daily_stages_days d ON d.day = (e.timestamp AT TIME ZONE 'UTC')::date
WHERE e.created_at > %(after)s AND e.created_at <= %(until)s
GROUP BY 1
ORDER BY 1
"""
"""Days already summarised that received events inserted after ``after``: their windows are stale."""
