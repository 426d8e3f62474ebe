-- Tables written by the audit assets (group `audits`): scoring rates, rank exposure, concentrated slates and
-- impact-ratio trends. Like the metric tables, each asset replaces its partition's rows (delete by window_end or day,
-- insert). Undefined values are NULL with the reason in a text column; no table holds candidate ids.

-- Per tenant, day, search and combination of dimension values: sums over the search's shown impressions (the first
-- shown event of each candidate in the search; ranks below 1 count as missing). A search belongs to the day of its first
-- shown event; its impressions after that day ends are not included. Windows read these rows instead of the events
-- (as candidate_daily_stages serves the selection-rate windows). No candidate ids.
CREATE TABLE search_daily_aggregates (
    tenant_id       VARCHAR(255) NOT NULL,
    day             DATE NOT NULL,
    search_id       VARCHAR(255) NOT NULL,
    company_tier    VARCHAR(50),
    experience_band VARCHAR(20),
    specialty       VARCHAR(50),
    shown           INTEGER NOT NULL,            -- impressions (unique candidates of the search in this cell)
    ranked          INTEGER NOT NULL,            -- of them with a rank >= 1
    weight_sum      DOUBLE PRECISION NOT NULL,   -- sum of 1 / log2(1 + rank) over ranked
    top_k           INTEGER NOT NULL,            -- ranked at rank <= 10
    scored          INTEGER NOT NULL,            -- ranked with a score
    score_sum       DOUBLE PRECISION NOT NULL,
    scored_weight_sum DOUBLE PRECISION NOT NULL,
    merit_weight_sum DOUBLE PRECISION NOT NULL   -- sum of 1 / log2(1 + merit rank): the slate re-ordered by score
);
CREATE INDEX idx_search_daily_aggregates_day ON search_daily_aggregates (day, tenant_id, search_id);

-- Which days have been aggregated, so a window can name the days it lacks.
CREATE TABLE search_daily_aggregates_days (
    day             DATE PRIMARY KEY,
    searches        BIGINT NOT NULL,
    aggregate_rows  BIGINT NOT NULL,
    aggregated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- LL144 scoring rates (share of a group's candidates scoring above the tenant's median score in the window) and their
-- impact ratios, with the same tests, intervals and small-sample rules as selection-rate impact ratios.
CREATE TABLE scoring_rate_ratios (
    window_end      DATE NOT NULL,
    window_days     INTEGER NOT NULL,
    tenant_id       VARCHAR(255) NOT NULL,
    dimension       TEXT NOT NULL,
    group_value     TEXT NOT NULL,
    median_score    DOUBLE PRECISION,
    n               BIGINT NOT NULL,             -- candidates with a score
    above_median    BIGINT NOT NULL,             -- of them with score > median_score
    missing_score   BIGINT NOT NULL,             -- candidates without a score (left out of n and the median)
    scoring_rate    DOUBLE PRECISION,
    share           DOUBLE PRECISION,
    reference_group TEXT,
    reference_rate  DOUBLE PRECISION,
    is_reference    BOOLEAN NOT NULL,
    excluded_small_share BOOLEAN NOT NULL,
    impact_ratio    DOUBLE PRECISION,
    adverse_impact  BOOLEAN,
    test            TEXT,
    statistic       DOUBLE PRECISION,
    p_value         DOUBLE PRECISION,
    p_adjusted      DOUBLE PRECISION,
    adjustment_method TEXT,
    significant     BOOLEAN,
    ci_low          DOUBLE PRECISION,
    ci_high         DOUBLE PRECISION,
    shortfall       INTEGER,
    flip_flop       BOOLEAN,
    flip_flop_ratio DOUBLE PRECISION,
    cohens_h        DOUBLE PRECISION,
    low_sample      BOOLEAN NOT NULL,
    undefined_reason TEXT,
    computed_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (window_end, tenant_id, dimension, group_value)
);

-- Position-discounted exposure (1 / log2(1 + rank)) per group over the window's shown impressions, exposure ratios
-- against the best-exposed group, skew@k, exposure relative to score; intervals and p-values from a seeded bootstrap
-- over searches.
CREATE TABLE rank_exposure (
    window_end      DATE NOT NULL,
    window_days     INTEGER NOT NULL,
    tenant_id       VARCHAR(255) NOT NULL,
    dimension       TEXT NOT NULL,
    group_value     TEXT NOT NULL,
    searches        BIGINT NOT NULL,
    shown           BIGINT NOT NULL,
    ranked          BIGINT NOT NULL,
    missing_rank    BIGINT NOT NULL,
    share           DOUBLE PRECISION,
    exposure        DOUBLE PRECISION,
    exposure_ci_low DOUBLE PRECISION,
    exposure_ci_high DOUBLE PRECISION,
    reference_group TEXT,
    reference_exposure DOUBLE PRECISION,
    is_reference    BOOLEAN NOT NULL,
    excluded_small_share BOOLEAN NOT NULL,
    exposure_ratio  DOUBLE PRECISION,
    ratio_ci_low    DOUBLE PRECISION,
    ratio_ci_high   DOUBLE PRECISION,
    low_exposure    BOOLEAN,
    p_value         DOUBLE PRECISION,
    p_adjusted      DOUBLE PRECISION,
    adjustment_method TEXT,
    significant     BOOLEAN,
    top_k           INTEGER NOT NULL,
    skew_at_k       DOUBLE PRECISION,
    skew_ci_low     DOUBLE PRECISION,
    skew_ci_high    DOUBLE PRECISION,
    scored          BIGINT NOT NULL,
    mean_score      DOUBLE PRECISION,
    treatment_ratio DOUBLE PRECISION,
    treatment_ci_low DOUBLE PRECISION,
    treatment_ci_high DOUBLE PRECISION,
    treatment_p_value DOUBLE PRECISION,
    treatment_p_adjusted DOUBLE PRECISION,
    treatment_significant BOOLEAN,
    merit_ratio     DOUBLE PRECISION,
    merit_ci_low    DOUBLE PRECISION,
    merit_ci_high   DOUBLE PRECISION,
    merit_p_value   DOUBLE PRECISION,
    merit_p_adjusted DOUBLE PRECISION,
    merit_significant BOOLEAN,
    low_sample      BOOLEAN NOT NULL,
    n_boot          INTEGER NOT NULL,
    undefined_reason TEXT,
    score_undefined_reason TEXT,
    computed_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (window_end, tenant_id, dimension, group_value)
);

-- Per tenant, day and dimension: searches whose shown slate has more than `concentration` (70%) of its candidates
-- in one group. A search belongs to the day of its first shown event.
CREATE TABLE slate_concentration (
    day             DATE NOT NULL,
    tenant_id       VARCHAR(255) NOT NULL,
    dimension       TEXT NOT NULL,
    searches        BIGINT NOT NULL,
    assessed        BIGINT NOT NULL,             -- slates of at least min_slate shown candidates
    too_small       BIGINT NOT NULL,
    concentrated    BIGINT NOT NULL,
    concentrated_share DOUBLE PRECISION,
    expected_share  DOUBLE PRECISION,            -- by chance, from the day's group shares of impressions
    excess_p_value  DOUBLE PRECISION,
    excess_p_adjusted DOUBLE PRECISION,
    excess_significant BOOLEAN,
    top_group       TEXT,
    concentration   DOUBLE PRECISION NOT NULL,
    min_slate       INTEGER NOT NULL,
    undefined_reason TEXT,
    computed_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (day, tenant_id, dimension)
);

-- Which groups dominate the concentrated slates of slate_concentration.
CREATE TABLE slate_concentration_groups (
    day             DATE NOT NULL,
    tenant_id       VARCHAR(255) NOT NULL,
    dimension       TEXT NOT NULL,
    group_value     TEXT NOT NULL,
    concentrated    BIGINT NOT NULL,
    share_of_concentrated DOUBLE PRECISION NOT NULL,
    share_of_assessed DOUBLE PRECISION NOT NULL,
    computed_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (day, tenant_id, dimension, group_value)
);

-- Impact-ratio trends as of window_end: the slope of the daily windows' series ("approaching threshold") and the
-- week-over-week change between the 7-day windows ending on window_end and 7 days earlier ("worsening").
CREATE TABLE fairness_trends (
    window_end      DATE NOT NULL,
    window_days     INTEGER NOT NULL,            -- of the impact-ratio series; the week-over-week windows are 7 days
    tenant_id       VARCHAR(255) NOT NULL,
    stage_pair      TEXT NOT NULL,
    dimension       TEXT NOT NULL,
    group_value     TEXT NOT NULL,
    latest_ratio    DOUBLE PRECISION,
    windows_used    INTEGER,
    slope_per_day   DOUBLE PRECISION,
    days_to_threshold DOUBLE PRECISION,
    adverse_now     BOOLEAN,
    approaching_threshold BOOLEAN,
    trend_undefined_reason TEXT,
    reference_group TEXT,
    n_current       BIGINT,
    x_current       BIGINT,
    n_previous      BIGINT,
    x_previous      BIGINT,
    ratio_current   DOUBLE PRECISION,
    ratio_previous  DOUBLE PRECISION,
    ratio_change    DOUBLE PRECISION,
    log_change      DOUBLE PRECISION,
    se              DOUBLE PRECISION,
    z               DOUBLE PRECISION,
    p_value         DOUBLE PRECISION,
    p_adjusted      DOUBLE PRECISION,
    adjustment_method TEXT,
    significant     BOOLEAN,
    worsening       BOOLEAN,
    low_sample      BOOLEAN,
    wow_undefined_reason TEXT,
    computed_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (window_end, tenant_id, stage_pair, dimension, group_value)
);
CREATE INDEX idx_fairness_trends_flags ON fairness_trends (tenant_id, window_end) WHERE worsening OR approaching_threshold;
