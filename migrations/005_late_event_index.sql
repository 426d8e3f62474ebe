-- The late-events sensor reads new rows by insertion time.
CREATE INDEX IF NOT EXISTS idx_selection_events_created_at ON selection_events (created_at);
