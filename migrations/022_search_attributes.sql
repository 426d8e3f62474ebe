-- Issue 15 (rank exposure and slates on the LL144 categories): each stored search row also carries the candidates'
-- self-identified attribute values in force at the impression (NULL array: a tenant without self-identification,
-- i.e. every attribute unknown), and each aggregated day records which attributes, in which order, its arrays hold.
ALTER TABLE search_daily_aggregates ADD COLUMN attribute_values TEXT[];
ALTER TABLE search_daily_aggregates_days ADD COLUMN attributes TEXT[] NOT NULL DEFAULT '{}';

-- The key now includes the attribute values (arrays compare element by element, NULL elements as equal).
CREATE UNIQUE INDEX search_daily_aggregates_attribute_key ON search_daily_aggregates (
    day, tenant_id, search_id, coalesce(company_tier, ''), coalesce(experience_band, ''), coalesce(specialty, ''),
    coalesce(attribute_values, '{}')
);
DROP INDEX search_daily_aggregates_key;

-- Days stored before this migration hold no attribute values: their exposure sums are of an older layout anyway
-- (the layout's fingerprint names its dimensions), and a window re-aggregates a day whose attributes differ from the
-- catalogue's.

-- A loaded or deleted self-identification asks for its tenant's days to be recomputed (recompute_requests); a window
-- looks up the requests of its days to re-aggregate stale tenants first.
CREATE INDEX idx_recompute_requests_day ON recompute_requests (day, tenant_id);
