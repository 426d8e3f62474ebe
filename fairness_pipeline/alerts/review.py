"""Human review of HIGH and CRITICAL alerts: list, show, acknowledge, resolve.

States and the changes allowed, each by a named reviewer and written to ``fairness_review_history``::

    open ──acknowledge──> acknowledged ──resolve (note required)──> resolved
      └───────────────resolve (note required)───────────────────────┘

Resolving straight from ``open`` is allowed (e.g. a false alarm closed at once) because the note says why. Resolved is
final; acknowledging twice is refused. Acknowledging stops the escalation clock: only open reviews escalate.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from fairness_pipeline.alerts.model import (
    ACTIVE_REVIEW_STATES,
    REVIEW_STATES,
    SYSTEM_ACTOR,
    Review,
    ReviewDetail,
    ReviewEvent,
    ReviewNotFoundError,
    ReviewTransitionError,
    require_aware,
)
from fairness_pipeline.alerts.outbox import delivery_attempts, get_alert
from fairness_pipeline.store import alerts as store
from fairness_pipeline.store.schema import transaction

MAX_NAME = 200
MAX_NOTE = 10_000


def list_reviews(
    conn, statuses: Sequence[str] = ACTIVE_REVIEW_STATES, tenant_id: str | None = None, limit: int = 100
) -> list[Review]:
    """Review items in ``statuses`` (default: open and acknowledged), most urgent first (priority, then oldest)."""
    unknown = set(statuses) - set(REVIEW_STATES)
    if unknown:
        raise ValueError(f"unknown review status {sorted(unknown)}; expected {', '.join(REVIEW_STATES)}")
    return [Review(*row) for row in store.review_rows(conn, statuses, tenant_id, limit)]


def get_review(conn, review_id: int) -> Review:
    row = store.review_row(conn, review_id)
    if row is None:
        raise ReviewNotFoundError(f"no review item {review_id}")
    return Review(*row)


def review_history(conn, review_id: int) -> list[ReviewEvent]:
    return [ReviewEvent(*row) for row in store.review_history_rows(conn, review_id)]


def show_review(conn, review_id: int) -> ReviewDetail:
    """A review with its alert (payload included), the alert's delivery attempts and the review's history."""
    review = get_review(conn, review_id)
    alert = get_alert(conn, review.alert_id)
    assert alert is not None  # the foreign key guarantees it
    return ReviewDetail(review, alert, delivery_attempts(conn, alert.id), review_history(conn, review_id))


def acknowledge(conn, review_id: int, reviewer: str, note: str | None = None, now: datetime | None = None) -> Review:
    """open -> acknowledged, by ``reviewer``; stops escalation."""
    return _change(
        conn, review_id, reviewer, note, now, action="acknowledge", allowed_from=("open",), to_status="acknowledged"
    )


def resolve(conn, review_id: int, reviewer: str, note: str, now: datetime | None = None) -> Review:
    """open or acknowledged -> resolved, by ``reviewer``, with a note saying what was found or done."""
    if not note or not note.strip():
        raise ReviewTransitionError("resolving a review needs a note saying what was found or done")
    return _change(
        conn,
        review_id,
        reviewer,
        note,
        now,
        action="resolve",
        allowed_from=("open", "acknowledged"),
        to_status="resolved",
    )


def _change(
    conn,
    review_id: int,
    reviewer: str,
    note: str | None,
    now: datetime | None,
    *,
    action: str,
    allowed_from: tuple[str, ...],
    to_status: str,
) -> Review:
    now = require_aware(now)
    reviewer = _reviewer(reviewer)
    note = note.strip() if note and note.strip() else None
    if note and len(note) > MAX_NOTE:
        raise ValueError(f"a note is at most {MAX_NOTE} characters")
    with transaction(conn) as tx:
        row = store.lock_review(tx, review_id)
        if row is None:
            raise ReviewNotFoundError(f"no review item {review_id}")
        _, alert_id, status = row
        if status not in allowed_from:
            raise ReviewTransitionError(
                f"review {review_id} is {status}; cannot {action} it (allowed from {' or '.join(allowed_from)})"
            )
        store.change_review(tx, action, review_id, reviewer, note, now)
        store.record_history(tx, review_id, alert_id, action, status, to_status, reviewer, note, now)
    return get_review(conn, review_id)


def _reviewer(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise ValueError("a named reviewer is required")
    if name.lower() == SYSTEM_ACTOR:
        raise ValueError(f"{SYSTEM_ACTOR!r} is reserved for automatic changes; give the reviewer's name")
    if len(name) > MAX_NAME:
        raise ValueError(f"a reviewer name is at most {MAX_NAME} characters")
    return name
