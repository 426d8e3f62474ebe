"""The chart data of a report (impact ratios, the funnel, risk components), derived from its tables. Private to
``reports.builder``; ``reports.charts`` draws them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fairness_pipeline.reports import interpretation as words


def impact_chart(table: Mapping[str, Any], threshold: float) -> dict[str, Any]:
    return {
        "kind": table["kind"],
        "stage_pair": table["stage_pair"],
        "dimension": table["dimension"],
        "intersectional": table["intersectional"],
        "threshold": threshold,
        "reference_group": table["reference_group"],
        "points": [
            {
                key: row[key]
                for key in (
                    "group",
                    "impact_ratio",
                    "ci_low",
                    "ci_high",
                    "finding",
                    "n",
                    "x",
                    "low_sample",
                    "suppressed",
                )
            }
            for row in table["groups"]
        ],
    }


def funnel_charts(tables: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per single dimension: each stage pair's selection rates by group, with the four-fifths line of the reference."""
    by_dimension: dict[str, list[dict[str, Any]]] = {}
    for table in tables:
        if not table["intersectional"]:
            by_dimension.setdefault(table["dimension"], []).append(table)
    charts = []
    for dimension, parts in by_dimension.items():
        panels = []
        for t in parts:
            ref = t["reference_rate"]
            panels.append(
                {
                    "stage_pair": t["stage_pair"],
                    "reference_group": t["reference_group"],
                    "reference_rate": ref,
                    "four_fifths_rate": ref * 0.8 if ref is not None else None,
                    "bars": [
                        {
                            "group": r["group"],
                            "rate": r["selection_rate"],
                            "n": r["n"],
                            "x": r["x"],
                            "finding": r["finding"],
                            "suppressed": r["suppressed"],
                        }
                        for r in t["groups"]
                    ],
                }
            )
        groups = list(dict.fromkeys(r["group"] for t in parts for r in t["groups"]))
        charts.append({"dimension": dimension, "groups": groups, "panels": panels})
    return charts


def component_chart(risk: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "component": name,
            "label": words.COMPONENT_LABELS[name],
            "value": c["value"],
            "weight": c["weight"],
            "weight_used": c["weight_used"],
            "contribution": c["contribution"],
        }
        for name, c in risk["components"].items()
    ]
