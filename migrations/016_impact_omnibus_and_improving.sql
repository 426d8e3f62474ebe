-- Issue 13. The impact tables' significance is gated by an omnibus test of each table (the reference is chosen after
-- looking): p_omnibus is that table's gate p, the same on every compared row, NULL where there is none (the reference
-- row, groups not compared, a declared reference). Week-over-week trends report significant improvements as well as
-- worsenings.
ALTER TABLE impact_ratios ADD COLUMN p_omnibus DOUBLE PRECISION;
ALTER TABLE scoring_rate_ratios ADD COLUMN p_omnibus DOUBLE PRECISION;
ALTER TABLE fairness_trends ADD COLUMN improving BOOLEAN;
DROP INDEX IF EXISTS idx_fairness_trends_flags;
CREATE INDEX idx_fairness_trends_flags ON fairness_trends (tenant_id, window_end)
    WHERE worsening OR improving OR approaching_threshold;
