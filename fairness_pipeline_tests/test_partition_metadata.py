"""A run over several days records each day's own materialisation metadata (issue 16): read from a real Dagster
instance's event log, per partition, and compared with the database's per-day figures."""

from __future__ import annotations

import math
from datetime import date, timedelta

import dagster as dg
import pandas as pd
import psycopg2
import pytest

from fairness_pipeline import synthetic
from fairness_pipeline.defs.assets import events as event_assets
from fairness_pipeline.defs.assets import metrics as metric_assets
from fairness_pipeline.defs.partitions import tenant_day_key
from fairness_pipeline.defs.resources import FairnessDatabase
from fairness_pipeline.defs.tags import DAGSTER_RANGE_END_TAG, DAGSTER_RANGE_START_TAG
from fairness_pipeline.defs.tenants import register_tenants
from fairness_pipeline.ingest.frames import load_frames
from fairness_pipeline.store.urls import sqlalchemy_url
from fairness_pipeline_tests.test_pipeline import _query

pytestmark = pytest.mark.slow  # a Dagster run on a PostgreSQL-backed instance

START = date(2026, 3, 1)
DAYS = 3
WINDOW = 2
HEADLINE = "shown->shortlisted"


def _day_metadata(instance, asset: str, day: date, tenant: str | None = None) -> dict:
    key = day.isoformat() if tenant is None else tenant_day_key(tenant, day)
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[key]), limit=1
    ).records
    assert records, (asset, key)
    return {key: value.value for key, value in records[0].asset_materialization.metadata.items()}


def test_a_range_run_records_each_days_own_figures(db_url: str) -> None:
    config = synthetic.GeneratorConfig(
        seed=3, start=START, days=DAYS, tenants=2, events_per_day=1500, bias=("company_tier=startup:0.5",)
    )
    conn = psycopg2.connect(db_url)
    try:
        load_frames(conn, list(synthetic.generate_events(config)), source="test")
    finally:
        conn.close()
    overrides = {"storage": {"postgres": {"postgres_url": sqlalchemy_url(db_url)}}}
    with dg.instance_for_test(overrides=overrides) as instance:
        last = START + timedelta(days=DAYS - 1)
        window = {"config": {"window_days": WINDOW}}
        result = dg.materialize(
            [
                event_assets.raw_selection_events,
                event_assets.validated_selection_events,
                event_assets.candidate_daily_stages,
            ],
            instance=instance,
            resources={"database": FairnessDatabase(url=db_url)},
            tags={DAGSTER_RANGE_START_TAG: START.isoformat(), DAGSTER_RANGE_END_TAG: last.isoformat()},
        )
        assert result.success
        register_tenants(instance, ["tenant-1", "tenant-2"])
        windows = dg.materialize(
            [metric_assets.selection_rate_frames, metric_assets.impact_ratios],
            instance=instance,
            resources={"database": FairnessDatabase(url=db_url)},
            tags={  # both tenants' days: a rectangle of tenant-days
                DAGSTER_RANGE_START_TAG: tenant_day_key("tenant-1", START),
                DAGSTER_RANGE_END_TAG: tenant_day_key("tenant-2", last),
            },
            run_config={"ops": {"selection_rate_frames": window, "impact_ratios": window}},
        )
        assert windows.success
        assert len({run.run_id for run in instance.get_runs()}) == 2  # one run per layer materialised every day

        raw = _query(
            db_url,
            "SELECT (timestamp AT TIME ZONE 'UTC')::date AS day, count(*) AS events FROM selection_events GROUP BY 1",
        ).set_index("day")["events"]
        stages = _query(db_url, "SELECT day, count(*) AS rows FROM candidate_daily_stages GROUP BY 1").set_index("day")
        frames = _query(
            db_url, "SELECT window_end, tenant_id, count(*) AS rows FROM selection_rate_frames GROUP BY 1, 2"
        ).set_index(["window_end", "tenant_id"])["rows"]
        impacts = _query(
            db_url,
            "SELECT window_end, tenant_id, min(impact_ratio) AS lowest, count(*) AS rows FROM impact_ratios "
            "WHERE stage_pair = %(pair)s GROUP BY 1, 2",
            {"pair": HEADLINE},
        )
        worst_adverse = (
            _query(
                db_url,
                "SELECT window_end, tenant_id, min(impact_ratio) AS worst FROM impact_ratios WHERE adverse_impact "
                "GROUP BY 1, 2",
            )
            .set_index(["window_end", "tenant_id"])["worst"]
            .to_dict()
        )
        adverse_counts = (
            _query(
                db_url,
                "SELECT window_end, tenant_id, count(*) AS n FROM impact_ratios WHERE adverse_impact GROUP BY 1, 2",
            )
            .set_index(["window_end", "tenant_id"])["n"]
            .to_dict()
        )
        impact_rows = _query(
            db_url, "SELECT window_end, tenant_id, count(*) AS rows FROM impact_ratios GROUP BY 1, 2"
        ).set_index(["window_end", "tenant_id"])["rows"]
        seen_events: set[int] = set()
        defined_ratios: set[float] = set()
        for day in (START + timedelta(days=i) for i in range(DAYS)):
            observed = _day_metadata(instance, "raw_selection_events", day)
            assert observed["events"] == observed["dagster/row_count"] == raw[day]
            seen_events.add(observed["events"])
            validated = _day_metadata(instance, "validated_selection_events", day)
            assert validated["raw_events"] == raw[day] and validated["quarantined_events"] == 0
            assert _day_metadata(instance, "candidate_daily_stages", day)["candidate_rows"] == stages.loc[day, "rows"]
            per_tenant = impacts[impacts["window_end"] == day].set_index("tenant_id")["lowest"]
            assert len(per_tenant) == 2  # two tenants, each its own tenant-day with its own figures: never pooled
            for tenant, lowest in per_tenant.items():
                frame_meta = _day_metadata(instance, "selection_rate_frames", day, tenant)
                assert frame_meta["dagster/row_count"] == frames.loc[(day, tenant)]
                impact_meta = _day_metadata(instance, "impact_ratios", day, tenant)
                assert impact_meta["dagster/row_count"] == impact_rows.loc[(day, tenant)]
                assert impact_meta["adverse_groups"] == adverse_counts.get((day, tenant), 0)
                if pd.isna(lowest):  # no defined ratio that day: no entry rather than a made-up one
                    assert math.isnan(impact_meta["lowest_impact_ratio"])
                    assert f"lowest_impact_ratio/{tenant}" not in impact_meta
                else:
                    assert impact_meta["lowest_impact_ratio"] == pytest.approx(float(lowest), rel=1e-12)
                    assert impact_meta[f"lowest_impact_ratio/{tenant}"] == pytest.approx(float(lowest), rel=1e-12)
                    defined_ratios.add(round(float(lowest), 12))
                lines = impact_meta["preview"].splitlines()
                header = [cell.strip() for cell in lines[0].strip("| ").split(" | ")]  # "a|b": an intersection
                assert header[:2] == ["tenant_id", "stage_pair"]  # the preview names the stage pair
                worst = worst_adverse.get((day, tenant))
                if worst is None:
                    assert impact_meta["preview"] == "_no rows_"
                else:  # the worst adverse ratio of the tenant-day comes first
                    first_row = [cell.strip() for cell in lines[2].strip("| ").split(" | ")]
                    assert first_row[header.index("impact_ratio")] == f"{worst:.4g}"
        assert len(seen_events) == DAYS  # the days' own counts, not one run total repeated
        evaluations = [
            entry.dagster_event.event_specific_data
            for entry in instance.all_logs(result.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        ]
        by_day = {
            (e.check_name, e.partition): e
            for e in evaluations
            if e.partition is not None and e.check_name == "raw_equals_validated_plus_quarantined"
        }
        for day in (START + timedelta(days=i) for i in range(DAYS)):
            evaluation = by_day[("raw_equals_validated_plus_quarantined", day.isoformat())]
            assert evaluation.passed and evaluation.metadata["raw"].value == raw[day]
        assert len(defined_ratios) >= 2  # and per-tenant ratios that differ between tenants or days
        # The run's totals stay on the run's last materialisation entry only where no day overrides them.
        assert sum(raw[START + timedelta(days=i)] for i in range(DAYS)) not in seen_events
