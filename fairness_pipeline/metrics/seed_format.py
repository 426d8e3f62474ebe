"""The seed worker's ``metrics_json`` shape, filled with this project's (correct) numbers.

The seed's admin dashboard reads ``dimensions.<dimension>`` with ``overall_rate``, ``selection_rates``,
``impact_ratios``, ``sample_sizes``, ``demographic_parity_ratio``, ``demographic_parity_difference``,
``adverse_impact_detected``, ``adverse_impact_groups``, ``low_sample_groups``, ``significance_tests`` and
``warnings``, plus top-level ``computed_at``, ``all_warnings`` and ``any_adverse_impact``. Those keys keep their
meaning; everything else this project adds sits beside them under new keys.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import pandas as pd

from fairness_pipeline.metrics.impact import summarise_impact, table_records
from fairness_pipeline.metrics.selection_rates import INTERSECTION_SEPARATOR
from fairness_pipeline.metrics.window import AnalysisSettings

SEED_DEFAULT_STAGE_PAIR = "shown->shortlisted"


def finite_json(value: Any) -> Any:
    """``value`` with non-finite floats (an infinite odds ratio, say) replaced by None: JSON has no Infinity."""
    if isinstance(value, dict):
        return {key: finite_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite_json(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def dimension_metrics(
    frames: pd.DataFrame, impacts: pd.DataFrame, dimension: str, settings: AnalysisSettings, period: dict[str, str]
) -> dict[str, Any]:
    """One dimension (or intersection) of one tenant and stage pair, in the seed's shape plus extra keys."""
    frame = frames[frames["dimension"] == dimension]
    impact = impacts[impacts["dimension"] == dimension].reset_index(drop=True)
    populated = impact[impact["n"] > 0]
    summary = summarise_impact(impact)
    significance = {
        record["group"]: {
            "test": record["test"],
            "statistic": record["statistic"],
            "p_value": record["p_value"],
            "p_adjusted": record["p_adjusted"],
            "adjustment_method": record["adjustment_method"],
            "significant": bool(record["significant"]),
        }
        for record in table_records(impact)
        if record["test"] is not None
    }
    first = frame.iloc[0] if len(frame) else None
    adverse = summary["adverse_groups"]
    result = {
        "dimension": dimension,
        "period": period,
        "overall_rate": _number(first["overall_rate"]) if first is not None else None,
        "selection_rates": {
            g: _number(r) for g, r in zip(populated["group"], populated["selection_rate"], strict=True)
        },
        "impact_ratios": {g: _number(r) for g, r in zip(populated["group"], populated["impact_ratio"], strict=True)},
        "sample_sizes": {g: int(n) for g, n in zip(impact["group"], impact["n"], strict=True)},
        "demographic_parity_ratio": _number(first["dp_ratio"]) if first is not None else None,
        "demographic_parity_difference": _number(first["dp_difference"]) if first is not None else None,
        "adverse_impact_detected": bool(adverse),
        "adverse_impact_groups": adverse,
        "low_sample_groups": [g for g in summary["low_sample_groups"] if g in set(populated["group"])],
        "significance_tests": significance,
        "warnings": _warnings(summary, settings),
        # Beyond the seed's keys:
        "reference_group": summary["reference_group"],
        "significant_adverse_impact_groups": summary["significant_adverse_groups"],
        "excluded_groups": {
            g: int(n)
            for g, n, ex in zip(impact["group"], impact["n"], impact["excluded_small_share"], strict=True)
            if ex and n > 0
        },
        "unknown_count": summary["unknown_count"],
        "undefined": {
            r["group"]: r["undefined_reason"] for r in table_records(impact) if r["undefined_reason"] and r["n"] > 0
        },
    }
    return result


def _warnings(summary: dict[str, Any], settings: AnalysisSettings) -> list[str]:
    warnings = []
    significant = set(summary["significant_adverse_groups"])
    if summary["adverse_groups"]:
        described = ", ".join(
            f"{g} (significant)" if g in significant else f"{g} (not significant)" for g in summary["adverse_groups"]
        )
        warnings.append(
            f"Potential adverse impact detected for: {described}. These groups have selection rates below "
            f"{settings.threshold:.0%} of the reference group {summary['reference_group']}."
        )
    if summary["low_sample_groups"]:
        warnings.append(
            f"Low sample size (<{settings.min_sample}) for: {', '.join(summary['low_sample_groups'])}. "
            "Impact ratios may not be statistically meaningful."
        )
    return warnings


def tenant_metrics_json(
    frames: pd.DataFrame,
    impacts: pd.DataFrame,
    tenant_id: str,
    window_end: date,
    settings: AnalysisSettings,
    computed_at: datetime,
    stage_pair: str = SEED_DEFAULT_STAGE_PAIR,
    dimensions: list[str] | None = None,
) -> dict[str, Any]:
    """The seed-shaped document of one tenant: its ``dimensions`` are the seed's stage pair; other stage pairs and
    the intersections are under ``stage_pairs`` and ``intersections``."""
    first_day, last_day = settings.window(window_end)
    period = {"start": first_day.isoformat(), "end": last_day.isoformat()}
    tenant_frames = frames[frames["tenant_id"] == tenant_id]
    tenant_impacts = impacts[impacts["tenant_id"] == tenant_id]

    def for_pair(pair: str) -> tuple[dict[str, Any], dict[str, Any]]:
        pair_frames = tenant_frames[tenant_frames["stage_pair"] == pair]
        pair_impacts = tenant_impacts[tenant_impacts["stage_pair"] == pair]
        names = list(dict.fromkeys(pair_impacts["dimension"]))
        singles = [d for d in names if INTERSECTION_SEPARATOR not in d and (dimensions is None or d in dimensions)]
        pairs = [d for d in names if INTERSECTION_SEPARATOR in d and dimensions is None]
        build = {d: dimension_metrics(pair_frames, pair_impacts, d, settings, period) for d in singles + pairs}
        return {d: build[d] for d in singles}, {d: build[d] for d in pairs}

    seed_dimensions, intersections = for_pair(stage_pair)
    all_warnings = [w for result in seed_dimensions.values() for w in result["warnings"]]
    other_pairs = {}
    for pair in settings.stage_pair_names:
        if pair != stage_pair:
            singles, pairs = for_pair(pair)
            other_pairs[pair] = {"dimensions": singles, "intersections": pairs}
    return finite_json(
        {
            "computed_at": computed_at.isoformat(),
            "dimensions": seed_dimensions,
            "all_warnings": all_warnings,
            "any_adverse_impact": any(r["adverse_impact_detected"] for r in seed_dimensions.values()),
            # Beyond the seed's keys:
            "tenant_id": tenant_id,
            "window": {**period, "days": settings.window_days},
            "stage_pair": stage_pair,
            "any_significant_adverse_impact": any(
                r["significant_adverse_impact_groups"] for r in seed_dimensions.values()
            ),
            "intersections": intersections,
            "stage_pairs": other_pairs,
        }
    )
