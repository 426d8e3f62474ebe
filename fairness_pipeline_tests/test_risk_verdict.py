"""A verdict re-adjusts all of a tenant's tests together, so chance findings in one of many tables do not count."""

from __future__ import annotations

import pandas as pd
from statsmodels.stats.multitest import multipletests

from fairness_pipeline.risk.assessment import VERDICT_ADJUSTMENT, verdict_adjustment


def test_holm_across_every_table() -> None:
    p_values = [1e-10, 0.01, 0.2, None] + [0.5] * 16
    rows = pd.DataFrame(
        {
            "stage_pair": ["shown->shortlisted"] * 10 + ["shown->hired"] * 10,
            "dimension": ["company_tier"] * 20,
            "group": [f"g{i}" for i in range(20)],
            "p_value": p_values,
            "p_adjusted": [p for p in p_values],  # as each table adjusted itself: 0.01 would pass at 0.05
            "significant": [True, True, False, None] + [False] * 16,
        }
    )
    out = verdict_adjustment(rows)
    tested = [p for p in p_values if p is not None]
    expected = multipletests(tested, alpha=0.05, method="holm")[1]  # statsmodels as the oracle, method named
    assert out.loc[rows["p_value"].notna(), "p_adjusted"].tolist() == list(expected)
    assert bool(out.loc[0, "significant"]) and not bool(out.loc[1, "significant"])  # 0.01 * 19 > 0.05
    assert out.loc[3, "significant"] is pd.NA
    assert set(out.loc[rows["p_value"].notna(), "adjustment_method"]) == {VERDICT_ADJUSTMENT}
