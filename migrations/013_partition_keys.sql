-- Every table a partition writer replaces has a key, so that a doubled write is impossible (the writers also hold a
-- per-partition advisory lock: store/partition_lock.py). Two tables lacked one. Rows doubled by concurrent runs before
-- this migration are removed first: one row is kept per key.

-- search_daily_aggregates: one row per tenant, day, search and combination of dimension values. The dimensions may be
-- NULL (unknown), so the key is a unique index on them with NULL as '' (the audits read NULL and blank alike: both
-- are "unknown"; ingest stores an empty value as NULL). It replaces the (day, tenant_id, search_id) index, its prefix.
-- A doubled day also doubled its recorded counts and perhaps the exposure sums computed from it: count again, and drop
-- the sums (a window recomputes the sums its days lack).
CREATE TEMPORARY TABLE doubled_search_days (day DATE PRIMARY KEY) ON COMMIT DROP;

WITH removed AS (
    DELETE FROM search_daily_aggregates AS a
    USING search_daily_aggregates AS b
    WHERE a.day = b.day AND a.tenant_id = b.tenant_id AND a.search_id = b.search_id
      AND coalesce(a.company_tier, '') = coalesce(b.company_tier, '')
      AND coalesce(a.experience_band, '') = coalesce(b.experience_band, '')
      AND coalesce(a.specialty, '') = coalesce(b.specialty, '')
      AND a.ctid > b.ctid
    RETURNING a.day
)
INSERT INTO doubled_search_days SELECT DISTINCT day FROM removed;

UPDATE search_daily_aggregates_days AS d
SET aggregate_rows = (SELECT count(*) FROM search_daily_aggregates a WHERE a.day = d.day),
    searches = (SELECT count(DISTINCT (a.tenant_id, a.search_id)) FROM search_daily_aggregates a WHERE a.day = d.day)
WHERE d.day IN (SELECT day FROM doubled_search_days);

DELETE FROM exposure_day_sums WHERE day IN (SELECT day FROM doubled_search_days);

CREATE UNIQUE INDEX search_daily_aggregates_key ON search_daily_aggregates (
    day, tenant_id, search_id, coalesce(company_tier, ''), coalesce(experience_band, ''), coalesce(specialty, '')
);
DROP INDEX IF EXISTS idx_search_daily_aggregates_day;

-- quarantined_selection_events: an event is quarantined once (validated_selection_events has the same key).
DELETE FROM quarantined_selection_events AS a
USING quarantined_selection_events AS b
WHERE a.event_id = b.event_id AND a.ctid > b.ctid;

ALTER TABLE quarantined_selection_events ADD PRIMARY KEY (event_id);
