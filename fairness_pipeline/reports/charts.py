"""Charts drawn as inline SVG text from the report's chart data: no plotting library, no network, no script.

Each function takes one entry of ``report["charts"]`` and returns an ``<svg>`` element that scales to its container
(``viewBox``). Every mark has a ``<title>`` (a tooltip in browsers) and every chart a text description, so the
numbers can be read without the picture. Suppressed groups are listed, never drawn.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from html import escape
from typing import Any

from fairness_pipeline.reports.interpretation import (
    FINDING_LABELS,
    TEMPLATES,
    fmt_count,
    fmt_rate,
    fmt_ratio,
    stage_label,
)

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
FINDING_COLOURS: dict[str, str] = {
    "adverse_impact": "#b2182b",
    "insufficient_evidence": "#e08214",
    "not_practically_significant": "#b8860b",
    "no_adverse_impact": "#1b7837",
    "reference": "#4d4d4d",
    "excluded": "#9e9e9e",
    "undefined": "#9e9e9e",
}
PALETTE: tuple[str, ...] = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#882255",
    "#44AA99",
    "#999933",
    "#332288",
)
"""Okabe-Ito and Tol colours, distinguishable with common colour-vision deficiencies."""
LEVEL_COLOURS: dict[str, str] = {"LOW": "#1b7837", "MEDIUM": "#e0a000", "HIGH": "#e0601b", "CRITICAL": "#b2182b"}
THRESHOLD_COLOUR = "#b2182b"
FEW_WINDOWS = 7
"""A trend chart with fewer windows than this says how many it has (one dot on a 90-day axis reads as nothing)."""


def _t(value: Any) -> str:
    return escape(str(value), quote=True)


def _svg(width: float, height: float, body: list[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
        f'height="{height:.0f}" role="img" aria-label="{_t(label)}" font-family="{_t(FONT)}" font-size="12" '
        f'style="width:100%;max-width:{width:.0f}px;height:auto">'
        f"<title>{_t(label)}</title>" + "".join(body) + "</svg>"
    )


def _text(
    x: float, y: float, text: Any, *, anchor: str = "start", size: int = 12, fill: str = "#222", extra: str = ""
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" fill="{fill}"{extra}>'
        f"{_t(text)}</text>"
    )


LEGEND: tuple[tuple[str, str], ...] = (
    ("adverse_impact", "significant adverse impact"),
    ("insufficient_evidence", "insufficient evidence"),
    ("not_practically_significant", "not practically significant"),
    ("no_adverse_impact", "no adverse impact"),
    ("reference", "reference"),
    ("excluded", "left out / no ratio"),
)


def _legend(x: float, y: float, width: float) -> list[str]:
    """The finding colours, in rows no wider than ``width`` (18 px apart)."""
    out, start = [], x
    for key, label in LEGEND:
        if x > start and x + 24 + 6.2 * len(label) > width:
            x, y = start, y + 18
        out.append(f'<circle cx="{x + 5:.1f}" cy="{y - 4:.1f}" r="5" fill="{FINDING_COLOURS[key]}"/>')
        out.append(_text(x + 14, y, label, size=11, fill="#333"))
        x += 24 + 6.2 * len(label)
    return out


def _nice_max(value: float, step: float = 0.2) -> float:
    return step * math.ceil(value / step - 1e-9)


def impact_ratio_chart(chart: Mapping[str, Any]) -> str:
    """Impact ratio of each group with its 95% interval, against the 0.80 line and parity (1.0)."""
    points = chart["points"]
    threshold = chart["threshold"]
    drawn = [p for p in points if p["impact_ratio"] is not None]
    highs = [p["ci_high"] or p["impact_ratio"] for p in drawn]
    x_max = min(2.0, _nice_max(max([1.2, *highs])))
    label_w, plot_w, value_w, row_h, top = 190, 420, 150, 22, 44
    height = top + row_h * max(1, len(points)) + 80
    width = label_w + plot_w + value_w

    def sx(v: float) -> float:
        return label_w + plot_w * min(max(v, 0.0), x_max) / x_max

    title = f"Impact ratios, {chart['dimension']}, {stage_label(chart['stage_pair'])}"
    body = [_text(0, 16, title, size=14, extra=' font-weight="600"')]
    body.append(_text(0, 32, f"reference group: {chart['reference_group'] or 'none'}", size=11, fill="#555"))
    plot_bottom = top + row_h * max(1, len(points))
    body.append(
        f'<rect x="{label_w}" y="{top - 6}" width="{sx(threshold) - label_w:.1f}" height="{plot_bottom - top + 6}" '
        'fill="#b2182b" fill-opacity="0.06"/>'
    )
    tick = 0.0
    while tick <= x_max + 1e-9:
        x = sx(tick)
        body.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{plot_bottom}" stroke="#e5e5e5"/>')
        body.append(_text(x, plot_bottom + 14, f"{tick:.1f}", anchor="middle", size=10, fill="#555"))
        tick = round(tick + 0.2, 10)
    body.append(
        f'<line x1="{sx(threshold):.1f}" y1="{top - 10}" x2="{sx(threshold):.1f}" y2="{plot_bottom}" '
        f'stroke="{THRESHOLD_COLOUR}" stroke-width="1.5" stroke-dasharray="5 3"/>'
    )
    body.append(_text(sx(threshold), top - 12, f"{threshold:.2f}", anchor="middle", size=10, fill=THRESHOLD_COLOUR))
    body.append(f'<line x1="{sx(1):.1f}" y1="{top - 6}" x2="{sx(1):.1f}" y2="{plot_bottom}" stroke="#777"/>')
    body.append(_text(sx(1), top - 12, "parity", anchor="middle", size=10, fill="#555"))
    for i, p in enumerate(points):
        y = top + row_h * i + row_h / 2
        colour = FINDING_COLOURS.get(p["finding"], "#555")
        name = p["group"] + (" *" if p.get("low_sample") else "")
        body.append(_text(label_w - 8, y + 4, name, anchor="end"))
        if p.get("suppressed"):
            body.append(_text(label_w + 4, y + 4, f"withheld: {withheld_label(p)}", size=11, fill="#777"))
            body.append(_text(width - 4, y + 4, f"n {fmt_count(p['n'])}", anchor="end", size=11, fill="#777"))
            continue
        if p["impact_ratio"] is None:
            reason = FINDING_LABELS.get(p["finding"], "no ratio")
            body.append(_text(label_w + 4, y + 4, reason, size=11, fill="#777"))
            body.append(_text(width - 4, y + 4, f"n {fmt_count(p['n'])}", anchor="end", size=11, fill="#777"))
            continue
        tip = (
            f"{p['group']}: impact ratio {fmt_ratio(p['impact_ratio'])} (95% interval {fmt_ratio(p['ci_low'])} to "
            f"{fmt_ratio(p['ci_high'])}), {FINDING_LABELS.get(p['finding'], p['finding'])}; n {fmt_count(p['n'])}, "
            f"selected {fmt_count(p['x'])}"
        )
        body.append(f"<g><title>{_t(tip)}</title>")
        if p["ci_low"] is not None and p["ci_high"] is not None:
            x1, x2 = sx(p["ci_low"]), sx(p["ci_high"])
            body.append(
                f'<line x1="{x1:.1f}" y1="{y:.1f}" x2="{x2:.1f}" y2="{y:.1f}" stroke="{colour}" stroke-width="2"/>'
            )
            for xe in (x1, x2):
                body.append(
                    f'<line x1="{xe:.1f}" y1="{y - 4:.1f}" x2="{xe:.1f}" y2="{y + 4:.1f}" stroke="{colour}" '
                    'stroke-width="2"/>'
                )
        shape = (
            f'<rect x="{sx(p["impact_ratio"]) - 5:.1f}" y="{y - 5:.1f}" width="10" height="10" fill="{colour}" '
            f'transform="rotate(45 {sx(p["impact_ratio"]):.1f} {y:.1f})"/>'
            if p["finding"] == "reference"
            else f'<circle cx="{sx(p["impact_ratio"]):.1f}" cy="{y:.1f}" r="5.5" fill="{colour}"/>'
        )
        body.append(shape + "</g>")
        body.append(
            _text(width - 4, y + 4, f"{fmt_ratio(p['impact_ratio'])}  n {fmt_count(p['n'])}", anchor="end", size=11)
        )
    body += _legend(0, plot_bottom + 34, width)
    body.append(_text(0, plot_bottom + 70, "* under 20 candidates; whiskers: 95% interval", size=10, fill="#555"))
    return _svg(width, height, body, title)


def funnel_chart(chart: Mapping[str, Any]) -> str:
    """Selection rate of each group at each stage pair, with the four-fifths line (0.8 x the reference rate)."""
    groups = chart["groups"]
    panels = chart["panels"]
    columns = min(3, max(1, len(panels)))
    rows = math.ceil(len(panels) / columns)
    label_w, panel_w, bar_h, gap = 130, 200, 16, 4
    panel_h = 30 + len(groups) * (bar_h + gap) + 10
    width = label_w + columns * panel_w
    height = 28 + rows * panel_h + 56
    title = f"Funnel by {chart['dimension']}: selection rate at each step"
    body = [_text(0, 16, title, size=14, extra=' font-weight="600"')]
    for index, panel in enumerate(panels):
        col, row = index % columns, index // columns
        x0, y0 = label_w + col * panel_w, 28 + row * panel_h
        inner = panel_w - 50
        rates = [b["rate"] for b in panel["bars"] if b["rate"] is not None]
        top_rate = max([*rates, panel["reference_rate"] or 0, 1e-9])
        body.append(_text(x0 + 4, y0 + 16, stage_label(panel["stage_pair"]), size=12, extra=' font-weight="600"'))
        bars = {b["group"]: b for b in panel["bars"]}
        for i, group in enumerate(groups):
            y = y0 + 26 + i * (bar_h + gap)
            if col == 0:
                body.append(_text(label_w - 8, y + bar_h - 4, group, anchor="end", size=11))
            bar = bars.get(group)
            if bar is None:
                continue
            if bar.get("suppressed") or bar["rate"] is None:
                note = "suppressed" if bar.get("suppressed") else "no data"
                body.append(_text(x0 + 4, y + bar_h - 4, note, size=10, fill="#888"))
                continue
            w = inner * bar["rate"] / top_rate
            colour = FINDING_COLOURS.get(bar["finding"], "#777")
            tip = (
                f"{group} at {stage_label(panel['stage_pair'])}: {fmt_rate(bar['rate'])} "
                f"({fmt_count(bar['x'])} of {fmt_count(bar['n'])}); "
                f"{FINDING_LABELS.get(bar['finding'], bar['finding'])}"
            )
            body.append(
                f'<rect x="{x0 + 4:.1f}" y="{y:.1f}" width="{max(w, 0.5):.1f}" height="{bar_h}" fill="{colour}" '
                f'fill-opacity="0.85"><title>{_t(tip)}</title></rect>'
            )
            body.append(_text(x0 + 8 + w, y + bar_h - 4, fmt_rate(bar["rate"]), size=10, fill="#333"))
        if panel["four_fifths_rate"] is not None:
            xf = x0 + 4 + inner * panel["four_fifths_rate"] / top_rate
            y_end = y0 + 26 + len(groups) * (bar_h + gap)
            body.append(
                f'<line x1="{xf:.1f}" y1="{y0 + 22:.1f}" x2="{xf:.1f}" y2="{y_end:.1f}" stroke="{THRESHOLD_COLOUR}" '
                f'stroke-dasharray="4 3" stroke-width="1.5"><title>four-fifths of the reference rate: '
                f"{_t(fmt_rate(panel['four_fifths_rate']))}</title></line>"
            )
    body += _legend(0, height - 40, width)
    body.append(
        _text(
            0,
            height - 6,
            "Dashed line: 80% of the reference group's rate; a bar ending left of it is below the four-fifths line.",
            size=10,
            fill="#555",
        )
    )
    return _svg(width, height, body, title)


def withheld_label(point: Mapping[str, Any]) -> str:
    """Which count of a suppressed chart point is withheld, in a few words."""
    n, x = point.get("n"), point.get("x")
    if isinstance(n, str) and n.startswith("<"):
        return f"candidates {n}"
    if isinstance(x, str) and x.startswith("<"):
        return f"selected {x}"
    if isinstance(x, str) and x.startswith(">"):
        return "not selected under the minimum"
    return "with another group's count (table total)"


def trend_windows(chart: Mapping[str, Any]) -> int:
    """The number of windows (days) with a point in a trend chart."""
    if "windows" in chart:
        return int(chart["windows"])
    return len({p["date"] for s in chart["series"] for p in s["points"]})


def trend_chart(chart: Mapping[str, Any]) -> str:
    """Impact ratio of each group over the trend period, against the 0.80 line; with fewer than ``FEW_WINDOWS``
    windows the chart says how many it has."""
    start, end = date.fromisoformat(chart["start"]), date.fromisoformat(chart["end"])
    span = max(1, (end - start).days)
    values = [p["impact_ratio"] for s in chart["series"] for p in s["points"] if p["impact_ratio"] is not None]
    y_max = min(2.0, _nice_max(max([1.2, *values])))
    left, top, plot_w, plot_h, legend_w = 44, 30, 520, 200, 170
    width, height = left + plot_w + legend_w, top + plot_h + 40
    title = f"Impact ratio trend, {chart['dimension']}, {stage_label(chart['stage_pair'])}"

    def sx(day: str) -> float:
        return left + plot_w * (date.fromisoformat(day) - start).days / span

    def sy(v: float) -> float:
        return top + plot_h * (1 - min(max(v, 0.0), y_max) / y_max)

    body = [_text(0, 16, title, size=14, extra=' font-weight="600"')]
    tick = 0.0
    while tick <= y_max + 1e-9:
        body.append(
            f'<line x1="{left}" y1="{sy(tick):.1f}" x2="{left + plot_w}" y2="{sy(tick):.1f}" stroke="#e5e5e5"/>'
        )
        body.append(_text(left - 6, sy(tick) + 4, f"{tick:.1f}", anchor="end", size=10, fill="#555"))
        tick = round(tick + 0.2, 10)
    threshold = chart["threshold"]
    body.append(
        f'<line x1="{left}" y1="{sy(threshold):.1f}" x2="{left + plot_w}" y2="{sy(threshold):.1f}" '
        f'stroke="{THRESHOLD_COLOUR}" stroke-width="1.5" stroke-dasharray="5 3"/>'
    )
    body.append(_text(left + 4, sy(threshold) + 13, f"{threshold:.2f} line", size=10, fill=THRESHOLD_COLOUR))
    for i in range(4):
        day = (start + timedelta(days=round(span * i / 3))).isoformat()
        anchor = "start" if i == 0 else "end" if i == 3 else "middle"
        body.append(f'<line x1="{sx(day):.1f}" y1="{top}" x2="{sx(day):.1f}" y2="{top + plot_h}" stroke="#f0f0f0"/>')
        body.append(_text(sx(day), top + plot_h + 16, day, anchor=anchor, size=10, fill="#555"))
    for i, series in enumerate(chart["series"]):
        colour = PALETTE[i % len(PALETTE)]
        segments: list[list[str]] = [[]]
        for p in series["points"]:
            if p["impact_ratio"] is None:
                segments.append([])
            else:
                segments[-1].append(f"{sx(p['date']):.1f},{sy(p['impact_ratio']):.1f}")
        for seg in segments:
            if len(seg) >= 2:
                body.append(
                    f'<polyline points="{" ".join(seg)}" fill="none" stroke="{colour}" stroke-width="2">'
                    f"<title>{_t(series['group'])}</title></polyline>"
                )
            elif len(seg) == 1:
                cx, cy = seg[0].split(",")
                body.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{colour}"/>')
        ly = top + 12 + i * 17
        last = next((p for p in reversed(series["points"]) if p["impact_ratio"] is not None), None)
        body.append(f'<rect x="{left + plot_w + 14}" y="{ly - 9}" width="12" height="4" fill="{colour}"/>')
        text = f"{series['group']} ({fmt_ratio(last['impact_ratio']) if last else 'n/a'})"
        body.append(_text(left + plot_w + 32, ly - 3, text, size=11))
    windows = trend_windows(chart)
    if windows < FEW_WINDOWS:
        note = TEMPLATES["few_windows"].format(count=windows)
        body.append(_text(left + plot_w / 2, top + plot_h / 2, note, anchor="middle", size=12, fill="#555"))
    return _svg(width, height, body, title)


def components_chart(components: Sequence[Mapping[str, Any]]) -> str:
    """Each risk component's value in [0, 1] and the weight it carries in the score."""
    label_w, plot_w, row_h, top = 130, 360, 24, 30
    width, height = label_w + plot_w + 170, top + row_h * len(components) + 10
    title = "Risk components (0 = no concern, 1 = worst)"
    body = [_text(0, 16, title, size=14, extra=' font-weight="600"')]
    for i, c in enumerate(components):
        y = top + i * row_h
        body.append(_text(label_w - 8, y + 15, c["component"].replace("_", " "), anchor="end"))
        body.append(f'<rect x="{label_w}" y="{y + 4}" width="{plot_w}" height="14" fill="#f0f0f0"/>')
        if c["value"] is None:
            body.append(_text(label_w + 6, y + 15, "no data: weight shared out", size=11, fill="#777"))
            continue
        colour = LEVEL_COLOURS[
            "CRITICAL"
            if c["value"] >= 0.75
            else "HIGH"
            if c["value"] >= 0.5
            else "MEDIUM"
            if c["value"] >= 0.25
            else "LOW"
        ]
        body.append(
            f'<rect x="{label_w}" y="{y + 4}" width="{plot_w * c["value"]:.1f}" height="14" fill="{colour}">'
            f"<title>{_t(c['label'])}: {c['value']:.2f}</title></rect>"
        )
        body.append(
            _text(label_w + plot_w + 8, y + 15, f"{c['value']:.2f}  weight {100 * c['weight_used']:.0f}%", size=11)
        )
    return _svg(width, height, body, title)


def gauge(risk: Mapping[str, Any]) -> str:
    """The composite score on a 0-1 bar coloured by level, with its 95% interval."""
    width, height, left, bar_w, top = 560, 86, 10, 540, 30
    thresholds = risk["thresholds"]
    edges = [0.0, thresholds["MEDIUM"], thresholds["HIGH"], thresholds["CRITICAL"], 1.0]
    title = f"Risk score {fmt_ratio(risk.get('score'))}, level {risk['level']}"
    body = [_text(left, 16, title, size=14, extra=' font-weight="600"')]
    for level, a, b in zip(LEVEL_COLOURS, edges, edges[1:], strict=False):
        body.append(
            f'<rect x="{left + bar_w * a:.1f}" y="{top}" width="{bar_w * (b - a):.1f}" height="18" '
            f'fill="{LEVEL_COLOURS[level]}" fill-opacity="0.35"><title>{level}: {a:.2f} to {b:.2f}</title></rect>'
        )
        body.append(_text(left + bar_w * (a + b) / 2, top + 13, level, anchor="middle", size=10, fill="#333"))
    score = risk.get("score")
    if score is not None:
        if risk.get("ci_low") is not None:
            x1, x2 = left + bar_w * risk["ci_low"], left + bar_w * risk["ci_high"]
            body.append(
                f'<line x1="{x1:.1f}" y1="{top + 28}" x2="{x2:.1f}" y2="{top + 28}" stroke="#222" stroke-width="2"/>'
            )
            for xe in (x1, x2):
                body.append(
                    f'<line x1="{xe:.1f}" y1="{top + 24}" x2="{xe:.1f}" y2="{top + 32}" stroke="#222" '
                    'stroke-width="2"/>'
                )
        xs = left + bar_w * score
        body.append(f'<path d="M{xs - 6:.1f},{top - 8} L{xs + 6:.1f},{top - 8} L{xs:.1f},{top} Z" fill="#222"/>')
        body.append(f'<line x1="{xs:.1f}" y1="{top}" x2="{xs:.1f}" y2="{top + 18}" stroke="#222" stroke-width="2"/>')
        body.append(
            _text(
                left,
                top + 48,
                f"score {score:.2f}; 95% interval {fmt_ratio(risk.get('ci_low'))} to {fmt_ratio(risk.get('ci_high'))}",
                size=11,
                fill="#333",
            )
        )
    return _svg(width, height, body, title)
