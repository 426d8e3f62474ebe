-- Issue 17: selection_events keeps only the indexes a query uses. Every secondary btree costs the ingest its share
-- (COPY with all seven indexes ran at 0.21x of COPY with the primary key alone). The queries on the table (store
-- and queries modules, 2026-12-03) filter by a UTC day or window of `timestamp` (the event layer, the worker), by
-- `created_at` after a cursor (the late-events sensor), by `tenant_id` (tenant checks and their skip scan), by
-- `event_id` (the key). None filters on `event_type` or `search_id` alone, and none uses (tenant_id, timestamp) or the
-- dimension columns after tenant_id. An erasure filters by tenant and candidate, but a (tenant_id, candidate_id)
-- btree cut the COPY rate 2.5x (122,000 to 48,000 events/s, 1M events, 2026-12-03): erasures are rare and read the
-- table once instead (about a second per million events).
DROP INDEX IF EXISTS idx_selection_events_event_type;
DROP INDEX IF EXISTS idx_selection_events_search_id;
DROP INDEX IF EXISTS idx_selection_events_tenant_timestamp;
DROP INDEX IF EXISTS idx_selection_events_dimensions;
DROP INDEX IF EXISTS idx_selection_events_timestamp;
DROP INDEX IF EXISTS idx_selection_events_created_at;

-- Tenant lookups and their skip scan: few distinct values, deduplicated, cheap to maintain.
CREATE INDEX IF NOT EXISTS idx_selection_events_tenant ON selection_events (tenant_id);

-- Both times grow in insertion order (events arrive day by day; created_at is the insert time): a BRIN index keeps
-- each block range's min and max, costs almost nothing to maintain and serves the day and cursor range scans.
CREATE INDEX IF NOT EXISTS idx_selection_events_timestamp_brin ON selection_events USING brin (timestamp)
    WITH (autosummarize = on);
CREATE INDEX IF NOT EXISTS idx_selection_events_created_at_brin ON selection_events USING brin (created_at)
    WITH (autosummarize = on);
-- Ranges filled after the index was built are not summarised until a VACUUM (a scan reads them all): bulk loads
-- summarise them at once (store/event_indexes.py, called after ingest); autosummarize covers small inserts.
