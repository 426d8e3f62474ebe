-- Input rows that could not be stored as selection events, kept verbatim with the reason.
CREATE TABLE IF NOT EXISTS selection_event_rejects (
    id              BIGSERIAL PRIMARY KEY,
    source          TEXT NOT NULL,          -- file name or logging caller
    line_number     BIGINT,                 -- 1-based physical line in the source file (NULL for API calls)
    raw_record      TEXT NOT NULL,          -- the line as read (invalid bytes escaped)
    reason          TEXT NOT NULL,
    received_at     TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);

CREATE INDEX IF NOT EXISTS idx_selection_event_rejects_source ON selection_event_rejects (source, line_number);
