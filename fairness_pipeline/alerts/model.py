"""Alert levels, review priorities and states, the records the alert functions return, and their errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from fairness_pipeline.risk import levels as risk_levels

LEVELS = risk_levels.LEVELS
"""Risk levels, least to most severe (declared in ``risk.levels``)."""

REVIEW_LEVELS = frozenset(risk_levels.levels_at_or_above(risk_levels.REVIEW_FLOOR))
"""Levels whose alerts open a human review item."""

PRIORITIES = ("critical", "high", "medium", "low")
"""Review priorities, most urgent first."""

LEVEL_PRIORITY = {"CRITICAL": "critical", "HIGH": "high", "MEDIUM": "medium", "LOW": "low"}

DEFAULT_DEADLINES: dict[str, timedelta] = {"CRITICAL": timedelta(hours=24), "HIGH": timedelta(days=14)}
"""How long an alert may stay unacknowledged before it is escalated."""

DEFAULT_WINDOW_HOURS = 24
"""De-duplication window: one alert per tenant, scope and level per UTC day."""

SYSTEM_ACTOR = "system"
"""The actor of automatic review changes (opening, escalation); reviewers may not use this name."""

REVIEW_STATES = ("open", "acknowledged", "resolved")
ACTIVE_REVIEW_STATES = ("open", "acknowledged")


class AlertError(Exception):
    """Base class of the alert package's errors."""


class PayloadError(AlertError, ValueError):
    """A payload field is not of its kind (a number, a level, a vocabulary value); names the field, never the value."""


class DeliveryError(AlertError):
    """A channel could not hand the alert over. The message never contains a secret.

    ``unavailable`` says the channel itself is down or misconfigured (so every alert would fail now): the rest of the
    tick skips it instead of waiting out its timeouts alert after alert. A failure that concerns this alert only
    (e.g. HTTP 413) leaves it False, so one bad alert cannot hold the others back.
    """

    def __init__(self, message: str, *, unavailable: bool = False) -> None:
        super().__init__(message)
        self.unavailable = unavailable


class ReviewNotFoundError(AlertError, LookupError):
    """No review item has this id."""


class ReviewTransitionError(AlertError, ValueError):
    """The requested change is not allowed from the review's current state."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def require_aware(now: datetime | None) -> datetime:
    """``now`` (default: the current time) as an aware datetime; naive datetimes are refused."""
    if now is None:
        return utc_now()
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("timestamps must be timezone-aware (UTC)")
    return now


def priority_for(level: str) -> str:
    return LEVEL_PRIORITY[level]


def raised_priority(priority: str) -> str:
    """One step more urgent (``critical`` stays ``critical``)."""
    index = PRIORITIES.index(priority)
    return PRIORITIES[max(index - 1, 0)]


@dataclass(frozen=True)
class AlertRecord:
    """A row of ``fairness_alerts``."""

    id: int
    dedup_key: str
    tenant_id: str
    scope: str
    level: str
    day: date
    window_start: datetime
    window_hours: int
    payload: dict[str, Any]
    status: str
    created_at: datetime
    last_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    escalated_at: datetime | None = None
    escalation_count: int = 0
    review_id: int | None = None

    @property
    def escalated(self) -> bool:
        return self.escalated_at is not None


@dataclass(frozen=True)
class DeliveryAttempt:
    """One attempt to hand an alert to a channel (a row of ``fairness_alert_deliveries``)."""

    id: int
    alert_id: int
    channel: str
    escalation: bool
    attempt: int
    outcome: str  # 'delivered' or 'failed'
    detail: str | None
    error: str | None
    attempted_at: datetime
    delivery_id: UUID
    """The delivery's id (alert, channel, stage): drawn at its first attempt, kept by its retries."""

    @property
    def delivered(self) -> bool:
        return self.outcome == "delivered"


@dataclass(frozen=True)
class Escalation:
    """An alert escalated by :func:`escalate_overdue`, with its review's new priority."""

    alert_id: int
    review_id: int
    tenant_id: str
    level: str
    created_at: datetime
    deadline: timedelta
    escalated_at: datetime
    priority: str


@dataclass(frozen=True)
class Review:
    """A human review item with the fields of its alert a reviewer needs."""

    id: int
    alert_id: int
    tenant_id: str
    scope: str
    level: str
    day: date
    priority: str
    status: str
    reviewer: str | None
    note: str | None
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    updated_at: datetime
    escalated_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {k: _jsonable(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class ReviewEvent:
    """A row of the append-only ``fairness_review_history``."""

    id: int
    action: str
    from_status: str | None
    to_status: str
    actor: str
    note: str | None
    at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {k: _jsonable(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class ReviewDetail:
    """A review with its alert, the alert's delivery attempts and the review's history."""

    review: Review
    alert: AlertRecord
    deliveries: list[DeliveryAttempt] = field(default_factory=list)
    history: list[ReviewEvent] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        alert = {k: _jsonable(v) for k, v in self.alert.__dict__.items()}
        return {
            "review": self.review.as_dict(),
            "alert": alert,
            "deliveries": [{k: _jsonable(v) for k, v in d.__dict__.items()} for d in self.deliveries],
            "history": [event.as_dict() for event in self.history],
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value
