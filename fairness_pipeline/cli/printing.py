"""What the CLI prints: progress of ingestion and of range runs, and the demo's tables of findings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta

from fairness_pipeline.cli.database import open_database
from fairness_pipeline.cli.output import console, table_console
from fairness_pipeline.metrics.window import DEFAULT_ANALYSIS, HEADLINE_STAGE_PAIR

THRESHOLD = f"{DEFAULT_ANALYSIS.threshold:.2f}"
"""The practical threshold as the tables' titles print it."""


def ingest_progress():
    """A transient progress bar counting bytes read."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def print_stored_summary(rows: list[tuple]) -> None:
    from rich.table import Table

    table = Table(title="selection_events by tenant and stage")
    for column in ("tenant", "event type", "events", "candidates", "first day", "last day"):
        table.add_column(column)
    for tenant, event_type, events, candidates, first, last in rows:
        table.add_row(tenant, event_type, f"{events:,}", f"{candidates:,}", str(first), str(last))
    table_console().print(table)


def print_findings(window_end: date, findings: list[tuple]) -> None:
    from rich.table import Table

    pair = HEADLINE_STAGE_PAIR.replace("->", " -> ")
    days = DEFAULT_ANALYSIS.window_days
    table = Table(title=f"Adverse impact, {pair}, {days} days ending {window_end} (impact ratio < {THRESHOLD})")
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
            tenant,
            dimension,
            group,
            f"{n:,}",
            f"{ratio:.3f}",
            f"{low:.2f}-{high:.2f}",
            "" if p_adjusted is None else f"{p_adjusted:.2g}",
            verdict,
        )
    if not findings:
        console.print(f"no group has an impact ratio below {THRESHOLD}")
        return
    table_console().print(table)


def print_audit_findings(window_end: date, days: int) -> None:
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
        f"Scores: LL144 scoring-rate impact ratio < {THRESHOLD} (share above the tenant's median score)",
        ("tenant", "dimension", "group", "scored", "scoring rate", "impact ratio", "95% CI", "p (adjusted)"),
        [
            (t, d, g, f"{n:,}", f"{rate:.3f}", f"{ratio:.3f}", f"{low:.2f}-{high:.2f}", p_text(p))
            for t, d, g, n, rate, ratio, low, high, p, _ in found["SCORING"]
        ],
    )
    show(
        f"Ranks: significant exposure ratio < {THRESHOLD}, or ranked below what the scores earn (significant treatment "
        f"ratio < {THRESHOLD})",
        (
            "tenant",
            "dimension",
            "group",
            "searches",
            "exposure ratio",
            "95% CI",
            "p (adjusted)",
            "skew@10",
            "treatment ratio",
        ),
        [
            (
                t,
                d,
                g,
                f"{n:,}",
                f"{ratio:.3f}",
                f"{low:.2f}-{high:.2f}",
                p_text(p),
                f"{skew:.2f}",
                "" if treatment is None else f"{treatment:.3f}" + (" (significant)" if treatment_sig else ""),
            )
            for t, d, g, n, ratio, low, high, p, _, skew, treatment, treatment_sig in found["EXPOSURE"]
        ],
    )
    show(
        f"Slates: searches whose shown slate is more than 70% one group, {first_day} .. {window_end}",
        (
            "tenant",
            "dimension",
            "assessed slates",
            "concentrated",
            "share",
            "expected by chance",
            "significant days",
            "dominant group",
        ),
        [
            (
                t,
                d,
                f"{a:,}",
                f"{c:,}",
                f"{share:.1%}",
                "< 0.1%" if expected < 0.001 else f"{expected:.1%}",
                f"{sig} of {n_days}",
                top or "",
            )
            for t, d, a, c, share, expected, sig, n_days, top in found["SLATE"]
        ],
    )
    show(
        f"Trends: impact ratio worsening week over week (significant drop), or approaching {THRESHOLD}",
        ("tenant", "stage pair", "dimension", "group", "previous week", "last week", "p (adjusted)", "flag"),
        [
            (
                t,
                pair,
                d,
                g,
                "" if prev is None else f"{prev:.3f}",
                "" if cur is None else f"{cur:.3f}",
                p_text(p),
                "worsening" if worse else f"approaching {THRESHOLD}",
            )
            for t, pair, d, g, prev, cur, p, worse, _, _, _ in found["TREND"]
        ],
    )


@contextmanager
def progress_printer(title: str) -> Iterator[Callable]:
    """A status line for a range run, and a line per finished step; yields the ``show`` callback of ``run_range``."""
    with console.status(title) as status:

        def show(progress, finished: tuple[str, bool] | None) -> None:
            if finished is not None:
                step, ok = finished
                state = "done" if ok else "[red]FAILED[/red]"
                console.print(f"  {step}: {state}; {progress.text()}", highlight=False)
            status.update(progress.text())

        yield show


def print_run_summary(summaries: list) -> None:
    """One line per run (job and tenant, days, outcome, steps, time) and the total."""
    for s in summaries:
        state = "[green]succeeded[/green]" if s.success else "[red]failed[/red]"
        days = (s.last_day - s.first_day).days + 1
        job = s.job_name if getattr(s, "tenant", None) is None else f"{s.job_name} {s.tenant}"
        console.print(
            f"  {job} {s.first_day} .. {s.last_day} ({days} day(s)): {state}, {s.steps} steps in "
            f"{s.seconds:.0f} s (run {s.run_id})",
            highlight=False,
        )
    ok = all(s.success for s in summaries)
    console.print(
        f"{'done' if ok else 'stopped'}: {sum(s.success for s in summaries)} of {len(summaries)} run(s) succeeded in "
        f"{sum(s.seconds for s in summaries):.0f} s",
        highlight=False,
    )
