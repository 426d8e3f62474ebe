"""Assets called directly, as Dagster's testing guide and bench/pipeline.py do: the body runs and writes its rows."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import psycopg2

from fairness_pipeline import synthetic
from fairness_pipeline.defs.assets.events import candidate_daily_stages
from fairness_pipeline.defs.assets.metrics import selection_rate_frames
from fairness_pipeline.defs.config import WindowConfig
from fairness_pipeline.defs.partitions import day_bounds, tenant_day_key
from fairness_pipeline.defs.resources import FairnessDatabase
from fairness_pipeline.defs.tenants import register_tenants
from fairness_pipeline.ingest.frames import load_frames
from fairness_pipeline.store import validation

DAY = date(2026, 3, 2)


def test_window_assets_run_when_called_directly(db_url: str) -> None:
    conn = psycopg2.connect(db_url)
    config = synthetic.GeneratorConfig(seed=5, start=DAY - timedelta(days=1), days=2, tenants=1, events_per_day=300)
    load_frames(conn, synthetic.generate_events(config), source="test")
    database = FairnessDatabase(url=db_url)
    for day in (DAY - timedelta(days=1), DAY):
        with conn, conn.cursor() as cur:  # every raw row valid: what the validation asset stores for a clean day
            validation.replace_validated_day(cur, day_bounds(day), [], [])
        with dg.build_asset_context(partition_key=day.isoformat()) as context:
            candidate_daily_stages(context, database=database)
    with dg.instance_for_test() as instance:
        register_tenants(instance, ["tenant-1"])
        with dg.build_asset_context(partition_key=tenant_day_key("tenant-1", DAY), instance=instance) as context:
            result = selection_rate_frames(context, database=database, config=WindowConfig(window_days=2))
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM selection_rate_frames WHERE window_end = %s", (DAY,))
        stored = cur.fetchone()[0]
    conn.close()
    assert stored > 0
    assert result.metadata["dagster/row_count"].value == stored
