-- Computed bias metrics in the seed worker's JSON shape, read by the seed's admin dashboard (seed 000, task 0).
CREATE TABLE IF NOT EXISTS bias_metrics (
    id              SERIAL PRIMARY KEY,
    tenant_id       VARCHAR(255) NOT NULL,
    computed_at     TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    metrics_json    JSONB NOT NULL,
    CONSTRAINT unique_tenant_computed UNIQUE (tenant_id, computed_at)
);

CREATE INDEX IF NOT EXISTS idx_bias_metrics_tenant_computed ON bias_metrics (tenant_id, computed_at DESC);

COMMENT ON TABLE bias_metrics IS 'Bias metrics per tenant in the seed worker''s metrics_json shape';
