"""Run configuration and partition mappings shared by the asset modules (which never import each other)."""

from __future__ import annotations

import dataclasses

import dagster as dg
from pydantic import Field

from fairness_pipeline.audits import exposure, slates, trends
from fairness_pipeline.metrics.window import DEFAULT_ANALYSIS, HEADLINE_STAGE_PAIR, AnalysisSettings

__all__ = ["HEADLINE_STAGE_PAIR"]  # the asset modules read the headline pair from here with the configs

DEFAULT_WINDOW_DAYS = DEFAULT_ANALYSIS.window_days
DEFAULT_BOOTSTRAP_SEED = 0


class WindowConfig(dg.Config):
    """Analysis settings of fairness-methods.md; the defaults are ``metrics.window.DEFAULT_ANALYSIS``.

    ``window_days`` may shorten the window (tests do) but not lengthen it past the code location's window, whose
    event days ``fairness-pipeline run`` materialises before the windows.
    """

    window_days: int = Field(default=DEFAULT_WINDOW_DAYS, ge=1, le=DEFAULT_WINDOW_DAYS)
    alpha: float = DEFAULT_ANALYSIS.alpha
    threshold: float = DEFAULT_ANALYSIS.threshold
    min_share: float = DEFAULT_ANALYSIS.min_share
    min_sample: int = DEFAULT_ANALYSIS.min_sample

    def settings(self) -> AnalysisSettings:
        own = {name: getattr(self, name) for name in WindowConfig.model_fields}
        return dataclasses.replace(DEFAULT_ANALYSIS, **own)


class AuditConfig(WindowConfig):
    """Window settings plus the exposure bootstrap."""

    n_boot: int = exposure.DEFAULT_N_BOOT
    """Bootstrap resamples of the searches (0 skips intervals and p-values)."""
    bootstrap_seed: int = DEFAULT_BOOTSTRAP_SEED
    """Seed of the bootstrap; each tenant and day draws its own stream from it, the same in every window holding the
    day (so that stored day sums serve every window)."""


class SlateConfig(dg.Config):
    """Settings of the concentrated-slate audit (seed 001)."""

    concentration: float = slates.DEFAULT_CONCENTRATION
    """A slate is concentrated when one group holds strictly more than this share of it."""
    min_slate: int = slates.DEFAULT_MIN_SLATE
    """Slates with fewer shown candidates are counted but not assessed."""
    alpha: float = DEFAULT_ANALYSIS.alpha
    intersections: bool = False
    """Also assess the pairwise intersections (the seed asks per dimension)."""


class TrendConfig(WindowConfig):
    """Window settings plus the "approaching threshold" rule."""

    horizon_days: float = trends.DEFAULT_HORIZON_DAYS
    """Approaching: the fitted line reaches the threshold within this many days."""
    min_points: int = trends.DEFAULT_MIN_POINTS
    """Defined impact ratios needed in the last 14 windows to fit a slope."""


previous_day_mapping = dg.TimeWindowPartitionMapping(
    start_offset=-1, end_offset=0, allow_nonexistent_upstream_partitions=True
)
"""A day's searches are read with the previous day's events (to leave out searches that started before midnight)."""
