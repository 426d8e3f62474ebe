"""What the synthetic generator makes: its configuration and the volume model it sizes searches and pools with."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from fairness_pipeline.synthetic._biases import (
    ConcentrationBias,
    PlantedBias,
    RankBias,
    ScoreBias,
    parse_bias,
    parse_rank_bias,
    parse_score_bias,
    parse_slate_concentration,
)

CLICK_PROB_TOP = 0.30
"""P(clicked | shown) at rank 1."""
CLICK_RANK_DECAY = 0.6
"""P(clicked | shown, rank r) = CLICK_PROB_TOP * r ** -CLICK_RANK_DECAY (about 0.096 on average over 20 ranks)."""

STAGE_PROBS: dict[str, float] = {"shortlisted": 0.40, "contacted": 0.55, "interviewed": 0.35, "hired": 0.22}
"""P(stage | previous stage) for the stages after ``clicked``, before planted bias."""

DEFAULT_POOL_FACTOR = 3.0
"""Default pool size = this factor times the shown events a tenant expects in min(days, 30) days."""

DEFAULT_START = dt.date(2026, 1, 1)


def _mean_click_prob(slate_size: int) -> float:
    ranks = np.arange(1, slate_size + 1, dtype=np.float64)
    return float(np.mean(CLICK_PROB_TOP * ranks**-CLICK_RANK_DECAY))


def expected_events_per_search(slate_size: int) -> float:
    """Expected events one search produces (shown plus later stages), without bias or censoring."""
    later = 0.0  # expected events after a click
    for stage in ("hired", "interviewed", "contacted", "shortlisted"):
        later = STAGE_PROBS[stage] * (1.0 + later)
    return slate_size * (1.0 + _mean_click_prob(slate_size) * (1.0 + later))


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate. ``events_per_day`` is per tenant and counts all stages (approximate, weekly average)."""

    seed: int = 7
    start: dt.date = DEFAULT_START
    days: int = 30
    tenants: int = 2
    events_per_day: int = 5000
    candidates_per_tenant: int | None = None
    slate_size: int = 20
    unknown_share: float = 0.02
    attribute_unknown_share: float = 0.06
    """Share of candidates without an answer per attribute dimension (declined or blank)."""
    bias: tuple[PlantedBias, ...] = field(default=())
    drift: tuple[PlantedBias, ...] = field(default=())
    """Biases that grow: the factor applied on day i of n is 1 + (factor - 1) * i / (n - 1)."""
    rank_bias: tuple[RankBias, ...] = field(default=())
    score_bias: tuple[ScoreBias, ...] = field(default=())
    slate_concentration: tuple[ConcentrationBias, ...] = field(default=())
    biased_tenants: tuple[str, ...] | None = None
    """Tenants the planted biases apply to (None: every tenant), so a demo can compare a biased and a fair tenant."""

    def __post_init__(self) -> None:
        if isinstance(self.start, dt.datetime) or not isinstance(self.start, dt.date):
            raise TypeError(f"start must be a datetime.date, got {self.start!r}")
        for name in ("seed", "days", "tenants", "events_per_day", "slate_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "seed" else 1):
                raise ValueError(f"{name} must be a {'non-negative' if name == 'seed' else 'positive'} integer")
        if self.seed >= 2**63:
            raise ValueError("seed must be below 2**63 (it is part of event ids, which hold at most 64 characters)")
        for name in ("unknown_share", "attribute_unknown_share"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        if self.candidates_per_tenant is not None and self.candidates_per_tenant < self.slate_size:
            raise ValueError("candidates_per_tenant must be at least slate_size")
        for name in ("bias", "drift"):
            biases = tuple(parse_bias(b) if isinstance(b, str) else b for b in getattr(self, name))
            if not all(isinstance(b, PlantedBias) for b in biases):
                raise TypeError(f"{name} entries must be PlantedBias or 'dimension=group:factor' strings")
            object.__setattr__(self, name, biases)
        for name, kind, parse in (
            ("rank_bias", RankBias, parse_rank_bias),
            ("score_bias", ScoreBias, parse_score_bias),
            ("slate_concentration", ConcentrationBias, parse_slate_concentration),
        ):
            entries = tuple(parse(e) if isinstance(e, str) else e for e in getattr(self, name))
            if not all(isinstance(e, kind) for e in entries):
                raise TypeError(f"{name} entries must be {kind.__name__} or 'dimension=group:number' strings")
            object.__setattr__(self, name, entries)
        if sum(c.searches for c in self.slate_concentration) > 1.0 + 1e-9:
            raise ValueError("slate_concentration shares of searches add up to more than 1")

    @property
    def end(self) -> dt.date:
        """First day after the generated range."""
        return self.start + dt.timedelta(days=self.days)

    @property
    def tenant_ids(self) -> tuple[str, ...]:
        return tuple(f"tenant-{i}" for i in range(1, self.tenants + 1))

    @property
    def searches_per_day(self) -> float:
        """Mean searches per tenant and day."""
        return self.events_per_day / expected_events_per_search(self.slate_size)

    @property
    def pool_size(self) -> int:
        """Candidates per tenant: ``candidates_per_tenant`` or the default derived from the volume."""
        if self.candidates_per_tenant is not None:
            return self.candidates_per_tenant
        shown = self.searches_per_day * self.slate_size * min(self.days, 30)
        return max(int(DEFAULT_POOL_FACTOR * shown), 50 * self.slate_size)
