"""Run configuration and partition mappings shared by the asset modules (which never import each other)."""

from __future__ import annotations

import dagster as dg

from fairness_pipeline.audits import exposure, slates, trends
from fairness_pipeline.metrics.window import AnalysisSettings

DEFAULT_WINDOW_DAYS = 30
HEADLINE_STAGE_PAIR = "shown->shortlisted"
DEFAULT_BOOTSTRAP_SEED = 0


class WindowConfig(dg.Config):
    """Analysis settings of fairness-methods.md; each has the documented default."""

    window_days: int = DEFAULT_WINDOW_DAYS
    alpha: float = 0.05
    threshold: float = 0.80
    min_share: float = 0.02
    min_sample: int = 20

    def settings(self) -> AnalysisSettings:
        return AnalysisSettings(
            window_days=self.window_days,
            alpha=self.alpha,
            threshold=self.threshold,
            min_share=self.min_share,
            min_sample=self.min_sample,
        )


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
    alpha: float = 0.05
    intersections: bool = False
    """Also assess the pairwise intersections (the seed asks per dimension)."""


class TrendConfig(WindowConfig):
    """Window settings plus the "approaching threshold" rule."""

    horizon_days: float = trends.DEFAULT_HORIZON_DAYS
    """Approaching: the fitted line reaches the threshold within this many days."""
    min_points: int = trends.DEFAULT_MIN_POINTS
    """Defined impact ratios needed in the last 14 windows to fit a slope."""


window_mapping = dg.TimeWindowPartitionMapping(
    start_offset=-(DEFAULT_WINDOW_DAYS - 1), end_offset=0, allow_nonexistent_upstream_partitions=True
)
"""A window ending on day D reads the candidate days D-29 .. D."""

previous_day_mapping = dg.TimeWindowPartitionMapping(
    start_offset=-1, end_offset=0, allow_nonexistent_upstream_partitions=True
)
"""A day's searches are read with the previous day's events (to leave out searches that started before midnight)."""

trend_mapping = dg.TimeWindowPartitionMapping(
    start_offset=-(trends.DEFAULT_SLOPE_WINDOWS - 1), end_offset=0, allow_nonexistent_upstream_partitions=True
)
"""Trends as of day D read the windows ending on D-13 .. D and the candidate days of the two weeks D-13 .. D."""
