-- Issue 15 (audits read self-identification per tenant): each tenant's attribute history as compact arrays, dropped by
-- every load or erasure that changes the tenant's values and built again from candidate_attribute_history at the end
-- of a load or by the first audit that needs them, so an audit reads a few rows of arrays instead of scanning every
-- tenant's history.

-- One row per tenant holding attributes. A load or an erasure that changes the tenant's values bumps `version` (which
-- waits for a builder holding the row) and then drops the snapshots; a builder locks the row, reads the history and
-- records the version it built. Readers take snapshots whose version is the tenant's, in one statement.
CREATE TABLE candidate_attribute_tenants (
    tenant_id       VARCHAR(255) PRIMARY KEY,
    version         BIGINT NOT NULL,
    built_version   BIGINT              -- NULL: no snapshot built yet
);

-- Per tenant and attribute, its known values' periods ordered by (candidate key, valid_from).
CREATE TABLE candidate_attribute_snapshots (
    tenant_id       VARCHAR(255) NOT NULL,
    attribute       VARCHAR(50) NOT NULL,
    version         BIGINT NOT NULL,    -- the tenant's version it was built from
    value_names     TEXT[] NOT NULL,    -- the distinct values, in order: codes are 1-based positions in it
    periods         INTEGER NOT NULL,
    candidate_keys  BYTEA NOT NULL,     -- int8 [period]: hashtextextended(candidate_id, 0), ascending
    from_days       BYTEA NOT NULL,     -- int4 [period]: UTC day number (days since 1970-01-01) of valid_from
    to_days         BYTEA NOT NULL,     -- int4 [period]: UTC day number of valid_to (2^31 - 1: still in force)
    value_codes     BYTEA NOT NULL,     -- int2 [period]
    PRIMARY KEY (tenant_id, attribute)
);
-- Random keys do not compress: stored out of line without trying.
ALTER TABLE candidate_attribute_snapshots ALTER COLUMN candidate_keys SET STORAGE EXTERNAL;

INSERT INTO candidate_attribute_tenants (tenant_id, version)
SELECT DISTINCT tenant_id, 1 FROM candidate_attribute_history;
