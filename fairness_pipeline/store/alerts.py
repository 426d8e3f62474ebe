"""SQL of the alert outbox, its deliveries, escalation and human review (tables of migrations 007 and 015).

Every timestamp is a parameter (``%(now)s``) rather than ``now()``, so tests can drive the clock.
"""

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from fairness_pipeline.store.schema import Column, Table

FAIRNESS_ALERTS = Table(
    "fairness_alerts",
    description="The alert outbox: one row per raised alert, de-duplicated by key.",
    columns=(
        Column("id", "bigint", nullable=False),
        Column("dedup_key", "text", nullable=False),
        Column("tenant_id", "character varying(255)", nullable=False),
        Column("scope", "text", nullable=False),
        Column("level", "text", nullable=False),
        Column("day", "date", nullable=False),
        Column("window_start", "timestamp with time zone", nullable=False),
        Column("window_hours", "integer", nullable=False),
        Column("payload", "jsonb", nullable=False),
        Column("status", "text", nullable=False),
        Column("created_at", "timestamp with time zone", nullable=False),
        Column("last_attempt_at", "timestamp with time zone"),
        Column("delivered_at", "timestamp with time zone"),
        Column("escalated_at", "timestamp with time zone"),
        Column("escalation_count", "integer", nullable=False),
    ),
    key=("id",),
    unique=(("dedup_key",),),
)

FAIRNESS_ALERT_DELIVERIES = Table(
    "fairness_alert_deliveries",
    description="Every delivery attempt of an alert per channel and stage.",
    columns=(
        Column("id", "bigint", nullable=False),
        Column("alert_id", "bigint", nullable=False),
        Column("channel", "text", nullable=False),
        Column("escalation", "boolean", nullable=False),
        Column("attempt", "integer", nullable=False),
        Column("outcome", "text", nullable=False),
        Column("detail", "text"),
        Column("error", "text"),
        Column("attempted_at", "timestamp with time zone", nullable=False),
        Column("delivery_id", "uuid", nullable=False),
    ),
    key=("id",),
    unique=(("alert_id", "channel", "escalation"), ("alert_id", "channel", "escalation", "attempt")),
)

FAIRNESS_REVIEWS = Table(
    "fairness_reviews",
    description="Human review items of HIGH and CRITICAL alerts.",
    columns=(
        Column("id", "bigint", nullable=False),
        Column("alert_id", "bigint", nullable=False),
        Column("tenant_id", "character varying(255)", nullable=False),
        Column("priority", "text", nullable=False),
        Column("status", "text", nullable=False),
        Column("reviewer", "text"),
        Column("note", "text"),
        Column("opened_at", "timestamp with time zone", nullable=False),
        Column("acknowledged_at", "timestamp with time zone"),
        Column("resolved_at", "timestamp with time zone"),
        Column("updated_at", "timestamp with time zone", nullable=False),
    ),
    key=("id",),
    unique=(("alert_id",),),
)

FAIRNESS_REVIEW_HISTORY = Table(
    "fairness_review_history",
    description="Every change of a review item, by whom and why.",
    columns=(
        Column("id", "bigint", nullable=False),
        Column("review_id", "bigint", nullable=False),
        Column("alert_id", "bigint", nullable=False),
        Column("action", "text", nullable=False),
        Column("from_status", "text"),
        Column("to_status", "text", nullable=False),
        Column("actor", "text", nullable=False),
        Column("note", "text"),
        Column("at", "timestamp with time zone", nullable=False),
        Column("recorded_at", "timestamp with time zone", nullable=False),
    ),
    key=("id",),
)


ALERT_COLUMNS = """
a.id, a.dedup_key, a.tenant_id, a.scope, a.level, a.day, a.window_start, a.window_hours, a.payload, a.status,
a.created_at, a.last_attempt_at, a.delivered_at, a.escalated_at, a.escalation_count
"""

INSERT_ALERT = f"""
INSERT INTO fairness_alerts AS a (dedup_key, tenant_id, scope, level, day, window_start, window_hours, payload,
    created_at)
VALUES (%(dedup_key)s, %(tenant_id)s, %(scope)s, %(level)s, %(day)s, %(window_start)s, %(window_hours)s,
    %(payload)s, %(now)s)
ON CONFLICT (dedup_key) DO NOTHING
RETURNING {ALERT_COLUMNS}
"""
"""Returns the row only to the run that inserted it; a racing run gets nothing (after the winner commits)."""

ALERT_BY_KEY = f"SELECT {ALERT_COLUMNS} FROM fairness_alerts a WHERE a.dedup_key = %(dedup_key)s"

ALERT_BY_ID = f"SELECT {ALERT_COLUMNS} FROM fairness_alerts a WHERE a.id = %(alert_id)s"

RISK_ASSESSMENT = """
SELECT level, score, ci_low, ci_high, assessment
FROM risk_assessments
WHERE tenant_id = %(tenant_id)s AND window_end = %(window_end)s
"""
"""The stored risk verdict a risk alert reports (its structured fields become the payload)."""

INSERT_REVIEW = """
INSERT INTO fairness_reviews (alert_id, tenant_id, priority, status, opened_at, updated_at)
VALUES (%(alert_id)s, %(tenant_id)s, %(priority)s, 'open', %(now)s, %(now)s)
RETURNING id
"""

INSERT_HISTORY = """
INSERT INTO fairness_review_history (review_id, alert_id, action, from_status, to_status, actor, note, at)
VALUES (%(review_id)s, %(alert_id)s, %(action)s, %(from_status)s, %(to_status)s, %(actor)s, %(note)s, %(now)s)
"""

# --- delivery ---------------------------------------------------------------------------------------------------

LOCK_NEXT_UNDELIVERED = f"""
SELECT {ALERT_COLUMNS}, r.id, r.priority, r.status
FROM fairness_alerts a
LEFT JOIN fairness_reviews r ON r.alert_id = a.id
WHERE a.status <> 'delivered' AND a.id <> ALL(%(seen)s::bigint[])
ORDER BY a.created_at, a.id
LIMIT 1
FOR UPDATE OF a SKIP LOCKED
"""
"""The oldest alert still lacking a channel, locked for this tick; alerts another tick holds are skipped. Every tick
that touches an alert updates its row, so a tick that waited re-reads it and sees the other's outcome."""

DELIVERY_STATE = """
SELECT channel, count(*) AS attempts, bool_or(outcome = 'delivered') AS delivered,
       (array_agg(delivery_id ORDER BY attempt))[1]::text AS delivery_id
FROM fairness_alert_deliveries
WHERE alert_id = %(alert_id)s AND escalation = %(escalation)s
GROUP BY channel
"""
"""Per channel, the attempts of the alert's current stage so far, whether one succeeded, and the delivery's id."""

INSERT_DELIVERY = """
INSERT INTO fairness_alert_deliveries (alert_id, channel, escalation, attempt, outcome, detail, error, attempted_at,
    delivery_id)
VALUES (%(alert_id)s, %(channel)s, %(escalation)s, %(attempt)s, %(outcome)s, %(detail)s, %(error)s, %(now)s,
    %(delivery_id)s::uuid)
RETURNING id
"""

UPDATE_DELIVERY_STATUS = """
UPDATE fairness_alerts
SET status = %(status)s,
    last_attempt_at = %(now)s,
    delivered_at = CASE WHEN %(status)s = 'delivered' THEN %(now)s END
WHERE id = %(alert_id)s
"""

# --- escalation -------------------------------------------------------------------------------------------------

LOCK_OVERDUE = """
WITH deadlines AS (
    SELECT * FROM unnest(%(levels)s::text[], %(deadline_seconds)s::double precision[]) AS d(level, seconds)
)
SELECT a.id, a.tenant_id, a.level, a.created_at, r.id, r.priority, d.seconds
FROM fairness_alerts a
JOIN fairness_reviews r ON r.alert_id = a.id
JOIN deadlines d ON d.level = a.level
WHERE a.escalated_at IS NULL
  AND r.status = 'open'
  AND a.created_at + make_interval(secs => d.seconds) <= %(now)s
ORDER BY a.id
FOR UPDATE OF a, r
"""
"""Unacknowledged alerts past their level's deadline that were never escalated, with their review, locked."""

ESCALATE_ALERT = """
UPDATE fairness_alerts
SET escalated_at = %(now)s, escalation_count = escalation_count + 1, status = 'pending', delivered_at = NULL
WHERE id = %(alert_id)s AND escalated_at IS NULL
"""

RAISE_REVIEW_PRIORITY = """
UPDATE fairness_reviews SET priority = %(priority)s, updated_at = %(now)s WHERE id = %(review_id)s
"""

# --- review -----------------------------------------------------------------------------------------------------

REVIEW_COLUMNS = """
r.id, r.alert_id, r.tenant_id, a.scope, a.level, a.day, r.priority, r.status, r.reviewer, r.note, r.opened_at,
r.acknowledged_at, r.resolved_at, r.updated_at, a.escalated_at
"""

PRIORITY_ORDER = "array_position(ARRAY['critical', 'high', 'medium', 'low'], r.priority)"

LIST_REVIEWS = f"""
SELECT {REVIEW_COLUMNS}
FROM fairness_reviews r
JOIN fairness_alerts a ON a.id = r.alert_id
WHERE r.status = ANY(%(statuses)s::text[])
  AND (%(tenant_id)s::text IS NULL OR r.tenant_id = %(tenant_id)s)
ORDER BY {PRIORITY_ORDER}, r.opened_at, r.id
LIMIT %(limit)s
"""
"""Most urgent first: by priority, then oldest."""

REVIEW_BY_ID = f"""
SELECT {REVIEW_COLUMNS}
FROM fairness_reviews r
JOIN fairness_alerts a ON a.id = r.alert_id
WHERE r.id = %(review_id)s
"""

LOCK_REVIEW = "SELECT id, alert_id, status FROM fairness_reviews WHERE id = %(review_id)s FOR UPDATE"

ACKNOWLEDGE_REVIEW = """
UPDATE fairness_reviews
SET status = 'acknowledged', reviewer = %(reviewer)s, note = %(note)s, acknowledged_at = %(now)s, updated_at = %(now)s
WHERE id = %(review_id)s
"""

RESOLVE_REVIEW = """
UPDATE fairness_reviews
SET status = 'resolved', reviewer = %(reviewer)s, note = %(note)s, resolved_at = %(now)s, updated_at = %(now)s
WHERE id = %(review_id)s
"""

REVIEW_HISTORY = """
SELECT id, action, from_status, to_status, actor, note, at
FROM fairness_review_history
WHERE review_id = %(review_id)s
ORDER BY id
"""

ALERT_DELIVERIES = """
SELECT id, channel, escalation, attempt, outcome, detail, error, attempted_at, delivery_id::text
FROM fairness_alert_deliveries
WHERE alert_id = %(alert_id)s
ORDER BY id
"""


# --- functions: each takes the cursor of the caller's transaction (``store.schema.transaction``) or a connection --


def insert_alert(cur, alert: Mapping[str, Any], payload: Mapping[str, Any], now: datetime) -> tuple | None:
    """Insert an alert (dedup_key, tenant_id, scope, level, day, window_start, window_hours) with its payload; its
    row (:data:`ALERT_COLUMNS`), or None when the key exists."""
    cur.execute(INSERT_ALERT, {**alert, "payload": json.dumps(payload), "now": now})
    return cur.fetchone()


def open_review(cur, alert_id: int, tenant_id: str, priority: str, now: datetime) -> int:
    """Open a review item for the alert; its id."""
    cur.execute(INSERT_REVIEW, {"alert_id": alert_id, "tenant_id": tenant_id, "priority": priority, "now": now})
    return cur.fetchone()[0]


def record_history(
    cur,
    review_id: int,
    alert_id: int,
    action: str,
    from_status: str | None,
    to_status: str,
    actor: str,
    note: str | None,
    now: datetime,
) -> None:
    """Append one change to the review's history."""
    cur.execute(
        INSERT_HISTORY,
        {
            "review_id": review_id,
            "alert_id": alert_id,
            "action": action,
            "from_status": from_status,
            "to_status": to_status,
            "actor": actor,
            "note": note,
            "now": now,
        },
    )


def alert_row(conn, alert_id: int) -> tuple | None:
    """The alert's row (:data:`ALERT_COLUMNS`), or None."""
    with conn, conn.cursor() as cur:
        cur.execute(ALERT_BY_ID, {"alert_id": alert_id})
        return cur.fetchone()


def delivery_rows(conn, alert_id: int) -> list[tuple]:
    """Every delivery attempt of the alert, oldest first (:data:`ALERT_DELIVERIES`)."""
    with conn, conn.cursor() as cur:
        cur.execute(ALERT_DELIVERIES, {"alert_id": alert_id})
        return cur.fetchall()


def lock_next_undelivered(cur, seen: Sequence[int]) -> tuple | None:
    """The oldest alert still lacking a channel and not in ``seen``, locked: its row, review id, priority, status."""
    cur.execute(LOCK_NEXT_UNDELIVERED, {"seen": list(seen)})
    return cur.fetchone()


def delivery_state(cur, alert_id: int, escalation: int) -> dict[str, tuple[int, bool, str | None]]:
    """Per channel: attempts of the alert's stage so far, whether one succeeded, the delivery's id."""
    cur.execute(DELIVERY_STATE, {"alert_id": alert_id, "escalation": escalation})
    return {channel: (attempts, ok, delivery_id) for channel, attempts, ok, delivery_id in cur.fetchall()}


def insert_delivery(cur, attempt: Mapping[str, Any], now: datetime) -> int:
    """Record one delivery attempt (alert_id, channel, escalation, attempt, outcome, detail, error, delivery_id); its
    id."""
    cur.execute(INSERT_DELIVERY, {**attempt, "now": now})
    return cur.fetchone()[0]


def set_delivery_status(cur, alert_id: int, status: str, now: datetime) -> None:
    cur.execute(UPDATE_DELIVERY_STATUS, {"alert_id": alert_id, "status": status, "now": now})


def lock_overdue(cur, deadline_seconds: Mapping[str, float], now: datetime) -> list[tuple]:
    """Open, never escalated alerts past their level's deadline, locked with their review: alert id, tenant, level,
    created_at, review id, priority, deadline seconds."""
    levels = list(deadline_seconds)
    cur.execute(
        LOCK_OVERDUE, {"levels": levels, "now": now, "deadline_seconds": [deadline_seconds[level] for level in levels]}
    )
    return cur.fetchall()


def escalate_alert(cur, alert_id: int, now: datetime) -> bool:
    """Mark the alert escalated and pending again; False when it already was escalated."""
    cur.execute(ESCALATE_ALERT, {"alert_id": alert_id, "now": now})
    return cur.rowcount == 1


def raise_review_priority(cur, review_id: int, priority: str, now: datetime) -> None:
    cur.execute(RAISE_REVIEW_PRIORITY, {"review_id": review_id, "priority": priority, "now": now})


def review_rows(conn, statuses: Sequence[str], tenant_id: str | None, limit: int) -> list[tuple]:
    """Review items (:data:`REVIEW_COLUMNS`) in ``statuses``, most urgent first."""
    with conn, conn.cursor() as cur:
        cur.execute(LIST_REVIEWS, {"statuses": list(statuses), "tenant_id": tenant_id, "limit": limit})
        return cur.fetchall()


def review_row(conn, review_id: int) -> tuple | None:
    with conn, conn.cursor() as cur:
        cur.execute(REVIEW_BY_ID, {"review_id": review_id})
        return cur.fetchone()


def review_history_rows(conn, review_id: int) -> list[tuple]:
    with conn, conn.cursor() as cur:
        cur.execute(REVIEW_HISTORY, {"review_id": review_id})
        return cur.fetchall()


def lock_review(cur, review_id: int) -> tuple | None:
    """(id, alert_id, status) of the review, locked for a change; None when there is no such review."""
    cur.execute(LOCK_REVIEW, {"review_id": review_id})
    return cur.fetchone()


REVIEW_CHANGES = {"acknowledge": ACKNOWLEDGE_REVIEW, "resolve": RESOLVE_REVIEW}


def change_review(cur, action: str, review_id: int, reviewer: str, note: str | None, now: datetime) -> None:
    """Apply ``action`` (acknowledge or resolve) to the locked review."""
    cur.execute(REVIEW_CHANGES[action], {"review_id": review_id, "reviewer": reviewer, "note": note, "now": now})


def stored_risk_assessment(conn, tenant_id: str, window_end: date) -> tuple | None:
    """The stored verdict a risk alert reports: (level, score, ci_low, ci_high, assessment), or None."""
    with conn, conn.cursor() as cur:
        cur.execute(RISK_ASSESSMENT, {"tenant_id": tenant_id, "window_end": window_end})
        return cur.fetchone()
