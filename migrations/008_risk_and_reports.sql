-- One risk verdict per tenant and day (the window ending that day), with everything behind it.
CREATE TABLE risk_assessments (
    window_end      DATE NOT NULL,
    tenant_id       VARCHAR(255) NOT NULL,
    profile         TEXT NOT NULL,
    context         TEXT,
    score           DOUBLE PRECISION,
    ci_low          DOUBLE PRECISION,
    ci_high         DOUBLE PRECISION,
    band            TEXT,
    level           TEXT NOT NULL CHECK (level IN ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')),
    dominant_component TEXT,
    assessment      JSONB NOT NULL,
    computed_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (window_end, tenant_id)
);
CREATE INDEX idx_risk_assessments_level ON risk_assessments (window_end, level);

-- The report of each tenant and day: the internal JSON (unsuppressed) and the published HTML and markdown
-- (small cells suppressed). None of them holds candidate ids.
CREATE TABLE fairness_reports (
    window_end      DATE NOT NULL,
    tenant_id       VARCHAR(255) NOT NULL,
    report_json     JSONB NOT NULL,
    report_html     TEXT NOT NULL,
    report_markdown TEXT NOT NULL,
    generated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (window_end, tenant_id)
);
