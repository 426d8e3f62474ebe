"""Deterministic synthetic selection events: a recruiting funnel with optional planted bias.

Model, per tenant and UTC day:

- Each tenant has a fixed pool of candidates whose dimension values are drawn once (``GROUP_PROPORTIONS``; a share
  ``unknown_share`` of candidates has no value, per dimension). Dimensions are independent of each other and of
  scores, so without planted bias every group has the same expected selection rates.
- Recruiters (``user_id_hash`` = sha256 of a synthetic user name) run searches; their number per day is Poisson
  around the volume that yields ``events_per_day`` events, shaped by ``WEEKDAY_WEIGHTS``, at times of day spread
  around a tenant-specific peak hour. Each search shows a slate of ``slate_size`` distinct candidates
  (ranks 1..n; scores fall with rank, plus noise, 4 decimals in [0, 1]).
- Funnel: shown -> clicked with ``CLICK_PROB_TOP * rank ** -CLICK_RANK_DECAY``, then each later stage with the
  conditional probability in ``STAGE_PROBS``, times the factors of matching ``PlantedBias`` entries (capped at 1).
  A ``drift`` entry (also a ``PlantedBias``) is a bias that grows: its factor goes in a straight line from 1 on the
  first day to ``factor`` on the last day, so the group's impact ratio sinks week after week.
  A later stage happens ``STAGE_LAG_SECONDS`` after the previous one and repeats the search_id, rank, score and
  dimensions of the shown event.
- Optional planted ranking effects, applied to each slate in this order (none of them is used by default):
  ``slate_concentration`` (``ConcentrationBias``): a share of searches draws exactly ceil(purity * slate_size)
  candidates from one group and the rest from outside it, in random order; ``score_bias`` (``ScoreBias``): the
  group's scores are shifted by a constant (clipped to [0, 1]) and the slate is re-ordered by score, as a ranker
  that sorts by its score would; ``rank_bias`` (``RankBias``): the group's candidates are pushed down N positions
  (each sorts as if at position + N, after the candidates already there) and keep their scores, so they score the
  same as before but are ranked lower. Ranks are then 1..n in the new order and clicks follow the new ranks. These
  draws come from their own generator, so the other draws are the same as without them.
- Events are emitted in timestamp order, one DataFrame per (day, tenant) holding the events whose timestamp falls
  on that day. Events that would fall on or after ``start + days`` (late stages of the last days' searches) are
  dropped, like a snapshot taken at the end of the range: late stages near the end are censored.

Everything is drawn from numpy generators seeded by ``(seed, tenant, day)``, so the same configuration gives the
same events, byte for byte once written.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import repeat
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from fairness_pipeline.events.vocabulary import DIMENSION_VALUES, DIMENSIONS, EVENT_COLUMNS, EVENT_TYPES, UNKNOWN_GROUP

GROUP_PROPORTIONS: dict[str, tuple[float, ...]] = {
    "company_tier": (0.08, 0.32, 0.30, 0.30),  # faang, enterprise, startup, other
    "experience_band": (0.22, 0.35, 0.30, 0.13),  # 0-3, 3-7, 7-15, 15+
    "specialty": (0.22, 0.14, 0.18, 0.08, 0.10, 0.07, 0.08, 0.13),  # backend .. other, as in the vocabulary
}
"""Share of each known group in a candidate pool, in vocabulary order (before ``unknown_share`` is taken out)."""

CLICK_PROB_TOP = 0.30
"""P(clicked | shown) at rank 1."""
CLICK_RANK_DECAY = 0.6
"""P(clicked | shown, rank r) = CLICK_PROB_TOP * r ** -CLICK_RANK_DECAY (about 0.096 on average over 20 ranks)."""

STAGE_PROBS: dict[str, float] = {"shortlisted": 0.40, "contacted": 0.55, "interviewed": 0.35, "hired": 0.22}
"""P(stage | previous stage) for the stages after ``clicked``, before planted bias."""

STAGE_LAG_SECONDS: dict[str, tuple[float, float]] = {
    "clicked": (2.0, 240.0),
    "shortlisted": (5.0, 900.0),
    "contacted": (600.0, 0.75 * 86400),
    "interviewed": (0.5 * 86400, 3.0 * 86400),
    "hired": (86400.0, 7.0 * 86400),
}
"""Delay from the previous stage: (minimum, mean of the exponential part), in seconds."""

WEEKDAY_WEIGHTS: tuple[float, ...] = (1.15, 1.2, 1.2, 1.15, 1.0, 0.15, 0.15)
"""Relative search volume Monday..Sunday; normalised so that a week averages ``events_per_day``."""

SEARCH_HOUR_SD = 3.0
"""Spread (hours) of search times around a tenant's peak hour (13:00 UTC, shifted 5 h per further tenant)."""

SEARCHES_PER_RECRUITER = 10
"""Average searches per recruiter and day; sets the number of recruiters per tenant."""

DEFAULT_POOL_FACTOR = 3.0
"""Default pool size = this factor times the shown events a tenant expects in min(days, 30) days."""

DEFAULT_START = dt.date(2026, 1, 1)

_US_PER_DAY = 86_400_000_000
_SHOWN_SPACING_US = 1000  # shown events of a slate are logged 1 ms apart, in rank order
_BIASABLE_STAGES: tuple[str, ...] = EVENT_TYPES[1:]


@dataclass(frozen=True)
class PlantedBias:
    """Multiply the probability that candidates of ``dimension=group`` reach ``stage`` (given the previous stage)."""

    dimension: str
    group: str
    factor: float
    stage: str = "shortlisted"

    def __post_init__(self) -> None:
        if self.dimension not in DIMENSION_VALUES:
            raise ValueError(f"unknown dimension {self.dimension!r}; expected one of {', '.join(DIMENSIONS)}")
        allowed = (*DIMENSION_VALUES[self.dimension], UNKNOWN_GROUP)
        if self.group not in allowed:
            raise ValueError(f"unknown group {self.group!r} for {self.dimension}; expected one of {', '.join(allowed)}")
        factor = self.factor
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not math.isfinite(factor) or factor <= 0:
            raise ValueError(f"bias factor must be a positive number, got {factor!r}")
        if self.stage not in _BIASABLE_STAGES:
            raise ValueError(f"unknown bias stage {self.stage!r}; expected one of {', '.join(_BIASABLE_STAGES)}")

    def __str__(self) -> str:
        suffix = "" if self.stage == "shortlisted" else f"@{self.stage}"
        return f"{self.dimension}={self.group}:{self.factor:g}{suffix}"


def parse_bias(text: str) -> PlantedBias:
    """Parse ``DIMENSION=GROUP:FACTOR[@STAGE]``, e.g. ``company_tier=startup:0.6`` (stage defaults to shortlisted)."""
    usage = "expected DIMENSION=GROUP:FACTOR[@STAGE], e.g. company_tier=startup:0.6"
    spec, has_stage, stage = text.strip().partition("@")
    head, has_factor, factor_text = spec.rpartition(":")
    dimension, has_group, group = head.partition("=")
    if not has_factor or not has_group:
        raise ValueError(f"invalid bias {text!r}: {usage}")
    try:
        factor = float(factor_text)
    except ValueError:
        raise ValueError(f"invalid bias {text!r}: factor {factor_text.strip()!r} is not a positive number") from None
    try:
        return PlantedBias(dimension.strip(), group.strip(), factor, stage.strip() if has_stage else "shortlisted")
    except ValueError as exc:
        raise ValueError(f"invalid bias {text!r}: {exc}") from None


def _check_group(dimension: str, group: str) -> None:
    if dimension not in DIMENSION_VALUES:
        raise ValueError(f"unknown dimension {dimension!r}; expected one of {', '.join(DIMENSIONS)}")
    allowed = (*DIMENSION_VALUES[dimension], UNKNOWN_GROUP)
    if group not in allowed:
        raise ValueError(f"unknown group {group!r} for {dimension}; expected one of {', '.join(allowed)}")


def _check_number(name: str, value: object, low: float, high: float, *, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < low or value > high or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be in {bracket}{low:g}, {high:g}], got {value!r}")
    return float(value)


@dataclass(frozen=True)
class RankBias:
    """Push the candidates of ``dimension=group`` down ``positions`` places in each slate (negative: up).

    Each candidate sorts as if at its position + ``positions``, after a candidate already at that position, so a
    pushed candidate drops ``positions`` places when no other pushed candidate is in between (fewer near the bottom).
    It keeps its score. Several entries matching one candidate add up.
    """

    dimension: str
    group: str
    positions: float

    def __post_init__(self) -> None:
        _check_group(self.dimension, self.group)
        _check_number("rank bias positions", self.positions, -1000.0, 1000.0)

    def __str__(self) -> str:
        return f"{self.dimension}={self.group}:{self.positions:g}"


@dataclass(frozen=True)
class ScoreBias:
    """Add ``shift`` (in [-1, 1]) to the scores of ``dimension=group`` (clipped to [0, 1]); the slate is re-ordered
    by score. Several entries matching one candidate add up."""

    dimension: str
    group: str
    shift: float

    def __post_init__(self) -> None:
        _check_group(self.dimension, self.group)
        _check_number("score shift", self.shift, -1.0, 1.0)

    def __str__(self) -> str:
        return f"{self.dimension}={self.group}:{self.shift:g}"


DEFAULT_SLATE_PURITY = 0.9
"""Share of a concentrated slate drawn from the dominant group (18 of 20): well above the 70% of the audit."""


@dataclass(frozen=True)
class ConcentrationBias:
    """A share ``searches`` of each tenant's searches shows ceil(``purity`` * slate_size) candidates of
    ``dimension=group`` and the rest from outside the group. Entries of one configuration take disjoint shares of the
    searches (their ``searches`` add up to at most 1)."""

    dimension: str
    group: str
    searches: float
    purity: float = DEFAULT_SLATE_PURITY

    def __post_init__(self) -> None:
        _check_group(self.dimension, self.group)
        _check_number("share of concentrated searches", self.searches, 0.0, 1.0, low_open=True)
        _check_number("slate purity", self.purity, 0.0, 1.0, low_open=True)

    def __str__(self) -> str:
        suffix = "" if self.purity == DEFAULT_SLATE_PURITY else f"@{self.purity:g}"
        return f"{self.dimension}={self.group}:{self.searches:g}{suffix}"


def _parse_spec(text: str, what: str, usage: str) -> tuple[str, str, float, str | None]:
    """Split ``DIMENSION=GROUP:NUMBER[@SUFFIX]`` into its parts (the number parsed, the suffix None when absent)."""
    spec, has_suffix, suffix = text.strip().partition("@")
    head, has_number, number_text = spec.rpartition(":")
    dimension, has_group, group = head.partition("=")
    if not has_number or not has_group:
        raise ValueError(f"invalid {what} {text!r}: {usage}")
    try:
        number = float(number_text)
    except ValueError:
        raise ValueError(f"invalid {what} {text!r}: {number_text.strip()!r} is not a number") from None
    return dimension.strip(), group.strip(), number, suffix.strip() if has_suffix else None


def parse_rank_bias(text: str) -> RankBias:
    """Parse ``DIMENSION=GROUP:POSITIONS``, e.g. ``company_tier=startup:3`` (pushed 3 places down)."""
    usage = "expected DIMENSION=GROUP:POSITIONS, e.g. company_tier=startup:3"
    dimension, group, positions, suffix = _parse_spec(text, "rank bias", usage)
    if suffix is not None:
        raise ValueError(f"invalid rank bias {text!r}: {usage}")
    try:
        return RankBias(dimension, group, positions)
    except ValueError as exc:
        raise ValueError(f"invalid rank bias {text!r}: {exc}") from None


def parse_score_bias(text: str) -> ScoreBias:
    """Parse ``DIMENSION=GROUP:SHIFT``, e.g. ``company_tier=startup:-0.1`` (scores 0.1 lower)."""
    usage = "expected DIMENSION=GROUP:SHIFT, e.g. company_tier=startup:-0.1"
    dimension, group, shift, suffix = _parse_spec(text, "score bias", usage)
    if suffix is not None:
        raise ValueError(f"invalid score bias {text!r}: {usage}")
    try:
        return ScoreBias(dimension, group, shift)
    except ValueError as exc:
        raise ValueError(f"invalid score bias {text!r}: {exc}") from None


def parse_slate_concentration(text: str) -> ConcentrationBias:
    """Parse ``DIMENSION=GROUP:SHARE[@PURITY]``, e.g. ``company_tier=faang:0.2`` (20% of searches, 90% faang)."""
    usage = "expected DIMENSION=GROUP:SHARE[@PURITY], e.g. company_tier=faang:0.2"
    dimension, group, share, suffix = _parse_spec(text, "slate concentration", usage)
    try:
        purity = DEFAULT_SLATE_PURITY if suffix is None else float(suffix)
    except ValueError:
        raise ValueError(f"invalid slate concentration {text!r}: purity {suffix!r} is not a number") from None
    try:
        return ConcentrationBias(dimension, group, share, purity)
    except ValueError as exc:
        raise ValueError(f"invalid slate concentration {text!r}: {exc}") from None


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
        if not 0.0 <= self.unknown_share < 1.0:
            raise ValueError(f"unknown_share must be in [0, 1), got {self.unknown_share!r}")
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


_Batch = dict[str, np.ndarray]
_BATCH_DTYPES: dict[str, type] = {
    "ts": np.int64,  # microseconds since the epoch, UTC
    "stage": np.int8,  # index into EVENT_TYPES
    "cand": np.int64,  # index into the tenant's pool
    "search": np.int64,  # (search day index << 32) | search number within the day
    "user": np.int32,  # index into the tenant's recruiters
    "rank": np.int64,
    "score": np.float64,
}


def _empty_batch() -> _Batch:
    return {key: np.empty(0, dtype=dtype) for key, dtype in _BATCH_DTYPES.items()}


def _epoch_us(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * _US_PER_DAY


def _draw_slates(rng: np.random.Generator, searches: int, slate_size: int, pool: int) -> np.ndarray:
    """``(searches, slate_size)`` candidate indices, distinct within each row."""
    slates = rng.integers(0, pool, size=(searches, slate_size))
    rows = np.arange(searches)
    while rows.size:
        subset = slates[rows]
        order = np.argsort(subset, axis=1, kind="stable")
        ordered = np.take_along_axis(subset, order, axis=1)
        row, col = np.nonzero(ordered[:, 1:] == ordered[:, :-1])  # col + 1 repeats its left neighbour
        slates[rows[row], order[row, col + 1]] = rng.integers(0, pool, size=row.size)
        rows = np.unique(rows[row])
    return slates


class _Tenant:
    """A tenant's fixed state (pool, recruiters, bias multipliers) and its events not yet emitted."""

    def __init__(self, config: GeneratorConfig, index: int) -> None:
        self.index = index
        self.tenant_id = config.tenant_ids[index]
        rng = np.random.default_rng([config.seed, 0, index])
        pool = config.pool_size
        self.dims: dict[str, np.ndarray] = {}
        for dim in DIMENSIONS:
            codes = rng.choice(len(DIMENSION_VALUES[dim]), size=pool, p=GROUP_PROPORTIONS[dim]).astype(np.int8)
            codes[rng.random(pool) < config.unknown_share] = -1
            self.dims[dim] = codes
        recruiters = max(3, math.ceil(config.searches_per_day / SEARCHES_PER_RECRUITER))
        weights = rng.permutation(np.arange(1, recruiters + 1, dtype=np.float64) ** -0.8)
        self.user_weights = weights / weights.sum()
        self.user_hashes = np.array(
            [hashlib.sha256(f"{self.tenant_id}-recruiter-{i:04d}".encode()).hexdigest() for i in range(recruiters)],
            dtype=object,
        )
        planted = config.biased_tenants is None or self.tenant_id in config.biased_tenants
        self.bias_multipliers: dict[str, np.ndarray] = {}
        for bias in config.bias if planted else ():
            values = DIMENSION_VALUES[bias.dimension]
            code = -1 if bias.group == UNKNOWN_GROUP else values.index(bias.group)
            multiplier = self.bias_multipliers.setdefault(bias.stage, np.ones(pool))
            multiplier[self.dims[bias.dimension] == code] *= bias.factor
        self.drifts: list[tuple[str, np.ndarray, float]] = []
        """(stage, candidates of the group, factor on the last day) of each drift."""
        for bias in config.drift if planted else ():
            code = -1 if bias.group == UNKNOWN_GROUP else DIMENSION_VALUES[bias.dimension].index(bias.group)
            self.drifts.append((bias.stage, self.dims[bias.dimension] == code, bias.factor))
        rank_bias, score_bias = (config.rank_bias, config.score_bias) if planted else ((), ())
        self.rank_push = self._per_candidate([(b.dimension, b.group, b.positions) for b in rank_bias])
        self.score_shift = self._per_candidate([(b.dimension, b.group, b.shift) for b in score_bias])
        self.concentration: list[tuple[float, np.ndarray, np.ndarray, int]] = []
        for entry in config.slate_concentration if planted else ():
            inside = self._members(entry.dimension, entry.group)
            from_group = math.ceil(Fraction(repr(entry.purity)) * config.slate_size)
            members, others = np.flatnonzero(inside), np.flatnonzero(~inside)
            if members.size < from_group or others.size < config.slate_size - from_group:
                raise ValueError(
                    f"{self.tenant_id}: too few candidates in or outside {entry.dimension}={entry.group} for "
                    f"concentrated slates of {from_group} + {config.slate_size - from_group}; enlarge the pool"
                )
            self.concentration.append((entry.searches, members, others, from_group))
        self.peak_hour = (13.0 + 5.0 * index) % 24.0
        self.pending = _empty_batch()

    def _members(self, dimension: str, group: str) -> np.ndarray:
        """Boolean mask of the pool's candidates in ``dimension=group``."""
        code = -1 if group == UNKNOWN_GROUP else DIMENSION_VALUES[dimension].index(group)
        return self.dims[dimension] == code

    def _per_candidate(self, entries: list[tuple[str, str, float]]) -> np.ndarray | None:
        """Sum of the amounts of the matching entries per pool candidate; None without entries."""
        if not entries:
            return None
        total = np.zeros(self.dims[DIMENSIONS[0]].size)
        for dimension, group, amount in entries:
            total[self._members(dimension, group)] += amount
        return total


def _plant_ranking(
    config: GeneratorConfig, tenant: _Tenant, day_index: int, slates: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Apply slate concentration, score bias and rank bias (in this order) to a day's slates and their scores."""
    rng = np.random.default_rng([config.seed, 2, tenant.index, day_index])
    searches, k = slates.shape
    if tenant.concentration:
        draw = rng.random(searches)
        lower = 0.0
        for share, members, others, from_group in tenant.concentration:
            rows = np.flatnonzero((draw >= lower) & (draw < lower + share))
            lower += share
            if rows.size:
                inside = members[_draw_slates(rng, rows.size, from_group, members.size)]
                outside = others[_draw_slates(rng, rows.size, k - from_group, others.size)]
                slates[rows] = rng.permuted(np.concatenate([inside, outside], axis=1), axis=1)
    if tenant.score_shift is not None:
        shifted = np.clip(np.round(scores + tenant.score_shift[slates], 4), 0.0, 1.0) + 0.0
        order = np.argsort(-shifted, axis=1, kind="stable")
        slates, scores = np.take_along_axis(slates, order, axis=1), np.take_along_axis(shifted, order, axis=1)
    if tenant.rank_push is not None:
        push = tenant.rank_push[slates]
        order = np.lexsort((push, np.arange(k) + push), axis=-1)  # ties: the candidate pushed further goes after
        slates, scores = np.take_along_axis(slates, order, axis=1), np.take_along_axis(scores, order, axis=1)
    return slates, scores


def _day_multiplier(config: GeneratorConfig, tenant: _Tenant, stage: str, day_index: int) -> np.ndarray | None:
    """Per-candidate factor of ``stage`` on day ``day_index``: the fixed biases times the drifts' factors of the day."""
    multiplier = tenant.bias_multipliers.get(stage)
    progress = day_index / (config.days - 1) if config.days > 1 else 1.0
    for drift_stage, members, factor in tenant.drifts:
        if drift_stage == stage:
            multiplier = np.ones(members.size) if multiplier is None else multiplier.copy()
            multiplier[members] *= 1.0 + (factor - 1.0) * progress
    return multiplier


def _simulate_day(config: GeneratorConfig, tenant: _Tenant, day_index: int, day: dt.date) -> _Batch:
    """All funnel events caused by one tenant's searches of one day (later stages may fall on later days)."""
    rng = np.random.default_rng([config.seed, 1, tenant.index, day_index])
    weekday_weight = WEEKDAY_WEIGHTS[day.weekday()] * len(WEEKDAY_WEIGHTS) / sum(WEEKDAY_WEIGHTS)
    searches = int(rng.poisson(config.searches_per_day * weekday_weight))
    if searches == 0:
        return _empty_batch()
    k = config.slate_size
    seconds = np.sort(np.mod(rng.normal(tenant.peak_hour * 3600, SEARCH_HOUR_SD * 3600, searches), 86_340.0))
    search_ts = _epoch_us(day) + (seconds * 1e6).astype(np.int64)
    users = rng.choice(tenant.user_hashes.size, size=searches, p=tenant.user_weights).astype(np.int32)
    slates = _draw_slates(rng, searches, k, config.pool_size)
    top = rng.uniform(0.70, 0.97, size=(searches, 1))
    span = rng.uniform(0.15, 0.45, size=(searches, 1))
    position = np.arange(k) / max(k - 1, 1)
    scores = top - span * position + rng.normal(0.0, 0.02, size=(searches, k))
    scores = np.clip(np.round(scores, 4), 0.0, 1.0) + 0.0  # + 0.0 turns -0.0 into 0.0
    if tenant.concentration or tenant.score_shift is not None or tenant.rank_push is not None:
        slates, scores = _plant_ranking(config, tenant, day_index, slates, scores)

    shown: _Batch = {
        "ts": (search_ts[:, None] + np.arange(k) * _SHOWN_SPACING_US).ravel(),
        "stage": np.zeros(searches * k, dtype=np.int8),
        "cand": slates.ravel(),
        "search": np.repeat((np.int64(day_index) << 32) | np.arange(searches, dtype=np.int64), k),
        "user": np.repeat(users, k),
        "rank": np.tile(np.arange(1, k + 1, dtype=np.int64), searches),
        "score": scores.ravel(),
    }
    click_probs = CLICK_PROB_TOP * np.arange(1, k + 1, dtype=np.float64) ** -CLICK_RANK_DECAY
    picks, stages, stamps = [], [], []
    current, current_ts = np.arange(searches * k), shown["ts"]
    for code, stage in enumerate(EVENT_TYPES[1:], start=1):
        probs = (
            click_probs[shown["rank"][current] - 1] if stage == "clicked" else np.full(current.size, STAGE_PROBS[stage])
        )
        multiplier = _day_multiplier(config, tenant, stage, day_index)
        if multiplier is not None:
            probs = np.minimum(probs * multiplier[shown["cand"][current]], 1.0)
        kept = rng.random(current.size) < probs
        current = current[kept]
        minimum, mean = STAGE_LAG_SECONDS[stage]
        lag_us = ((minimum + rng.exponential(mean, size=current.size)) * 1e6).astype(np.int64)
        current_ts = current_ts[kept] + lag_us
        picks.append(current)
        stages.append(np.full(current.size, code, dtype=np.int8))
        stamps.append(current_ts)
    later = np.concatenate(picks)
    batch = {key: np.concatenate([values, values[later]]) for key, values in shown.items()}
    batch["stage"] = np.concatenate([shown["stage"], *stages])
    batch["ts"] = np.concatenate([shown["ts"], *stamps])
    return batch


_DIM_LOOKUP: dict[str, np.ndarray] = {
    dim: np.array([*values, None], dtype=object) for dim, values in DIMENSION_VALUES.items()
}  # code -1 (unknown) picks the trailing None
_EVENT_TYPE_LOOKUP = np.array(EVENT_TYPES, dtype=object)
_TEXT_DTYPE: object = "str" if int(pd.__version__.split(".")[0]) >= 3 else object
"""pandas' string dtype (NaN for missing) from pandas 3 on; plain object columns (None for missing) before."""


@functools.cache
def _digits(width: int) -> np.ndarray:
    """All ``width``-digit zero-padded numbers, as an object array of str."""
    return np.array([f"{i:0{width}d}" for i in range(10**width)], dtype=object)


def _numbered(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """``prefix`` + numbers zero-padded to ``width`` digits, as an object array of str."""
    if width > 3 and (numbers.size == 0 or int(numbers.max()) < 10**width):
        high, low = np.divmod(numbers, 1000)
        return (prefix + _digits(width - 3)[high]) + _digits(3)[low]
    return np.char.add(prefix, np.char.zfill(numbers.astype(np.str_), width)).astype(object)


def _to_frame(config: GeneratorConfig, tenant: _Tenant, day: dt.date, batch: _Batch) -> pd.DataFrame:
    n = batch["ts"].size
    search_codes, search_inverse = np.unique(batch["search"], return_inverse=True)
    search_days, search_numbers = np.divmod(search_codes, np.int64(1) << 32)
    search_ids = np.empty(search_codes.size, dtype=object)
    for search_day in np.unique(search_days).tolist():  # the day itself and a few earlier ones
        prefix = f"srch-{config.seed}-{tenant.tenant_id}-{config.start + dt.timedelta(days=search_day):%Y%m%d}-"
        on_day = search_days == search_day
        search_ids[on_day] = _numbered(prefix, search_numbers[on_day], 5)
    candidates, candidate_inverse = np.unique(batch["cand"], return_inverse=True)
    columns: dict[str, object] = {
        "event_id": _numbered(f"ev-{config.seed}-{tenant.tenant_id}-{day:%Y%m%d}-", np.arange(n), 7),
        "timestamp": pd.DatetimeIndex(batch["ts"].astype("datetime64[us]")).tz_localize("UTC"),
        "candidate_id": _numbered(f"{tenant.tenant_id}-cand-", candidates, 7)[candidate_inverse],
        "event_type": _EVENT_TYPE_LOOKUP[batch["stage"]],
        "search_id": search_ids[search_inverse],
        "tenant_id": np.full(n, tenant.tenant_id, dtype=object),
        "user_id_hash": tenant.user_hashes[batch["user"]],
    }
    for dim in DIMENSIONS:
        columns[dim] = _DIM_LOOKUP[dim][tenant.dims[dim][batch["cand"]]]
    frame = pd.DataFrame(
        {
            name: pd.Series(values, dtype=_TEXT_DTYPE) if name != "timestamp" else values
            for name, values in columns.items()
        }
    )
    frame["rank"] = pd.array(batch["rank"], dtype="Int64")
    frame["score"] = batch["score"]
    return frame


def generate_events(config: GeneratorConfig) -> Iterator[pd.DataFrame]:
    """Yield the events of each (day, tenant) in timestamp order, columns ``EVENT_COLUMNS``; empty days are skipped."""
    tenants = [_Tenant(config, i) for i in range(config.tenants)]
    for day_index in range(config.days):
        day = config.start + dt.timedelta(days=day_index)
        day_end = _epoch_us(day) + _US_PER_DAY
        last_day = day_index == config.days - 1
        for tenant in tenants:
            new = _simulate_day(config, tenant, day_index, day)
            batch = {key: np.concatenate([tenant.pending[key], new[key]]) for key in _BATCH_DTYPES}
            due = batch["ts"] < day_end
            tenant.pending = _empty_batch() if last_day else {key: values[~due] for key, values in batch.items()}
            order = np.flatnonzero(due)
            order = order[np.argsort(batch["ts"][order], kind="stable")]
            if order.size:
                yield _to_frame(config, tenant, day, {key: values[order] for key, values in batch.items()})


# --- writing -------------------------------------------------------------------------------------------------------

_CSV_SPECIAL = re.compile(r'[,"\r\n]')
_SCORE_TEXT = np.array([repr(k / 10_000) for k in range(10_001)], dtype=object)
_INT_TEXT = np.array([str(i) for i in range(4096)], dtype=object)


def _csv_field(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if _CSV_SPECIAL.search(value) else value


def _render_column(series: pd.Series, fmt: str) -> tuple[list[str], str, str]:
    """Render a column as text: (values, prefix, suffix); the caller adds prefix and suffix around every value."""
    null = "" if fmt == "csv" else "null"
    quote = "" if fmt == "csv" else '"'
    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(series.dtype):
        if isinstance(series.dtype, pd.DatetimeTZDtype):  # naive timestamps are taken as UTC
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        stamps = series.to_numpy(dtype="datetime64[us]")
        text = np.datetime_as_string(stamps, unit="us").astype(object)
        missing = np.isnat(stamps)
        if not missing.any():
            return text.tolist(), quote, "+00:00" + quote
        return np.where(missing, null, quote + text + "+00:00" + quote).tolist(), "", ""
    if pd.api.types.is_bool_dtype(series.dtype):
        series = series.astype(object)
    elif pd.api.types.is_integer_dtype(series.dtype):
        missing = series.isna().to_numpy()
        values = series.to_numpy(dtype=np.int64, na_value=0)
        if values.size and values.min() >= 0 and values.max() < _INT_TEXT.size:
            text = _INT_TEXT[values]
        else:
            text = np.array(list(map(str, values.tolist())), dtype=object)
        return (np.where(missing, null, text) if missing.any() else text).tolist(), "", ""
    elif pd.api.types.is_float_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(values) if fmt == "csv" else ~np.isfinite(values)
        scaled = np.rint(np.where(missing, 0.0, values) * 10_000)
        on_grid = (scaled >= 0) & (scaled <= 10_000) & (scaled / 10_000 == values)
        if on_grid[~missing].all():
            text = _SCORE_TEXT[scaled.astype(np.int64)]
        else:
            text = np.array(list(map(repr, values.tolist())), dtype=object)
        return (np.where(missing, null, text) if missing.any() else text).tolist(), "", ""
    if not series.hasnans and pd.api.types.is_string_dtype(series):
        strings = series.to_numpy(dtype=object).tolist()
        joined = "".join(strings)
        if fmt == "csv":
            plain = not any(char in joined for char in ',"\r\n')
        else:  # printable ASCII without quote or backslash needs no JSON escaping
            plain = joined.isascii() and joined.isprintable() and '"' not in joined and "\\" not in joined
        if plain:
            return strings, quote, quote
    codes, uniques = pd.factorize(series.astype(object))
    render = _csv_field if fmt == "csv" else json.dumps
    rendered = np.array([render(str(u)) for u in uniques] + [null], dtype=object)
    return rendered[codes].tolist(), "", ""


def _render_rows(frame: pd.DataFrame, fmt: str) -> str:
    """The frame's rows as CSV or JSON Lines text, one line per row without the final newline."""
    parts: list[object] = []
    pending = "{" if fmt == "jsonl" else ""
    for i, name in enumerate(EVENT_COLUMNS):
        values, prefix, suffix = _render_column(frame[name], fmt)
        if i:
            pending += ","
        if fmt == "jsonl":
            pending += json.dumps(name) + ":"
        pending += prefix
        if pending:
            parts.append(repeat(pending))
        parts.append(values)
        pending = suffix
    pending += "}" if fmt == "jsonl" else ""
    if pending:
        parts.append(repeat(pending))
    return "\n".join(map("".join, zip(*parts, strict=False)))  # repeat() parts are endless


def write_events(frames: Iterable[pd.DataFrame], path: str | Path, fmt: Literal["csv", "jsonl"] = "csv") -> int:
    """Write event frames to ``path`` and return the number of rows.

    CSV: a header of ``EVENT_COLUMNS``, ISO-8601 UTC timestamps (``2026-01-05T13:45:12.123456+00:00``), empty fields
    for missing values, minimal quoting. JSON Lines: one object per row, ``null`` for missing values. Lines end in
    ``\\n`` on every platform.
    """
    if fmt not in ("csv", "jsonl"):
        raise ValueError(f"unknown format {fmt!r}; expected 'csv' or 'jsonl'")
    rows = 0
    with open(path, "w", encoding="utf-8", newline="") as handle:
        if fmt == "csv":
            handle.write(",".join(EVENT_COLUMNS) + "\n")
        for frame in frames:
            missing = [name for name in EVENT_COLUMNS if name not in frame.columns]
            if missing:
                raise ValueError(f"event frame lacks columns: {', '.join(missing)}")
            if frame.empty:
                continue
            handle.write(_render_rows(frame, fmt))
            handle.write("\n")
            rows += len(frame)
    return rows
