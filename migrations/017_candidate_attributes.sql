-- Candidate attributes (self-identified sex, race/ethnicity, or any attribute dimension of the catalogue), kept apart
-- from events: events never carry them. A NULL value is `unknown` (declined, blank or missing).

-- The value in force now, one row per (tenant, candidate, attribute).
CREATE TABLE IF NOT EXISTS candidate_attributes (
    tenant_id       VARCHAR(255) NOT NULL,
    candidate_id    VARCHAR(255) NOT NULL,
    attribute       VARCHAR(50) NOT NULL,
    value           VARCHAR(100),                       -- NULL: unknown
    source          TEXT NOT NULL,                      -- the file it was loaded from
    collected_at    TIMESTAMP WITH TIME ZONE NOT NULL,  -- when the answer was collected (the file's, or the load's)
    changed_at      TIMESTAMP WITH TIME ZONE NOT NULL,  -- when the value last changed (first load: when it was set)
    PRIMARY KEY (tenant_id, candidate_id, attribute)
);

-- Every value a candidate's attribute has had: the value in force at time t is the row with
-- valid_from <= t AND (valid_to IS NULL OR t < valid_to). A candidate's first value has valid_from -infinity (it
-- describes the person, also before it was collected), and so has its first known value after only unknown ones
-- (which it replaces); a changed value is in force from its collected_at.
CREATE TABLE IF NOT EXISTS candidate_attribute_history (
    tenant_id       VARCHAR(255) NOT NULL,
    candidate_id    VARCHAR(255) NOT NULL,
    attribute       VARCHAR(50) NOT NULL,
    value           VARCHAR(100),
    source          TEXT NOT NULL,
    collected_at    TIMESTAMP WITH TIME ZONE NOT NULL,
    valid_from      TIMESTAMP WITH TIME ZONE NOT NULL,
    valid_to        TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (tenant_id, candidate_id, attribute, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_candidate_attribute_history_current
    ON candidate_attribute_history (tenant_id, candidate_id, attribute) WHERE valid_to IS NULL;

-- Input rows that could not be stored as attributes, with the reason. The ids are kept (when they could be read) so
-- that erasing a candidate erases its rejected rows too.
CREATE TABLE IF NOT EXISTS candidate_attribute_rejects (
    id              BIGSERIAL PRIMARY KEY,
    source          TEXT NOT NULL,
    line_number     BIGINT NOT NULL,
    tenant_id       TEXT,
    candidate_id    TEXT,
    raw_record      TEXT NOT NULL,
    reason          TEXT NOT NULL,
    received_at     TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_candidate_attribute_rejects_candidate
    ON candidate_attribute_rejects (tenant_id, candidate_id);
