"""``fairness-pipeline alerts``: the human review queue of HIGH and CRITICAL alerts.

``list`` and ``show`` print data on stdout (a table, or JSON with ``--json``); ``ack`` and ``resolve`` move a review
open -> acknowledged -> resolved by a named reviewer (``--reviewer`` or ``FAIRNESS_REVIEWER``), each change recorded
in the append-only review history.
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Annotated

import typer
from rich.console import Console

from fairness_pipeline.cli.database import open_database, require_tenant
from fairness_pipeline.cli.output import EXIT_USAGE, console, fail, table_console

alerts_app = typer.Typer(
    help="Alerts and their human review.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
)
REVIEWER_ENV = "FAIRNESS_REVIEWER"


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2, default=str))


def _when(value, zone: bool = True) -> str:
    if not value:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC" if zone else "%Y-%m-%d %H:%M")


@alerts_app.command("list")
def list_command(
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status", "-s", help="open, acknowledged, resolved or all (repeatable; default: open and acknowledged)."
        ),
    ] = None,
    tenant_id: Annotated[str | None, typer.Option("--tenant-id", help="Only this tenant.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Review items, most urgent first (priority, then oldest)."""
    from fairness_pipeline.alerts import REVIEW_STATES, list_reviews
    from fairness_pipeline.alerts.model import ACTIVE_REVIEW_STATES

    statuses = list(status or ACTIVE_REVIEW_STATES)
    if "all" in statuses:
        statuses = list(REVIEW_STATES)
    with open_database() as conn:
        if tenant_id is not None:
            require_tenant(conn, tenant_id)
        try:
            reviews = list_reviews(conn, statuses, tenant_id=tenant_id, limit=limit)
        except ValueError as exc:
            fail(str(exc), EXIT_USAGE)
    if as_json:
        _print_json([review.as_dict() for review in reviews])
        return
    from rich.table import Table

    table = Table(title=f"reviews ({', '.join(statuses)}; times UTC)")
    for column in ("review", "alert", "priority", "status", "level", "scope", "tenant", "day", "opened", "reviewer"):
        table.add_column(column, no_wrap=column in ("priority", "day", "opened"))
    for r in reviews:
        priority = f"{r.priority} (escalated)" if r.escalated_at else r.priority
        table.add_row(
            str(r.id),
            str(r.alert_id),
            priority,
            r.status,
            r.level,
            r.scope,
            r.tenant_id,
            r.day.isoformat(),
            _when(r.opened_at, zone=False),
            r.reviewer or "",
        )
    table_console().print(table)
    if not reviews:
        console.print("no review items")


@alerts_app.command("show")
def show_command(
    review_id: Annotated[int, typer.Argument(help="Review id (from `alerts list`).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A review with its alert, the alert's delivery attempts and the review's history."""
    from fairness_pipeline.alerts import ReviewNotFoundError, show_review

    with open_database() as conn:
        try:
            detail = show_review(conn, review_id)
        except ReviewNotFoundError as exc:
            fail(str(exc), EXIT_USAGE)
    if as_json:
        _print_json(detail.as_dict())
        return
    out = Console(highlight=False, soft_wrap=True)
    r, a = detail.review, detail.alert
    out.print(
        f"[bold]review {r.id}[/bold]  {r.priority} priority, {r.status}" + (f" (by {r.reviewer})" if r.reviewer else "")
    )
    out.print(
        f"alert {a.id}  {a.level} {a.scope} for tenant {a.tenant_id}, day {a.day.isoformat()}, "
        f"raised {_when(a.created_at)}, delivery {a.status}"
        + (f", ESCALATED {_when(a.escalated_at)}" if a.escalated_at else "")
    )
    out.print(f"dedup key {a.dedup_key}")
    if r.note:
        out.print(f"note: {r.note}")
    out.print("payload:")
    out.print(json.dumps(a.payload, indent=2, sort_keys=True), markup=False)
    out.print("deliveries:")
    for d in detail.deliveries:
        stage = "escalation" if d.escalation else "initial"
        result = d.detail if d.delivered else d.error
        out.print(
            f"  {_when(d.attempted_at)}  {d.channel:<8} {stage:<10} #{d.attempt} {d.outcome}: {result}", markup=False
        )
    out.print("history:")
    for event in detail.history:
        change = f"{event.from_status or '-'} -> {event.to_status}"
        note = f": {event.note}" if event.note else ""
        out.print(f"  {_when(event.at)}  {event.action:<11} {change:<26} by {event.actor}{note}", markup=False)


ReviewerOption = Annotated[
    str, typer.Option("--reviewer", "-r", envvar=REVIEWER_ENV, help="Who is making the change.", show_envvar=True)
]


@alerts_app.command("ack")
def ack_command(
    review_id: Annotated[int, typer.Argument(help="Review id.")],
    reviewer: ReviewerOption,
    note: Annotated[str | None, typer.Option("--note", "-n", help="Optional note.")] = None,
) -> None:
    """Acknowledge an open review (stops its escalation)."""
    from fairness_pipeline.alerts import acknowledge

    _transition(lambda conn: acknowledge(conn, review_id, reviewer, note))


@alerts_app.command("resolve")
def resolve_command(
    review_id: Annotated[int, typer.Argument(help="Review id.")],
    reviewer: ReviewerOption,
    note: Annotated[str, typer.Option("--note", "-n", help="What was found or done (required).")],
) -> None:
    """Resolve a review (from acknowledged, or straight from open), with a note."""
    from fairness_pipeline.alerts import resolve

    _transition(lambda conn: resolve(conn, review_id, reviewer, note))


def _transition(change) -> None:
    from fairness_pipeline.alerts import ReviewNotFoundError

    with open_database() as conn:
        try:
            review = change(conn)
        except ReviewNotFoundError as exc:
            fail(str(exc), EXIT_USAGE)
        except ValueError as exc:  # the review's state refuses the change (e.g. acknowledging a resolved review)
            fail(str(exc))
    console.print(f"review {review.id} is {review.status} (by {review.reviewer})", highlight=False)
    print(json.dumps(review.as_dict()))
