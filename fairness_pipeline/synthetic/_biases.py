"""Planted effects of the synthetic generator: biased stage probabilities, rank pushes, score shifts and
concentrated slates, with their ``DIMENSION=GROUP:NUMBER`` parsers. A dimension is any of the catalogue's, event
proxy or candidate attribute."""

from __future__ import annotations

import math
from dataclasses import dataclass

from fairness_pipeline.catalogue import load_catalogue
from fairness_pipeline.events.vocabulary import EVENT_TYPES, UNKNOWN_GROUP

_BIASABLE_STAGES: tuple[str, ...] = EVENT_TYPES[1:]


def group_code(dimension: str, group: str) -> int:
    """A group's code in the generator's pools: its position among the dimension's catalogue values, -1 for
    ``unknown``."""
    return -1 if group == UNKNOWN_GROUP else load_catalogue().values(dimension).index(group)


@dataclass(frozen=True)
class PlantedBias:
    """Multiply the probability that candidates of ``dimension=group`` reach ``stage`` (given the previous stage)."""

    dimension: str
    group: str
    factor: float
    stage: str = "shortlisted"

    def __post_init__(self) -> None:
        _check_group(self.dimension, self.group)
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
    catalogue = load_catalogue()
    if dimension not in catalogue:
        raise ValueError(f"unknown dimension {dimension!r}; expected one of {', '.join(catalogue.names)}")
    allowed = (*catalogue.values(dimension), UNKNOWN_GROUP)
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
