"""``fairness-pipeline``: database, data generation, ingestion and the demo.

Heavy libraries (Dagster, Great Expectations, fairlearn) are imported inside the commands that need them, so
``--help`` and the database commands start fast. Failures print one line on stderr and exit non-zero: 1 for runtime
failures, 2 for bad input (see ``cli/output.py``); ``cli/errors.py`` catches whatever else escapes a command.
"""

from __future__ import annotations

import json
import sys
from contextlib import suppress
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

import typer

from fairness_pipeline import settings
from fairness_pipeline.cli.alerts import alerts_app
from fairness_pipeline.cli.database import open_database, require_tenant, resolve_url
from fairness_pipeline.cli.errors import FairnessGroup
from fairness_pipeline.cli.output import (
    EXIT_STOPPED,
    EXIT_USAGE,
    console,
    fail,
    first_line,
    parse_day,
    parse_optional_day,
    table_console,
)

NO_PRETTY_EXCEPTIONS = {"pretty_exceptions_enable": False, "pretty_exceptions_show_locals": False}
"""Typer's pretty exceptions print every frame's local variables (data frames, candidate ids, database URLs)."""

app = typer.Typer(
    cls=FairnessGroup,
    help="Watch hiring funnels for adverse impact.",
    no_args_is_help=True,
    add_completion=False,
    **NO_PRETTY_EXCEPTIONS,
)
db_app = typer.Typer(help="The project's PostgreSQL database.", no_args_is_help=True, **NO_PRETTY_EXCEPTIONS)
app.add_typer(db_app, name="db")
app.add_typer(alerts_app, name="alerts")


# --- db ---------------------------------------------------------------------------------------------------------


@db_app.command("start")
def db_start() -> None:
    """Start the embedded server (no-op with FAIRNESS_DATABASE_URL) and apply pending migrations."""
    from fairness_pipeline.store import urls

    with open_database():
        url = resolve_url()
    kind = "external" if settings.external_database_url() else "embedded"
    console.print(f"{kind} database ready: {urls.redacted(url)}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded server."""
    from fairness_pipeline.store import embedded

    if settings.external_database_url():
        console.print("FAIRNESS_DATABASE_URL is set: the external server is not managed by this project")
        return
    console.print("embedded server stopped" if embedded.stop() else "embedded server was not running")


@db_app.command("status")
def db_status() -> None:
    """Say which database is used, whether it is running, and which migrations are applied."""
    import psycopg2

    from fairness_pipeline.store import embedded, urls
    from fairness_pipeline.store.connection import connect
    from fairness_pipeline.store.migrations import status

    external = settings.external_database_url()
    if external:
        try:
            url = urls.libpq_url(external)
        except ValueError as exc:
            fail(f"FAIRNESS_DATABASE_URL: {exc}", EXIT_USAGE)
    else:
        current = embedded.status()
        console.print(f"embedded data directory: {current.data_dir}")
        if not current.running:
            console.print("embedded server: stopped (start it with `fairness-pipeline db start`)")
            raise typer.Exit(EXIT_STOPPED)
        console.print(f"embedded server: running, pid {current.pid}")
        url = current.url
    try:
        with connect(url) as conn:
            migrations = list(status(conn))
    except psycopg2.Error as exc:
        fail(f"cannot connect to {urls.redacted(url)}: {first_line(exc)}")
    if external:
        console.print(f"external database: {urls.redacted(url)}")
    for migration, applied in migrations:
        console.print(f"  {'applied' if applied else 'PENDING'}  {migration.path.name}")


@db_app.command("url")
def db_url(
    sqlalchemy: Annotated[bool, typer.Option(help="Print the postgresql+psycopg2:// form.")] = False,
) -> None:
    """Print the database URL (starting the embedded server if needed)."""
    from fairness_pipeline.store import urls

    url = resolve_url()
    print(urls.sqlalchemy_url(url) if sqlalchemy else url)


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending migrations."""
    with open_database():
        pass
    console.print("database schema is current")


# --- generate / ingest --------------------------------------------------------------------------------------------


def _progress():
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(), console=console,
        transient=True,
    )  # fmt: skip


@app.command()
def generate(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File to write (.csv or .jsonl).")] = None,
    to_db: Annotated[bool, typer.Option("--to-db", help="Write straight into the database instead of a file.")] = False,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same events.")] = 7,
    start: Annotated[str, typer.Option(help="First day (YYYY-MM-DD, UTC).")] = "2026-01-01",
    days: Annotated[int, typer.Option(min=1)] = 30,
    tenants: Annotated[int, typer.Option(min=1)] = 2,
    events_per_day: Annotated[int, typer.Option(min=1, help="Approximate events per tenant per day.")] = 5000,
    bias: Annotated[
        list[str] | None,
        typer.Option(help="Planted bias DIMENSION=GROUP:FACTOR, e.g. company_tier=startup:0.6 (repeatable)."),
    ] = None,
    drift: Annotated[
        list[str] | None,
        typer.Option(help="A bias that grows: DIMENSION=GROUP:FACTOR reached on the last day, from 1 on the first."),
    ] = None,
    rank_bias: Annotated[
        list[str] | None, typer.Option(help="Push a group down each slate: company_tier=startup:3 (positions).")
    ] = None,
    score_bias: Annotated[
        list[str] | None, typer.Option(help="Shift a group's scores: company_tier=startup:-0.1.")
    ] = None,
    slate_concentration: Annotated[
        list[str] | None,
        typer.Option(help="Searches whose slate is mostly one group: company_tier=faang:0.2@0.9 (searches@purity)."),
    ] = None,
    biased_tenant: Annotated[
        list[str] | None, typer.Option(help="Plant the biases only in this tenant (repeatable; default: all).")
    ] = None,
) -> None:
    """Generate synthetic selection events with a realistic funnel and optional planted bias."""
    from fairness_pipeline import synthetic

    if (out is None) == (not to_db):
        fail("give exactly one of --out FILE or --to-db", EXIT_USAGE)
    first_day = parse_day(start, "--start")
    try:
        config = synthetic.GeneratorConfig(
            seed=seed,
            start=first_day,
            days=days,
            tenants=tenants,
            events_per_day=events_per_day,
            bias=tuple(synthetic.parse_bias(text) for text in bias or ()),
            drift=tuple(synthetic.parse_bias(text) for text in drift or ()),
            rank_bias=tuple(synthetic.parse_rank_bias(text) for text in rank_bias or ()),
            score_bias=tuple(synthetic.parse_score_bias(text) for text in score_bias or ()),
            slate_concentration=tuple(synthetic.parse_slate_concentration(t) for t in slate_concentration or ()),
            biased_tenants=tuple(biased_tenant) if biased_tenant else None,
        )
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    frames = synthetic.generate_events(config)
    if out is not None:
        fmt = "jsonl" if out.suffix.lower() in (".jsonl", ".ndjson") else "csv"
        with console.status(f"generating {days} days into {out}"):
            count = synthetic.write_events(frames, out, fmt)
        console.print(f"wrote {count:,} events to {out}")
        return
    from fairness_pipeline.ingest.frames import load_frames

    with open_database() as conn, console.status(f"generating {days} days into the database"):
        counts = load_frames(conn, frames, source=f"generate:seed={seed}")
    print(json.dumps(counts.as_dict()))


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="CSV or JSON Lines files (.gz allowed).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON on stdout.")] = False,
) -> None:
    """Load events, keeping every row: stored, duplicate, or rejected with its line number and reason."""
    from fairness_pipeline.ingest.loader import IngestCounts, ingest_file
    from fairness_pipeline.ingest.reader import UnreadableFileError

    totals = IngestCounts()
    unreadable: list[str] = []
    with open_database() as conn, _progress() as progress:
        for path in files:
            size = path.stat().st_size if path.exists() else None
            task = progress.add_task(path.name, total=size)
            try:
                counts = ingest_file(conn, path, on_bytes=lambda n, t=task: progress.advance(t, n))
            except UnreadableFileError as exc:
                totals += exc.counts  # what was loaded before the file broke off
                unreadable.append(str(exc))
                console.print(f"[red]cannot read[/red] {exc}")
                continue
            totals += counts
            if not as_json:
                console.print(
                    f"{path}: read {counts.read:,}, inserted {counts.inserted:,}, "
                    f"duplicates {counts.duplicates:,}, rejected {counts.rejected:,}"
                )
    if as_json:
        print(json.dumps(totals.as_dict()))
    elif len(files) > 1:
        console.print(f"total: {totals.as_dict()}")
    if totals.rejected and not as_json:
        console.print("rejected rows are in selection_event_rejects (source, line_number, reason)")
    if unreadable:
        raise typer.Exit(2)


# --- pipeline ---------------------------------------------------------------------------------------------------


def _dagster_instance():
    """The project's Dagster instance (``$FAIRNESS_HOME/dagster_home``, storage on the project's PostgreSQL)."""
    import os

    from fairness_pipeline.store.connection import child_environment

    os.environ.update(child_environment())
    import dagster as dg

    return dg.DagsterInstance.get()


def _run_days(first_day: date, last_day: date) -> bool:
    from fairness_pipeline.defs.runs import run_range

    instance = _dagster_instance()
    with console.status(f"materialising {first_day} .. {last_day} through Dagster"):
        try:
            summaries = run_range(instance, first_day, last_day)
        except ValueError as exc:
            fail(str(exc), EXIT_USAGE)
    for summary in summaries:
        state = "[green]succeeded[/green]" if summary.success else "[red]failed[/red]"
        console.print(f"  {summary.job_name} {summary.first_day} .. {summary.last_day}: {state} (run {summary.run_id})")
    return all(summary.success for summary in summaries)


@app.command()
def run(
    start: Annotated[str, typer.Option(help="First day (YYYY-MM-DD, UTC).")],
    end: Annotated[str | None, typer.Option(help="Last day (default: --start).")] = None,
) -> None:
    """Materialise the asset graph for a range of days through Dagster (the runs appear in the UI)."""
    first_day = parse_day(start, "--start")
    last_day = parse_optional_day(end, "--end") or first_day
    if last_day < first_day:
        fail(f"--end {last_day} is before --start {first_day}", EXIT_USAGE)
    with open_database():
        pass  # start the embedded server, migrate, and fail in one line if no database is reachable
    if not _run_days(first_day, last_day):
        raise typer.Exit(1)


@app.command()
def worker(
    days: Annotated[int, typer.Option(help="Days in the window.")] = 30,
    dimension: Annotated[str | None, typer.Option(help="Only this dimension.")] = None,
    all_dimensions: Annotated[bool, typer.Option("--all-dimensions", help="All dimensions (the default).")] = False,
    tenant_id: Annotated[str | None, typer.Option("--tenant-id", help="Only this tenant.")] = None,
    output: Annotated[Path | None, typer.Option(help="Also write the JSON to this file.")] = None,
    save_to_db: Annotated[bool, typer.Option("--save-to-db", help="Insert the documents into bias_metrics.")] = False,
    end: Annotated[str | None, typer.Option(help="Last day of the window (default: today, UTC).")] = None,
    baseline_event: Annotated[str, typer.Option("--baseline-event")] = "shown",
    selection_event: Annotated[str, typer.Option("--selection-event")] = "shortlisted",
) -> None:
    """Drop-in for the seed's bias_metrics_worker.py, with correct numbers; prints the seed-shaped JSON.

    With --tenant-id it prints that tenant's document; without, one document per tenant keyed by tenant id
    (tenants are never pooled). With --dimension it prints that dimension's block, as the seed does.
    """
    from datetime import UTC, datetime

    from fairness_pipeline import worker as seed_worker
    from fairness_pipeline.store import analysis

    if dimension and all_dimensions:
        fail("give --dimension or --all-dimensions, not both", EXIT_USAGE)
    request = seed_worker.WorkerRequest(
        days=days, end=parse_optional_day(end, "--end"), tenant_id=tenant_id, dimension=dimension,
        baseline_event=baseline_event, selection_event=selection_event,
    )  # fmt: skip
    try:
        request.validate()
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    with open_database() as conn:
        if tenant_id is not None:
            require_tenant(conn, tenant_id)
        documents = seed_worker.compute(conn, request)
        if save_to_db:
            analysis.insert_adhoc_bias_metrics(conn, documents, datetime.now(UTC))
            console.print(f"saved {len(documents)} document(s) to bias_metrics")
    if not documents:
        result: object = {"error": "No data", "period": {"days": days}}
    elif dimension:
        blocks = {t: d["dimensions"].get(dimension) for t, d in documents.items()}
        result = blocks[tenant_id] if tenant_id else blocks
    else:
        result = documents[tenant_id] if tenant_id else documents
    text = json.dumps(result, indent=2)
    print(text)
    if output:
        output.write_text(text + "\n")
        console.print(f"results saved to {output}")
    if not documents:
        scope = f"tenant {tenant_id!r}" if tenant_id else "any tenant"
        fail(f"no {baseline_event} events of {scope} in the {days} days ending {request.end or 'today'}", EXIT_USAGE)


@app.command()
def report(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant id.")],
    day: Annotated[str | None, typer.Option("--date", help="Window end (YYYY-MM-DD); default: the latest.")] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="json (internal, unsuppressed), html or md (published).")
    ] = "html",
    out: Annotated[Path | None, typer.Option("--out", help="File to write; default: stdout.")] = None,
) -> None:
    """Write a tenant's stored fairness report for a day as JSON, HTML or markdown."""
    from fairness_pipeline.store import reports

    columns = {"json": 0, "html": 1, "md": 2}
    if fmt not in columns:
        fail(f"--format must be one of {', '.join(columns)}", EXIT_USAGE)
    window_end = parse_optional_day(day, "--date")
    with open_database() as conn:
        require_tenant(conn, tenant)
        latest = reports.latest_report_day(conn, tenant)
        row = reports.stored_report(conn, tenant, window_end or latest)
    if latest is None:
        fail(f"no report for tenant {tenant!r} yet; materialise fairness_reports (fairness-pipeline run)", EXIT_USAGE)
    window_end = window_end or latest
    if row is None:
        fail(f"no report for tenant {tenant!r} on {window_end}; its latest report is for {latest}", EXIT_USAGE)
    content = row[columns[fmt]]
    text = json.dumps(content, indent=2) if fmt == "json" else content
    if out is None:
        print(text)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote the {fmt} report of {tenant} for {window_end} to {out}")


@app.command()
def ui(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the web UI.")] = 3000,
) -> None:
    """Open the Dagster UI and daemon on this project's database; Ctrl-C, kill or closing the terminal stops them,
    leaving no process behind."""
    import time

    from fairness_pipeline.ui import running_ui, signals_as_interrupt

    with open_database():
        pass  # start the embedded server and migrate before Dagster connects
    try:
        with signals_as_interrupt(), running_ui(host, port):
            console.print(
                f"Dagster UI on http://{host}:{port} (schedules and sensors run while it is open); Ctrl-C stops"
            )
            while True:
                time.sleep(1)
    except KeyboardInterrupt:
        console.print("stopped the Dagster UI")
    except (RuntimeError, TimeoutError) as exc:
        fail(str(exc))


# --- demo -------------------------------------------------------------------------------------------------------------

DEMO_BIAS = "company_tier=startup:0.6"
DEMO_RANK_BIAS = "experience_band=15+:4"
DEMO_SCORE_BIAS = "specialty=frontend:-0.15"
DEMO_SLATES = "company_tier=faang:0.3@0.9"
DEMO_DRIFT = "experience_band=0-3:0.1@clicked"
DEMO_BIASED_TENANT = "tenant-1"


@app.command()
def demo(
    days: Annotated[int, typer.Option(min=1)] = 30,
    events_per_day: Annotated[int, typer.Option(min=1)] = 4000,
    seed: Annotated[int, typer.Option()] = 7,
    end: Annotated[
        str | None, typer.Option(help="Last day of the generated period (YYYY-MM-DD; default: yesterday, UTC).")
    ] = None,
) -> None:
    """Start the embedded database, generate events with a planted bias, ingest them and show what is stored."""
    from datetime import UTC, datetime

    from fairness_pipeline import synthetic
    from fairness_pipeline.ingest.loader import ingest_file
    from fairness_pipeline.store import events, reports

    last_day = parse_optional_day(end, "--end") or datetime.now(UTC).date() - timedelta(days=1)
    first = last_day - timedelta(days=days - 1)
    config = synthetic.GeneratorConfig(
        seed=seed, start=first, days=days, tenants=2, events_per_day=events_per_day,
        bias=(synthetic.parse_bias(DEMO_BIAS),), drift=(synthetic.parse_bias(DEMO_DRIFT),),
        rank_bias=(synthetic.parse_rank_bias(DEMO_RANK_BIAS),),
        score_bias=(synthetic.parse_score_bias(DEMO_SCORE_BIAS),),
        slate_concentration=(synthetic.parse_slate_concentration(DEMO_SLATES),), biased_tenants=(DEMO_BIASED_TENANT,),
    )  # fmt: skip
    demo_dir = settings.home_dir() / "demo"
    demo_dir.mkdir(exist_ok=True)
    path = demo_dir / f"events-{first}-{last_day}.csv"
    console.print(
        f"[bold]1.[/bold] generating {days} days ({first} .. {last_day}); planted in {DEMO_BIASED_TENANT} only: "
        f"shortlisting {DEMO_BIAS}, rank {DEMO_RANK_BIAS}, score {DEMO_SCORE_BIAS}, slates {DEMO_SLATES}, "
        f"clicks drifting down to {DEMO_DRIFT} by the last day"
    )
    count = synthetic.write_events(synthetic.generate_events(config), path, "csv")
    console.print(f"   wrote {count:,} events to {path}")

    console.print("[bold]2.[/bold] starting the database and applying migrations")
    with open_database() as conn:
        console.print("[bold]3.[/bold] ingesting")
        with _progress() as progress:
            task = progress.add_task(path.name, total=path.stat().st_size)
            counts = ingest_file(conn, path, on_bytes=lambda n: progress.advance(task, n))
        console.print(f"   {counts.as_dict()}")
        rows = events.stored_summary(conn)
    _print_stored_summary(rows)

    console.print(f"[bold]4.[/bold] running the asset graph through Dagster for the window ending {last_day}")
    if not _run_days(last_day, last_day):
        fail("the pipeline run failed; open the Dagster UI (`fairness-pipeline ui`) to see why")
    with open_database() as conn:
        findings = reports.adverse_findings(conn, last_day, "shown->shortlisted")
    _print_findings(last_day, findings)
    _print_audit_findings(last_day, days)
    _print_risk_and_alerts(last_day, demo_dir)


def _print_risk_and_alerts(window_end: date, demo_dir: Path) -> None:
    """Each tenant's risk level with its top reasons and report; alerts for HIGH and above, as the sensor would."""
    import os

    from fairness_pipeline.defs.automation import ALERT_LEVEL_ENV, levels_at_or_above
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

    levels = levels_at_or_above(os.environ.get(ALERT_LEVEL_ENV, "HIGH"))
    alerting = [(t, lvl, s, a) for t, lvl, s, a in assessments if lvl in levels]
    if alerting:
        from fairness_pipeline.definitions import defs
        from fairness_pipeline.defs.alerting import alert_run_config

        instance = _dagster_instance()
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


def _print_stored_summary(rows: list[tuple]) -> None:
    from rich.table import Table

    table = Table(title="selection_events by tenant and stage")
    for column in ("tenant", "event type", "events", "candidates", "first day", "last day"):
        table.add_column(column)
    for tenant, event_type, events, candidates, first, last in rows:
        table.add_row(tenant, event_type, f"{events:,}", f"{candidates:,}", str(first), str(last))
    table_console().print(table)


def _print_findings(window_end: date, findings: list[tuple]) -> None:
    from rich.table import Table

    table = Table(title=f"Adverse impact, shown -> shortlisted, 30 days ending {window_end} (impact ratio < 0.80)")
    for column in ("tenant", "dimension", "group", "candidates", "impact ratio", "95% CI", "p (adjusted)", "verdict"):
        table.add_column(column)
    for tenant, dimension, group, n, ratio, low, high, p_adjusted, significant, flip_flop in findings:
        if significant and not flip_flop:
            verdict = "significant"
        elif significant:
            verdict = "significant, not practically (flip-flop)"
        else:
            verdict = "not significant: insufficient evidence"
        table.add_row(
            tenant, dimension, group, f"{n:,}", f"{ratio:.3f}", f"{low:.2f}-{high:.2f}",
            "" if p_adjusted is None else f"{p_adjusted:.2g}", verdict,
        )  # fmt: skip
    if not findings:
        console.print("no group has an impact ratio below 0.80")
        return
    table_console().print(table)


def _print_audit_findings(window_end: date, days: int) -> None:
    """What the four audits found in the window (single dimensions): scores, ranks, slates and trends."""
    from rich.table import Table

    from fairness_pipeline.metrics.window import AnalysisSettings
    from fairness_pipeline.store import reports

    first_day = window_end - timedelta(days=days - 1)
    threshold = AnalysisSettings().threshold  # the practical threshold of rank findings
    with open_database() as conn:
        found = reports.audit_findings(conn, window_end, first_day, threshold)

    def p_text(value: float | None) -> str:
        return "" if value is None else "< 1e-300" if value == 0 else f"{value:.2g}"

    def show(title: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        if not rows:
            console.print(f"{title}: nothing found")
            return
        table = Table(title=title)
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*row)
        table_console().print(table)

    show(
        "Scores: LL144 scoring-rate impact ratio < 0.80 (share above the tenant's median score)",
        ("tenant", "dimension", "group", "scored", "scoring rate", "impact ratio", "95% CI", "p (adjusted)"),
        [(t, d, g, f"{n:,}", f"{rate:.3f}", f"{ratio:.3f}", f"{low:.2f}-{high:.2f}", p_text(p))
         for t, d, g, n, rate, ratio, low, high, p, _ in found["SCORING"]],
    )  # fmt: skip
    show(
        "Ranks: significant exposure ratio < 0.80, or ranked below what the scores earn (significant treatment "
        "ratio < 0.80)",
        ("tenant", "dimension", "group", "searches", "exposure ratio", "95% CI", "p (adjusted)", "skew@10",
         "treatment ratio"),
        [(t, d, g, f"{n:,}", f"{ratio:.3f}", f"{low:.2f}-{high:.2f}", p_text(p), f"{skew:.2f}",
          "" if treatment is None else f"{treatment:.3f}" + (" (significant)" if treatment_sig else ""))
         for t, d, g, n, ratio, low, high, p, _, skew, treatment, treatment_sig in found["EXPOSURE"]],
    )  # fmt: skip
    show(
        f"Slates: searches whose shown slate is more than 70% one group, {first_day} .. {window_end}",
        ("tenant", "dimension", "assessed slates", "concentrated", "share", "expected by chance", "significant days",
         "dominant group"),
        [(t, d, f"{a:,}", f"{c:,}", f"{share:.1%}", "< 0.1%" if expected < 0.001 else f"{expected:.1%}",
          f"{sig} of {n_days}", top or "")
         for t, d, a, c, share, expected, sig, n_days, top in found["SLATE"]],
    )  # fmt: skip
    show(
        "Trends: impact ratio worsening week over week (significant drop), or approaching 0.80",
        ("tenant", "stage pair", "dimension", "group", "previous week", "last week", "p (adjusted)", "flag"),
        [(t, pair, d, g, "" if prev is None else f"{prev:.3f}", "" if cur is None else f"{cur:.3f}", p_text(p),
          "worsening" if worse else "approaching 0.80")
         for t, pair, d, g, prev, cur, p, worse, _, _, _ in found["TREND"]],
    )  # fmt: skip


def main() -> None:  # pragma: no cover - console entry point
    app()
    sys.exit(0)
