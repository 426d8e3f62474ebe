-- Rank exposure windows add up per-day sums instead of re-reading and re-resampling 30 days of searches: for each
-- tenant and day, the group sums of the day's searches and their bootstrap replicates (the day's searches resampled
-- on their own: a bootstrap stratified by day), on a fixed layout of group columns. Stored as little-endian arrays
-- (float64 sums, int64 search counts, float32 replicates of shape n_boot x columns). A row is reused only under the
-- same layout, n_boot and seed; re-aggregating a day (search_daily_aggregates) deletes the day's rows. No candidate
-- ids: group sums only.
CREATE TABLE exposure_day_sums (
    tenant_id       VARCHAR(255) NOT NULL,
    day             DATE NOT NULL,
    layout_key      BIGINT NOT NULL,             -- audits.exposure.ExposureLayout.fingerprint
    n_boot          INTEGER NOT NULL,
    bootstrap_seed  BIGINT NOT NULL,
    searches        INTEGER NOT NULL,
    totals          BYTEA NOT NULL,              -- float64 [sum][group]
    shown           BYTEA NOT NULL,              -- float64 [group]
    group_searches  BYTEA NOT NULL,              -- int64 [group]: searches showing the group
    replicates      BYTEA,                       -- float32 [resample][column]; NULL when n_boot = 0
    computed_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (day, layout_key, n_boot, bootstrap_seed, tenant_id)
);
-- Random floats do not compress: store them out of line without trying.
ALTER TABLE exposure_day_sums ALTER COLUMN replicates SET STORAGE EXTERNAL;
