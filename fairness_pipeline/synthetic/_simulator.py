"""The synthetic generator's model: each tenant's fixed state (candidate pool, recruiters, planted
effects) and the simulation of a day's searches and funnel (see the package docstring)."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Iterator
from fractions import Fraction

import numpy as np
import pandas as pd

from fairness_pipeline.catalogue import load_catalogue
from fairness_pipeline.events.vocabulary import DIMENSION_VALUES, DIMENSIONS, EVENT_TYPES
from fairness_pipeline.synthetic._attributes import draw_attributes
from fairness_pipeline.synthetic._biases import (
    group_code,
)
from fairness_pipeline.synthetic._config import (
    CLICK_PROB_TOP,
    CLICK_RANK_DECAY,
    STAGE_PROBS,
    GeneratorConfig,
)
from fairness_pipeline.synthetic._frames import TEXT_DTYPE, numbered

GROUP_PROPORTIONS: dict[str, tuple[float, ...]] = {dim: load_catalogue()[dim].shares() for dim in DIMENSIONS}
"""Share of each known group of the event dimensions in a candidate pool, in vocabulary order (before
``unknown_share`` is taken out): the catalogue's ``share`` of each value, uniform when it declares none."""

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

_US_PER_DAY = 86_400_000_000
_SHOWN_SPACING_US = 1000  # shown events of a slate are logged 1 ms apart, in rank order


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
        self.dims.update(draw_attributes(config, index, pool))  # own random streams: the events' draws are unchanged
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
            code = group_code(bias.dimension, bias.group)
            multiplier = self.bias_multipliers.setdefault(bias.stage, np.ones(pool))
            multiplier[self.dims[bias.dimension] == code] *= bias.factor
        self.drifts: list[tuple[str, np.ndarray, float]] = []
        """(stage, candidates of the group, factor on the last day) of each drift."""
        for bias in config.drift if planted else ():
            code = group_code(bias.dimension, bias.group)
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
        return self.dims[dimension] == group_code(dimension, group)

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
                yield to_frame(config, tenant, day, {key: values[order] for key, values in batch.items()})


_DIM_LOOKUP: dict[str, np.ndarray] = {
    dim: np.array([*values, None], dtype=object) for dim, values in DIMENSION_VALUES.items()
}  # code -1 (unknown) picks the trailing None
_EVENT_TYPE_LOOKUP = np.array(EVENT_TYPES, dtype=object)


def to_frame(config: GeneratorConfig, tenant: _Tenant, day: dt.date, batch: _Batch) -> pd.DataFrame:
    """The events of one (day, tenant) batch as a frame of ``EVENT_COLUMNS``."""
    n = batch["ts"].size
    search_codes, search_inverse = np.unique(batch["search"], return_inverse=True)
    search_days, search_numbers = np.divmod(search_codes, np.int64(1) << 32)
    search_ids = np.empty(search_codes.size, dtype=object)
    for search_day in np.unique(search_days).tolist():  # the day itself and a few earlier ones
        prefix = f"srch-{config.seed}-{tenant.tenant_id}-{config.start + dt.timedelta(days=search_day):%Y%m%d}-"
        on_day = search_days == search_day
        search_ids[on_day] = numbered(prefix, search_numbers[on_day], 5)
    candidates, candidate_inverse = np.unique(batch["cand"], return_inverse=True)
    columns: dict[str, object] = {
        "event_id": numbered(f"ev-{config.seed}-{tenant.tenant_id}-{day:%Y%m%d}-", np.arange(n), 7),
        "timestamp": pd.DatetimeIndex(batch["ts"].astype("datetime64[us]")).tz_localize("UTC"),
        "candidate_id": numbered(f"{tenant.tenant_id}-cand-", candidates, 7)[candidate_inverse],
        "event_type": _EVENT_TYPE_LOOKUP[batch["stage"]],
        "search_id": search_ids[search_inverse],
        "tenant_id": np.full(n, tenant.tenant_id, dtype=object),
        "user_id_hash": tenant.user_hashes[batch["user"]],
    }
    for dim in DIMENSIONS:
        columns[dim] = _DIM_LOOKUP[dim][tenant.dims[dim][batch["cand"]]]
    frame = pd.DataFrame(
        {
            name: pd.Series(values, dtype=TEXT_DTYPE) if name != "timestamp" else values
            for name, values in columns.items()
        }
    )
    frame["rank"] = pd.array(batch["rank"], dtype="Int64")
    frame["score"] = batch["score"]
    return frame
