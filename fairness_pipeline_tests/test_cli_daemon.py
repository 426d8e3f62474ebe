"""``fairness-pipeline run`` with a Dagster daemon running: a real asset backfill that the daemon completes."""

from __future__ import annotations

import socket
import time
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
from dagster._core.execution.asset_backfill import AssetBackfillStatus
from dagster._core.execution.backfill import BulkActionStatus
from dagster._daemon.types import DaemonHeartbeat
from typer.testing import CliRunner

from fairness_pipeline import synthetic
from fairness_pipeline.cli.backfill import BACKFILL_ID_TAG
from fairness_pipeline.cli.main import app
from fairness_pipeline.cli.runs import RangeProgress, daemon_running, job_asset_names
from fairness_pipeline.definitions import build_definitions
from fairness_pipeline.defs.resources import FairnessDatabase
from fairness_pipeline.ingest.frames import load_frames
from fairness_pipeline.store import connection

START = date(2026, 3, 1)
LAST = START + timedelta(days=1)
runner = CliRunner()


def _beat(instance, daemon_type: str, seconds_ago: float) -> None:
    instance.add_daemon_heartbeat(DaemonHeartbeat(time.time() - seconds_ago, daemon_type, "test-daemon", None))


def test_daemon_detection_needs_fresh_backfill_and_queue_heartbeats(instance) -> None:
    assert instance.get_daemon_heartbeats() == {}
    assert not daemon_running(instance)  # no daemon: `run` takes the in-process path
    _beat(instance, "BACKFILL", 0)
    queue_required = "QUEUED_RUN_COORDINATOR" in instance.get_required_daemon_types()
    assert daemon_running(instance) is not queue_required  # a queue nobody dequeues: still run here
    _beat(instance, "QUEUED_RUN_COORDINATOR", 0)
    assert daemon_running(instance)
    _beat(instance, "BACKFILL", 30 + 50)  # within the interval (30 s) and our tolerance (60 s)
    assert daemon_running(instance)
    _beat(instance, "BACKFILL", 30 + 60 + 5)  # a daemon stopped a minute and a half ago
    assert not daemon_running(instance)


def test_progress_between_the_daemons_runs_says_it_waits() -> None:
    progress = RangeProgress(0, 2, "event_days_job", steps_total=5, days=31, partitions_before=0, partitions_total=171)
    assert "at work: starting (" in progress.text()
    progress.steps_done |= {"raw_selection_events", "validated_selection_events"}
    progress.finished = True
    assert "2 of 5 steps, 62 of 171 asset-partitions; at work: waiting for the daemon's next run (" in progress.text()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_run_submits_a_backfill_that_the_daemon_completes(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fairness_pipeline.store.connection import child_environment
    from fairness_pipeline.ui import running_ui

    config = synthetic.GeneratorConfig(seed=4, start=START, days=2, tenants=1, events_per_day=200)
    conn = psycopg2.connect(db_url)
    try:
        load_frames(conn, list(synthetic.generate_events(config)), source="test")
    finally:
        conn.close()
    monkeypatch.setenv("FAIRNESS_DATABASE_URL", db_url)
    monkeypatch.setenv("FAIRNESS_HOME", str(tmp_path / "home"))
    connection.database_url.cache_clear()
    for name, value in child_environment().items():  # DAGSTER_HOME and storage URL, restored after the test
        monkeypatch.setenv(name, value)
    port = _free_port()  # not the default: the links use the port the running UI announced
    monkeypatch.delenv("FAIRNESS_UI_URL", raising=False)
    try:
        with dg.DagsterInstance.get() as instance, running_ui("127.0.0.1", port):
            deadline = time.monotonic() + 120
            while not daemon_running(instance):
                assert time.monotonic() < deadline, "the daemon of `dagster dev` sent no heartbeat"
                time.sleep(2)
            result = runner.invoke(app, ["run", "--start", str(START), "--end", str(LAST), "--profile", "hiring"])
            assert result.exit_code == 0, result.output
            backfills = instance.get_backfills()
            run_ids = {
                r.dagster_run.run_id
                for r in instance.get_run_records(dg.RunsFilter(tags={BACKFILL_ID_TAG: backfills[0].backfill_id}))
            }
    finally:
        connection.database_url.cache_clear()

    (backfill,) = backfills
    assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS
    lines = result.output.splitlines()
    link = f"http://127.0.0.1:{port}/runs/b/{backfill.backfill_id}?tab=partitions"
    assert lines[0] == f"backfill {backfill.backfill_id}: {link}"
    assert lines[1].strip() == "submitted to the Dagster daemon, which launches its runs"
    run_links = {line.split()[1].rstrip(":") for line in lines if line.strip().startswith("run ") and "/runs/" in line}
    assert run_links == run_ids and len(run_ids) >= 2  # the event layer, then the metric layer (in parts)
    assert any("validated_selection_events: done; run 1 of 2 (event_days_job):" in line for line in lines)
    assert any("impact_ratios: done; run 2 of " in line and "(metrics_job" in line for line in lines)
    assert any("; tenant-1)" in line and "(metrics_job" in line for line in lines)  # the run's tenant is named
    assert lines[-1].startswith(f"done: {len(run_ids)} of {len(run_ids)} run(s) succeeded in ")

    defs = build_definitions(FairnessDatabase(url=db_url))
    graph = defs.resolve_asset_graph()
    event_assets = set(job_asset_names(defs.resolve_job_def("event_days_job")))
    metric_assets = set(job_asset_names(defs.resolve_job_def("metrics_job")))
    status = {
        s.asset_key.to_user_string(): s
        for s in backfill.get_asset_backfill_data(graph).get_backfill_status_per_asset_key(graph)
    }
    assert set(status) == event_assets | metric_assets
    event_days = 30 + 1  # the first window's 30 days (START-29 .. START), and LAST
    for name, asset in status.items():
        days = event_days if name in event_assets else 2
        assert asset.num_targeted_partitions == days, name
        assert asset.partitions_counts_by_status[AssetBackfillStatus.MATERIALIZED] == days, name
    conn = psycopg2.connect(db_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT DISTINCT profile FROM risk_assessments")
            assert cur.fetchall() == [("hiring",)]  # the backfill's run config reached the risk asset
    finally:
        conn.close()
