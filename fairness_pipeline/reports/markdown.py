"""A short markdown summary with one chart, for Dagster's ``MetadataValue.md`` (the asset's page in the UI).

Markdown is a published format: it is written from the suppressed report. The chart is the impact-ratio chart of
the table that drives the adverse-impact component (else the headline stage pair's first table), embedded as an SVG
``data:`` image (the Dagster UI's markdown sanitiser allows ``data:`` image sources; no file or network needed).
"""

from __future__ import annotations

from typing import Any

from fairness_pipeline.reports import charts
from fairness_pipeline.reports.interpretation import fmt_ratio, stage_label
from fairness_pipeline.reports.publish import publish_report

MAX_FINDINGS = 5


def _chart_table(report: dict[str, Any]) -> dict[str, Any] | None:
    driver = report["risk_assessment"]["components"].get("adverse_impact", {}).get("driver") or {}
    entries = report["charts"]["impact_ratios"]
    for chart in entries:
        if chart["stage_pair"] == driver.get("stage_pair") and chart["dimension"] == driver.get("dimension"):
            return chart
    headline = report["methodology"]["headline_stage_pair"]
    return next((c for c in entries if c["stage_pair"] == headline), entries[0] if entries else None)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: dict[str, Any], *, min_cell: int | None = None, chart: bool = True) -> str:
    """Markdown: verdict, components, key findings, rules applied, and one chart."""
    published = publish_report(report, min_cell)
    risk, summary = published["risk_assessment"], published["executive_summary"]
    window = published["window"]
    lines = [
        f"## Fairness report: {_cell(published['tenant_id'])}, window ending {window['end']}",
        "",
        f"**Risk level: {risk['level']}** (score {fmt_ratio(risk.get('score'))}, 95% interval "
        f"{fmt_ratio(risk.get('ci_low'))} to {fmt_ratio(risk.get('ci_high'))}, band {risk.get('band') or 'n/a'}). "
        f"{summary['timeline']}",
        "",
        summary["headline"],
        "",
        "| component | value | weight used | contribution |",
        "|---|---:|---:|---:|",
    ]
    for name, c in risk["components"].items():
        value = "no data" if c["value"] is None else f"{c['value']:.2f}"
        lines.append(f"| {name} | {value} | {100 * c['weight_used']:.0f}% | {c['contribution']:.3f} |")
    if summary["key_findings"]:
        lines += ["", "**Key findings**", ""]
        lines += [f"- {_cell(s)}" for s in summary["key_findings"][:MAX_FINDINGS]]
    if risk["applied_rules"]:
        lines += ["", "**Rules applied**", ""]
        lines += [f"- `{r['rule']}` ({r['level_before']} → {r['level_after']}): {_cell(r['reason'])}"
                  for r in risk["applied_rules"]]  # fmt: skip
    table = _chart_table(published) if chart else None
    if table is not None:
        title = f"Impact ratios, {table['dimension']}, {stage_label(table['stage_pair'])}"
        lines += ["", f"![{title}]({charts.data_uri(charts.impact_ratio_chart(table))})"]
    lines += ["", f"_Counts under {published['publication']['min_cell']} are suppressed. No candidate data._"]
    return "\n".join(lines)
