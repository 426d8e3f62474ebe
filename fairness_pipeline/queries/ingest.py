"""SQL of event ingestion: COPY into a session-local staging table, then one insert that skips duplicates."""

CREATE_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS selection_events_staging (
    line_number     BIGINT,
    event_id        VARCHAR(64),
    timestamp       TIMESTAMPTZ,
    candidate_id    VARCHAR(255),
    event_type      VARCHAR(50),
    search_id       VARCHAR(255),
    tenant_id       VARCHAR(255),
    user_id_hash    VARCHAR(64),
    company_tier    VARCHAR(50),
    experience_band VARCHAR(20),
    specialty       VARCHAR(50),
    rank            INTEGER,
    score           NUMERIC(5, 4)
) ON COMMIT DELETE ROWS
"""

COPY_STAGING = """
COPY selection_events_staging (line_number, event_id, timestamp, candidate_id, event_type, search_id, tenant_id,
    user_id_hash, company_tier, experience_band, specialty, rank, score)
FROM STDIN WITH (FORMAT csv)
"""

INSERT_FROM_STAGING = """
INSERT INTO selection_events (event_id, timestamp, candidate_id, event_type, search_id, tenant_id, user_id_hash,
    company_tier, experience_band, specialty, rank, score)
SELECT event_id, timestamp, candidate_id, event_type, search_id, tenant_id, user_id_hash,
    company_tier, experience_band, specialty, rank, score
FROM selection_events_staging
ORDER BY line_number
ON CONFLICT (event_id) DO NOTHING
"""

STAGED_ROWS = """
SELECT line_number FROM selection_events_staging ORDER BY line_number
"""

INSERT_ONE_FROM_STAGING = """
INSERT INTO selection_events (event_id, timestamp, candidate_id, event_type, search_id, tenant_id, user_id_hash,
    company_tier, experience_band, specialty, rank, score)
SELECT event_id, timestamp, candidate_id, event_type, search_id, tenant_id, user_id_hash,
    company_tier, experience_band, specialty, rank, score
FROM selection_events_staging
WHERE line_number = %s
ON CONFLICT (event_id) DO NOTHING
"""

COPY_REJECTS = """
COPY selection_event_rejects (source, line_number, raw_record, reason) FROM STDIN WITH (FORMAT csv)
"""

COUNT_REJECTS_FOR_SOURCE = "SELECT count(*) FROM selection_event_rejects WHERE source = %s"

CONFLICTING_STAGED_LINES = """
SELECT s.line_number
FROM selection_events_staging AS s
JOIN selection_events AS e USING (event_id)
WHERE (s.timestamp, s.candidate_id, s.event_type, s.search_id, s.tenant_id, s.user_id_hash, s.company_tier,
       s.experience_band, s.specialty, s.rank, s.score)
    IS DISTINCT FROM
      (e.timestamp, e.candidate_id, e.event_type, e.search_id, e.tenant_id, e.user_id_hash, e.company_tier,
       e.experience_band, e.specialty, e.rank, e.score)
ORDER BY s.line_number
"""
"""Staged rows whose ``event_id`` is stored with other content (run after the insert: a row just inserted matches
itself; of two staged rows with one id, the one not inserted is compared with the one that was)."""

ANALYZE_EVENTS = "ANALYZE selection_events"
ANALYZE_REJECTS = "ANALYZE selection_event_rejects"
