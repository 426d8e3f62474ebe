"""SQL of the alert outbox, its deliveries, escalation and human review (tables of migrations 007 and 015).

Every timestamp is a parameter (``%(now)s``) rather than ``now()``, so tests can drive the clock.
"""

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
