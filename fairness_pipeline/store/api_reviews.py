"""Review requests made through the transparency API, in the same review model and history as alert reviews.

A review item belongs to an alert (``fairness_reviews.alert_id``), so a request is written as a tenant's alert of
scope ``review_request`` with its review item and an ``open`` row in ``fairness_review_history``, in one transaction.
From then on it is an ordinary review: ``alerts.review`` lists, acknowledges and resolves it, the outbox delivers the
alert on the enabled channels (so the people on them learn of the request) and HIGH or CRITICAL requests escalate
when left unacknowledged. The requester's reason is free text, so it goes to the history's note (as reviewers' notes
do), never into the alert's payload, which keeps to fields this code controls.
"""

from __future__ import annotations

import json
import shlex
import uuid
from datetime import date, datetime

from fairness_pipeline.alerts.model import PRIORITIES, SYSTEM_ACTOR, require_aware
from fairness_pipeline.alerts.outbox import dedup_key, window_start
from fairness_pipeline.alerts.payload import REPORT_LINK

REVIEW_REQUEST_SCOPE = "review_request"
REQUEST_REASON = "a review was requested through the transparency API; the requester's reason is in its history"
MAX_REASON = 10_000
WINDOW_HOURS = 24

INSERT_REQUEST_ALERT = """
INSERT INTO fairness_alerts (dedup_key, tenant_id, scope, level, day, window_start, window_hours, payload, created_at)
VALUES (%(dedup_key)s, %(tenant_id)s, %(scope)s, %(level)s, %(day)s, %(window_start)s, %(window_hours)s,
    %(payload)s, %(now)s)
RETURNING id
"""

INSERT_REQUEST_REVIEW = """
INSERT INTO fairness_reviews (alert_id, tenant_id, priority, status, opened_at, updated_at)
VALUES (%(alert_id)s, %(tenant_id)s, %(priority)s, 'open', %(now)s, %(now)s)
RETURNING id
"""

INSERT_OPEN_HISTORY = """
INSERT INTO fairness_review_history (review_id, alert_id, action, from_status, to_status, actor, note, at)
VALUES (%(review_id)s, %(alert_id)s, 'open', NULL, 'open', %(actor)s, %(note)s, %(now)s)
"""


def request_review(
    conn,
    tenant_id: str,
    requester: str,
    reason: str,
    priority: str = "medium",
    day: date | None = None,
    now: datetime | None = None,
) -> int:
    """Open a review of ``tenant_id`` requested by ``requester`` for ``reason``; returns the review's id.

    ``priority`` is a review priority (critical, high, medium, low) and sets the alert's level (CRITICAL ... LOW);
    ``day`` is the analysed day the request is about (default: today, UTC).
    """
    now = require_aware(now)
    if priority not in PRIORITIES:
        raise ValueError(f"unknown priority {priority!r}; expected one of {', '.join(PRIORITIES)}")
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_REASON:
        raise ValueError(f"a review request needs a reason of 1 to {MAX_REASON} characters")
    if not requester or requester.strip().lower() == SYSTEM_ACTOR:
        raise ValueError("a review request needs a named requester")
    level = priority.upper()
    day = day or now.date()
    start = window_start(now, WINDOW_HOURS)
    key = f"{dedup_key(tenant_id, REVIEW_REQUEST_SCOPE, level, start, WINDOW_HOURS)}|{uuid.uuid4()}"
    payload = {
        "kind": REVIEW_REQUEST_SCOPE,
        "tenant_id": tenant_id,
        "level": level,
        "priority": priority,
        "day": day.isoformat(),
        "reasons": [REQUEST_REASON],
        "links": {"report": REPORT_LINK.format(tenant=shlex.quote(tenant_id), day=day.isoformat())},
    }
    params = {
        "dedup_key": key,
        "tenant_id": tenant_id,
        "scope": REVIEW_REQUEST_SCOPE,
        "level": level,
        "day": day,
        "window_start": start,
        "window_hours": WINDOW_HOURS,
        "payload": json.dumps(payload),
        "priority": priority,
        "actor": requester,
        "note": reason,
        "now": now,
    }
    with conn, conn.cursor() as cur:
        cur.execute(INSERT_REQUEST_ALERT, params)
        params["alert_id"] = cur.fetchone()[0]
        cur.execute(INSERT_REQUEST_REVIEW, params)
        params["review_id"] = cur.fetchone()[0]
        cur.execute(INSERT_OPEN_HISTORY, params)
    return params["review_id"]
