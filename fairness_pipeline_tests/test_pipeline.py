"""The asset graph on real PostgreSQL with a real Dagster instance (run storage on the same PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pandas as pd
import psycopg2
import pytest

from fairness_pipeline import synthetic
from fairness_pipeline.cli.runs import run_range
from fairness_pipeline.definitions import build_definitions
from fairness_pipeline.defs.partitions import tenant_day_key
from fairness_pipeline.defs.resources import FairnessDatabase
from fairness_pipeline.defs.tenants import register_tenants
from fairness_pipeline.ingest.frames import load_frames

pytestmark = pytest.mark.slow  # Dagster runs of the whole graph

START = date(2026, 3, 1)
DAYS = 9
WINDOW = 7
LAST = START + timedelta(days=DAYS - 1)
SEED_DIMENSION_KEYS = {
    "overall_rate",
    "selection_rates",
    "impact_ratios",
    "sample_sizes",
    "demographic_parity_ratio",
    "demographic_parity_difference",
    "adverse_impact_detected",
    "adverse_impact_groups",
    "low_sample_groups",
    "significance_tests",
    "warnings",
}


def _generate(db_url: str, bias: tuple[str, ...], seed: int = 11) -> pd.DataFrame:
    config = synthetic.GeneratorConfig(seed=seed, start=START, days=DAYS, tenants=2, events_per_day=2500, bias=bias)
    frames = list(synthetic.generate_events(config))
    conn = psycopg2.connect(db_url)
    try:
        counts = load_frames(conn, frames, source="test")
    finally:
        conn.close()
    assert counts.rejected == 0
    return pd.concat(frames, ignore_index=True)


def _query(db_url: str, statement: str, params: dict | None = None) -> pd.DataFrame:
    conn = psycopg2.connect(db_url)
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
    finally:
        conn.close()


def _oracle_counts(events: pd.DataFrame, tenant: str, window_end: date, baseline: str, selection: str) -> pd.DataFrame:
    """n and x per company tier computed from the events with pandas, following fairness-methods.md literally."""
    first = pd.Timestamp(window_end - timedelta(days=WINDOW - 1), tz="UTC")
    stop = pd.Timestamp(window_end + timedelta(days=1), tz="UTC")
    window = events[(events["tenant_id"] == tenant) & (events["timestamp"] >= first) & (events["timestamp"] < stop)]
    base = window[window["event_type"] == baseline].sort_values(["timestamp", "event_id"])
    population = base.drop_duplicates("candidate_id", keep="first")
    selected = set(window.loc[window["event_type"] == selection, "candidate_id"])
    tiers = population["company_tier"].fillna("unknown")
    flags = population["candidate_id"].isin(selected)
    return pd.DataFrame({"n": tiers.value_counts(), "x": flags.groupby(tiers).sum()}).astype(int)


def test_range_run_finds_planted_bias_with_exact_counts(db_url: str, instance) -> None:
    events = _generate(db_url, ("company_tier=startup:0.5",))
    database = FairnessDatabase(url=db_url)
    runs = run_range(instance, LAST - timedelta(days=1), LAST, window_days=WINDOW, database=database)

    # the event layer per day for every tenant, then one run of each tenant's windows
    assert [(r.job_name, r.tenant) for r in runs] == [
        ("event_days_job", None),
        ("metrics_job", "tenant-1"),
        ("metrics_job", "tenant-2"),
    ]
    assert all(r.success for r in runs)
    assert runs[0].first_day == LAST - timedelta(days=1 + WINDOW - 1)  # the window's upstream days were added
    days = [LAST - timedelta(days=1), LAST]
    for key in ("raw_selection_events", "validated_selection_events", "candidate_daily_stages"):
        materialized = instance.get_materialized_partitions(dg.AssetKey(key))
        assert {day.isoformat() for day in days} <= materialized, key
    for key in ("impact_ratios", "selection_rate_frames", "bias_metrics"):
        materialized = instance.get_materialized_partitions(dg.AssetKey(key))
        assert {tenant_day_key(t, day) for t in ("tenant-1", "tenant-2") for day in days} == materialized, key

    frames = _query(
        db_url,
        "SELECT tenant_id, group_value, n, x, selection_rate FROM selection_rate_frames "
        "WHERE window_end = %(end)s AND stage_pair = 'shown->shortlisted' AND dimension = 'company_tier'",
        {"end": LAST},
    )
    for tenant in ("tenant-1", "tenant-2"):
        oracle = _oracle_counts(events, tenant, LAST, "shown", "shortlisted")
        stored = frames[(frames["tenant_id"] == tenant) & (frames["n"] > 0)].set_index("group_value")
        assert stored["n"].to_dict() == oracle["n"].to_dict()
        assert stored["x"].to_dict() == oracle["x"].to_dict()
        assert (stored["selection_rate"] == stored["x"] / stored["n"]).all()

    impacts = _query(
        db_url,
        "SELECT tenant_id, group_value, impact_ratio, adverse_impact, significant FROM impact_ratios "
        "WHERE window_end = %(end)s AND stage_pair = 'shown->shortlisted' AND dimension = 'company_tier'",
        {"end": LAST},
    ).set_index(["tenant_id", "group_value"])
    for tenant in ("tenant-1", "tenant-2"):
        startup = impacts.loc[(tenant, "startup")]
        assert 0.38 <= startup["impact_ratio"] <= 0.62  # planted 0.5, sampling noise on ~5k candidates
        assert bool(startup["adverse_impact"]) and bool(startup["significant"])
        others = impacts.loc[tenant].drop(index="startup")
        assert not others["significant"].fillna(False).astype(bool).any()  # nothing else was planted

    documents = _query(
        db_url,
        "SELECT tenant_id, metrics_json, jsonb_typeof(metrics_json #> "
        "'{dimensions,company_tier,significance_tests,startup,significant}') AS significant_type "
        "FROM bias_metrics WHERE window_end = %(end)s ORDER BY tenant_id",
        {"end": LAST},
    )
    assert documents["tenant_id"].tolist() == ["tenant-1", "tenant-2"]
    assert set(documents["significant_type"]) == {"boolean"}
    for document in documents["metrics_json"]:
        assert {"computed_at", "dimensions", "all_warnings", "any_adverse_impact"} <= set(document)
        assert set(document["dimensions"]) == {"company_tier", "experience_band", "specialty"}
        for block in document["dimensions"].values():
            assert set(block) >= SEED_DIMENSION_KEYS
        assert document["any_adverse_impact"] is True
        assert "startup" in document["dimensions"]["company_tier"]["adverse_impact_groups"]
        assert "candidate" not in json.dumps(document)


def test_rerun_replaces_and_never_duplicates(db_url: str, instance) -> None:
    _generate(db_url, ())
    database = FairnessDatabase(url=db_url)
    tables = [
        "validated_selection_events",
        "candidate_daily_stages",
        "selection_rate_frames",
        "impact_ratios",
        "bias_metrics",
    ]

    def snapshot() -> dict[str, pd.DataFrame]:
        result = {}
        for table in tables:
            frame = _query(db_url, f"SELECT * FROM {table}")  # test-only: names are literals above
            frame = frame.drop(columns=[c for c in frame.columns if c in ("computed_at", "validated_at", "id")])
            if table == "bias_metrics":
                frame["metrics_json"] = frame["metrics_json"].map(lambda d: json.dumps({**d, "computed_at": None}))
            frame = frame.astype(str)  # exact text of every value; rows in a stable order
            result[table] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
        return result

    assert all(r.success for r in run_range(instance, LAST, LAST, window_days=WINDOW, database=database))
    first = snapshot()
    assert all(r.success for r in run_range(instance, LAST, LAST, window_days=WINDOW, database=database))
    second = snapshot()
    for table in tables:
        assert len(first[table]) > 0, table
        pd.testing.assert_frame_equal(first[table], second[table], check_like=True)


def test_a_tenant_is_backfilled_alone_and_leaves_the_others_rows(db_url: str, instance) -> None:
    _generate(db_url, ("company_tier=startup:0.5",))
    database = FairnessDatabase(url=db_url)
    impacts_sql = (
        "SELECT * FROM impact_ratios WHERE window_end = %(end)s ORDER BY tenant_id, stage_pair, dimension, group_value"
    )

    runs = run_range(instance, LAST, LAST, window_days=WINDOW, database=database, tenants=["tenant-2"])
    assert [(r.job_name, r.tenant) for r in runs] == [("event_days_job", None), ("metrics_job", "tenant-2")]
    assert all(r.success for r in runs)
    only_second = _query(db_url, impacts_sql, {"end": LAST})
    assert set(only_second["tenant_id"]) == {"tenant-2"}
    assert instance.get_materialized_partitions(dg.AssetKey("impact_ratios")) == {tenant_day_key("tenant-2", LAST)}

    runs = run_range(instance, LAST, LAST, window_days=WINDOW, database=database, tenants=["tenant-1"])
    assert [r.tenant for r in runs] == [None, "tenant-1"] and all(r.success for r in runs)
    both = _query(db_url, impacts_sql, {"end": LAST})
    assert set(both["tenant_id"]) == {"tenant-1", "tenant-2"}
    # tenant-2's rows are those of its own run: the other tenant's run neither replaced nor duplicated them
    second_again = both[both["tenant_id"] == "tenant-2"].reset_index(drop=True)
    pd.testing.assert_frame_equal(second_again, only_second.reset_index(drop=True))
    assert instance.get_materialized_partitions(dg.AssetKey("risk_classification")) == {
        tenant_day_key("tenant-1", LAST),
        tenant_day_key("tenant-2", LAST),
    }

    with pytest.raises(ValueError, match="no events of tenant"):
        run_range(instance, LAST, LAST, window_days=WINDOW, database=database, tenants=["tenant-9"])


def test_unbiased_data_has_no_significant_adverse_impact(db_url: str, instance) -> None:
    _generate(db_url, (), seed=23)
    database = FairnessDatabase(url=db_url)
    assert all(r.success for r in run_range(instance, LAST, LAST, window_days=WINDOW, database=database))
    flagged = _query(
        db_url,
        "SELECT tenant_id, dimension, group_value, impact_ratio FROM impact_ratios WHERE window_end = %(end)s "
        "AND stage_pair = 'shown->shortlisted' AND position('+' in dimension) = 0 AND significant AND adverse_impact",
        {"end": LAST},
    )
    # Six tables (2 tenants x 3 dimensions), each with a false-alarm rate under 5%: one chance finding is expected in
    # about a fifth of the seeds (this seed has one: tenant-2's specialty table, omnibus p 0.047); the error rates
    # themselves are tested in test_calibration_tables.py.
    assert len(flagged) <= 1, flagged


def test_malformed_rows_are_quarantined_with_named_expectations(db_url: str, instance) -> None:
    day = START
    stamp = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    good_hash = "ab" * 32
    rows = [
        ("ok-1", "c1", "shown", good_hash, 1, 0.5),
        ("bad-score", "c2", "shown", good_hash, 2, 1.5),
        ("bad-rank", "c3", "shown", good_hash, 0, 0.5),
        ("bad-hash", "c4", "shown", "not-a-hash", 3, 0.5),
        ("bad-both", "", "shown", good_hash, -1, 0.5),
    ]
    conn = psycopg2.connect(db_url)
    with conn, conn.cursor() as cur:
        for event_id, candidate, event_type, user_hash, rank, score in rows:
            cur.execute(
                "INSERT INTO selection_events (event_id, timestamp, candidate_id, event_type, search_id, tenant_id, "
                "user_id_hash, rank, score) VALUES (%s, %s, %s, %s, 's1', 't1', %s, %s, %s)",
                (event_id, stamp, candidate, event_type, user_hash, rank, score),
            )
    conn.close()

    defs = build_definitions(FairnessDatabase(url=db_url))
    result = defs.resolve_job_def("event_days_job").execute_in_process(
        instance=instance, partition_key=day.isoformat(), raise_on_error=False
    )
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["raw_equals_validated_plus_quarantined"].passed
    suite = checks["event_suite_passes"]
    assert not suite.passed and suite.severity == dg.AssetCheckSeverity.ERROR  # 4 of 5 rows: above 5%
    assert not result.success  # the blocking check stopped the downstream summary

    quarantined = _query(db_url, "SELECT event_id, failed_expectations FROM quarantined_selection_events")
    reasons = dict(zip(quarantined["event_id"], quarantined["failed_expectations"], strict=True))
    assert reasons == {
        "bad-score": ["score_between_0_and_1"],
        "bad-rank": ["rank_at_least_1"],
        "bad-hash": ["user_id_hash_format"],
        "bad-both": ["candidate_id_not_empty", "rank_at_least_1"],
    }
    validated = _query(db_url, "SELECT event_id FROM validated_selection_events")
    assert validated["event_id"].tolist() == ["ok-1"]


def test_window_names_the_upstream_days_it_lacks(db_url: str, instance) -> None:
    _generate(db_url, ())
    defs = build_definitions(FairnessDatabase(url=db_url))
    only_last = defs.resolve_job_def("event_days_job").execute_in_process(
        instance=instance, partition_key=LAST.isoformat()
    )
    assert only_last.success
    register_tenants(instance, ["tenant-1", "tenant-2"])
    metrics = defs.resolve_job_def("metrics_job").execute_in_process(
        instance=instance,
        partition_key=tenant_day_key("tenant-1", LAST),
        run_config={
            "ops": {
                n: {"config": {"window_days": 3}} for n in ("selection_rate_frames", "impact_ratios", "bias_metrics")
            }
        },
    )
    assert metrics.success
    materialization = instance.get_latest_materialization_event(dg.AssetKey("selection_rate_frames"))
    metadata = materialization.asset_materialization.metadata
    missing = metadata["missing_upstream_days"].value
    assert missing == {
        LAST.isoformat(): [(LAST - timedelta(days=2)).isoformat(), (LAST - timedelta(days=1)).isoformat()]
    }
