"""The alert outbox: raise an alert exactly once per de-duplication window, deliver it on every channel, escalate it.

Each function runs its own transaction(s) on the caller's psycopg2 connection (not in autocommit mode) and commits.

- :func:`raise_alert` inserts into ``fairness_alerts`` with ``ON CONFLICT (dedup_key) DO NOTHING``: of two racing
  runs only the inserter gets the row back (and opens the review item); the other gets ``None``.
- :func:`deliver_pending` is a tick of the outbox: it takes alerts that still lack a successful delivery on an enabled
  channel one at a time with ``FOR UPDATE SKIP LOCKED`` (two ticks never send the same alert), tries each missing
  channel, records every attempt, and commits. A failed channel leaves the alert undelivered for the next tick.
- :func:`escalate_overdue` marks unacknowledged alerts past their level's deadline as escalated (once), raises their
  review's priority and sets them back to pending so the next tick re-sends them with the escalation marked.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from fairness_pipeline.alerts.channels import Channel
from fairness_pipeline.alerts.model import (
    DEFAULT_DEADLINES,
    DEFAULT_WINDOW_HOURS,
    LEVELS,
    REVIEW_LEVELS,
    SYSTEM_ACTOR,
    AlertRecord,
    DeliveryAttempt,
    DeliveryError,
    Escalation,
    PayloadError,
    priority_for,
    raised_priority,
    require_aware,
)
from fairness_pipeline.alerts.payload import AlertMessage, guard_payload, value_tokens
from fairness_pipeline.queries import alerts as q

logger = logging.getLogger("fairness_pipeline.alerts")

_KEY_SAFE = "-_.~:@+"
"""Characters kept as they are in the key's tenant and scope; everything else (``|`` above all) is %-encoded."""

_MAX_ERROR = 1000


def window_start(now: datetime, window_hours: int = DEFAULT_WINDOW_HOURS) -> datetime:
    """Start of the de-duplication bucket holding ``now``: ``floor(epoch / window) * window`` (UTC midnight for 24)."""
    if window_hours <= 0:
        raise ValueError("the de-duplication window is a positive number of hours")
    seconds = window_hours * 3600
    return datetime.fromtimestamp(math.floor(require_aware(now).timestamp() / seconds) * seconds, UTC)


def dedup_key(tenant_id: str, scope: str, level: str, start: datetime, window_hours: int = DEFAULT_WINDOW_HOURS) -> str:
    """``tenant|scope|level|bucket``; the bucket is the UTC day for 24-hour windows, else ``<hours>h@<start>``."""
    start = start.astimezone(UTC)
    bucket = start.date().isoformat() if window_hours == 24 else f"{window_hours}h@{start:%Y-%m-%dT%H:%MZ}"
    return "|".join((quote(tenant_id, safe=_KEY_SAFE), quote(scope, safe=_KEY_SAFE), level, bucket))


def _alert(row: Sequence[Any], review_id: int | None = None) -> AlertRecord:
    return AlertRecord(*row[:15], review_id=review_id)


def raise_alert(
    conn,
    tenant_id: str,
    scope: str,
    level: str,
    day: date | str,
    payload: Mapping[str, Any],
    now: datetime | None = None,
    *,
    window_hours: int = DEFAULT_WINDOW_HOURS,
    candidate_ids: Collection[str] = (),
    check_store: bool = True,
) -> AlertRecord | None:
    """Write an alert to the outbox; ``None`` when an alert with the same key exists (de-duplicated).

    The key is (tenant, scope, level, bucket of ``now`` in windows of ``window_hours``); ``day`` is the analysed day
    the alert is about. HIGH and CRITICAL alerts open a review item (priority from the level) in the same transaction.
    The payload is refused (:class:`PayloadError`) if a key is named like a candidate id, or a value is one of
    ``candidate_ids`` or (``check_store``) one of the tenant's candidate ids in ``selection_events``.
    """
    now = require_aware(now)
    if level not in LEVELS:
        raise ValueError(f"unknown alert level {level!r}; expected one of {', '.join(LEVELS)}")
    if not tenant_id or not scope:
        raise ValueError("an alert needs a tenant and a scope")
    if not isinstance(window_hours, int) or window_hours <= 0:
        raise ValueError("the de-duplication window is a positive whole number of hours")
    day = date.fromisoformat(day) if isinstance(day, str) else day
    clean = guard_payload(payload, candidate_ids)
    start = window_start(now, window_hours)
    key = dedup_key(tenant_id, scope, level, start, window_hours)
    with conn, conn.cursor() as cur:
        if check_store:
            tokens = sorted(value_tokens(clean))
            if tokens:
                cur.execute(q.KNOWN_CANDIDATE_IDS, {"tenant_id": tenant_id, "values": tokens})
                found = [row[0] for row in cur.fetchall()]
                if found:
                    guard_payload(clean, found)  # raises, naming where
                    raise PayloadError("payload contains a candidate id; alert payloads carry no candidate ids")
        cur.execute(
            q.INSERT_ALERT,
            {"dedup_key": key, "tenant_id": tenant_id, "scope": scope, "level": level, "day": day,
             "window_start": start, "window_hours": window_hours, "payload": json.dumps(clean), "now": now},
        )  # fmt: skip
        row = cur.fetchone()
        if row is None:
            return None
        review_id = None
        if level in REVIEW_LEVELS:
            cur.execute(q.INSERT_REVIEW, {"alert_id": row[0], "tenant_id": tenant_id,
                                          "priority": priority_for(level), "now": now})  # fmt: skip
            review_id = cur.fetchone()[0]
            cur.execute(
                q.INSERT_HISTORY,
                {"review_id": review_id, "alert_id": row[0], "action": "open", "from_status": None,
                 "to_status": "open", "actor": SYSTEM_ACTOR, "note": f"opened by {level} alert {key}", "now": now},
            )  # fmt: skip
    return _alert(row, review_id)


def get_alert(conn, alert_id: int) -> AlertRecord | None:
    with conn, conn.cursor() as cur:
        cur.execute(q.ALERT_BY_ID, {"alert_id": alert_id})
        row = cur.fetchone()
    return _alert(row) if row else None


def delivery_attempts(conn, alert_id: int) -> list[DeliveryAttempt]:
    """Every delivery attempt of an alert, oldest first."""
    with conn, conn.cursor() as cur:
        cur.execute(q.ALERT_DELIVERIES, {"alert_id": alert_id})
        return [DeliveryAttempt(row[0], alert_id, *row[1:]) for row in cur.fetchall()]


def deliver_pending(
    conn, channels: Sequence[Channel], now: datetime | None = None, *, limit: int = 100
) -> list[DeliveryAttempt]:
    """One outbox tick: send every undelivered alert (at most ``limit``) on each enabled channel that lacks it.

    An alert is sent once per channel and stage (initial, then escalated). Every attempt is recorded with its outcome;
    the alert becomes ``delivered`` when every channel in ``channels`` has it, else ``partially`` or stays ``pending``
    and is retried by the next tick. A channel that reports itself unavailable (:class:`DeliveryError`
    ``unavailable``) is not tried again during this tick. Returns the attempts made by this tick.
    """
    now = require_aware(now)
    names = [channel.name for channel in channels]
    if not names:
        raise ValueError("deliver_pending needs at least one channel (the log channel is always on)")
    if len(set(names)) != len(names):
        raise ValueError(f"channel names must be unique: {names}")
    if conn.autocommit:
        raise ValueError("deliver_pending needs a transactional connection (autocommit is on)")
    seen: list[int] = []
    down: set[str] = set()  # channels found unavailable during this tick
    attempts: list[DeliveryAttempt] = []
    while len(seen) < limit:
        with conn, conn.cursor() as cur:
            cur.execute(q.LOCK_NEXT_UNDELIVERED, {"seen": seen})
            row = cur.fetchone()
            if row is None:
                break
            alert = _alert(row, row[15])
            seen.append(alert.id)
            attempts += _deliver_one(cur, alert, row[16], channels, down, now)
    return attempts


def _deliver_one(
    cur, alert: AlertRecord, priority: str | None, channels: Sequence[Channel], down: set[str], now: datetime
) -> list[DeliveryAttempt]:
    stage = alert.escalated
    cur.execute(q.DELIVERY_STATE, {"alert_id": alert.id, "escalation": stage})
    state = {channel: (attempts, delivered) for channel, attempts, delivered in cur.fetchall()}
    delivered = {channel for channel, (_, ok) in state.items() if ok}
    message = AlertMessage.for_alert(alert, now, alert.review_id, priority)
    made: list[DeliveryAttempt] = []
    for channel in channels:
        if channel.name in delivered or channel.name in down:
            continue
        detail: str | None = None
        error: str | None = None
        try:
            detail = channel.send(message)
        except Exception as exc:  # a failing channel must neither lose the alert nor stop the others
            error = (str(exc) or type(exc).__name__)[:_MAX_ERROR]
            logger.warning("alert %s: channel %s failed: %s", alert.id, channel.name, error)
            if isinstance(exc, DeliveryError) and exc.unavailable:
                down.add(channel.name)
        outcome = "failed" if error is not None else "delivered"
        attempt = state.get(channel.name, (0, False))[0] + 1
        cur.execute(
            q.INSERT_DELIVERY,
            {"alert_id": alert.id, "channel": channel.name, "escalation": stage, "attempt": attempt,
             "outcome": outcome, "detail": detail, "error": error, "now": now},
        )  # fmt: skip
        made.append(DeliveryAttempt(cur.fetchone()[0], alert.id, channel.name, stage, attempt, outcome, detail, error,
                                    now))  # fmt: skip
        if error is None:
            delivered.add(channel.name)
    if {channel.name for channel in channels} <= delivered:
        status = "delivered"
    else:
        status = "partially" if delivered else "pending"
    cur.execute(q.UPDATE_DELIVERY_STATUS, {"alert_id": alert.id, "status": status, "now": now})
    return made


def escalate_overdue(
    conn, now: datetime | None = None, deadlines: Mapping[str, timedelta] = DEFAULT_DEADLINES
) -> list[Escalation]:
    """Escalate, once, every alert whose review is still open past its level's deadline (from the alert's creation).

    The alert goes back to ``pending`` so the next delivery tick re-sends it marked as escalated; its review's
    priority is raised one step and the escalation is written to the review history (actor ``system``). Alerts
    without a review item (LOW, MEDIUM) cannot be acknowledged and are never escalated.
    """
    now = require_aware(now)
    for level, deadline in deadlines.items():
        if level not in LEVELS:
            raise ValueError(f"unknown alert level {level!r} in deadlines")
        if deadline.total_seconds() < 0:
            raise ValueError(f"the {level} deadline is negative")
    if not deadlines:
        return []
    levels = list(deadlines)
    escalated: list[Escalation] = []
    with conn, conn.cursor() as cur:
        cur.execute(q.LOCK_OVERDUE, {"levels": levels, "now": now,
                                     "deadline_seconds": [deadlines[lv].total_seconds() for lv in levels]})  # fmt: skip
        for alert_id, tenant_id, level, created_at, review_id, priority, seconds in cur.fetchall():
            cur.execute(q.ESCALATE_ALERT, {"alert_id": alert_id, "now": now})
            if cur.rowcount != 1:
                continue
            new_priority = raised_priority(priority)
            cur.execute(q.RAISE_REVIEW_PRIORITY, {"review_id": review_id, "priority": new_priority, "now": now})
            deadline = timedelta(seconds=seconds)
            change = f"{priority} -> {new_priority}" if new_priority != priority else f"stays {priority}"
            cur.execute(
                q.INSERT_HISTORY,
                {"review_id": review_id, "alert_id": alert_id, "action": "escalate", "from_status": "open",
                 "to_status": "open", "actor": SYSTEM_ACTOR,
                 "note": f"not acknowledged within {_duration(deadline)}; priority {change}", "now": now},
            )  # fmt: skip
            escalated.append(Escalation(alert_id, review_id, tenant_id, level, created_at, deadline, now, new_priority))
    return escalated


def _duration(value: timedelta) -> str:
    hours = value.total_seconds() / 3600
    if hours >= 48 and hours % 24 == 0:
        return f"{int(hours // 24)} days"
    return f"{hours:g} h"
