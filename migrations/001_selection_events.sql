-- Selection events: one row per candidate interaction in a search (seed 000, task 0).
-- IF NOT EXISTS keeps this compatible with databases created by the seed's own migration 011.
CREATE TABLE IF NOT EXISTS selection_events (
    event_id        VARCHAR(64) PRIMARY KEY,
    timestamp       TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    candidate_id    VARCHAR(255) NOT NULL,
    event_type      VARCHAR(50) NOT NULL
        CHECK (event_type IN ('shown', 'clicked', 'shortlisted', 'contacted', 'interviewed', 'hired')),
    search_id       VARCHAR(255) NOT NULL,
    tenant_id       VARCHAR(255) NOT NULL,
    user_id_hash    VARCHAR(64) NOT NULL,

    -- Inferred proxy dimensions (no demographics are collected). NULL is analysed as 'unknown'.
    company_tier    VARCHAR(50) CHECK (company_tier IN ('faang', 'enterprise', 'startup', 'other')),
    experience_band VARCHAR(20) CHECK (experience_band IN ('0-3', '3-7', '7-15', '15+')),
    specialty       VARCHAR(50)
        CHECK (specialty IN ('backend', 'frontend', 'fullstack', 'devops', 'data', 'ml', 'mobile', 'other')),

    -- Search context
    rank            INTEGER,
    score           NUMERIC(5, 4),

    created_at      TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);

CREATE INDEX IF NOT EXISTS idx_selection_events_tenant_timestamp ON selection_events (tenant_id, timestamp);
CREATE INDEX IF NOT EXISTS idx_selection_events_search_id ON selection_events (search_id);
CREATE INDEX IF NOT EXISTS idx_selection_events_event_type ON selection_events (event_type);
CREATE INDEX IF NOT EXISTS idx_selection_events_dimensions
    ON selection_events (tenant_id, company_tier, experience_band, specialty);
-- Daily partitions read one UTC day across tenants.
CREATE INDEX IF NOT EXISTS idx_selection_events_timestamp ON selection_events (timestamp);

COMMENT ON TABLE selection_events IS 'Candidate selection events for adverse-impact analysis';
