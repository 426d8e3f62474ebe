"""Self-contained HTML report: inline CSS and inline SVG charts, no script, no external resource.

HTML is a published format: ``render_html`` always renders the suppressed version of the report
(``publish.publish_report``), whatever it is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from fairness_pipeline.reports import charts
from fairness_pipeline.reports.interpretation import fmt_count, fmt_rate, fmt_ratio, stage_label, suppression_note
from fairness_pipeline.reports.publish import publish_report

TEMPLATE_DIR = Path(__file__).with_name("templates")


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(cnt=fmt_count, rate=fmt_rate, ratio=fmt_ratio)
    return env


def _impact_blocks(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Impact charts grouped by stage pair: the headline pair's single dimensions open, the rest folded."""
    headline = report["methodology"]["headline_stage_pair"]
    blocks: dict[tuple[str, str, bool], list[dict[str, Any]]] = {}
    for chart, table in zip(report["charts"]["impact_ratios"], report["detailed_analysis"], strict=True):
        key = (chart["kind"], chart["stage_pair"], chart["intersectional"])
        caption = " ".join(table["interpretation"])
        blocks.setdefault(key, []).append({"svg": Markup(charts.impact_ratio_chart(chart)), "caption": caption})
    out = []
    for (kind, pair, intersectional), items in blocks.items():
        what = "scoring rates" if kind == "scoring" else stage_label(pair)
        title = f"{what}: {'intersections' if intersectional else 'single dimensions'}"
        open_ = kind == "selection" and pair == headline and not intersectional
        out.append({"title": title, "charts": items, "open": open_})
    return sorted(out, key=lambda b: not b["open"])


def _trend_blocks(report: dict[str, Any]) -> list[dict[str, Any]]:
    headline = report["methodology"]["headline_stage_pair"]
    blocks: dict[str, list[Markup]] = {}
    for chart in report["charts"]["trend"]:
        blocks.setdefault(chart["stage_pair"], []).append(Markup(charts.trend_chart(chart)))
    out = [{"title": stage_label(p), "charts": c, "open": p == headline} for p, c in blocks.items()]
    if out and not any(b["open"] for b in out):
        out[0]["open"] = True
    return sorted(out, key=lambda b: not b["open"])


def render_html(report: dict[str, Any], *, min_cell: int | None = None) -> str:
    """The HTML page of a report (published: small cells suppressed)."""
    published = publish_report(report, min_cell)
    risk = published["risk_assessment"]
    rendered = {
        "gauge": Markup(charts.gauge(risk)),
        "components": Markup(charts.components_chart(published["charts"]["risk_components"])),
        "funnel": [Markup(charts.funnel_chart(c)) for c in published["charts"]["funnel"]],
    }
    template = _environment().get_template("report.html.j2")
    return template.render(
        report=published,
        risk=risk,
        summary=published["executive_summary"],
        charts=rendered,
        impact_blocks=_impact_blocks(published),
        trend_blocks=_trend_blocks(published),
        publication_note=suppression_note(published["publication"]["min_cell"]),
    )
