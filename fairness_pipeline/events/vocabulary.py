"""The allowed values of selection events, declared once.

The dimension values come from the dimension catalogue in force when the process starts (the packaged
``fairness_pipeline/catalogue/dimensions.yaml`` with ``FAIRNESS_DIMENSIONS`` applied): only its ``event`` dimensions,
the columns of ``selection_events``; candidate attributes such as ``sex`` are read from the catalogue itself
(``catalogue.load_catalogue``). No schema repeats the dimension values (migration 021 dropped the CHECK constraints
that did): ingest refuses a value outside the catalogue and the Great Expectations suite quarantines it.
"""

from __future__ import annotations

from fairness_pipeline.catalogue import UNKNOWN, load_catalogue

EVENT_TYPES: tuple[str, ...] = ("shown", "clicked", "shortlisted", "contacted", "interviewed", "hired")
"""Funnel stages in order."""

_CATALOGUE = load_catalogue()

DIMENSION_VALUES: dict[str, tuple[str, ...]] = {name: _CATALOGUE.values(name) for name in _CATALOGUE.event_dimensions}
"""Monitored proxy dimensions (the catalogue's event dimensions) and their allowed values. A missing value is allowed
and analysed as ``unknown``."""

COMPANY_TIERS: tuple[str, ...] = DIMENSION_VALUES["company_tier"]
EXPERIENCE_BANDS: tuple[str, ...] = DIMENSION_VALUES["experience_band"]
SPECIALTIES: tuple[str, ...] = DIMENSION_VALUES["specialty"]

DIMENSIONS: tuple[str, ...] = tuple(DIMENSION_VALUES)
UNKNOWN_GROUP = UNKNOWN

EVENT_COLUMNS: tuple[str, ...] = (
    "event_id",
    "timestamp",
    "candidate_id",
    "event_type",
    "search_id",
    "tenant_id",
    "user_id_hash",
    "company_tier",
    "experience_band",
    "specialty",
    "rank",
    "score",
)
"""Columns of a selection event as written by producers (CSV header order, JSON keys)."""

REQUIRED_COLUMNS: tuple[str, ...] = (
    "event_id",
    "timestamp",
    "candidate_id",
    "event_type",
    "search_id",
    "tenant_id",
    "user_id_hash",
)
"""Columns that may not be empty (NOT NULL in the table)."""

MAX_LENGTHS: dict[str, int] = {
    "event_id": 64,
    "candidate_id": 255,
    "search_id": 255,
    "tenant_id": 255,
    "user_id_hash": 64,
}
"""VARCHAR limits of the ``selection_events`` table."""

SCORE_MAX_STORABLE = 9.9999
"""Largest value NUMERIC(5, 4) can hold; validation narrows scores to [0, 1]."""

DEFAULT_STAGE_PAIRS: tuple[tuple[str, str], ...] = (
    ("shown", "clicked"),
    ("shown", "shortlisted"),
    ("shortlisted", "contacted"),
    ("contacted", "interviewed"),
    ("interviewed", "hired"),
    ("shown", "hired"),
)
"""(baseline event, selection event) pairs analysed by default; shown -> shortlisted is the seed's default."""


def stage_pair_name(baseline: str, selection: str) -> str:
    """Name of a stage pair, e.g. ``shown->shortlisted``."""
    return f"{baseline}->{selection}"
