"""The audit assets on real PostgreSQL through Dagster: planted findings, pandas oracles, trends, idempotent re-runs.

One data set serves most tests (generated and run once per module): two weeks of two tenants, with rank bias
(company_tier=startup pushed 3 places down), score bias (experience_band=15+ scores 0.1 lower) and concentrated slates
(20% of searches 90% specialty=backend) planted in tenant-1 only, and in the second week a shortlisting bias on
experience_band=0-3 (also tenant-1 only), so that its impact ratio drops from one week to the next. Tenant-2 is fair.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import numpy as np
import pandas as pd
import psycopg2
import pytest
from psycopg2 import sql

from fairness_pipeline import synthetic
from fairness_pipeline.audits import exposure, scoring, slates, trends
from fairness_pipeline.audits.from_events import (
    first_shown_candidates,
    search_aggregates,
    shown_impressions,
    window_cells,
)
from fairness_pipeline.catalogue import load_catalogue
from fairness_pipeline.cli.runs import run_range
from fairness_pipeline.definitions import build_definitions
from fairness_pipeline.defs.assets import audits as audit_assets
from fairness_pipeline.defs.partitions import tenant_day_key
from fairness_pipeline.defs.resources import FairnessDatabase
from fairness_pipeline.defs.tags import DAGSTER_RANGE_END_TAG, DAGSTER_RANGE_START_TAG
from fairness_pipeline.defs.tenants import register_tenants
from fairness_pipeline.events.vocabulary import DIMENSIONS
from fairness_pipeline.ingest.frames import load_frames
from fairness_pipeline.metrics.window import TABLE_KEYS, AnalysisSettings, group_counts
from fairness_pipeline.store import analysis as analysis_store
from fairness_pipeline.store import audits as audit_store

WINDOW = 7
LAST = date(2026, 3, 18)  # a Wednesday: the slate day has a full weekday's searches
START = LAST - timedelta(days=2 * WINDOW - 1)  # two weeks: the previous week starts here
SETTINGS = AnalysisSettings(window_days=WINDOW)
ATTRIBUTES = load_catalogue().attribute_dimensions  # no self-identification is loaded here: all unknown
AUDIT_ASSETS = ("scoring_rate_ratios", "rank_exposure", "slate_concentration", "fairness_trends")
AUDIT_TABLES = (
    "search_daily_aggregates",
    "scoring_rate_ratios",
    "rank_exposure",
    "slate_concentration",
    "slate_concentration_groups",
    "fairness_trends",
    "exposure_day_sums",
    "candidate_day_arrays",
    "trend_week_counts",
)
PLANTED = {
    "rank_bias": ("company_tier=startup:3",),
    "score_bias": ("experience_band=15+:-0.1",),
    "slate_concentration": ("specialty=backend:0.2",),
    "biased_tenants": ("tenant-1",),
}


def _admin(url: str, statement: sql.Composable) -> None:
    conn = psycopg2.connect(url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


def _query(db_url: str, statement: str, params: dict | None = None) -> pd.DataFrame:
    conn = psycopg2.connect(db_url)
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
    finally:
        conn.close()


def _extra_events(base: pd.DataFrame) -> pd.DataFrame:
    """Edge cases for the SQL: repeated shown events of one (search, candidate), and a search over midnight."""
    shown = base[(base["tenant_id"] == "tenant-2") & (base["event_type"] == "shown")]
    repeats = shown[shown["timestamp"].dt.date == LAST].iloc[:40:4].copy()  # 10 impressions shown again later
    repeats["event_id"] = [f"repeat-{i}" for i in range(len(repeats))]
    repeats["timestamp"] = repeats["timestamp"] + pd.Timedelta(seconds=30)
    repeats["rank"] = pd.array([19] * len(repeats), dtype="Int64")  # a later, worse position: must be ignored
    midnight = pd.Timestamp(datetime(LAST.year, LAST.month, LAST.day, tzinfo=UTC))
    over = shown.iloc[:8].copy()  # 8 candidates of one search shown around midnight before LAST
    over["search_id"] = "srch-over-midnight"
    over["event_id"] = [f"over-midnight-{i}" for i in range(len(over))]
    over["timestamp"] = [midnight - pd.Timedelta(seconds=1) + pd.Timedelta(milliseconds=250 * i) for i in range(8)]
    over["rank"] = pd.array(range(1, 9), dtype="Int64")
    return pd.concat([repeats, over], ignore_index=True)


@pytest.fixture(scope="module")
def graph(module_db_url: str, module_instance: dg.DagsterInstance) -> pd.DataFrame:
    """Generate, load and run the graph for LAST (7-day windows); returns the events as loaded."""
    common = {
        "seed": 31,
        "days": WINDOW,
        "tenants": 2,
        "events_per_day": 2500,
        "candidates_per_tenant": 40_000,
        **PLANTED,
    }
    first_week = synthetic.GeneratorConfig(start=START, **common)
    second_week = synthetic.GeneratorConfig(
        start=START + timedelta(days=WINDOW), bias=("experience_band=0-3:0.4",), **common
    )
    frames = [*synthetic.generate_events(first_week), *synthetic.generate_events(second_week)]
    events = pd.concat(frames, ignore_index=True)
    extra = _extra_events(events)
    conn = psycopg2.connect(module_db_url)
    try:
        counts = load_frames(conn, [*frames, extra], source="test")
    finally:
        conn.close()
    assert counts.rejected == 0 and counts.duplicates == 0
    database = FairnessDatabase(url=module_db_url)
    defs = build_definitions(database)
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    events_run = defs.resolve_job_def("event_days_job").execute_in_process(
        instance=module_instance,
        run_config=quiet,
        tags={DAGSTER_RANGE_START_TAG: START.isoformat(), DAGSTER_RANGE_END_TAG: LAST.isoformat()},
    )
    assert events_run.success
    runs = run_range(module_instance, LAST, LAST, window_days=WINDOW, database=database)
    assert all(r.success for r in runs), runs
    return pd.concat([events, extra], ignore_index=True)


# --- oracles -----------------------------------------------------------------------------------------------------


def _oracle_aggregates(events: pd.DataFrame, first: date, last: date) -> pd.DataFrame:
    """Per-search aggregates with pandas, following the rules literally: the first shown event of each (search,
    candidate) counts; a search belongs to the day of its first shown event, with its impressions of that day."""
    shown = shown_impressions(events).sort_values(["timestamp", "event_id"], kind="stable")
    shown = shown.drop_duplicates(["tenant_id", "search_id", "candidate_id"])
    shown["day"] = shown.groupby(["tenant_id", "search_id"])["day"].transform("min")
    stamp_day = shown["timestamp"].dt.tz_convert("UTC").dt.date
    keep = (shown["day"] >= first) & (shown["day"] <= last) & (stamp_day == shown["day"])
    return search_aggregates(shown[keep], keys=("tenant_id", "day"))


def _unanswered(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the catalogue's attribute columns, all unknown (no self-identification loaded)."""
    return frame.assign(**{name: None for name in ATTRIBUTES})


def _compare(ours: pd.DataFrame, oracle: pd.DataFrame, keys: list[str]) -> None:
    """Frames equal row for row after sorting by ``keys``: integers and text exactly, floats to 1e-9."""
    assert len(ours) == len(oracle) > 0
    left = ours[list(oracle.columns)].sort_values(keys).reset_index(drop=True)
    right = oracle.sort_values(keys).reset_index(drop=True)
    for column in oracle.columns:
        a, b = left[column], right[column]
        if pd.api.types.is_float_dtype(b) or pd.api.types.is_float_dtype(a):
            a, b = pd.to_numeric(a).astype(float).to_numpy(), pd.to_numeric(b).astype(float).to_numpy()
            assert np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True), column
        else:
            a = a.astype(object).where(a.notna(), None).tolist()
            b = b.astype(object).where(b.notna(), None).tolist()
            assert a == b, column


def _stored(db_url: str, table: str, where: str, params: dict) -> pd.DataFrame:
    frame = _query(db_url, f"SELECT * FROM {table} WHERE {where}", params)  # test-only: names are literals
    return frame.rename(columns={"group_value": "group"}).drop(columns=["computed_at"])


def search_days_of(db_url: str, day: date) -> pd.DataFrame:
    return _query(db_url, "SELECT * FROM search_daily_aggregates WHERE day = %(d)s", {"d": day})


def _findings(table: pd.DataFrame, flag: str, significant: str = "significant") -> set[tuple[str, str, str]]:
    hit = table[table[flag].fillna(False).astype(bool) & table[significant].fillna(False).astype(bool)]
    return set(zip(hit["tenant_id"], hit["dimension"], hit["group"], strict=True))


def _singles(table: pd.DataFrame) -> pd.DataFrame:
    return table[~table["dimension"].str.contains("+", regex=False)]


# --- SQL inputs against pandas --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_search_aggregates_match_the_pandas_reference(graph: pd.DataFrame, module_db_url: str) -> None:
    conn = psycopg2.connect(module_db_url)
    try:
        with conn.cursor() as cur:
            window = audit_store.search_aggregates(cur, *SETTINGS.window(LAST))
            day_before = audit_store.search_aggregates(cur, LAST - timedelta(days=1), LAST - timedelta(days=1))
            scoring_sql = audit_store.scoring_cells(cur, *SETTINGS.window(LAST))
            coded = audit_store.exposure_window(cur, *SETTINGS.window(LAST))
    finally:
        conn.close()
    keys = ["tenant_id", "day", "search_id", *DIMENSIONS]
    _compare(window, _oracle_aggregates(graph, *SETTINGS.window(LAST)), keys)
    # search_number: 1, 2, ... per tenant and day in bytewise order of search_id
    ranks = window.groupby(["tenant_id", "day"])["search_id"].rank(method="dense").astype(int)
    assert (ranks == window["search_number"]).all()
    # the binary, coded read of the window holds the same rows: (day offset, number) as one integer, categories
    first_day = SETTINGS.window(LAST)[0]
    assert coded[["sex", "race_ethnicity"]].isna().all().all()  # no self-identification loaded: unknown
    decoded = (
        coded.drop(columns=["sex", "race_ethnicity"])
        .assign(
            day=[first_day + timedelta(days=int(v >> 32)) for v in coded["search_id"]],
            search_number=(coded["search_id"] & 0xFFFFFFFF).astype(int),
            tenant_id=coded["tenant_id"].astype(object),
            **{dim: coded[dim].astype(object).where(coded[dim].notna(), None) for dim in DIMENSIONS},
        )
        .drop(columns="search_id")
    )
    expected = window.drop(columns="search_id").assign(
        **{dim: window[dim].where(window[dim].notna(), None) for dim in DIMENSIONS}
    )
    _compare(decoded, expected[list(decoded.columns)], ["tenant_id", "day", "search_number", *DIMENSIONS])
    for _, part in coded.groupby("tenant_id", observed=True):  # rows in search order within each tenant
        assert part["search_id"].is_monotonic_increasing
    _compare(day_before, _oracle_aggregates(graph, LAST - timedelta(days=1), LAST - timedelta(days=1)), keys)
    # The repeated shown events count once (with their first rank); the search over midnight belongs to the day before,
    # with its 4 impressions of that day (a day's slates stop at midnight).
    assert window["shown"].sum() == len(shown_impressions(graph, *SETTINGS.window(LAST))) - 10 - 4
    over = day_before[day_before["search_id"] == "srch-over-midnight"]
    assert over["shown"].sum() == 4 and (over["day"] == LAST - timedelta(days=1)).all()
    assert not (search_days_of(module_db_url, LAST)["search_id"] == "srch-over-midnight").any()
    oracle_cells = scoring.scoring_cells(
        _unanswered(first_shown_candidates(graph, *SETTINGS.window(LAST))), dimensions=(*DIMENSIONS, *ATTRIBUTES)
    )
    _compare(scoring_sql, oracle_cells, ["tenant_id", *DIMENSIONS, *ATTRIBUTES])


@pytest.mark.slow
def test_window_cells_from_the_day_arrays_equal_the_sql(graph: pd.DataFrame, module_db_url: str) -> None:
    conn = psycopg2.connect(module_db_url)
    try:
        with conn.cursor() as cur:
            for settings in (
                dataclasses.replace(SETTINGS, window_days=7),
                dataclasses.replace(SETTINGS, window_days=14),
            ):
                ours = audit_store.window_cells_from_arrays(cur, settings, LAST)
                sql_cells = analysis_store.window_cells(
                    cur, settings.stage_pair_names, settings.stage_pairs, *settings.window(LAST)
                )  # the SQL sort of candidate rows
                key = ["tenant_id", "stage_pair", *DIMENSIONS, *ATTRIBUTES]
                blank = {d: "-" for d in (*DIMENSIONS, *ATTRIBUTES)}
                _compare(ours.fillna(blank), sql_cells.fillna(blank), key)
                pandas_cells = _unanswered(window_cells(graph, *settings.window(LAST)))  # from the events, in pandas
                _compare(ours.fillna(blank), pandas_cells.fillna(blank)[list(ours.columns)], key)
    finally:
        conn.close()


# --- stored audits against the domain functions on pandas inputs ----------------------------------------------------


@pytest.mark.slow
def test_stored_audits_equal_the_oracle(graph: pd.DataFrame, module_db_url: str) -> None:
    first, last = SETTINGS.window(LAST)
    params = {"d": LAST}
    stored = _stored(module_db_url, "scoring_rate_ratios", "window_end = %(d)s", params)
    candidates = _unanswered(first_shown_candidates(graph, first, last))
    oracle = scoring.scoring_rate_ratios(
        scoring.scoring_cells(candidates, dimensions=(*DIMENSIONS, *ATTRIBUTES)), SETTINGS
    )
    _compare(stored, oracle, ["tenant_id", "dimension", "group"])

    # with the day: each day's searches resampled on their own; no self-identification loaded: attributes unknown
    aggregates = _oracle_aggregates(graph, first, last).assign(sex=None, race_ethnicity=None)
    oracle = exposure.rank_exposure(aggregates, SETTINGS, n_boot=exposure.DEFAULT_N_BOOT, seed=0)
    stored = _stored(module_db_url, "rank_exposure", "window_end = %(d)s", params)
    assert (stored["top_k"] == exposure.DEFAULT_TOP_K).all() and (stored["window_days"] == WINDOW).all()
    _compare(stored, oracle, ["tenant_id", "dimension", "group"])

    day_aggregates = _oracle_aggregates(graph, LAST, LAST).assign(sex=None, race_ethnicity=None)
    result = slates.slate_concentration(day_aggregates, keys=("tenant_id", "day"))
    _compare(
        _stored(module_db_url, "slate_concentration", "day = %(d)s", params), result.summary, ["tenant_id", "dimension"]
    )
    _compare(
        _stored(module_db_url, "slate_concentration_groups", "day = %(d)s", params),
        result.dominant,
        ["tenant_id", "dimension", "group"],
    )

    weekly = dataclasses.replace(SETTINGS, window_days=7)
    current = group_counts(_unanswered(window_cells(graph, LAST - timedelta(days=6), LAST)), weekly)
    previous = group_counts(
        _unanswered(window_cells(graph, LAST - timedelta(days=13), LAST - timedelta(days=7))), weekly
    )
    series = _query(
        module_db_url,
        'SELECT tenant_id, stage_pair, dimension, group_value AS "group", window_end, '
        "impact_ratio FROM impact_ratios WHERE window_end = %(d)s",
        params,
    )
    oracle = trends.fairness_trends(series, current, previous, SETTINGS, as_of=LAST).drop(columns=["as_of"])
    stored = _stored(module_db_url, "fairness_trends", "window_end = %(d)s", params)
    _compare(stored, oracle, [*TABLE_KEYS, "group"])


@pytest.mark.slow
def test_stored_previous_week_is_reused_until_a_day_of_it_is_summarised_again(graph, module_db_url: str) -> None:
    weekly = dataclasses.replace(SETTINGS, window_days=7)
    week_end = LAST - timedelta(days=7)
    conn = psycopg2.connect(module_db_url)
    try:
        with conn.cursor() as cur:
            stored = audit_store.week_counts(cur, weekly, week_end, tenant_id="tenant-1")
            assert stored.attrs["stored"]  # written by tenant-1's trends run as of LAST, its previous week
            expected = group_counts(_unanswered(window_cells(graph, week_end - timedelta(days=6), week_end)), weekly)
            _compare(stored, expected[expected["tenant_id"] == "tenant-1"], [*TABLE_KEYS, "group"])
            other = dataclasses.replace(weekly, intersections=False)  # other settings: not the stored counts
            assert not audit_store.week_counts(cur, other, week_end, tenant_id="tenant-1").attrs["stored"]
            cur.execute("UPDATE candidate_daily_stages_days SET summarised_at = now() WHERE day = %s", (week_end,))
            assert not audit_store.week_counts(cur, weekly, week_end, tenant_id="tenant-1").attrs["stored"]
            assert not audit_store.week_counts(cur, weekly, week_end).attrs["stored"]  # every tenant: counted afresh
    finally:
        conn.rollback()
        conn.close()


# --- planted findings -----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_planted_score_bias_gives_a_scoring_finding_in_tenant_1_only(graph, module_db_url: str) -> None:
    table = _singles(_stored(module_db_url, "scoring_rate_ratios", "window_end = %(d)s", {"d": LAST}))
    assert _findings(table, "adverse_impact") == {("tenant-1", "experience_band", "15+")}
    row = table.set_index(["tenant_id", "dimension", "group"]).loc[("tenant-1", "experience_band", "15+")]
    assert row["impact_ratio"] < 0.7 and row["ci_high"] < 0.8
    assert table["median_score"].notna().all()


@pytest.mark.slow
def test_planted_rank_bias_gives_an_exposure_finding_in_tenant_1_only(graph, module_db_url: str) -> None:
    table = _singles(_stored(module_db_url, "rank_exposure", "window_end = %(d)s", {"d": LAST}))
    low = _findings(table, "low_exposure")
    assert ("tenant-1", "company_tier", "startup") in low
    # The score bias lowers 15+'s exposure too (its slates are ordered by the lowered scores); nothing else is low.
    assert low <= {("tenant-1", "company_tier", "startup"), ("tenant-1", "experience_band", "15+")}
    table = table.assign(below_merit=table["merit_ratio"] < 1)
    # Ranked below its own scores: only startup (15+ is ranked exactly by its scores, however low).
    assert _findings(table, "below_merit", "merit_significant") == {("tenant-1", "company_tier", "startup")}
    startup = table.set_index(["tenant_id", "dimension", "group"]).loc[("tenant-1", "company_tier", "startup")]
    assert startup["ratio_ci_high"] < 1 and startup["skew_at_k"] < 1 and startup["merit_ci_high"] < 1


@pytest.mark.slow
def test_planted_slate_concentration_is_found_in_tenant_1_only(graph, module_db_url: str) -> None:
    table = _stored(module_db_url, "slate_concentration", "day = %(d)s", {"d": LAST}).set_index(
        ["tenant_id", "dimension"]
    )
    specialty = table.loc[("tenant-1", "specialty")]
    share, n = specialty["concentrated_share"], specialty["assessed"]
    assert abs(share - 0.2) < 3.5 * math.sqrt(0.2 * 0.8 / n) and specialty["top_group"] == "backend"
    assert bool(specialty["excess_significant"]) and specialty["expected_share"] < 0.01
    others = table.drop(index=("tenant-1", "specialty"))
    assert others["concentrated"].sum() <= 1 and not others["excess_significant"].fillna(False).any()
    groups = _stored(module_db_url, "slate_concentration_groups", "day = %(d)s", {"d": LAST})
    planted = (groups["tenant_id"] == "tenant-1") & (groups["dimension"] == "specialty")
    assert groups.loc[planted, "group"].tolist() == ["backend"]
    assert groups.loc[~planted, "concentrated"].sum() == others["concentrated"].sum()


@pytest.mark.slow
def test_bias_starting_in_the_second_week_is_worsening(graph, module_db_url: str) -> None:
    table = _stored(module_db_url, "fairness_trends", "window_end = %(d)s", {"d": LAST})
    headline = _singles(table[table["stage_pair"] == "shown->shortlisted"])
    assert _findings(headline, "worsening") == {("tenant-1", "experience_band", "0-3")}
    row = headline.set_index(["tenant_id", "dimension", "group"]).loc[("tenant-1", "experience_band", "0-3")]
    assert row["ratio_change"] == pytest.approx(0.4, abs=0.2) and row["log_change"] < 0
    # Tenant-2 is fair in both weeks: at most a stray false positive among its ~36 single-dimension tables.
    fair = _singles(table[table["tenant_id"] == "tenant-2"])
    assert fair["p_value"].notna().sum() >= 45  # unknown groups are reported, never compared
    assert fair["worsening"].fillna(False).sum() <= 1
    assert table["worsening"].notna().any() and table["windows_used"].eq(1).any()  # one stored window: no slope


# --- the seed-shaped document, metadata, re-runs --------------------------------------------------------------------


@pytest.mark.slow
def test_bias_metrics_documents_carry_the_audits(graph, module_db_url: str, module_instance) -> None:
    documents = _query(
        module_db_url,
        "SELECT tenant_id, metrics_json FROM bias_metrics WHERE window_end = %(d)s ORDER BY tenant_id",
        {"d": LAST},
    )
    docs = dict(zip(documents["tenant_id"], documents["metrics_json"], strict=True))
    assert set(docs) == {"tenant-1", "tenant-2"}
    for document in docs.values():
        assert {"computed_at", "dimensions", "all_warnings", "any_adverse_impact"} <= set(document)
        assert set(document["dimensions"]) == set(DIMENSIONS)
        assert {"scoring_rates", "rank_exposure", "slate_concentration", "trends"} <= set(document)
        assert "-cand-" not in json.dumps(document)  # no candidate ids
    biased, fair = docs["tenant-1"], docs["tenant-2"]
    scoring_doc = biased["scoring_rates"]["dimensions"]["experience_band"]
    assert scoring_doc["significant_adverse_impact_groups"] == ["15+"] and scoring_doc["impact_ratios"]["15+"] < 0.7
    assert "startup" in biased["rank_exposure"]["dimensions"]["company_tier"]["significant_low_exposure_groups"]
    assert biased["rank_exposure"]["dimensions"]["company_tier"]["ranked_below_merit_groups"] == ["startup"]
    assert None not in biased["rank_exposure"]["dimensions"]["company_tier"]["undefined"].values()
    slate_day = biased["slate_concentration"]["dimensions"]["specialty"]["day"]
    assert slate_day["top_group"] == "backend" and slate_day["excess_significant"] is True
    assert biased["slate_concentration"]["any_excess_concentration"] is True
    assert "0-3" in biased["trends"]["dimensions"]["experience_band"]["worsening_groups"]
    assert not fair["scoring_rates"]["any_significant_adverse_impact"]
    assert not fair["rank_exposure"]["any_significant_low_exposure"]
    assert not fair["rank_exposure"]["any_ranked_below_merit"]
    assert fair["slate_concentration"]["any_excess_concentration"] is False
    assert not fair["trends"]["dimensions"]["experience_band"]["worsening_groups"]

    expected = {
        "scoring_rate_ratios": "lowest_scoring_impact_ratio",
        "rank_exposure": "lowest_exposure_ratio",
        "slate_concentration": "concentrated_share",
        "fairness_trends": "worsening_series",
    }
    for key, number in expected.items():
        event = module_instance.get_latest_materialization_event(dg.AssetKey(key))
        metadata = event.asset_materialization.metadata
        assert {"dagster/row_count", "dagster/column_schema", "preview", number} <= set(metadata), key
        assert metadata["dagster/row_count"].value > 0
    biased_partition = dg.AssetRecordsFilter(
        asset_key=dg.AssetKey("rank_exposure"), asset_partitions=[tenant_day_key("tenant-1", LAST)]
    )
    (record,) = module_instance.fetch_materializations(biased_partition, limit=1).records
    metadata = record.asset_materialization  # the biased tenant's own tenant-day
    assert metadata.metadata["lowest_exposure_ratio"].value < 0.8
    assert "startup" in metadata.metadata["preview"].value


@pytest.mark.slow
def test_rerun_changes_nothing(graph, module_db_url: str, module_instance) -> None:
    def snapshot() -> dict[str, pd.DataFrame]:
        result = {}
        for table in AUDIT_TABLES:
            frame = _query(module_db_url, f"SELECT * FROM {table}").drop(columns=["computed_at"], errors="ignore")
            for column in frame.columns[frame.map(lambda v: isinstance(v, memoryview)).any()]:
                frame[column] = frame[column].map(lambda v: hashlib.sha256(v).hexdigest())  # stored arrays
            frame = frame.astype(str)  # exact text of every value
            result[table] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
        return result

    before = snapshot()
    defs = build_definitions(FairnessDatabase(url=module_db_url))
    searches = defs.resolve_job_def("event_days_job").execute_in_process(
        instance=module_instance,
        partition_key=LAST.isoformat(),
        asset_selection=[dg.AssetKey("search_daily_aggregates"), dg.AssetKey("slate_concentration")],
    )
    assert searches.success
    window = {"config": {"window_days": WINDOW}}
    window_audits = [k for k in AUDIT_ASSETS if k != "slate_concentration"]
    for tenant in ("tenant-1", "tenant-2"):
        rerun = defs.resolve_job_def("metrics_job").execute_in_process(
            instance=module_instance,
            partition_key=tenant_day_key(tenant, LAST),
            asset_selection=[dg.AssetKey(k) for k in window_audits],
            run_config={"ops": {k: window for k in window_audits}},
        )
        assert rerun.success
    after = snapshot()
    for table in AUDIT_TABLES:
        assert len(before[table]) > 0, table
        pd.testing.assert_frame_equal(before[table], after[table])


# --- approaching threshold: a hand-made impact-ratio series ------------------------------------------------------


@pytest.mark.slow
def test_approaching_threshold_from_the_stored_series(db_url: str) -> None:
    """Impact ratios stored for 14 windows (no events): the asset fits the slopes of the stored series."""
    as_of = date(2026, 5, 20)
    series = {
        "startup": [0.95 - 0.007 * i for i in range(14)],  # falling towards 0.80: latest 0.859, 8.4 days to go
        "enterprise": [0.9] * 14,  # flat
        "other": [0.85 - 0.008 * i for i in range(14)],  # falling, already adverse (0.746)
        "faang": [1.0] * 14,  # the reference
    }
    rows = []
    for i in range(14):
        window_end = as_of - timedelta(days=13 - i)
        for group, values in series.items():
            rows.append(
                (
                    window_end,
                    30,
                    "t1",
                    "shown->shortlisted",
                    "company_tier",
                    group,
                    100,
                    10,
                    values[i],
                    group == "faang",
                    False,
                    False,
                )
            )
        # A series of 7-day windows is another series: ignored by a 30-day configuration.
        rows.append(
            (
                window_end,
                7,
                "t1",
                "shown->shortlisted",
                "company_tier",
                "unknown",
                100,
                10,
                0.9 - 0.01 * i,
                False,
                False,
                False,
            )
        )
    conn = psycopg2.connect(db_url)
    with conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO impact_ratios (window_end, window_days, tenant_id, stage_pair, dimension, group_value, n, x, "
            "impact_ratio, is_reference, excluded_small_share, low_sample) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
    conn.close()
    with dg.instance_for_test() as instance:
        register_tenants(instance, ["t1"])
        result = dg.materialize(
            [audit_assets.fairness_trends],
            partition_key=tenant_day_key("t1", as_of),
            resources={"database": FairnessDatabase(url=db_url)},
            instance=instance,
        )
    assert result.success
    stored = _stored(db_url, "fairness_trends", "window_end = %(d)s", {"d": as_of}).set_index("group")
    assert list(stored.index) == ["enterprise", "faang", "other", "startup"]
    assert stored["window_days"].eq(30).all() and stored["windows_used"].eq(14).all()
    startup = stored.loc["startup"]
    assert startup["latest_ratio"] == pytest.approx(0.859)
    assert startup["slope_per_day"] == pytest.approx(-0.007)
    assert startup["days_to_threshold"] == pytest.approx(0.059 / 0.007)
    assert bool(startup["approaching_threshold"]) and not bool(startup["adverse_now"])
    assert not bool(stored.loc["enterprise", "approaching_threshold"])
    assert bool(stored.loc["other", "adverse_now"]) and not bool(stored.loc["other", "approaching_threshold"])
    assert stored["wow_undefined_reason"].isna().all() and stored["worsening"].isna().all()  # no week counts at all
    metadata = result.asset_materializations_for_node("fairness_trends")[0].metadata
    assert metadata["approaching_threshold_series"].value == 1 and metadata["worsening_series"].value == 0
    assert len(metadata["missing_upstream_days"].value[as_of.isoformat()]) == 14


# --- coded window reads ---------------------------------------------------------------------------------------------


def _store_search_rows(conn, rows: list[tuple[str, str, str | None]]) -> None:
    """(tenant, search, company_tier) rows on 2026-03-02, one ranked impression each; the day lists its tenants."""
    day = date(2026, 3, 2)
    with conn, conn.cursor() as cur:
        for number, (tenant, search, tier) in enumerate(rows, 1):
            cur.execute(
                "INSERT INTO search_daily_aggregates (tenant_id, day, search_id, search_number, company_tier, "
                "experience_band, specialty, shown, ranked, weight_sum, top_k, scored, score_sum, scored_weight_sum, "
                "merit_weight_sum) VALUES (%s, %s, %s, %s, %s, '0-3', 'ml', 1, 1, 1.0, 1, 1, 0.5, 1.0, 1.0)",
                (tenant, day, search, number, tier),
            )
        cur.execute(
            "INSERT INTO search_daily_aggregates_days (day, searches, aggregate_rows, tenants) VALUES (%s, %s, %s, %s)",
            (day, len(rows), len(rows), sorted({r[0] for r in rows})),
        )


def test_coded_window_read_maps_blank_and_missing_to_unknown(conn) -> None:
    _store_search_rows(conn, [("t-a", "s1", "faang"), ("t-a", "s2", "  "), ("t-b", "s1", None)])
    with conn.cursor() as cur:
        frame = audit_store.exposure_window(cur, date(2026, 3, 1), date(2026, 3, 2))
    assert frame["tenant_id"].astype(str).tolist() == ["t-a", "t-a", "t-b"]
    assert frame["company_tier"].astype(object).where(frame["company_tier"].notna(), None).tolist() == [
        "faang",
        None,
        None,
    ]
    assert frame["search_id"].tolist() == [(1 << 32) | 1, (1 << 32) | 2, (1 << 32) | 3]


@pytest.mark.slow
def test_days_without_events_give_empty_reads_and_no_day_arrays(db_url: str) -> None:
    """A backfill's first windows reach back before the first event: those days have nothing to read or store."""
    day = date(2026, 3, 1)
    defs = build_definitions(FairnessDatabase(url=db_url))
    with dg.instance_for_test() as instance:
        run = defs.resolve_job_def("event_days_job").execute_in_process(
            instance=instance, partition_key=day.isoformat()
        )
        assert run.success
    conn = psycopg2.connect(db_url)
    try:
        with conn.cursor() as cur:
            assert audit_store.exposure_window(cur, day, day).empty
            layout = exposure.ExposureLayout.build(SETTINGS)
            sums, computed = audit_store.exposure_window_sums(cur, layout, 10, 0, day, day)
            assert sums == {} and computed == []
            assert audit_store.scoring_cells(cur, day, day).empty
            assert audit_store.window_cells_from_arrays(cur, SETTINGS, day).empty
            cur.execute("SELECT count(*) FROM exposure_day_sums")
            assert cur.fetchone()[0] == 0
    finally:
        conn.close()


def test_coded_window_read_refuses_values_outside_the_vocabulary(conn) -> None:
    _store_search_rows(conn, [("t-a", "s1", "faang"), ("t-a", "s2", "unicorn")])
    with conn.cursor() as cur, pytest.raises(ValueError, match="company_tier values outside the vocabulary"):
        audit_store.exposure_window(cur, date(2026, 3, 1), date(2026, 3, 2))
