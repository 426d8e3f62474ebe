-- Issue 15: dimension values are data. The values of the event dimensions (company_tier, experience_band,
-- specialty) are declared in the dimension catalogue (fairness_pipeline/catalogue/dimensions.yaml, or a user file
-- in FAIRNESS_DIMENSIONS), which ingest and the Great Expectations suite check events against; CHECK constraints that
-- repeated the packaged lists would refuse a user's catalogue. Drop every CHECK constraint on those columns, whatever
-- its name (databases created by the seed's own migration may name them differently). event_type keeps its CHECK:
-- the funnel stages are not a dimension. The column sizes stay; the catalogue refuses longer codes.
DO $$
DECLARE
    constraint_name name;
BEGIN
    FOR constraint_name IN
        SELECT DISTINCT c.conname
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
        WHERE c.conrelid = 'selection_events'::regclass
          AND c.contype = 'c'
          AND a.attname IN ('company_tier', 'experience_band', 'specialty')
    LOOP
        EXECUTE format('ALTER TABLE selection_events DROP CONSTRAINT %I', constraint_name);
    END LOOP;
END
$$;
