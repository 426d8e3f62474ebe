"""Dimension inference (the seed's cases) and the never-raising logging API, on a real database."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg2
import pytest

from fairness_pipeline.events.inference import infer_company_tier, infer_experience_band, infer_specialty
from fairness_pipeline.events.model import SelectionEvent, create_selection_event
from fairness_pipeline.events.recorder import log_selection_event, log_selection_events_batch

HASH = "0f" * 32


@pytest.mark.parametrize(
    ("companies", "tier"),
    [
        (["Google", "Startup X"], "faang"),
        (["Meta"], "faang"),
        (["Amazon Web Services"], "faang"),
        (["IBM", "Small Corp"], "enterprise"),
        (["Cisco Systems"], "enterprise"),
        (["My Startup", "Series A Company"], "startup"),
        (["Unknown Corp", "Random LLC"], "other"),
        ([], "other"),
        (["Seed-stage Robotics", "IBM"], "enterprise"),  # enterprise outranks startup markers
        (["Small Corp", "Face-book"], "faang"),  # non-letters removed before matching
    ],
)
def test_infer_company_tier(companies: list[str], tier: str) -> None:
    assert infer_company_tier(companies) == tier


@pytest.mark.parametrize(
    ("years", "band"),
    [
        (0, "0-3"),
        (2, "0-3"),
        (2.99, "0-3"),
        (3, "3-7"),
        (5, "3-7"),
        (7, "7-15"),
        (10, "7-15"),
        (14.9, "7-15"),
        (15, "15+"),
        (25, "15+"),
        (None, "3-7"),
    ],
)
def test_infer_experience_band(years: float | None, band: str) -> None:
    assert infer_experience_band(years) == band


@pytest.mark.parametrize(
    ("skills", "title", "specialty"),
    [
        (["React", "CSS", "TypeScript"], None, "frontend"),
        (["Python", "PostgreSQL", "Go"], None, "backend"),
        (["React", "TypeScript", "Python", "PostgreSQL"], None, "fullstack"),
        (["Python"], "Frontend Engineer", "frontend"),
        (["React"], "Backend Engineer", "backend"),
        (["Kubernetes", "Docker", "Terraform"], None, "devops"),
        (["PyTorch", "TensorFlow", "scikit-learn"], None, "ml"),
        (["Management", "Communication"], None, "other"),
        ([], None, "other"),
        (["React", "Python", "PostgreSQL"], None, "backend"),  # one frontend skill is not fullstack
        (["Swift"], "Senior iOS Developer", "mobile"),
        (["Python"], "Site Reliability (SRE)", "devops"),
    ],
)
def test_infer_specialty(skills: list[str], title: str | None, specialty: str) -> None:
    assert infer_specialty(skills, title) == specialty


def test_create_selection_event_infers_dimensions() -> None:
    event = create_selection_event(
        "shown",
        "cand-123",
        "search-456",
        "tenant-abc",
        HASH,
        companies=["Google", "Startup X"],
        years_experience=8,
        skills=["Python", "AWS", "Docker"],
        title="Senior Backend Engineer",
        rank=5,
        score=0.85,
    )
    assert (event.company_tier, event.experience_band, event.specialty) == ("faang", "7-15", "backend")
    assert (event.event_type, event.candidate_id, event.rank, event.score) == ("shown", "cand-123", 5, 0.85)
    assert event.timestamp.tzinfo is not None and len(event.event_id) <= 64
    assert event.event_id != create_selection_event("shown", "c", "s", "t", HASH).event_id


def _event(event_id: str, **changes) -> SelectionEvent:
    base = dict(
        event_id=event_id,
        event_type="shown",
        candidate_id="c1",
        search_id="s1",
        tenant_id="t1",
        user_id_hash=HASH,
        company_tier="startup",
        rank=1,
        score=0.5,
        timestamp=datetime(2026, 3, 1, 12, tzinfo=UTC),
    )
    return SelectionEvent(**{**base, **changes})


def test_batch_logging_skips_duplicates_and_keeps_rejects(conn) -> None:
    result = log_selection_events_batch(
        conn, [_event("a"), _event("b", candidate_id="c2"), _event("a"), _event("c", event_type="liked")]
    )
    assert result.counts.as_dict() == {"read": 4, "inserted": 2, "duplicates": 1, "rejected": 1}
    assert not result.ok and result.error is None
    again = log_selection_event(conn, _event("a"))
    assert again.counts.as_dict() == {"read": 1, "inserted": 0, "duplicates": 1, "rejected": 0}
    with conn.cursor() as cur:
        cur.execute("SELECT event_id, score::float, company_tier FROM selection_events ORDER BY event_id")
        assert cur.fetchall() == [("a", 0.5, "startup"), ("b", 0.5, "startup")]
        cur.execute("SELECT source, reason FROM selection_event_rejects")
        assert cur.fetchall() == [("api", "unknown event_type 'liked'")]


def test_logging_never_raises_when_the_database_is_gone(db_url: str) -> None:
    conn = psycopg2.connect(db_url)
    conn.close()
    result = log_selection_event(conn, _event("x"))
    assert result.error is not None and "InterfaceError" in result.error
    assert result.counts.inserted == 0 and not result.ok
