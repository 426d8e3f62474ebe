-- Alerts (outbox), their delivery attempts per channel, human review items and the reviews' append-only history.

-- One row per alert. dedup_key (tenant | scope | level | window bucket) makes an alert exactly once per window even
-- when two runs race: the inserter is the only one that goes on to open a review. Payloads carry no candidate ids.
CREATE TABLE fairness_alerts (
    id              BIGSERIAL PRIMARY KEY,
    dedup_key       TEXT NOT NULL,
    tenant_id       VARCHAR(255) NOT NULL,
    scope           TEXT NOT NULL CHECK (scope <> ''),
    level           TEXT NOT NULL CHECK (level IN ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')),
    day             DATE NOT NULL,                      -- the analysed day the alert is about
    window_start    TIMESTAMPTZ NOT NULL,               -- start of the de-duplication window bucket
    window_hours    INTEGER NOT NULL CHECK (window_hours > 0),
    payload         JSONB NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
    -- pending: no channel has it yet (for the current stage); partially: some enabled channels have it;
    -- delivered: every channel enabled at the last tick has it. Escalation sets it back to pending.
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'partially', 'delivered')),
    created_at      TIMESTAMPTZ NOT NULL,
    last_attempt_at TIMESTAMPTZ,
    delivered_at    TIMESTAMPTZ,
    escalated_at    TIMESTAMPTZ,
    escalation_count INTEGER NOT NULL DEFAULT 0 CHECK (escalation_count >= 0),
    CONSTRAINT fairness_alerts_dedup_key UNIQUE (dedup_key),
    CONSTRAINT fairness_alerts_escalation CHECK ((escalated_at IS NULL) = (escalation_count = 0))
);
CREATE INDEX idx_fairness_alerts_undelivered ON fairness_alerts (created_at, id) WHERE status <> 'delivered';
CREATE INDEX idx_fairness_alerts_tenant_created ON fairness_alerts (tenant_id, created_at);

-- Every attempt to hand an alert to a channel, with its outcome. An alert is sent once per channel and stage
-- (escalation false, then true once escalated): at most one successful attempt per (alert, channel, escalation).
CREATE TABLE fairness_alert_deliveries (
    id              BIGSERIAL PRIMARY KEY,
    alert_id        BIGINT NOT NULL REFERENCES fairness_alerts (id),
    channel         TEXT NOT NULL,
    escalation      BOOLEAN NOT NULL,
    attempt         INTEGER NOT NULL CHECK (attempt > 0),
    outcome         TEXT NOT NULL CHECK (outcome IN ('delivered', 'failed')),
    detail          TEXT,                               -- e.g. 'HTTP 204 after 1 request(s)'
    error           TEXT,                               -- why it failed (never a secret)
    attempted_at    TIMESTAMPTZ NOT NULL,
    CONSTRAINT fairness_alert_deliveries_attempt UNIQUE (alert_id, channel, escalation, attempt),
    CONSTRAINT fairness_alert_deliveries_error CHECK ((outcome = 'failed') = (error IS NOT NULL))
);
CREATE UNIQUE INDEX idx_fairness_alert_deliveries_once
    ON fairness_alert_deliveries (alert_id, channel, escalation) WHERE outcome = 'delivered';

-- HIGH and CRITICAL alerts open one review item: open -> acknowledged -> resolved (or open -> resolved with a note).
CREATE TABLE fairness_reviews (
    id              BIGSERIAL PRIMARY KEY,
    alert_id        BIGINT NOT NULL UNIQUE REFERENCES fairness_alerts (id),
    tenant_id       VARCHAR(255) NOT NULL,
    priority        TEXT NOT NULL CHECK (priority IN ('critical', 'high', 'medium', 'low')),
    status          TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'resolved')),
    reviewer        TEXT,                               -- who made the last change
    note            TEXT,                               -- the last change's note
    opened_at       TIMESTAMPTZ NOT NULL,
    acknowledged_at TIMESTAMPTZ,
    resolved_at     TIMESTAMPTZ,
    updated_at      TIMESTAMPTZ NOT NULL,
    CONSTRAINT fairness_reviews_acknowledged CHECK (status <> 'acknowledged' OR (acknowledged_at IS NOT NULL
        AND reviewer IS NOT NULL)),
    CONSTRAINT fairness_reviews_resolved CHECK (status <> 'resolved' OR (resolved_at IS NOT NULL
        AND reviewer IS NOT NULL AND note IS NOT NULL))
);
CREATE INDEX idx_fairness_reviews_status ON fairness_reviews (status, priority, opened_at);

-- Every change of a review (opened, escalated, acknowledged, resolved), never updated or deleted.
CREATE TABLE fairness_review_history (
    id              BIGSERIAL PRIMARY KEY,
    review_id       BIGINT NOT NULL REFERENCES fairness_reviews (id),
    alert_id        BIGINT NOT NULL REFERENCES fairness_alerts (id),
    action          TEXT NOT NULL CHECK (action IN ('open', 'escalate', 'acknowledge', 'resolve')),
    from_status     TEXT,
    to_status       TEXT NOT NULL,
    actor           TEXT NOT NULL CHECK (actor <> ''),
    note            TEXT,
    at              TIMESTAMPTZ NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_fairness_review_history_review ON fairness_review_history (review_id, id);

CREATE FUNCTION fairness_review_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'fairness_review_history is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'raise_exception';
END
$$;

CREATE TRIGGER fairness_review_history_no_change
    BEFORE UPDATE OR DELETE ON fairness_review_history
    FOR EACH ROW EXECUTE FUNCTION fairness_review_history_append_only();

CREATE TRIGGER fairness_review_history_no_truncate
    BEFORE TRUNCATE ON fairness_review_history
    FOR EACH STATEMENT EXECUTE FUNCTION fairness_review_history_append_only();

COMMENT ON TABLE fairness_alerts IS 'Alert outbox: one row per de-duplicated alert, delivered by channel ticks';
COMMENT ON TABLE fairness_alert_deliveries IS 'Every delivery attempt of an alert on a channel, with its outcome';
COMMENT ON TABLE fairness_reviews IS 'Human review items opened by HIGH and CRITICAL alerts';
COMMENT ON TABLE fairness_review_history IS 'Append-only history of every review change (actor, from, to, note)';
