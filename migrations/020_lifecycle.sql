-- Issue 17: the data lifecycle. What retention removed, which candidates were erased (never their id), and which
-- days an erasure changed, so that a sensor re-runs them.

-- One row per table and retention run: when, which table (and policy category), rows removed, the first day kept.
CREATE TABLE retention_deletions (
    id              BIGSERIAL PRIMARY KEY,
    applied_at      TIMESTAMPTZ NOT NULL,
    category        TEXT NOT NULL,
    table_name      TEXT NOT NULL,
    rows            BIGINT NOT NULL CHECK (rows >= 0),
    cutoff          DATE NOT NULL
);
CREATE INDEX idx_retention_deletions_applied ON retention_deletions (applied_at);

-- One row per erasure: when, the tenant, rows removed per table and the UTC days touched. subject_hash is an
-- HMAC-SHA256 of (tenant, candidate) under a secret salt kept outside the database (FAIRNESS_ERASURE_SALT), or NULL:
-- the candidate id itself is never stored.
CREATE TABLE candidate_erasures (
    id              BIGSERIAL PRIMARY KEY,
    erased_at       TIMESTAMPTZ NOT NULL,
    tenant_id       VARCHAR(255) NOT NULL,
    subject_hash    TEXT CHECK (subject_hash ~ '^[0-9a-f]{64}$'),
    rows_by_table   JSONB NOT NULL CHECK (jsonb_typeof(rows_by_table) = 'object'),
    days            DATE[] NOT NULL
);

-- Days whose analysed results are stale because rows were removed (an erasure). The erasure_recompute_sensor reads
-- them by requested_at, as the late-events sensor reads late events by created_at, and re-runs those days and the
-- later windows containing them.
CREATE TABLE recompute_requests (
    id              BIGSERIAL PRIMARY KEY,
    day             DATE NOT NULL,
    tenant_id       VARCHAR(255) NOT NULL,
    reason          TEXT NOT NULL,
    requested_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_recompute_requests_requested ON recompute_requests (requested_at);

COMMENT ON TABLE retention_deletions IS 'What each retention run removed: when, table, rows, first day kept';
COMMENT ON TABLE candidate_erasures IS 'Erasures of one candidate: counts and days, never the candidate id';
COMMENT ON TABLE recompute_requests IS 'Days to re-analyse after rows were removed (read by erasure_recompute_sensor)';
