"""A short markdown summary with one chart, for Dagster's ``MetadataValue.md`` (the asset's page in the UI).

Markdown is a published format: it is written from the suppressed report. The chart is the impact-ratio chart of
the table that drives the adverse-impact component (else the headline stage pair's first table), drawn as a markdown
table with a text bar per group, so it renders wherever markdown is read (GitHub, GitLab, Confluence, the Dagster
UI) with no image, file or ``data:`` URI.

Everything that comes from the data (tenant ids, group names, dimension values, and the sentences that quote them)
goes through ``md_text``, so a tenant called ``t|1 *x* <b>[a](b)`` is printed as it is, not as markup.
"""

from __future__ import annotations

import re
from typing import Any

from fairness_pipeline.reports import charts
from fairness_pipeline.reports.interpretation import (
    FINDING_LABELS,
    fmt_count,
    fmt_ratio,
    stage_label,
    suppression_note,
)
from fairness_pipeline.reports.publish import publish_report

MAX_FINDINGS = 5
BAR_STEP = 0.05
BAR_MAX = 1.5

_INLINE_MARKUP = re.compile(r"([\\`*_\[\]<>|#!~&])")
"""Characters that open emphasis, code, links, images, raw HTML, entities, table cells or heading ends."""
_BLOCK_START = re.compile(r"^([-+=]|\d+[.)])")
"""What turns the start of a list item's text into a nested list, heading underline or numbered item."""


def _chart_table(report: dict[str, Any]) -> dict[str, Any] | None:
    driver = report["risk_assessment"]["components"].get("adverse_impact", {}).get("driver") or {}
    entries = report["charts"]["impact_ratios"]
    for chart in entries:
        if chart["stage_pair"] == driver.get("stage_pair") and chart["dimension"] == driver.get("dimension"):
            return chart
    headline = report["methodology"]["headline_stage_pair"]
    return next((c for c in entries if c["stage_pair"] == headline), entries[0] if entries else None)


def md_text(value: Any) -> str:
    """Text from the data as literal markdown on one line: inline markup and HTML backslash-escaped (CommonMark
    allows a backslash before any ASCII punctuation) and no block syntax at its start."""
    text = _INLINE_MARKUP.sub(r"\\\1", " ".join(str(value).split()))
    return _BLOCK_START.sub(lambda m: m.group(1)[:-1] + "\\" + m.group(1)[-1], text, count=1)


def render_markdown(report: dict[str, Any], *, min_cell: int | None = None, chart: bool = True) -> str:
    """Markdown: verdict, components, key findings, rules applied, one chart and the LL144 summary."""
    published = publish_report(report, min_cell)
    risk, summary = published["risk_assessment"], published["executive_summary"]
    window = published["window"]
    lines = [
        f"## Fairness report: {md_text(published['tenant_id'])}, window ending {window['end']}",
        "",
        f"**Risk level: {md_text(risk['level'])}** (score {fmt_ratio(risk.get('score'))}, 95% interval "
        f"{fmt_ratio(risk.get('ci_low'))} to {fmt_ratio(risk.get('ci_high'))}, "
        f"band {md_text(risk.get('band') or 'n/a')}). {md_text(summary['timeline'])}",
        "",
        md_text(summary["headline"]),
        "",
        "| component | value | weight used | contribution |",
        "|---|---:|---:|---:|",
    ]
    for name, c in risk["components"].items():
        value = "no data" if c["value"] is None else f"{c['value']:.2f}"
        lines.append(f"| {name} | {value} | {100 * c['weight_used']:.0f}% | {c['contribution']:.3f} |")
    if summary["key_findings"]:
        lines += ["", "**Key findings**", ""]
        lines += [f"- {md_text(s)}" for s in summary["key_findings"][:MAX_FINDINGS]]
    if risk["applied_rules"]:
        lines += ["", "**Rules applied**", ""]
        lines += [
            f"- `{r['rule']}` ({r['level_before']} → {r['level_after']}): {md_text(r['reason'])}"
            for r in risk["applied_rules"]
        ]
    table = _chart_table(published) if chart else None
    if table is not None:
        lines += ["", *chart_table(table)]
    lines += ["", *ll144_section(published)]
    lines += ["", f"_{suppression_note(published['publication']['min_cell'])} No candidate data._"]
    return "\n".join(lines)


def ratio_bar(ratio: float | None, threshold: float) -> str:
    """A text bar of an impact ratio: one block per 0.05 up to 1.5, and where the threshold falls."""
    if ratio is None:
        return ""
    blocks = round(min(ratio, BAR_MAX) / BAR_STEP)
    mark = round(threshold / BAR_STEP)
    bar = "".join("█" if i < blocks else ("┊" if i == mark else " ") for i in range(max(blocks, mark + 1)))
    return f"`{bar.rstrip()}`"


def chart_table(chart: dict[str, Any]) -> list[str]:
    """An impact-ratio chart as a markdown table (group, ratio and bar, interval, candidates, finding)."""
    threshold = chart["threshold"]
    lines = [
        f"**Impact ratios, {md_text(chart['dimension'])}, {md_text(stage_label(chart['stage_pair']))}** "
        f"(reference: {md_text(chart.get('reference_group') or 'none')}; `┊` marks {threshold:.2f})",
        "",
        "| group | impact ratio | | 95% interval | candidates | finding |",
        "|---|---:|---|---|---:|---|",
    ]
    for p in chart["points"]:
        ratio = p.get("impact_ratio")
        interval = "" if p.get("ci_low") is None else f"{fmt_ratio(p['ci_low'])}-{fmt_ratio(p['ci_high'])}"
        finding = "withheld: " + charts.withheld_label(p) if p.get("suppressed") else FINDING_LABELS[p["finding"]]
        lines.append(
            f"| {md_text(p['group'])} | {fmt_ratio(ratio) if ratio is not None else ''} | "
            f"{ratio_bar(ratio, threshold)} | {interval} | {md_text(fmt_count(p['n']))} | {md_text(finding)} |"
        )
    return lines


def ll144_section(report: dict[str, Any]) -> list[str]:
    """The NYC LL144 summary of the headline stage pair: whether its categories are self-identified or proxies only,
    then per dimension (intersection included) each category's candidates, selected, rate and impact ratio, the
    categories under 2% marked as left out, and the unknown count."""
    ll = report["ll144_audit_summary"]
    proxies = ll["categories_source"] != "self_identified"
    lines = [
        "**NYC LL144 summary**" + (" (proxies only: monitoring evidence, not an LL144 bias audit)" if proxies else ""),
        "",
        md_text(ll["statement"]),
    ]
    section = ll["selection"]
    if not section:
        return [*lines, "", "No selection table of the headline stage pair."]
    lines += [
        "",
        f"{md_text(stage_label(section['stage_pair']))}: {md_text(fmt_count(section['number_of_candidates']))} "
        f"candidates, {md_text(fmt_count(section['number_selected']))} selected.",
        "",
        "| dimension | category | candidates | selected | rate | impact ratio | note |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for c in section["categories"]:
        note = (
            "left out (under 2%)" if c["excluded_small_share"] else "withheld (small count)" if c["suppressed"] else ""
        )
        rate = "" if c["rate"] is None else f"{100 * c['rate']:.1f}%"
        ratio = "" if c["impact_ratio"] is None else fmt_ratio(c["impact_ratio"])
        lines.append(
            f"| {md_text(c['dimension'])} | {md_text(c['category'])} | {md_text(fmt_count(c['n']))} | "
            f"{md_text(fmt_count(c['x']))} | {rate} | {ratio} | {note} |"
        )
    unknown = "; ".join(f"{md_text(d)} {md_text(fmt_count(n))}" for d, n in section["unknown_count"].items())
    lines += ["", f"Unknown category (never the reference, never compared): {unknown}."]
    return lines
