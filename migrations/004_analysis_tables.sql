-- Tables written by the daily-partitioned Dagster assets. Each asset replaces its partition's rows (delete + insert).

-- Events that passed the Great Expectations suite, by event day.
CREATE TABLE validated_selection_events (
    LIKE selection_events INCLUDING DEFAULTS,
    validated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id)
);
CREATE INDEX idx_validated_events_timestamp ON validated_selection_events (timestamp);

-- Events that failed it, with every failed expectation named. A row of selection_events is in exactly one of the two
-- tables once its day is validated (checked by the asset check raw_equals_validated_plus_quarantined).
CREATE TABLE quarantined_selection_events (
    LIKE selection_events INCLUDING DEFAULTS,
    failed_expectations TEXT[] NOT NULL,
    quarantined_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_quarantined_events_timestamp ON quarantined_selection_events (timestamp);

-- One row per tenant, day, stage and candidate: the candidate's first event of that stage that day, with its
-- dimensions, score and rank. Windows of 30 days read these instead of the events.
CREATE TABLE candidate_daily_stages (
    tenant_id       VARCHAR(255) NOT NULL,
    day             DATE NOT NULL,
    event_type      VARCHAR(50) NOT NULL,
    candidate_id    VARCHAR(255) NOT NULL,
    first_at        TIMESTAMPTZ NOT NULL,
    company_tier    VARCHAR(50),
    experience_band VARCHAR(20),
    specialty       VARCHAR(50),
    score           NUMERIC(5, 4),
    rank            INTEGER,
    events          INTEGER NOT NULL,
    PRIMARY KEY (day, tenant_id, event_type, candidate_id)
);

-- Which days have been summarised, so a window can name the days it lacks.
CREATE TABLE candidate_daily_stages_days (
    day             DATE PRIMARY KEY,
    validated_events BIGINT NOT NULL,
    candidate_rows  BIGINT NOT NULL,
    summarised_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Selection rates per group for the window ending on window_end (fairlearn MetricFrame on aggregated counts).
CREATE TABLE selection_rate_frames (
    window_end      DATE NOT NULL,
    window_days     INTEGER NOT NULL,
    tenant_id       VARCHAR(255) NOT NULL,
    stage_pair      TEXT NOT NULL,
    dimension       TEXT NOT NULL,
    group_value     TEXT NOT NULL,
    n               BIGINT NOT NULL,
    x               BIGINT NOT NULL,
    selection_rate  DOUBLE PRECISION,
    overall_rate    DOUBLE PRECISION,
    demographic_parity_ratio      DOUBLE PRECISION,
    demographic_parity_difference DOUBLE PRECISION,
    undefined_reason TEXT,
    computed_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (window_end, tenant_id, stage_pair, dimension, group_value)
);

-- Impact ratios against the reference group, with significance and practical-significance results.
CREATE TABLE impact_ratios (
    window_end      DATE NOT NULL,
    window_days     INTEGER NOT NULL,
    tenant_id       VARCHAR(255) NOT NULL,
    stage_pair      TEXT NOT NULL,
    dimension       TEXT NOT NULL,
    group_value     TEXT NOT NULL,
    n               BIGINT NOT NULL,
    x               BIGINT NOT NULL,
    selection_rate  DOUBLE PRECISION,
    share           DOUBLE PRECISION,
    reference_group TEXT,
    reference_rate  DOUBLE PRECISION,
    is_reference    BOOLEAN NOT NULL,
    excluded_small_share BOOLEAN NOT NULL,
    impact_ratio    DOUBLE PRECISION,
    adverse_impact  BOOLEAN,
    test            TEXT,
    statistic       DOUBLE PRECISION,
    p_value         DOUBLE PRECISION,
    p_adjusted      DOUBLE PRECISION,
    adjustment_method TEXT,
    significant     BOOLEAN,
    ci_low          DOUBLE PRECISION,
    ci_high         DOUBLE PRECISION,
    shortfall       INTEGER,
    flip_flop       BOOLEAN,
    flip_flop_ratio DOUBLE PRECISION,
    cohens_h        DOUBLE PRECISION,
    low_sample      BOOLEAN NOT NULL,
    undefined_reason TEXT,
    computed_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (window_end, tenant_id, stage_pair, dimension, group_value)
);
CREATE INDEX idx_impact_ratios_adverse ON impact_ratios (tenant_id, window_end) WHERE adverse_impact;

-- bias_metrics rows written by the pipeline carry the window they describe, so a re-run replaces them.
ALTER TABLE bias_metrics ADD COLUMN window_end DATE, ADD COLUMN window_days INTEGER;
CREATE UNIQUE INDEX idx_bias_metrics_tenant_window ON bias_metrics (tenant_id, window_end) WHERE window_end IS NOT NULL;
