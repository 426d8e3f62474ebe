"""Alerts on fairness risk: an outbox with de-duplication, delivery channels, escalation and human review.

Plain Python on a psycopg2 connection (no Dagster here; ``fairness_pipeline.defs.alerting`` wraps it). Tables are in
``migrations/007_alerts.sql``.
"""

from fairness_pipeline.alerts.channels import Channel, EmailChannel, LogChannel, WebhookChannel, sign, verify
from fairness_pipeline.alerts.model import (
    DEFAULT_DEADLINES,
    DEFAULT_WINDOW_HOURS,
    LEVELS,
    PRIORITIES,
    REVIEW_LEVELS,
    REVIEW_STATES,
    AlertError,
    AlertRecord,
    DeliveryAttempt,
    DeliveryError,
    Escalation,
    PayloadError,
    Review,
    ReviewDetail,
    ReviewEvent,
    ReviewNotFoundError,
    ReviewTransitionError,
)
from fairness_pipeline.alerts.outbox import (
    dedup_key,
    deliver_pending,
    delivery_attempts,
    escalate_overdue,
    get_alert,
    raise_alert,
    window_start,
)
from fairness_pipeline.alerts.payload import AlertMessage, build_payload, guard_payload, is_candidate_key
from fairness_pipeline.alerts.review import acknowledge, get_review, list_reviews, resolve, review_history, show_review

__all__ = [
    "DEFAULT_DEADLINES",
    "DEFAULT_WINDOW_HOURS",
    "LEVELS",
    "PRIORITIES",
    "REVIEW_LEVELS",
    "REVIEW_STATES",
    "AlertError",
    "AlertMessage",
    "AlertRecord",
    "Channel",
    "DeliveryAttempt",
    "DeliveryError",
    "EmailChannel",
    "Escalation",
    "LogChannel",
    "PayloadError",
    "Review",
    "ReviewDetail",
    "ReviewEvent",
    "ReviewNotFoundError",
    "ReviewTransitionError",
    "WebhookChannel",
    "acknowledge",
    "build_payload",
    "dedup_key",
    "deliver_pending",
    "delivery_attempts",
    "escalate_overdue",
    "get_alert",
    "get_review",
    "guard_payload",
    "is_candidate_key",
    "list_reviews",
    "raise_alert",
    "resolve",
    "review_history",
    "show_review",
    "sign",
    "verify",
    "window_start",
]
