"""Analysis of one metric window: from a cell table of candidate counts to selection-rate frames and impact ratios.

The cell table comes from SQL (``queries.analysis.WINDOW_CELLS``): one row per tenant, stage pair and combination of
the three dimension values, with ``n`` candidates in the population and ``x`` of them selected. Everything here works
on those groups, never on events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import pandas as pd

from fairness_pipeline.events.vocabulary import DEFAULT_STAGE_PAIRS, DIMENSION_VALUES, DIMENSIONS, stage_pair_name
from fairness_pipeline.metrics.impact import IMPACT_COLUMNS, impact_ratio_table
from fairness_pipeline.metrics.selection_rates import (
    FRAME_COLUMNS,
    INTERSECTION_SEPARATOR,
    analysis_dimensions,
    counts_by_dimension,
    dimension_name,
    selection_rate_frames,
)

TABLE_KEYS = ["tenant_id", "stage_pair", "dimension"]


@dataclass(frozen=True)
class AnalysisSettings:
    """Thresholds of fairness-methods.md; every one is a default that configuration can change."""

    window_days: int = 30
    stage_pairs: tuple[tuple[str, str], ...] = DEFAULT_STAGE_PAIRS
    alpha: float = 0.05
    threshold: float = 0.80
    min_share: float = 0.02
    min_sample: int = 20
    intersections: bool = True
    dimensions: tuple[str, ...] = field(default=DIMENSIONS)

    @property
    def stage_pair_names(self) -> list[str]:
        return [stage_pair_name(b, s) for b, s in self.stage_pairs]

    def window(self, window_end: date) -> tuple[date, date]:
        """First and last day (inclusive) of the window ending on ``window_end``."""
        return window_end - timedelta(days=self.window_days - 1), window_end


@dataclass(frozen=True)
class WindowAnalysis:
    frames: pd.DataFrame
    """``TABLE_KEYS`` + ``FRAME_COLUMNS``: rates and demographic parity per group."""
    impacts: pd.DataFrame
    """``TABLE_KEYS`` + ``IMPACT_COLUMNS``: impact ratios, tests and checks per group."""


def group_counts(cells: pd.DataFrame, settings: AnalysisSettings) -> pd.DataFrame:
    """Per (tenant, stage pair, dimension, group) counts, for each dimension and pairwise intersection.

    Every allowed value of a single dimension is listed, with n = 0 when no candidate has it, so reports show
    empty categories as empty rather than leaving them out.
    """
    parts = []
    for (tenant, pair), cell_table in cells.groupby(["tenant_id", "stage_pair"], sort=True):
        for dims in analysis_dimensions(settings.dimensions, pairs=settings.intersections):
            counts = counts_by_dimension(cell_table, dims)
            if len(dims) == 1:
                allowed = pd.DataFrame({"group": DIMENSION_VALUES[dims[0]], "n": 0, "x": 0})
                counts = pd.concat([counts, allowed[~allowed["group"].isin(counts["group"])]], ignore_index=True)
            counts.insert(0, "dimension", dimension_name(dims))
            counts.insert(0, "stage_pair", pair)
            counts.insert(0, "tenant_id", tenant)
            parts.append(counts)
    if not parts:
        return pd.DataFrame(columns=[*TABLE_KEYS, "group", "n", "x"])
    return pd.concat(parts, ignore_index=True)


def impacts_for_counts(counts: pd.DataFrame, settings: AnalysisSettings) -> pd.DataFrame:
    """Impact tables of every (tenant, stage pair, dimension) of ``counts`` (``TABLE_KEYS`` + group, n, x).

    Intersections are adjusted with Benjamini-Hochberg, single dimensions with Holm.
    """
    parts = []
    for (tenant, pair, dimension), table in counts.groupby(TABLE_KEYS, sort=True):
        impacts = impact_ratio_table(
            table[["group", "n", "x"]],
            intersectional=INTERSECTION_SEPARATOR in dimension,
            alpha=settings.alpha,
            threshold=settings.threshold,
            min_share=settings.min_share,
            min_sample=settings.min_sample,
        )
        impacts.insert(0, "dimension", dimension)
        impacts.insert(0, "stage_pair", pair)
        impacts.insert(0, "tenant_id", tenant)
        parts.append(impacts)
    if not parts:
        return pd.DataFrame(columns=[*TABLE_KEYS, *IMPACT_COLUMNS])
    return pd.concat(parts, ignore_index=True)


def analyse_window(cells: pd.DataFrame, settings: AnalysisSettings) -> WindowAnalysis:
    """Selection-rate frames (one fairlearn ``MetricFrame`` for all tables) and impact ratios for a window."""
    counts = group_counts(cells, settings)
    frames = selection_rate_frames(counts, keys=TABLE_KEYS)
    return WindowAnalysis(frames=frames[[*TABLE_KEYS, *FRAME_COLUMNS]], impacts=impacts_for_counts(counts, settings))
