"""Gathering a report's base sections from the metric tables: impact tables per stage pair and dimension (with the
verdict's tenant-wide adjustment), scoring-rate tables and trend series. Private to ``reports.builder``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from fairness_pipeline.events.vocabulary import DEFAULT_STAGE_PAIRS, stage_pair_name
from fairness_pipeline.metrics.impact import (
    IMPACT_COLUMNS,
    impact_ratio_table,
    is_unknown_group,
    unanswered_attribute_table,
)
from fairness_pipeline.metrics.selection_rates import INTERSECTION_SEPARATOR
from fairness_pipeline.reports import interpretation as words
from fairness_pipeline.risk.assessment import SCORING_ADJUSTMENT, verdict_adjustment
from fairness_pipeline.risk.components import is_intersection

TABLE_LEVEL_COLUMNS = ("reference_group", "reference_rate", "p_omnibus")
"""Impact columns a report keeps once per table (the reference) or leaves out (the table's gate)."""
GROUP_FIELDS: tuple[str, ...] = (
    *(c for c in IMPACT_COLUMNS if c not in TABLE_LEVEL_COLUMNS),
    "table_p_adjusted",
    "table_significant",
)
"""The columns of an impact table a report copies (reference_group and reference_rate go to the table)."""


def plain(value: Any) -> Any:
    """A JSON-ready scalar: numpy to Python, NaN / NA / inf to None."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def stage_order(pair: str) -> tuple[int, str]:
    names = [stage_pair_name(b, s) for b, s in DEFAULT_STAGE_PAIRS]
    return (names.index(pair) if pair in names else len(names), pair)


def _dimension_order(dimension: str) -> tuple[bool, str]:
    return (INTERSECTION_SEPARATOR in dimension, dimension)


def _table(kind: str, pair: str, dimension: str, rows: pd.DataFrame, frame: pd.DataFrame | None) -> dict[str, Any]:
    """One impact table of the report: totals, reference, parity and one entry per group."""
    groups = []
    for record in rows.to_dict("records"):
        entry = {field: plain(record.get(field)) for field in GROUP_FIELDS}
        entry["group"] = str(entry["group"])
        entry["n"], entry["x"] = int(record["n"]), int(record["x"])
        entry["finding"] = words.finding_of(entry)
        entry["suppressed"] = False
        groups.append(entry)
    reference = rows["reference_group"].dropna()
    n_total, x_total = int(rows["n"].sum()), int(rows["x"].sum())
    rates = [g["selection_rate"] for g in groups if g["selection_rate"] is not None]
    if frame is not None and len(frame):
        first = frame.iloc[0]
        overall, dp_ratio, dp_difference = (plain(first[c]) for c in ("overall_rate", "dp_ratio", "dp_difference"))
    else:  # the same definitions as metrics.selection_rates
        overall = x_total / n_total if n_total else None
        dp_difference = max(rates) - min(rates) if len(rates) >= 2 else None
        dp_ratio = min(rates) / max(rates) if len(rates) >= 2 and max(rates) > 0 else None
    methods = rows["adjustment_method"].dropna()
    return {
        "kind": kind,
        "stage_pair": pair,
        "dimension": dimension,
        "intersectional": INTERSECTION_SEPARATOR in dimension,
        "n": n_total,
        "x": x_total,
        "overall_rate": overall,
        "reference_group": str(reference.iloc[0]) if len(reference) else None,
        "reference_rate": plain(rows["reference_rate"].dropna().iloc[0])
        if rows["reference_rate"].notna().any()
        else None,
        "dp_ratio": dp_ratio,
        "dp_difference": dp_difference,
        "adjustment_method": str(methods.iloc[0]) if len(methods) else None,
        "unknown_count": int(rows.loc[rows["group"].map(is_unknown_group).astype(bool), "n"].sum()),
        "ratios_suppressed": False,
        "groups": groups,
    }


def analysis(impacts: pd.DataFrame, frames: pd.DataFrame | None, kind: str = "selection") -> list[dict[str, Any]]:
    """The report's impact tables, ordered by stage pair then dimension (tables of attributes nobody answered left
    out)."""
    tables = []
    for (pair, dimension), rows in impacts.groupby(["stage_pair", "dimension"], sort=False):
        if unanswered_attribute_table(str(dimension), rows):
            continue
        frame = None
        if frames is not None and len(frames):
            frame = frames[(frames["stage_pair"] == pair) & (frames["dimension"] == dimension)]
        tables.append(_table(kind, str(pair), str(dimension), rows, frame))
    return sorted(tables, key=lambda t: (stage_order(t["stage_pair"]), _dimension_order(t["dimension"])))


def scoring_analysis(audit: pd.DataFrame | None, methodology: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Scoring-rate tables (LL144 for score-based tools): the impact rules applied to above-median counts."""
    if audit is None or audit.empty:
        return []
    parts = []
    work = audit if "stage_pair" in audit.columns else audit.assign(stage_pair="scores")
    for (pair, dimension), rows in work.groupby(["stage_pair", "dimension"], sort=True):
        table = impact_ratio_table(
            rows[["group", "n", "x"]],
            intersectional=INTERSECTION_SEPARATOR in str(dimension),
            alpha=methodology["alpha"],
            threshold=methodology["threshold"],
            min_share=methodology["min_share"],
            min_sample=methodology["min_sample"],
        )
        parts.append(table.assign(stage_pair=str(pair), dimension=str(dimension)))
    tables = verdict_adjustment(pd.concat(parts, ignore_index=True), methodology["alpha"], SCORING_ADJUSTMENT)
    return analysis(tables, None, kind="scoring")


def verdict_adjusted(impacts: pd.DataFrame, scope: Mapping[str, Any]) -> pd.DataFrame:
    """The impact rows with the verdict's tenant-wide adjustment (``risk.assessment.verdict_adjustment``) on the rows
    the verdict read (its ``scope``: stage pairs, intersections or not), so that the report's findings are the
    verdict's. Rows outside the scope keep their table's own adjustment."""
    if impacts.empty or "p_value" not in impacts.columns:
        return impacts
    in_scope = pd.Series(True, index=impacts.index)
    if scope.get("stage_pairs") is not None:
        in_scope &= impacts["stage_pair"].isin(list(scope["stage_pairs"]))
    if scope.get("include_intersections") is False:
        in_scope &= ~impacts["dimension"].map(is_intersection).astype(bool)
    adjusted = verdict_adjustment(impacts[in_scope])
    out = impacts.copy()
    out["table_p_adjusted"] = out["p_adjusted"]
    out["table_significant"] = out["significant"].astype("boolean")
    for column in ("p_adjusted", "adjustment_method", "significant"):
        if column == "significant":
            out[column] = out[column].astype("boolean")
        out.loc[in_scope, column] = adjusted[column]
    return out


def trend_charts(trends: pd.DataFrame | None, window_end: date, days: int, threshold: float) -> list[dict[str, Any]]:
    """Impact-ratio series of single dimensions over the last ``days`` days, one chart per stage pair and dimension."""
    if trends is None or trends.empty:
        return []
    work = trends.copy()
    work["day"] = pd.to_datetime(work["window_end"]).dt.date
    start = window_end - timedelta(days=days - 1)
    work = work[(work["day"] >= start) & (work["day"] <= window_end)]
    work = work[~work["dimension"].astype(str).str.contains(INTERSECTION_SEPARATOR, regex=False)]
    if "x" not in work.columns:
        raise ValueError("trend table lacks column 'x' (needed to suppress small cells in published reports)")
    charts = []
    for (pair, dimension), rows in work.groupby(["stage_pair", "dimension"], sort=False):
        series = []
        for group, points in rows.sort_values("day").groupby("group", sort=True):
            series.append(
                {
                    "group": str(group),
                    "points": [
                        {"date": d.isoformat(), "impact_ratio": plain(r), "n": int(n), "x": int(x)}
                        for d, r, n, x in zip(
                            points["day"], points["impact_ratio"], points["n"], points["x"], strict=True
                        )
                    ],
                }
            )
        charts.append(
            {
                "stage_pair": str(pair),
                "dimension": str(dimension),
                "threshold": threshold,
                "start": start.isoformat(),
                "end": window_end.isoformat(),
                "windows": int(rows["day"].nunique()),
                "series": series,
            }
        )
    return sorted(charts, key=lambda c: (stage_order(c["stage_pair"]), c["dimension"]))
