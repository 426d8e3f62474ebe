"""``fairness-pipeline run``'s launcher: a range recorded as a backfill of a real Dagster instance, with progress."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import psycopg2
import pypdfium2 as pdfium
import pytest
from dagster._core.execution.asset_backfill import AssetBackfillStatus
from dagster._core.execution.backfill import BulkActionStatus
from typer.testing import CliRunner

from fairness_pipeline import synthetic
from fairness_pipeline.cli.backfill import BACKFILL_ID_TAG
from fairness_pipeline.cli.main import app
from fairness_pipeline.cli.runs import RangeProgress, days_to_summarise, job_asset_names, resolve_profile, run_range
from fairness_pipeline.definitions import build_definitions
from fairness_pipeline.defs.partitions import range_keys
from fairness_pipeline.defs.resources import FairnessDatabase
from fairness_pipeline.ingest.frames import load_frames
from fairness_pipeline.risk.profiles import PROFILES_ENV, ProfileError
from fairness_pipeline.store import connection
from fairness_pipeline.store.urls import sqlalchemy_url

START = date(2026, 3, 1)
DAYS = 3
WINDOW = 3
LAST = START + timedelta(days=DAYS - 1)
runner = CliRunner()


@pytest.fixture
def instance(db_url: str):
    overrides = {"storage": {"postgres": {"postgres_url": sqlalchemy_url(db_url)}}}
    with dg.instance_for_test(overrides=overrides) as dagster_instance:
        yield dagster_instance


def test_days_to_summarise_reaches_back_to_the_first_window_day() -> None:
    assert days_to_summarise(set(), LAST, LAST, WINDOW) == (START, LAST)
    assert days_to_summarise({START, START + timedelta(days=1)}, LAST, LAST, WINDOW) == (LAST, LAST)
    daily, tenant_days = (
        defs.resolve_asset_graph().get(dg.AssetKey(name)).partitions_def
        for defs in [build_definitions(FairnessDatabase(url="postgresql://unused/db"))]
        for name in ("candidate_daily_stages", "impact_ratios")
    )
    assert range_keys(daily, START, LAST, ["acme"]) == ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert range_keys(tenant_days, START, START + timedelta(days=1), ["acme", "beta"]) == [
        "2026-03-01|acme",
        "2026-03-02|acme",
        "2026-03-01|beta",
        "2026-03-02|beta",
    ]


def test_progress_line_counts_steps_and_partitions() -> None:
    progress = RangeProgress(1, 2, "metrics_job", steps_total=9, days=2, partitions_before=24, partitions_total=42)
    progress.steps_done |= {"impact_ratios", "selection_rate_frames"}
    progress.at_work.append("bias_metrics")
    text = progress.text()
    assert text.startswith("run 2 of 2 (metrics_job): 2 of 9 steps, 28 of 42 asset-partitions; at work: bias_metrics")


def test_profile_option_takes_a_name_or_a_file_of_one_profile(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(PROFILES_ENV, raising=False)
    assert resolve_profile("nyc_ll144") == "nyc_ll144"
    with pytest.raises(ProfileError, match="unknown profile 'nope'"):
        resolve_profile("nope")
    weights = "adverse_impact: 0.5\n      evidence: 0.5"
    one = tmp_path / "mine.yaml"
    one.write_text(f"profiles:\n  mine:\n    description: Mine.\n    weights:\n      {weights}\n")
    assert resolve_profile(str(one)) == "mine"
    assert Path(__import__("os").environ[PROFILES_ENV]) == one.resolve()  # the assets read the file from there
    two = tmp_path / "two.yaml"
    two.write_text(
        f"profiles:\n  a:\n    description: A.\n    weights:\n      {weights}\n"
        f"  b:\n    description: B.\n    weights:\n      {weights}\n"
    )
    with pytest.raises(ProfileError, match="holds 2 profiles"):
        resolve_profile(str(two))


@pytest.mark.slow
def test_a_range_is_a_backfill_with_its_partitions_status_and_progress(
    db_url: str, instance, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = synthetic.GeneratorConfig(seed=3, start=START, days=DAYS, tenants=2, events_per_day=300)
    conn = psycopg2.connect(db_url)
    try:
        load_frames(conn, list(synthetic.generate_events(config)), source="test")
    finally:
        conn.close()
    shown: list[tuple[str, bool]] = []
    started: list[tuple[str, list[str]]] = []
    runs = run_range(
        instance,
        LAST,
        LAST,
        window_days=WINDOW,
        database=FairnessDatabase(url=db_url),
        profile="hiring",
        show=lambda progress, finished: finished and shown.append(finished),
        on_start=lambda bid, run_ids: started.append((bid, run_ids, instance.get_backfill(bid))),
    )
    assert [(r.job_name, r.tenant, r.first_day, r.last_day, r.success) for r in runs] == [
        ("event_days_job", None, START, LAST, True),  # the window's 3 days, none summarised yet, every tenant
        ("metrics_job", "tenant-1", LAST, LAST, True),  # then each tenant's window: its own run
        ("metrics_job", "tenant-2", LAST, LAST, True),
    ]

    backfills = instance.get_backfills()
    assert len(backfills) == 1
    backfill = backfills[0]
    ((backfill_id, run_ids, before),) = started  # the links are printed before the first run
    assert (backfill_id, run_ids) == (backfill.backfill_id, [r.run_id for r in runs])
    assert before.status == BulkActionStatus.REQUESTED  # "In progress" in the UI
    assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS and backfill.backfill_end_timestamp
    tagged = instance.get_run_records(dg.RunsFilter(tags={BACKFILL_ID_TAG: backfill.backfill_id}))
    assert sorted(r.dagster_run.run_id for r in tagged) == sorted(r.run_id for r in runs)

    defs = build_definitions(FairnessDatabase(url=db_url))
    graph = defs.resolve_asset_graph()
    event_job, metrics_job = defs.resolve_job_def("event_days_job"), defs.resolve_job_def("metrics_job")
    event_assets = set(job_asset_names(event_job))
    status = {
        s.asset_key.to_user_string(): s
        for s in backfill.get_asset_backfill_data(graph).get_backfill_status_per_asset_key(graph)
    }
    assert set(status) == event_assets | set(job_asset_names(metrics_job))
    before_status = before.get_asset_backfill_data(graph).get_backfill_status_per_asset_key(graph)
    assert all(  # all requested up front: a running daemon has nothing of its own to launch
        a.partitions_counts_by_status[AssetBackfillStatus.IN_PROGRESS] == a.num_targeted_partitions
        for a in before_status
    )
    for name, asset in status.items():
        partitions = DAYS if name in event_assets else 2  # the event days; one window of each of the 2 tenants
        assert asset.num_targeted_partitions == partitions
        assert asset.partitions_counts_by_status[AssetBackfillStatus.MATERIALIZED] == partitions
        assert asset.partitions_counts_by_status[AssetBackfillStatus.FAILED] == 0

    # every step reported once as it finished, each a success
    steps = [node.name for job in (event_job, metrics_job, metrics_job) for node in job.graph.nodes]  # per run
    assert sorted(step for step, _ in shown) == sorted(steps) and all(ok for _, ok in shown)
    assert sum(r.steps for r in runs) == len(steps)
    conn = psycopg2.connect(db_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT DISTINCT profile FROM risk_assessments")
            assert cur.fetchall() == [("hiring",)]  # --profile reached the risk asset
    finally:
        conn.close()

    # the report command: the stored report (profile hiring), rebuilt in memory for another profile, other facts, PDF
    monkeypatch.setenv("FAIRNESS_DATABASE_URL", db_url)
    monkeypatch.setenv("FAIRNESS_HOME", str(tmp_path / "home"))
    connection.database_url.cache_clear()
    base = ["report", "--tenant", "tenant-1", "--date", LAST.isoformat()]
    stored = json.loads(runner.invoke(app, [*base, "--format", "json"]).stdout)
    assert stored["risk_assessment"]["profile"] == "hiring"
    other = runner.invoke(app, [*base, "--format", "json", "--profile", "nyc_ll144"])
    assert other.exit_code == 0, other.output
    rebuilt = json.loads(other.stdout)
    assert rebuilt["risk_assessment"]["profile"] == "nyc_ll144"
    assert rebuilt["detailed_analysis"] == stored["detailed_analysis"]  # same tables, another weighting
    facts = tmp_path / "facts.toml"
    facts.write_text('data_source = "ATS exports"\nauditor = "Audit Co"\n')
    page = runner.invoke(app, [*base, "--format", "html", "--facts", str(facts)]).stdout
    assert "<th>Auditor</th><td>Audit Co</td>" in page and "data: ATS exports" in page
    pdf = tmp_path / "report.pdf"
    written = runner.invoke(app, [*base, "--format", "pdf", "--out", str(pdf)])
    assert written.exit_code == 0, written.output
    assert pdf.read_bytes().startswith(b"%PDF-") and len(pdfium.PdfDocument(str(pdf))) >= 3

    # the command itself: links first, a line per finished step, the summary last
    again = runner.invoke(app, ["run", "--start", LAST.isoformat()])
    assert again.exit_code == 0, again.output
    lines = again.output.splitlines()
    assert lines[0].startswith("backfill ") and "/runs/b/" in lines[0] and "?tab=partitions" in lines[0]
    assert lines[1].strip().startswith("run ") and "/runs/" in lines[1]
    assert any(": done; run 1 of 3 (event_days_job):" in line for line in lines)
    assert any("selection_rate_frames: done; run 2 of 3 (metrics_job tenant-1): " in line for line in lines)
    assert any("selection_rate_frames: done; run 3 of 3 (metrics_job tenant-2): " in line for line in lines)
    assert lines[-1].startswith("done: 3 of 3 run(s) succeeded in ")
    assert any(line.strip().startswith("metrics_job tenant-2 ") for line in lines)

    # one tenant alone: the event layer and that tenant's run
    alone = runner.invoke(app, ["run", "--start", LAST.isoformat(), "--tenant", "tenant-2"])
    assert alone.exit_code == 0, alone.output
    assert alone.output.splitlines()[-1].startswith("done: 2 of 2 run(s) succeeded in ")
    assert "metrics_job tenant-1" not in alone.output and "metrics_job tenant-2" in alone.output
    unknown = runner.invoke(app, ["run", "--start", LAST.isoformat(), "--tenant", "nobody"])
    assert unknown.exit_code != 0 and "no events of tenant(s) nobody" in unknown.output
    assert len(instance.get_backfills()) == 3
    connection.database_url.cache_clear()
