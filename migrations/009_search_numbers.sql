-- Windows of per-search sums are read as plain numbers (binary COPY) and resampled by search without comparing text:
-- each search gets a number within its tenant and day (1, 2, ... in bytewise order of search_id), and each aggregated
-- day lists its tenants, so a window knows its tenants without scanning the sums.
ALTER TABLE search_daily_aggregates ADD COLUMN search_number INTEGER;

UPDATE search_daily_aggregates AS a
SET search_number = numbered.search_number
FROM (
    SELECT day, tenant_id, search_id,
           dense_rank() OVER (PARTITION BY day, tenant_id ORDER BY search_id COLLATE "C") AS search_number
    FROM (SELECT DISTINCT day, tenant_id, search_id FROM search_daily_aggregates) AS searches
) AS numbered
WHERE a.day = numbered.day AND a.tenant_id = numbered.tenant_id AND a.search_id = numbered.search_id;

ALTER TABLE search_daily_aggregates ALTER COLUMN search_number SET NOT NULL;

ALTER TABLE search_daily_aggregates_days ADD COLUMN tenants TEXT[] NOT NULL DEFAULT '{}';

UPDATE search_daily_aggregates_days AS d
SET tenants = coalesce((SELECT array_agg(DISTINCT a.tenant_id::text ORDER BY a.tenant_id::text)
                        FROM search_daily_aggregates a WHERE a.day = d.day), '{}');
