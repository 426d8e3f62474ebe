"""``fairness-pipeline retention apply`` and ``fairness-pipeline erase``: the data lifecycle from the command line.

``retention apply`` deletes what the retention policy (``FAIRNESS_RETENTION_POLICY`` or the packaged
``lifecycle/retention.yaml``) no longer keeps, recording each table's count in ``retention_deletions``;
``--dry-run`` only counts. A policy shorter than the regulatory minimum is refused (exit 2). ``erase`` removes one
candidate's rows in one transaction and records the erasure without the id; the days it changed are re-run by the
``erasure_recompute_sensor``. Data goes to stdout (a table, or JSON with ``--json``), messages to stderr.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

import typer

from fairness_pipeline.cli.database import open_database, require_tenant
from fairness_pipeline.cli.output import EXIT_USAGE, console, fail, table_console
from fairness_pipeline.metrics.window import DEFAULT_ANALYSIS

WINDOW_DAYS = DEFAULT_ANALYSIS.window_days
"""The windows' length: an erased day changes the windows ending on it and on the days after, up to this many."""

retention_app = typer.Typer(
    help="Delete data older than the retention policy allows.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
)


@retention_app.command("apply")
def retention_apply(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Delete, per table, the rows older than their category's retention (events, rejects, quarantine, stored
    arrays, results, reports) and record what was removed."""
    from fairness_pipeline.lifecycle import PolicyError, load_policy
    from fairness_pipeline.store import lifecycle as store

    try:
        policy = load_policy()
    except PolicyError as exc:
        fail(str(exc), EXIT_USAGE)
    cutoffs = policy.cutoffs(datetime.now(UTC).date())
    with open_database() as conn:
        tables = store.count_expired(conn, cutoffs) if dry_run else store.delete_expired(conn, cutoffs)
    total = sum(t.rows for t in tables)
    if as_json:
        document = {
            "dry_run": dry_run,
            "policy": policy.source,
            "minimum_days": policy.minimum_days,
            "retention_days": policy.days,
            "rows": total,
            "tables": [t.as_dict() for t in tables],
        }
        print(json.dumps(document, indent=2))
        return
    from rich.table import Table

    verb = "would delete" if dry_run else "deleted"
    table = Table(title=f"retention ({policy.source}): rows {verb}, older than the cutoff (first day kept, UTC)")
    for column in ("category", "table", "cutoff", "rows"):
        table.add_column(column, justify="right" if column == "rows" else "left")
    for t in tables:
        table.add_row(t.category, t.table, t.cutoff.isoformat(), f"{t.rows:,}")
    table_console().print(table)
    console.print(f"{total:,} row(s) {verb}" + ("" if dry_run else "; recorded in retention_deletions"))


def erase(
    tenant: Annotated[str, typer.Option("--tenant", help="The candidate's tenant.")],
    candidate: Annotated[str, typer.Option("--candidate", help="The candidate id, as the events carry it.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Erase one candidate: their events, validated and quarantined copies, day summaries and day arrays, and the
    rejected lines naming them, in one transaction; recorded without the id; the days changed are re-analysed."""
    from fairness_pipeline.lifecycle import erasure
    from fairness_pipeline.store import lifecycle as store

    if not tenant.strip() or not candidate.strip():
        fail("--tenant and --candidate must not be empty", EXIT_USAGE)
    with open_database() as conn:
        require_tenant(conn, tenant)
        done = store.erase_candidate(
            conn,
            tenant,
            candidate,
            subject_hash=erasure.subject_hash(tenant, candidate),
            candidate_pattern=erasure.field_pattern(candidate),
            tenant_pattern=erasure.field_pattern(tenant),
        )
    if as_json:
        print(json.dumps({"tenant": tenant, **done.as_dict()}, indent=2))
        return
    if not done.rows:
        console.print(f"nothing held for this candidate in {tenant}; erasure {done.record_id} recorded")
        return
    from rich.table import Table

    table = Table(title=f"erasure {done.record_id} ({tenant}): rows removed")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in done.rows_by_table.items():
        table.add_row(name, f"{rows:,}")
    table_console().print(table)
    console.print(f"{done.rows:,} row(s) removed from the tables above")
    if done.days:
        first, last = done.days[0], min(done.days[-1] + timedelta(days=WINDOW_DAYS - 1), date.today() - timedelta(1))
        console.print(
            f"{len(done.days)} day(s) marked for recomputation ({first} .. {done.days[-1]}): the "
            "erasure_recompute_sensor re-runs them and the windows containing them; without the Dagster daemon, "
            f"run `fairness-pipeline run --start {first} --end {max(first, last)} --tenant {tenant}`"
        )
