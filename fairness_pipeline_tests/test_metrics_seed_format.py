"""The seed-shaped JSON carries the omnibus gate's p and the improving trends."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency

from fairness_pipeline.metrics.seed_format import tenant_metrics_json, trends_metrics
from fairness_pipeline.metrics.window import TABLE_KEYS, AnalysisSettings, impacts_for_counts

END = dt.date(2026, 3, 15)


def test_significance_tests_carry_p_omnibus() -> None:
    rows = [("faang", 200, 69), ("enterprise", 200, 58), ("startup", 200, 45), ("other", 200, 55), ("unknown", 9, 3)]
    counts = pd.DataFrame(rows, columns=["group", "n", "x"]).assign(
        tenant_id="t1", stage_pair="shown->shortlisted", dimension="company_tier"
    )[[*TABLE_KEYS, "group", "n", "x"]]
    settings = AnalysisSettings(dimensions=("company_tier",), intersections=False)
    impacts = impacts_for_counts(counts, settings)
    frames = counts.assign(overall_rate=np.nan, dp_ratio=np.nan, dp_difference=np.nan)
    document = tenant_metrics_json(frames, impacts, "t1", END, settings, dt.datetime(2026, 3, 16, tzinfo=dt.UTC))
    tests = document["dimensions"]["company_tier"]["significance_tests"]
    assert set(tests) == {"enterprise", "startup", "other"}  # faang is the reference, unknown is never compared
    oracle = chi2_contingency([[x, n - x] for _, n, x in rows[:4]], correction=False).pvalue
    assert [t["p_omnibus"] for t in tests.values()] == pytest.approx([oracle] * 3, rel=1e-9)
    assert all(t["p_adjusted"] >= t["p_omnibus"] for t in tests.values())
    assert document["dimensions"]["company_tier"]["unknown_count"] == 9


def test_trends_list_improving_beside_worsening() -> None:
    table = pd.DataFrame(
        {
            "tenant_id": "t1",
            "stage_pair": "shown->shortlisted",
            "dimension": "company_tier",
            "group": ["faang", "startup", "other"],
            "latest_ratio": [1.0, 0.6, 1.1],
            "slope_per_day": [0.0, -0.01, 0.01],
            "days_to_threshold": [np.nan, np.nan, np.nan],
            "ratio_change": [np.nan, 0.5, 1.5],
            "ratio_previous": [np.nan, 0.8, 0.7],
            "ratio_current": [np.nan, 0.4, 1.05],
            "p_adjusted": [np.nan, 0.001, 0.01],
            "worsening": pd.array([None, True, False], dtype="boolean"),
            "improving": pd.array([None, False, True], dtype="boolean"),
            "approaching_threshold": pd.array([None, False, False], dtype="boolean"),
        }
    )
    result = trends_metrics(table, END)
    block = result["dimensions"]["company_tier"]
    assert block["worsening_groups"] == ["startup"] and block["improving_groups"] == ["other"]
    assert result["worsening_series"] == 1 and result["improving_series"] == 1
    assert [r["group"] for r in result["improving"]] == ["other"]
