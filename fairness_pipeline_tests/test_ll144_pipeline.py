"""LL144 categories through a real Dagster run: impact ratios by sex, race/ethnicity and their intersection stored by
the pipeline against a pandas oracle, unknowns (with the highest rate) never the reference, a category under 2%
reported and left out, the report's LL144 section, and a tenant without self-identification that says "proxies only",
gets no LL144 tables (they would be all unknown) and the verdict it had with them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import numpy as np
import pandas as pd
import psycopg2
import pytest

from fairness_pipeline import synthetic
from fairness_pipeline.audits import risk_audit_frames
from fairness_pipeline.audits.exposure import rank_exposure
from fairness_pipeline.audits.from_events import search_aggregates, shown_impressions
from fairness_pipeline.audits.slates import NO_SELF_IDENTIFIED_REASON
from fairness_pipeline.cli.runs import run_range
from fairness_pipeline.definitions import build_definitions
from fairness_pipeline.defs.resources import FairnessDatabase
from fairness_pipeline.defs.tags import DAGSTER_RANGE_END_TAG, DAGSTER_RANGE_START_TAG
from fairness_pipeline.events.vocabulary import DIMENSIONS
from fairness_pipeline.ingest.attributes import load_attribute_file
from fairness_pipeline.ingest.frames import load_frames
from fairness_pipeline.metrics.window import AnalysisSettings
from fairness_pipeline.risk import assess
from fairness_pipeline.store.reports import stored_report, verdicts, window_inputs
from fairness_pipeline_tests.test_pipeline import _query
from fairness_pipeline_tests.test_worker_attributes import _oracle as oracle_table

pytestmark = pytest.mark.slow  # Dagster runs of the whole graph

WINDOW = 7
LAST = date(2026, 3, 18)
START = LAST - timedelta(days=WINDOW - 1)
PAIR = "shown->shortlisted"
ATTRIBUTED, PROXIES_ONLY = "tenant-1", "tenant-2"
LL144_DIMENSIONS = ("sex", "race_ethnicity", "sex+race_ethnicity")
CONFIG = synthetic.GeneratorConfig(
    seed=23,
    start=START,
    days=WINDOW,
    tenants=2,
    events_per_day=2500,
    candidates_per_tenant=20_000,
    bias=(synthetic.parse_bias("sex=female:0.4"),),
    biased_tenants=(ATTRIBUTED,),
)


def _population(events: pd.DataFrame, tenant: str) -> pd.DataFrame:
    """The window's shown->shortlisted population of ``tenant``, one row per candidate, with ``selected``."""
    first = pd.Timestamp(START, tz="UTC")
    stop = pd.Timestamp(LAST + timedelta(days=1), tz="UTC")
    window = events[(events["tenant_id"] == tenant) & (events["timestamp"] >= first) & (events["timestamp"] < stop)]
    shown = window[window["event_type"] == "shown"].drop_duplicates("candidate_id")
    shortlisted = set(window.loc[window["event_type"] == "shortlisted", "candidate_id"])
    return pd.DataFrame({"candidate_id": shown["candidate_id"].to_numpy()}).assign(
        selected=lambda f: f["candidate_id"].isin(shortlisted)
    )


def _self_identification(population: pd.DataFrame, generated: pd.DataFrame) -> pd.DataFrame:
    """The generated answers of the population, with 20% of the shortlisted and 2% of the others turned into
    ``declined`` on both questions, so that the unknown group has the highest rate of all."""
    answers = population.merge(generated, on="candidate_id", how="left")
    rng = np.random.default_rng(5)
    chance = np.where(answers["selected"], 0.2, 0.02)
    declined = rng.random(len(answers)) < chance
    answers.loc[declined, ["sex", "race_ethnicity"]] = "declined"
    return answers


def _oracle(answers: pd.DataFrame, parts: list[str]) -> tuple[pd.DataFrame, str]:
    """The worker test's pandas oracle (counts, rates, impact ratios, reference) with ``declined`` as unknown."""
    return oracle_table(answers.replace({"declined": None}), parts)


@pytest.fixture(scope="module")
def run(module_db_url: str, module_instance: dg.DagsterInstance, tmp_path_factory) -> pd.DataFrame:
    """Generate two tenants (``sex=female:0.4`` on shortlisting in tenant-1), load tenant-1's self-identification
    only, run the graph for LAST; returns tenant-1's answers per candidate of the population."""
    config = CONFIG
    frames = list(synthetic.generate_events(config))
    events = pd.concat(frames, ignore_index=True)
    population = _population(events, ATTRIBUTED)
    generated = next(f for f in synthetic.attribute_frames(config) if f["tenant_id"].iloc[0] == ATTRIBUTED)
    answers = _self_identification(population, generated.drop(columns=["tenant_id"]).astype(object))
    path = tmp_path_factory.mktemp("ll144") / "self-id.csv"
    answers.assign(tenant_id=ATTRIBUTED)[["tenant_id", "candidate_id", "sex", "race_ethnicity"]].fillna("").to_csv(
        path, index=False
    )
    conn = psycopg2.connect(module_db_url)
    try:
        assert load_frames(conn, frames, source="test").rejected == 0
        loaded = load_attribute_file(conn, path, loaded_at=datetime(2026, 3, 1, tzinfo=UTC))
        assert loaded.rejected == 0
    finally:
        conn.close()
    database = FairnessDatabase(url=module_db_url)
    defs = build_definitions(database)
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    days = defs.resolve_job_def("event_days_job").execute_in_process(
        instance=module_instance,
        run_config=quiet,
        tags={DAGSTER_RANGE_START_TAG: START.isoformat(), DAGSTER_RANGE_END_TAG: LAST.isoformat()},
    )
    assert days.success
    runs = run_range(module_instance, LAST, LAST, window_days=WINDOW, database=database)
    assert all(r.success for r in runs), runs
    return answers


def _stored(db_url: str, tenant: str, dimension: str) -> pd.DataFrame:
    return _query(
        db_url,
        "SELECT * FROM impact_ratios WHERE window_end = %(d)s AND tenant_id = %(t)s AND stage_pair = %(p)s "
        "AND dimension = %(dim)s ORDER BY group_value",
        {"d": LAST, "t": tenant, "p": PAIR, "dim": dimension},
    ).set_index("group_value")


@pytest.mark.parametrize("dimension", LL144_DIMENSIONS)
def test_stored_ll144_impact_ratios_match_the_oracle(run: pd.DataFrame, module_db_url: str, dimension: str) -> None:
    oracle, reference = _oracle(run, dimension.split("+"))
    stored = _stored(module_db_url, ATTRIBUTED, dimension)
    populated = stored[stored["n"] > 0]
    assert populated["n"].to_dict() == oracle["n"].to_dict()
    assert populated["x"].to_dict() == oracle["x"].to_dict()
    assert set(stored["reference_group"].dropna()) == {reference}
    assert stored.loc[reference, "is_reference"]
    ratios = populated["impact_ratio"].astype(float)
    expected = oracle["impact_ratio"]
    assert ratios[expected.notna()].to_dict() == pytest.approx(expected.dropna().to_dict())
    assert ratios[expected.isna()].isna().all()
    # unknown has the highest rate of the table and is still neither the reference nor compared
    unknown = oracle[oracle["unknown"]]
    assert unknown["rate"].max() > oracle.loc[reference, "rate"]
    assert not stored.loc[unknown.index, "is_reference"].any()
    assert not stored.loc[unknown.index, "adverse_impact"].astype("boolean").fillna(False).any()


@pytest.mark.parametrize("dimension", LL144_DIMENSIONS)
def test_stored_scoring_rates_and_week_counts_cover_the_ll144_categories(run, module_db_url: str, dimension: str):
    """The scoring population is the window's shown candidates (scored or not) and the weekly cells' shown->shortlisted
    population is the same: both count the oracle's candidates per group; unknown is never the reference."""
    oracle, _ = _oracle(run, dimension.split("+"))
    scoring = _query(
        module_db_url,
        "SELECT group_value, n + missing_score AS candidates, reference_group FROM scoring_rate_ratios "
        "WHERE window_end = %(d)s AND tenant_id = %(t)s AND dimension = %(dim)s",
        {"d": LAST, "t": ATTRIBUTED, "dim": dimension},
    ).set_index("group_value")
    assert scoring.loc[scoring["candidates"] > 0, "candidates"].to_dict() == oracle["n"].to_dict()
    assert not any("unknown" in group.split("|") for group in scoring["reference_group"].dropna())
    weeks = _query(
        module_db_url,
        "SELECT group_value, n, x FROM trend_week_counts WHERE week_end = %(d)s AND tenant_id = %(t)s "
        "AND stage_pair = %(p)s AND dimension = %(dim)s",
        {"d": LAST, "t": ATTRIBUTED, "p": PAIR, "dim": dimension},
    ).set_index("group_value")
    populated = weeks[weeks["n"] > 0]
    assert populated["n"].to_dict() == oracle["n"].to_dict() and populated["x"].to_dict() == oracle["x"].to_dict()


def test_a_category_under_two_percent_is_reported_and_not_the_reference(run: pd.DataFrame, module_db_url: str):
    oracle, reference = _oracle(run, ["race_ethnicity"])
    small = oracle[oracle["small"] & ~oracle["unknown"]]
    assert "native_hawaiian_or_pacific_islander" in small.index
    stored = _stored(module_db_url, ATTRIBUTED, "race_ethnicity")
    for group in small.index:
        assert stored.loc[group, "excluded_small_share"] and not stored.loc[group, "is_reference"]
        assert stored.loc[group, "n"] == oracle.loc[group, "n"]
    assert reference not in small.index


def test_the_planted_sex_gap_is_a_significant_adverse_finding(run: pd.DataFrame, module_db_url: str) -> None:
    stored = _stored(module_db_url, ATTRIBUTED, "sex")
    assert stored.loc["male", "is_reference"]
    female = stored.loc["female"]
    assert female["impact_ratio"] < 0.8 and female["adverse_impact"] and female["significant"]


def test_a_tenant_without_attributes_has_no_ll144_tables(run, module_db_url: str) -> None:
    for dimension in LL144_DIMENSIONS:
        assert _stored(module_db_url, PROXIES_ONLY, dimension).empty, dimension  # all unknown: skipped
    # the proxies are analysed as before
    tiers = _stored(module_db_url, PROXIES_ONLY, "company_tier")
    assert tiers["reference_group"].notna().any()


def test_exposure_and_slates_cover_the_ll144_categories(run: pd.DataFrame, module_db_url: str) -> None:
    """The stored exposure of the LL144 tables equals the pandas reference (impressions with each candidate's answer,
    aggregated by ``audits.from_events``); unknown is never the reference; tenant-2's tables compare nothing."""
    events = pd.concat(list(synthetic.generate_events(CONFIG)), ignore_index=True)
    shown = shown_impressions(events).sort_values(["timestamp", "event_id"], kind="stable")
    shown = shown.drop_duplicates(["tenant_id", "search_id", "candidate_id"])
    shown["day"] = shown.groupby(["tenant_id", "search_id"])["day"].transform("min")
    stamp_day = shown["timestamp"].dt.tz_convert("UTC").dt.date
    keep = (shown["day"] >= START) & (shown["day"] <= LAST) & (stamp_day == shown["day"])
    answers = run.set_index("candidate_id")[["sex", "race_ethnicity"]].replace({"declined": None, "": None})
    impressions = shown[keep].reset_index(drop=True)
    own = (impressions["tenant_id"] == ATTRIBUTED).to_numpy()
    for column in ("sex", "race_ethnicity"):
        values = impressions["candidate_id"].map(answers[column]).astype(object)
        impressions[column] = values.where(own & values.notna().to_numpy(), None)
    dimensions = (*DIMENSIONS, "sex", "race_ethnicity")
    aggregates = search_aggregates(impressions, keys=("tenant_id", "day"), dimensions=dimensions)
    oracle = rank_exposure(aggregates, AnalysisSettings(window_days=WINDOW), n_boot=0)
    oracle = oracle[oracle["dimension"].isin(LL144_DIMENSIONS)].set_index(["tenant_id", "dimension", "group"])
    stored = _query(
        module_db_url,
        "SELECT * FROM rank_exposure WHERE window_end = %(d)s AND dimension = ANY(%(dims)s)",
        {"d": LAST, "dims": list(LL144_DIMENSIONS)},
    ).set_index(["tenant_id", "dimension", "group_value"])
    assert sorted(stored.index) == sorted(oracle.index)
    stored = stored.loc[oracle.index]
    assert stored["shown"].tolist() == oracle["shown"].tolist()
    for column in ("exposure", "share", "exposure_ratio", "skew_at_k"):
        assert np.allclose(stored[column].astype(float), oracle[column].astype(float), equal_nan=True), column
    assert (stored["reference_group"].fillna("") == oracle["reference_group"].fillna("")).all()
    references = stored.loc[ATTRIBUTED, "reference_group"].dropna()
    assert len(references) and not references.str.contains("unknown").any()
    assert stored.loc[PROXIES_ONLY, "exposure_ratio"].isna().all()
    assert stored.loc[PROXIES_ONLY, "reference_group"].isna().all()

    slates = _query(
        module_db_url,
        "SELECT * FROM slate_concentration WHERE day = %(d)s AND dimension IN ('sex', 'race_ethnicity')",
        {"d": LAST},
    ).set_index(["tenant_id", "dimension"])
    assert (slates.loc[ATTRIBUTED, "assessed"] > 0).all()
    silent = slates.loc[PROXIES_ONLY]
    assert (silent["assessed"] == 0).all() and (silent["concentrated"] == 0).all()
    assert (silent["undefined_reason"] == NO_SELF_IDENTIFIED_REASON).all()


def _report(db_url: str, tenant: str) -> tuple[dict, str, str]:
    conn = psycopg2.connect(db_url)
    try:
        row = stored_report(conn, tenant, LAST)
    finally:
        conn.close()
    assert row is not None
    return row[0], row[1], row[2]


def test_the_report_ll144_section_shows_the_self_identified_categories(run: pd.DataFrame, module_db_url: str):
    report, html, markdown = _report(module_db_url, ATTRIBUTED)
    ll = report["ll144_audit_summary"]
    assert ll["categories_source"] == "self_identified"
    section = ll["selection"]
    assert section["stage_pair"] == PAIR
    assert {c["dimension"] for c in section["categories"]} == set(LL144_DIMENSIONS)
    oracle, _ = _oracle(run, ["race_ethnicity"])
    assert section["number_of_candidates"] == int(oracle["n"].sum())
    assert section["number_selected"] == int(oracle["x"].sum())
    assert section["unknown_count"]["race_ethnicity"] == int(oracle.loc["unknown", "n"])
    sex, _ = _oracle(run, ["sex"])
    by_category = {(c["dimension"], c["category"]): c for c in section["categories"]}
    female = by_category[("sex", "female")]
    assert (female["n"], female["x"]) == (sex.loc["female", "n"], sex.loc["female", "x"])
    assert female["impact_ratio"] == pytest.approx(sex.loc["female", "impact_ratio"], abs=1e-9)
    small = by_category[("race_ethnicity", "native_hawaiian_or_pacific_islander")]
    assert small["excluded_small_share"] and small["impact_ratio"] is None
    assert {"dimension": "race_ethnicity", "category": small["category"], "n": small["n"]} in section[
        "excluded_categories"
    ]
    checklist = {item["id"]: item["status"] for item in report["compliance_checklist"]}
    assert checklist["ll144_categories"] == "pass" and checklist["ll144_selection_rates"] == "pass"
    assert "Self-identified categories" in html and "native_hawaiian_or_pacific_islander" in html
    assert "**NYC LL144 summary**" in markdown and "proxies only" not in markdown
    both, _ = _oracle(run, ["sex", "race_ethnicity"])
    n, x = both.loc["female|white", ["n", "x"]]
    assert f"| sex+race\\_ethnicity | female\\|white | {n:,} | {x:,} |" in markdown
    assert "left out (under 2%)" in markdown


def test_a_tenant_without_self_identification_says_proxies_only(run: pd.DataFrame, module_db_url: str) -> None:
    report, html, markdown = _report(module_db_url, PROXIES_ONLY)
    ll = report["ll144_audit_summary"]
    assert ll["categories_source"] == "proxies"
    assert "not an LL144 bias audit" in ll["statement"]
    assert {c["dimension"] for c in ll["selection"]["categories"]} <= {
        "company_tier",
        "experience_band",
        "specialty",
        "company_tier+experience_band",
        "company_tier+specialty",
        "experience_band+specialty",
    }
    assert not any(set(t["dimension"].split("+")) & {"sex", "race_ethnicity"} for t in report["detailed_analysis"])
    checklist = {item["id"]: item for item in report["compliance_checklist"]}
    assert checklist["ll144_categories"]["status"] == "fail"
    assert checklist["ll144_selection_rates"]["status"] == "fail"
    assert "Proxies only" in html
    assert "proxies only: monitoring evidence, not an LL144 bias audit" in markdown


def test_the_verdict_counts_the_ll144_tables_and_ignores_unanswered_ones(run, module_db_url: str) -> None:
    """tenant-1's planted sex gap is among its verdict's findings; tenant-2's verdict (no LL144 tables stored) equals
    the verdict of its impact rows with the all-unknown LL144 tables the window step no longer computes."""
    conn = psycopg2.connect(module_db_url)
    try:
        stored = {tenant: (level, assessment) for tenant, level, _, assessment in verdicts(conn, LAST)}
        with conn.cursor() as cur:
            inputs = window_inputs(cur, LAST, 90)
    finally:
        conn.close()
    level, assessment = stored[ATTRIBUTED]
    assert level in ("HIGH", "CRITICAL")
    driver = assessment["components"]["adverse_impact"]["driver"]
    assert (driver["dimension"], driver["group"]) == ("sex", "female")

    impacts = inputs["impacts"]
    proxies = impacts[impacts["tenant_id"] == PROXIES_ONLY].reset_index(drop=True)
    assert not proxies["dimension"].str.contains("sex|race_ethnicity").any()
    own = pd.concat([proxies, _unanswered_tables(proxies)], ignore_index=True)
    options = {"audits": risk_audit_frames(inputs), "trends": inputs["series"], "window_end": LAST}
    with_ll144 = assess(own, **options).to_dict()
    without = assess(proxies, **options).to_dict()
    assert with_ll144["level"] == without["level"] == stored[PROXIES_ONLY][0]
    assert with_ll144["score"] == pytest.approx(without["score"])
    assert with_ll144["components"] == without["components"]


def _unanswered_tables(proxies: pd.DataFrame) -> pd.DataFrame:
    """The all-unknown LL144 impact rows a tenant without self-identification had before the window step skipped
    them: per stage pair, every catalogue value with no candidate and ``unknown`` holding the whole population."""
    from fairness_pipeline.catalogue import load_catalogue
    from fairness_pipeline.metrics.window import DEFAULT_ANALYSIS, TABLE_KEYS, impacts_for_counts

    catalogue = load_catalogue()
    totals = proxies[proxies["dimension"] == "company_tier"].groupby("stage_pair")[["n", "x"]].sum()
    rows = []
    for pair, (n, x) in totals.iterrows():
        for dimension in LL144_DIMENSIONS:
            parts = dimension.split("+")
            values = catalogue.values(dimension) if len(parts) == 1 else ()
            rows += [(PROXIES_ONLY, pair, dimension, value, 0, 0) for value in values]
            rows.append((PROXIES_ONLY, pair, dimension, "|".join(["unknown"] * len(parts)), int(n), int(x)))
    counts = pd.DataFrame(rows, columns=[*TABLE_KEYS, "group", "n", "x"])
    extra = impacts_for_counts(counts, DEFAULT_ANALYSIS)
    assert extra["impact_ratio"].isna().all()
    return extra.assign(**{c: proxies[c].iloc[0] for c in proxies.columns if c not in extra.columns})
