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

from fairness_pipeline.metrics.impact import summarise_impact, table_records, unanswered_attribute_table
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
            "p_omnibus": record.get("p_omnibus"),
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
        names = [
            name
            for name, table in pair_impacts.groupby("dimension", sort=False)
            if not unanswered_attribute_table(str(name), table)
        ]
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


# --- audits: extra keys beside the seed's ---------------------------------------------------------------------------

AUDIT_KEYS: tuple[str, ...] = ("scoring_rates", "rank_exposure", "slate_concentration", "trends")
"""Top-level keys the audits add to a tenant's document (None when the audit has no rows for the tenant)."""


def _flags(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame[column].astype("boolean").fillna(False).astype(bool)


def _by_group(frame: pd.DataFrame, column: str) -> dict[str, float | None]:
    return {g: _number(v) for g, v in zip(frame["group"], frame[column], strict=True)}


def _split_dimensions(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    names = list(dict.fromkeys(frame["dimension"]))
    return [d for d in names if INTERSECTION_SEPARATOR not in d], [d for d in names if INTERSECTION_SEPARATOR in d]


def scoring_dimension_metrics(table: pd.DataFrame) -> dict[str, Any]:
    """One dimension of the scoring-rate audit in the seed's vocabulary (rates are scoring rates)."""
    impact = table.rename(columns={"above_median": "x", "scoring_rate": "selection_rate"}).reset_index(drop=True)
    summary = summarise_impact(impact)
    populated = impact[impact["n"] > 0]
    records = table_records(impact)
    return {
        "scoring_rates": _by_group(populated, "selection_rate"),
        "impact_ratios": _by_group(populated, "impact_ratio"),
        "sample_sizes": {g: int(n) for g, n in zip(impact["group"], impact["n"], strict=True)},
        "above_median": {g: int(x) for g, x in zip(impact["group"], impact["x"], strict=True)},
        "missing_scores": {g: int(m) for g, m in zip(impact["group"], impact["missing_score"], strict=True) if m > 0},
        "reference_group": summary["reference_group"],
        "adverse_impact_detected": bool(summary["adverse_groups"]),
        "adverse_impact_groups": summary["adverse_groups"],
        "significant_adverse_impact_groups": summary["significant_adverse_groups"],
        "low_sample_groups": [g for g in summary["low_sample_groups"] if g in set(populated["group"])],
        "excluded_groups": {r["group"]: r["n"] for r in records if r["excluded_small_share"] and r["n"] > 0},
        "significance_tests": {
            r["group"]: {
                "test": r["test"],
                "p_value": r["p_value"],
                "p_omnibus": r.get("p_omnibus"),
                "p_adjusted": r["p_adjusted"],
                "adjustment_method": r["adjustment_method"],
                "significant": bool(r["significant"]),
            }
            for r in records
            if r["test"] is not None
        },
        "confidence_intervals": {r["group"]: [r["ci_low"], r["ci_high"]] for r in records if r["ci_low"] is not None},
        "undefined": {r["group"]: r["undefined_reason"] for r in records if r["undefined_reason"] and r["n"] > 0},
    }


def scoring_rates_metrics(table: pd.DataFrame) -> dict[str, Any] | None:
    """The ``scoring_rates`` key of one tenant: LL144 scoring rates per dimension and intersection."""
    if table is None or table.empty:
        return None
    singles, pairs = _split_dimensions(table)
    blocks = {d: scoring_dimension_metrics(table[table["dimension"] == d]) for d in singles + pairs}
    first = table[table["dimension"] == singles[0]] if singles else table.iloc[:0]
    return {
        "median_score": _number(table["median_score"].iloc[0]),
        "sample_size": int(first["n"].sum()),
        "missing_scores": int(first["missing_score"].sum()),
        "dimensions": {d: blocks[d] for d in singles},
        "intersections": {d: blocks[d] for d in pairs},
        "any_adverse_impact": any(blocks[d]["adverse_impact_detected"] for d in singles),
        "any_significant_adverse_impact": any(blocks[d]["significant_adverse_impact_groups"] for d in singles),
    }


def exposure_dimension_metrics(table: pd.DataFrame) -> dict[str, Any]:
    """One dimension of the exposure audit: exposure, ratios with bootstrap intervals, skew@k, score-relative ratios."""
    table = table.reset_index(drop=True)
    ranked = table[table["ranked"] > 0]
    low = _flags(table, "low_exposure")
    below_merit = (table["merit_ratio"] < 1) & _flags(table, "merit_significant")
    reference = table["reference_group"].dropna()
    return {
        "reference_group": str(reference.iloc[0]) if len(reference) else None,
        "exposure": _by_group(ranked, "exposure"),
        "exposure_ratios": _by_group(ranked, "exposure_ratio"),
        "exposure_ratio_intervals": {
            g: [_number(lo), _number(hi)]
            for g, lo, hi in zip(ranked["group"], ranked["ratio_ci_low"], ranked["ratio_ci_high"], strict=True)
            if pd.notna(lo)
        },
        "skew_at_k": _by_group(ranked, "skew_at_k"),
        "treatment_ratios": _by_group(ranked, "treatment_ratio"),
        "merit_ratios": _by_group(ranked, "merit_ratio"),
        "searches": {g: int(n) for g, n in zip(table["group"], table["searches"], strict=True)},
        "low_exposure_groups": table.loc[low, "group"].tolist(),
        "significant_low_exposure_groups": table.loc[low & _flags(table, "significant"), "group"].tolist(),
        "ranked_below_merit_groups": table.loc[below_merit, "group"].tolist(),
        "low_sample_groups": ranked.loc[ranked["low_sample"].astype(bool), "group"].tolist(),
        "undefined": {
            g: r
            for g, r, n in zip(table["group"], table["undefined_reason"], table["shown"], strict=True)
            if pd.notna(r) and n
        },
    }


def rank_exposure_metrics(table: pd.DataFrame) -> dict[str, Any] | None:
    """The ``rank_exposure`` key of one tenant: position-discounted exposure per dimension and intersection."""
    if table is None or table.empty:
        return None
    singles, pairs = _split_dimensions(table)
    blocks = {d: exposure_dimension_metrics(table[table["dimension"] == d]) for d in singles + pairs}
    return {
        "top_k": int(table["top_k"].iloc[0]),
        "n_boot": int(table["n_boot"].iloc[0]),
        "dimensions": {d: blocks[d] for d in singles},
        "intersections": {d: blocks[d] for d in pairs},
        "any_significant_low_exposure": any(blocks[d]["significant_low_exposure_groups"] for d in singles),
        "any_ranked_below_merit": any(blocks[d]["ranked_below_merit_groups"] for d in singles),
    }


def slate_concentration_metrics(slates: pd.DataFrame, groups: pd.DataFrame, day: date) -> dict[str, Any] | None:
    """The ``slate_concentration`` key of one tenant: the day's concentrated slates per dimension and the window's
    totals (``slates`` and ``groups`` hold the window's days of one tenant)."""
    if slates is None or slates.empty:
        return None
    slates = slates.assign(day=pd.to_datetime(slates["day"]).dt.date)
    groups = groups.assign(day=pd.to_datetime(groups["day"]).dt.date) if len(groups) else groups
    dimensions: dict[str, Any] = {}
    for dimension in dict.fromkeys(slates["dimension"]):
        rows = slates[slates["dimension"] == dimension]
        dominant = groups[groups["dimension"] == dimension] if len(groups) else groups
        today = rows[rows["day"] == day]
        block: dict[str, Any] = {"day": None}
        if len(today):
            row = today.iloc[0]
            on_day = dominant[dominant["day"] == day] if len(dominant) else dominant
            block["day"] = {
                "searches": int(row["searches"]),
                "assessed": int(row["assessed"]),
                "concentrated": int(row["concentrated"]),
                "concentrated_share": _number(row["concentrated_share"]),
                "expected_share": _number(row["expected_share"]),
                "excess_p_adjusted": _number(row["excess_p_adjusted"]),
                "excess_significant": bool(row["excess_significant"]) if pd.notna(row["excess_significant"]) else None,
                "top_group": row["top_group"],
                "dominant_groups": {g: int(c) for g, c in zip(on_day["group"], on_day["concentrated"], strict=True)}
                if len(on_day)
                else {},
            }
        assessed, concentrated = int(rows["assessed"].sum()), int(rows["concentrated"].sum())
        totals = dominant.groupby("group")["concentrated"].sum() if len(dominant) else pd.Series(dtype="int64")
        block["window"] = {
            "days": int(rows["day"].nunique()),
            "assessed": assessed,
            "concentrated": concentrated,
            "concentrated_share": concentrated / assessed if assessed else None,
            "dominant_groups": {str(g): int(c) for g, c in totals.sort_values(ascending=False).items()},
        }
        dimensions[dimension] = block
    return {
        "day": day.isoformat(),
        "dimensions": dimensions,
        "any_excess_concentration": any(
            (b["day"] or {}).get("excess_significant") is True for b in dimensions.values()
        ),
    }


def trends_metrics(
    table: pd.DataFrame, as_of: date, stage_pair: str = SEED_DEFAULT_STAGE_PAIR
) -> dict[str, Any] | None:
    """The ``trends`` key of one tenant: the seed stage pair's series per dimension, and every flagged series."""
    if table is None or table.empty:
        return None
    worsening, approaching = _flags(table, "worsening"), _flags(table, "approaching_threshold")
    improving = _flags(table, "improving") if "improving" in table else pd.Series(False, index=table.index)
    dimensions = {}
    pair = table[table["stage_pair"] == stage_pair]
    for dimension in _split_dimensions(pair)[0]:
        rows = pair[pair["dimension"] == dimension]
        dimensions[dimension] = {
            "latest_ratios": {g: v for g, v in _by_group(rows, "latest_ratio").items() if v is not None},
            "slopes_per_day": {g: v for g, v in _by_group(rows, "slope_per_day").items() if v is not None},
            "days_to_threshold": {g: v for g, v in _by_group(rows, "days_to_threshold").items() if v is not None},
            "ratio_change_week_over_week": {g: v for g, v in _by_group(rows, "ratio_change").items() if v is not None},
            "week_over_week_p_adjusted": {g: v for g, v in _by_group(rows, "p_adjusted").items() if v is not None},
            "worsening_groups": rows.loc[worsening[rows.index], "group"].tolist(),
            "improving_groups": rows.loc[improving[rows.index], "group"].tolist(),
            "approaching_threshold_groups": rows.loc[approaching[rows.index], "group"].tolist(),
        }
    series = ["stage_pair", "dimension", "group"]
    return {
        "as_of": as_of.isoformat(),
        "stage_pair": stage_pair,
        "dimensions": dimensions,
        "worsening": table_records(table.loc[worsening, [*series, "ratio_previous", "ratio_current", "p_adjusted"]]),
        "improving": table_records(table.loc[improving, [*series, "ratio_previous", "ratio_current", "p_adjusted"]]),
        "approaching_threshold": table_records(
            table.loc[approaching, [*series, "latest_ratio", "slope_per_day", "days_to_threshold"]]
        ),
        "worsening_series": int(worsening.sum()),
        "improving_series": int(improving.sum()),
        "approaching_threshold_series": int(approaching.sum()),
    }


def audit_metrics_json(
    tenant_id: str,
    window_end: date,
    *,
    scoring: pd.DataFrame | None = None,
    exposure: pd.DataFrame | None = None,
    slates: pd.DataFrame | None = None,
    slate_groups: pd.DataFrame | None = None,
    trends: pd.DataFrame | None = None,
    stage_pair: str = SEED_DEFAULT_STAGE_PAIR,
) -> dict[str, Any]:
    """The audits' extra keys (:data:`AUDIT_KEYS`) of one tenant's document, from the audit tables of its window
    (frames as the audit assets' ``*_WINDOW`` queries return them; other tenants' rows are ignored)."""

    def mine(frame: pd.DataFrame | None) -> pd.DataFrame | None:
        return None if frame is None else frame[frame["tenant_id"] == tenant_id].reset_index(drop=True)

    tenant_groups = mine(slate_groups)
    return finite_json(
        {
            "scoring_rates": scoring_rates_metrics(mine(scoring)),
            "rank_exposure": rank_exposure_metrics(mine(exposure)),
            "slate_concentration": slate_concentration_metrics(
                mine(slates), tenant_groups if tenant_groups is not None else pd.DataFrame(), window_end
            ),
            "trends": trends_metrics(mine(trends), window_end, stage_pair),
        }
    )
