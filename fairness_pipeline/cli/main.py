"""``fairness-pipeline``: database, data generation, ingestion and the demo.

Heavy libraries (Dagster, Great Expectations, fairlearn) are imported inside the commands that need them, so
``--help`` and the database commands start fast. Failures print one line on stderr and exit non-zero: 1 for runtime
failures, 2 for bad input (see ``cli/output.py``); ``cli/errors.py`` catches whatever else escapes a command.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from fairness_pipeline import settings
from fairness_pipeline.cli.alerts import alerts_app
from fairness_pipeline.cli.api import api_app
from fairness_pipeline.cli.attributes import ATTRIBUTES_OPTION_HELP, attributes_app, generated_frames
from fairness_pipeline.cli.database import open_database, require_tenant, resolve_url
from fairness_pipeline.cli.demo import demo
from fairness_pipeline.cli.errors import FairnessGroup
from fairness_pipeline.cli.lifecycle import erase, retention_app
from fairness_pipeline.cli.output import (
    EXIT_STOPPED,
    EXIT_USAGE,
    console,
    fail,
    first_line,
    parse_day,
    parse_optional_day,
    profile_option,
)
from fairness_pipeline.cli.printing import ingest_progress
from fairness_pipeline.cli.report import REPORT_EXAMPLES, report
from fairness_pipeline.cli.tenants import register_ingested_tenants, tenants_app
from fairness_pipeline.metrics.window import DEFAULT_ANALYSIS

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
app.add_typer(api_app, name="api")
app.add_typer(retention_app, name="retention")
app.add_typer(tenants_app, name="tenants")
app.command("erase")(erase)
app.add_typer(attributes_app, name="attributes")


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


GENERATE_EXAMPLES = """Examples:
\b
  fairness-pipeline generate --out events.csv --days 7
  fairness-pipeline generate --to-db --start 2026-01-01 \\
      --bias company_tier=startup:0.6 --biased-tenant tenant-1
  fairness-pipeline generate --out drift.jsonl \\
      --drift experience_band=0-3:0.1@clicked
  fairness-pipeline generate --out ranks.csv \\
      --rank-bias experience_band=15+:4 \\
      --score-bias specialty=frontend:-0.15 \\
      --slate-concentration company_tier=faang:0.3@0.9
"""


@app.command(epilog=GENERATE_EXAMPLES)
def generate(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File to write (.csv or .jsonl).")] = None,
    to_db: Annotated[bool, typer.Option("--to-db", help="Write straight into the database instead of a file.")] = False,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same events.")] = 7,
    start: Annotated[str, typer.Option(metavar="YYYY-MM-DD", help="First day (UTC).")] = "2026-01-01",
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
    attributes: Annotated[Path | None, typer.Option(help=ATTRIBUTES_OPTION_HELP)] = None,
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
    frames = generated_frames(config, attributes)
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
    with open_database() as conn, ingest_progress() as progress:
        for path in files:
            size = path.stat().st_size if path.exists() else None
            task = progress.add_task(path.name, total=size)
            try:
                counts = ingest_file(
                    conn, path, on_bytes=lambda n, t=task: progress.advance(t, n), on_tenants=register_ingested_tenants
                )
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


@app.command()
def run(
    start: Annotated[str, typer.Option(metavar="YYYY-MM-DD", help="First day (UTC).")],
    end: Annotated[str | None, typer.Option(metavar="YYYY-MM-DD", help="Last day (default: --start).")] = None,
    profile: Annotated[str, profile_option()] = "default",
    local: Annotated[bool, typer.Option("--local", help="Run here even when a Dagster daemon is running.")] = False,
    tenant: Annotated[
        list[str] | None,
        typer.Option("--tenant", help="Only this tenant's windows (repeatable; default: every tenant)."),
    ] = None,
) -> None:
    """Materialise the asset graph for a range of days through Dagster.

    The event layer runs per UTC day for every tenant, then each tenant's windows run as its own tenant-day
    partitions: with --tenant only that tenant's (a tenant onboarded or corrected is backfilled alone), and a
    tenant whose run fails leaves the others' results. With a Dagster daemon running (`fairness-pipeline ui`) the
    range is submitted to it as a backfill; otherwise (or with --local) it runs here, recorded as a backfill. Either
    way the command prints the UI links first, then the steps and partitions done and the asset at work, and a
    summary at the end.
    """
    from fairness_pipeline.cli.runs import resolve_profile, run_days
    from fairness_pipeline.risk.profiles import ProfileError

    first_day = parse_day(start, "--start")
    last_day = parse_optional_day(end, "--end") or first_day
    if last_day < first_day:
        fail(f"--end {last_day} is before --start {first_day}", EXIT_USAGE)
    try:
        profile_name = resolve_profile(profile)
    except ProfileError as exc:
        fail(f"--profile: {exc}", EXIT_USAGE)
    with open_database():
        pass  # start the embedded server, migrate, and fail in one line if no database is reachable
    if not run_days(first_day, last_day, profile_name, local=local, tenants=tenant):
        raise typer.Exit(1)


@app.command()
def worker(
    days: Annotated[int, typer.Option(help="Days in the window.")] = DEFAULT_ANALYSIS.window_days,
    dimension: Annotated[str | None, typer.Option(help="Only this dimension.")] = None,
    all_dimensions: Annotated[bool, typer.Option("--all-dimensions", help="All dimensions (the default).")] = False,
    tenant_id: Annotated[str | None, typer.Option("--tenant-id", help="Only this tenant.")] = None,
    output: Annotated[Path | None, typer.Option(help="Also write the JSON to this file.")] = None,
    save_to_db: Annotated[bool, typer.Option("--save-to-db", help="Insert the documents into bias_metrics.")] = False,
    end: Annotated[
        str | None, typer.Option(metavar="YYYY-MM-DD", help="Last day of the window (default: today, UTC).")
    ] = None,
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
        days=days,
        end=parse_optional_day(end, "--end"),
        tenant_id=tenant_id,
        dimension=dimension,
        baseline_event=baseline_event,
        selection_event=selection_event,
    )
    try:
        request.validate()
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    with open_database() as conn:
        if tenant_id is not None:
            require_tenant(conn, tenant_id)
        scope = f"tenant {tenant_id}" if tenant_id else "every tenant"
        started = time.monotonic()
        with console.status(f"counting {days} days of events for {scope} ..."):
            documents = seed_worker.compute(conn, request)
        if documents:  # with none, the one line is the error below
            console.print(f"computed {len(documents)} tenant document(s) in {time.monotonic() - started:.1f} s")
        if save_to_db:
            analysis.insert_adhoc_bias_metrics(conn, documents, datetime.now(UTC))
            console.print(f"saved {len(documents)} document(s) to bias_metrics")
    if not documents:
        result: object = {"error": "No data", "period": {"days": days}}
    elif dimension:
        blocks = {t: seed_worker.dimension_block(d, dimension) for t, d in documents.items()}
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
def ui(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the web UI.")] = 3000,
) -> None:
    """Open the Dagster UI and daemon on this project's database (Ctrl-C, kill or closing the terminal stops all).

    Webserver, daemon and code servers run in one process group and leave no process behind."""
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


app.command(epilog=REPORT_EXAMPLES)(report)
app.command()(demo)


def main() -> None:  # pragma: no cover - console entry point
    app()
    sys.exit(0)
