-- Scoring-rate windows de-duplicate candidates over compact per-day arrays instead of sorting 30 days of candidate
-- rows: for each tenant and day, the day's shown candidates (one per candidate, from candidate_daily_stages) as three
-- arrays in the same order: a 64-bit key of the candidate id (hashtextextended(candidate_id, 0); ids themselves are not
-- copied), the score of its first shown event of the day (NaN when missing) and its dimension codes (each dimension's
-- 1-based position in the vocabulary, 0 when missing, -1 outside it). Big-endian, as PostgreSQL's int8send / float8send
-- / int2send write them. A window keeps each key's earliest day.
CREATE TABLE scoring_day_candidates (
    tenant_id       VARCHAR(255) NOT NULL,
    day             DATE NOT NULL,
    candidates      INTEGER NOT NULL,
    candidate_keys  BYTEA NOT NULL,              -- int8 [candidate], ascending
    scores          BYTEA NOT NULL,              -- float8 [candidate]
    dimension_codes BYTEA NOT NULL,              -- int2 [candidate][company_tier, experience_band, specialty]
    computed_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (day, tenant_id)
);

-- NULL until the day's scoring arrays are written; re-summarising the day resets it.
ALTER TABLE candidate_daily_stages_days ADD COLUMN scoring_summarised_at TIMESTAMPTZ;
