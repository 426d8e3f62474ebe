"""Score, rank and slate audits, and impact-ratio trends: pure Python on pre-aggregated inputs (no Dagster, no SQL).

- ``scoring``: LL144 scoring rates (share of a group's candidates scoring above the window's median score) and their
  impact ratios, with the same tests, intervals and small-sample rules as selection-rate impact ratios.
- ``exposure``: position-discounted exposure per group, exposure ratios, skew@k, exposure relative to score, with a
  seeded, vectorised bootstrap over searches.
- ``slates``: searches whose shown slate has more than 70% of its candidates from one group.
- ``trends``: week-over-week change of impact ratios with a significance test, and "approaching threshold" flags.
- ``from_events``: the same inputs computed with pandas from event frames (tests, oracles, small demos).

Inputs are groups or per-search aggregates that SQL can produce; each module documents the columns it expects and
the rules for ties, missing scores, missing ranks and small slates. Rules come from ``docs/fairness-methods.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

AUDIT_TABLES: dict[str, str] = {
    "scoring_rate": "scoring_rate_ratios",
    "exposure": "rank_exposure",
    "slate": "slate_concentration",
    "trend": "fairness_trends",
}
"""Each audit's short name (risk inputs and components, report sections) and the Dagster asset and table holding it:
the one place the two names of an audit meet."""

RISK_AUDITS: tuple[str, ...] = ("scoring_rate", "exposure", "slate")
"""The audits whose tables feed the risk components as they are (the trend component reads the impact-ratio series)."""


def risk_audit_frames(inputs: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The audit tables among a window's inputs that the verdict and the report read: those with rows."""
    return {name: inputs[name] for name in RISK_AUDITS if name in inputs and len(inputs[name])}
