"""The selection event type and its construction from candidate data."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fairness_pipeline.events.inference import infer_company_tier, infer_experience_band, infer_specialty


@dataclass(frozen=True)
class SelectionEvent:
    """One candidate interaction in a search. Dimensions may be None (analysed as ``unknown``)."""

    event_type: str
    candidate_id: str
    search_id: str
    tenant_id: str
    user_id_hash: str
    company_tier: str | None = None
    experience_band: str | None = None
    specialty: str | None = None
    rank: int | None = None
    score: float | None = None
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def as_row(self) -> list[str]:
        """Text values in ``EVENT_COLUMNS`` order ('' for missing), the form ingestion checks and stores."""
        values = (
            self.event_id,
            self.timestamp.isoformat(),
            self.candidate_id,
            self.event_type,
            self.search_id,
            self.tenant_id,
            self.user_id_hash,
            self.company_tier,
            self.experience_band,
            self.specialty,
            self.rank,
            self.score,
        )
        return ["" if value is None else str(value) for value in values]


def create_selection_event(
    event_type: str,
    candidate_id: str,
    search_id: str,
    tenant_id: str,
    user_id_hash: str,
    *,
    companies: Sequence[str] = (),
    years_experience: float | None = None,
    skills: Sequence[str] = (),
    title: str | None = None,
    rank: int | None = None,
    score: float | None = None,
) -> SelectionEvent:
    """An event stamped now with a fresh id, its dimensions inferred from the candidate's profile."""
    return SelectionEvent(
        event_type=event_type,
        candidate_id=candidate_id,
        search_id=search_id,
        tenant_id=tenant_id,
        user_id_hash=user_id_hash,
        company_tier=infer_company_tier(companies),
        experience_band=infer_experience_band(years_experience),
        specialty=infer_specialty(skills, title),
        rank=rank,
        score=score,
    )
