"""Risk levels, least to most severe: the one declaration read by the verdict, the alerts and the sensors."""

from __future__ import annotations

LEVELS: tuple[str, ...] = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
"""Risk levels, least to most severe."""

REVIEW_FLOOR = "HIGH"
"""The least severe level whose alerts open a human review item, and the default alert level of the sensors."""


def level_rank(level: str) -> int:
    """Position of ``level`` in :data:`LEVELS` (0 for LOW); ``ValueError`` naming the levels when unknown."""
    if level not in LEVELS:
        raise ValueError(f"{level!r} is not one of {', '.join(LEVELS)}")
    return LEVELS.index(level)


def levels_at_or_above(level: str) -> tuple[str, ...]:
    """``level`` and every more severe level, in order."""
    return LEVELS[level_rank(level) :]
