-- Windows that count candidates (scoring rates, the trends' weekly counts) de-duplicate compact per-day arrays in
-- numpy instead of sorting candidate rows in SQL: for each tenant, day and event type, the day's candidates (one per
-- candidate, from candidate_daily_stages) as three arrays in the same order: a 64-bit key of the candidate id
-- (hashtextextended(candidate_id, 0); ids themselves are not copied), the score of its first event of the day (NaN when
-- missing) and its dimension codes (each dimension's 1-based position in the vocabulary, 0 when missing, -1 outside
-- it). Big-endian, as PostgreSQL's int8send / float8send / int2send write them. A window keeps each key's earliest day.
CREATE TABLE candidate_day_arrays (
    tenant_id       VARCHAR(255) NOT NULL,
    day             DATE NOT NULL,
    event_type      VARCHAR(50) NOT NULL,
    candidates      INTEGER NOT NULL,
    candidate_keys  BYTEA NOT NULL,              -- int8 [candidate], ascending
    scores          BYTEA NOT NULL,              -- float8 [candidate]
    dimension_codes BYTEA NOT NULL,              -- int2 [candidate][company_tier, experience_band, specialty]
    computed_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (day, tenant_id, event_type)
);

-- NULL until the day's arrays are written; re-summarising the day resets it.
ALTER TABLE candidate_daily_stages_days ADD COLUMN arrays_written_at TIMESTAMPTZ;
