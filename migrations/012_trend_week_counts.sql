-- Week-over-week trends as of day D compare the 7-day windows ending on D and on D-7. Each trends run stores the
-- group counts of the week ending on its day, so the run a week later reads its previous week instead of counting it
-- again. A stored week is used only under the same settings (stage pairs, dimensions) and only when no day of that week
-- has been summarised again since (candidate_daily_stages_days.summarised_at). Group counts only, no candidate ids.
CREATE TABLE trend_week_counts (
    week_end        DATE NOT NULL,
    settings_key    TEXT NOT NULL,
    tenant_id       VARCHAR(255) NOT NULL,
    stage_pair      TEXT NOT NULL,
    dimension       TEXT NOT NULL,
    group_value     TEXT NOT NULL,
    n               BIGINT NOT NULL,
    x               BIGINT NOT NULL,
    computed_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (week_end, settings_key, tenant_id, stage_pair, dimension, group_value)
);
