"""``fairness-pipeline demo``: generate events with planted biases, ingest them, run the graph, show the findings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fairness_pipeline import settings
from fairness_pipeline.cli.database import open_database
from fairness_pipeline.cli.output import console, fail, parse_optional_day
from fairness_pipeline.cli.printing import ingest_progress, print_audit_findings, print_findings, print_stored_summary
from fairness_pipeline.cli.runs import dagster_instance, run_days
from fairness_pipeline.metrics.window import HEADLINE_STAGE_PAIR

if TYPE_CHECKING:
    import pandas as pd

DEMO_BIAS = "company_tier=startup:0.6"
DEMO_RANK_BIAS = "experience_band=15+:4"
DEMO_SCORE_BIAS = "specialty=frontend:-0.15"
DEMO_SLATES = "company_tier=faang:0.3@0.9"
DEMO_DRIFT = "experience_band=0-3:0.1@clicked"
DEMO_BIASED_TENANT = "tenant-1"
DEMO_LL144_BIAS = "sex=female:0.7"
"""The planted LL144 finding: it multiplies P(shortlisted | clicked) of tenant-1's female candidates (measured: impact
ratio 0.68 for the 30 days ending 2026-11-21)."""


def demo(
    days: Annotated[int, typer.Option(min=1)] = 30,
    events_per_day: Annotated[int, typer.Option(min=1)] = 4000,
    seed: Annotated[int, typer.Option()] = 7,
    end: Annotated[
        str | None,
        typer.Option(metavar="YYYY-MM-DD", help="Last day of the generated period (default: yesterday, UTC)."),
    ] = None,
) -> None:
    """Start the embedded database, generate events with a planted bias, ingest them and show what is stored."""
    from datetime import UTC, datetime

    from fairness_pipeline import synthetic
    from fairness_pipeline.ingest.attributes import load_attribute_file
    from fairness_pipeline.ingest.loader import ingest_file
    from fairness_pipeline.store import events, reports

    last_day = parse_optional_day(end, "--end") or datetime.now(UTC).date() - timedelta(days=1)
    first = last_day - timedelta(days=days - 1)
    config = synthetic.GeneratorConfig(
        seed=seed,
        start=first,
        days=days,
        tenants=2,
        events_per_day=events_per_day,
        bias=(synthetic.parse_bias(DEMO_BIAS), synthetic.parse_bias(DEMO_LL144_BIAS)),
        drift=(synthetic.parse_bias(DEMO_DRIFT),),
        rank_bias=(synthetic.parse_rank_bias(DEMO_RANK_BIAS),),
        score_bias=(synthetic.parse_score_bias(DEMO_SCORE_BIAS),),
        slate_concentration=(synthetic.parse_slate_concentration(DEMO_SLATES),),
        biased_tenants=(DEMO_BIASED_TENANT,),
    )
    demo_dir = settings.home_dir() / "demo"
    demo_dir.mkdir(exist_ok=True)
    path = demo_dir / f"events-{first}-{last_day}.csv"
    console.print(
        f"[bold]1.[/bold] generating {days} days ({first} .. {last_day}); planted in {DEMO_BIASED_TENANT} only: "
        f"shortlisting {DEMO_BIAS} and {DEMO_LL144_BIAS} (LL144), rank {DEMO_RANK_BIAS}, score {DEMO_SCORE_BIAS}, "
        f"slates {DEMO_SLATES}, clicks drifting down to {DEMO_DRIFT} by the last day"
    )
    candidates: dict[str, set[str]] = {}
    count = synthetic.write_events(_remember_candidates(synthetic.generate_events(config), candidates), path, "csv")
    console.print(f"   wrote {count:,} events to {path}")
    attributes_path = demo_dir / f"self-identification-{first}-{last_day}.csv"
    answers = synthetic.write_attributes(
        config, attributes_path, "csv", candidates={DEMO_BIASED_TENANT: candidates.get(DEMO_BIASED_TENANT, set())}
    )
    console.print(
        f"   wrote the self-identification (sex, race/ethnicity) of {answers:,} {DEMO_BIASED_TENANT} candidates to "
        f"{attributes_path}; the other tenant has none (its report says: proxies only)"
    )

    console.print("[bold]2.[/bold] starting the database and applying migrations")
    with open_database() as conn:
        console.print("[bold]3.[/bold] ingesting")
        with ingest_progress() as progress:
            task = progress.add_task(path.name, total=path.stat().st_size)
            counts = ingest_file(conn, path, on_bytes=lambda n: progress.advance(task, n))
        console.print(f"   {counts.as_dict()}")
        attribute_counts = load_attribute_file(conn, attributes_path)
        console.print(f"   self-identification: {attribute_counts.as_dict()}")
        rows = events.stored_summary(conn)
    print_stored_summary(rows)

    console.print(f"[bold]4.[/bold] running the asset graph through Dagster for the window ending {last_day}")
    if not run_days(last_day, last_day):
        fail("the pipeline run failed; open the Dagster UI (`fairness-pipeline ui`) to see why")
    with open_database() as conn:
        findings = reports.adverse_findings(conn, last_day, HEADLINE_STAGE_PAIR)
    print_findings(last_day, findings)
    print_audit_findings(last_day, days)
    print_risk_and_alerts(last_day, demo_dir)


def _remember_candidates(frames: Iterator[pd.DataFrame], seen: dict[str, set[str]]) -> Iterator[pd.DataFrame]:
    """Pass the event frames through, noting each tenant's candidate ids in ``seen``."""
    for frame in frames:
        for tenant, ids in frame.groupby("tenant_id", sort=False)["candidate_id"]:
            seen.setdefault(str(tenant), set()).update(ids)
        yield frame


def print_risk_and_alerts(window_end: date, demo_dir: Path) -> None:
    """Each tenant's risk level with its top reasons and report; alerts for HIGH and above, as the sensor would."""
    import os

    from fairness_pipeline.defs.automation import ALERT_LEVEL_ENV, levels_at_or_above
    from fairness_pipeline.risk.levels import REVIEW_FLOOR
    from fairness_pipeline.store import reports as report_store

    with open_database() as conn:
        assessments = report_store.verdicts(conn, window_end)
        reports = {}
        for tenant, *_ in assessments:
            row = report_store.stored_report(conn, tenant, window_end)
            if row:
                path = demo_dir / f"report-{tenant}-{window_end}.html"
                path.write_text(row[1], encoding="utf-8")
                reports[tenant] = path
    console.print("[bold]5.[/bold] risk per tenant")
    for tenant, level, score, assessment in assessments:
        score_text = "no score" if score is None else f"score {score:.2f}"
        console.print(f"   [bold]{tenant}: {level}[/bold] ({score_text}); report: {reports.get(tenant, 'none')}")
        for rule in assessment.get("applied_rules", [])[:3]:
            console.print(f"     - {rule['reason']}")

    levels = levels_at_or_above(os.environ.get(ALERT_LEVEL_ENV, REVIEW_FLOOR))
    alerting = [(t, lvl, s, a) for t, lvl, s, a in assessments if lvl in levels]
    if alerting:
        from fairness_pipeline.definitions import defs
        from fairness_pipeline.defs.alerting import alert_run_config

        instance = dagster_instance()
        job = defs.resolve_job_def("alert_job")
        for tenant, level, _, _ in alerting:
            config = alert_run_config(tenant, level, window_end.isoformat())
            config["loggers"] = {"console": {"config": {"log_level": "WARNING"}}}
            job.execute_in_process(run_config=config, instance=instance)
    console.print("[bold]6.[/bold] alerts (fairness-pipeline alerts list | show ID | ack ID | resolve ID --note ...)")
    from fairness_pipeline.cli.alerts import alerts_app

    with suppress(SystemExit):
        alerts_app(["list", "--status", "all"], standalone_mode=False)
    console.print("open the Dagster UI on this database with: .venv/bin/fairness-pipeline ui  (http://127.0.0.1:3000)")
