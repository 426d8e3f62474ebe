"""``fairness-pipeline report``: a tenant's stored report as JSON, HTML, markdown or PDF.

The stored report is printed as it is, unless ``--facts`` or ``--profile`` asks for other facts or another risk
profile: then it is stated again from the stored internal report (facts), or assessed and built again from the
stored tables (profile), in memory; nothing stored changes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from fairness_pipeline.cli.database import open_database, require_tenant
from fairness_pipeline.cli.output import EXIT_USAGE, console, fail, parse_optional_day, profile_option

FORMATS = ("json", "html", "md", "pdf")
REPORT_EXAMPLES = """Examples:
\b
  fairness-pipeline report --tenant tenant-1 --format pdf --out report.pdf
  fairness-pipeline report --tenant tenant-1 --date 2026-11-21 --format md
  fairness-pipeline report --tenant tenant-1 --facts facts.toml --profile nyc_ll144
"""


def _rebuilt(conn, internal: dict[str, Any], tenant: str, profile: str, facts) -> dict[str, Any]:
    """The report built again from the stored tables with another risk profile (same window, settings and facts)."""
    from datetime import date

    from fairness_pipeline.audits import risk_audit_frames
    from fairness_pipeline.reports.builder import build_report
    from fairness_pipeline.reports.facts import ReportFacts
    from fairness_pipeline.risk import assess
    from fairness_pipeline.store.report_reads import report_inputs

    window_end = date.fromisoformat(internal["window"]["end"])
    inputs = report_inputs(conn, window_end)
    impacts = inputs["impacts"][inputs["impacts"]["tenant_id"] == tenant].reset_index(drop=True)
    risk = internal["risk_assessment"]
    assessment = assess(
        impacts,
        audits=risk_audit_frames(inputs),
        trends=inputs["series"],
        profile=profile,
        context=risk.get("context"),
        seed=risk.get("bootstrap", {}).get("seed", 0),
        window_end=window_end,
    )
    if facts is None:
        stated, method = internal["data_source"], internal["methodology"]
        released = method.get("tool_distribution_date")
        facts = ReportFacts(
            data_source=stated["name"],
            data_explanation=stated["explanation"],
            auditor=stated.get("auditor"),
            employer=stated.get("employer"),
            tool_distribution_date=date.fromisoformat(released) if released else None,
        )
    method = internal["methodology"]
    return build_report(
        tenant,
        window_end,
        inputs["impacts"],
        inputs["frames"],
        assessment,
        trends=inputs["series"],
        audits=risk_audit_frames(inputs),
        facts=facts,
        min_cell=method["min_cell"],
        window_days=internal["window"]["days"],
        trend_days=method["trend_days"],
        headline_stage_pair=method["headline_stage_pair"],
    )


def report(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant id.")],
    day: Annotated[
        str | None, typer.Option("--date", metavar="YYYY-MM-DD", help="Window end; default: the latest.")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", metavar="FORMAT", help="json (internal, unsuppressed), html, md or pdf.")
    ] = "html",
    out: Annotated[Path | None, typer.Option("--out", metavar="FILE", help="File to write; default: stdout.")] = None,
    facts_file: Annotated[
        Path | None,
        typer.Option(
            "--facts", metavar="FILE", help="Report facts (TOML: data source, distribution date, auditor, employer)."
        ),
    ] = None,
    profile: Annotated[str | None, profile_option()] = None,
) -> None:
    """Write a tenant's report for a day as JSON, HTML, markdown or PDF (PDF: the HTML laid out by WeasyPrint)."""
    from fairness_pipeline.reports.builder import apply_facts
    from fairness_pipeline.reports.facts import FactsError, load_facts
    from fairness_pipeline.reports.html import render_html
    from fairness_pipeline.reports.markdown import render_markdown
    from fairness_pipeline.risk.profiles import ProfileError
    from fairness_pipeline.store.report_reads import latest_report_day, stored_report

    if fmt not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}", EXIT_USAGE)
    if fmt == "pdf" and out is None and sys.stdout.isatty():
        fail("--format pdf writes binary data: give --out FILE (or redirect stdout)", EXIT_USAGE)
    window_end = parse_optional_day(day, "--date")
    try:
        facts = load_facts(facts_file) if facts_file is not None else None
    except FactsError as exc:
        fail(f"--facts: {exc}", EXIT_USAGE)
    profile_name = None
    if profile is not None:
        from fairness_pipeline.cli.runs import resolve_profile

        try:
            profile_name = resolve_profile(profile)
        except ProfileError as exc:
            fail(f"--profile: {exc}", EXIT_USAGE)
    with open_database() as conn:
        require_tenant(conn, tenant)
        latest = latest_report_day(conn, tenant)
        if latest is None:
            fail(
                f"no report for tenant {tenant!r} yet; materialise fairness_reports (fairness-pipeline run)", EXIT_USAGE
            )
        window_end = window_end or latest
        stored = stored_report(conn, tenant, window_end)
        if stored is None:
            fail(f"no report for tenant {tenant!r} on {window_end}; its latest report is for {latest}", EXIT_USAGE)
        internal = stored.internal
        restated = False
        if profile_name is not None and profile_name != internal["risk_assessment"].get("profile"):
            internal, restated = _rebuilt(conn, internal, tenant, profile_name, facts), True
    if facts is not None and not restated:
        internal, restated = apply_facts(internal, facts), True
    if fmt == "json":
        content: str | bytes = json.dumps(internal, indent=2)
    elif fmt == "md":
        content = render_markdown(internal) if restated else stored.markdown
    else:
        content = render_html(internal) if restated else stored.html
    if fmt == "pdf":
        from fairness_pipeline.reports.pdf import PdfUnavailableError, render_pdf

        try:
            content = render_pdf(content)
        except PdfUnavailableError as exc:
            fail(str(exc))
    if out is None:
        if isinstance(content, bytes):
            sys.stdout.buffer.write(content)
        else:
            print(content)
        return
    if isinstance(content, bytes):
        out.write_bytes(content)
    else:
        out.write_text(content, encoding="utf-8")
    console.print(f"wrote the {fmt} report of {tenant} for {window_end} to {out}")
