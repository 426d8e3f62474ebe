"""The alert outbox: raise an alert exactly once per de-duplication window, deliver it on every channel, escalate it.

Each function runs its own transaction(s) on the caller's psycopg2 connection (not in autocommit mode) and commits.

- :func:`raise_alert` inserts a typed payload (:mod:`fairness_pipeline.alerts.payload`: no candidate id by
  construction) into ``fairness_alerts`` with ``ON CONFLICT (dedup_key) DO NOTHING``: of two racing runs only the
  inserter gets the row back (and opens the review item); the other gets ``None``.
- :func:`deliver_pending` is a tick of the outbox: it takes alerts that still lack a successful delivery on an enabled
  channel one at a time with ``FOR UPDATE SKIP LOCKED`` (two ticks never send the same alert), tries each missing
  channel, records every attempt, and commits. A failed channel leaves the alert undelivered for the next tick.
  Each delivery (alert, channel, stage) has a UUID drawn at its first attempt and kept by its retries.
- :func:`escalate_overdue` marks unacknowledged alerts past their level's deadline as escalated (once), raises their
  review's priority and sets them back to pending so the next tick re-sends them with the escalation marked.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
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
from fairness_pipeline.alerts.payload import AlertMessage, AlertPayload, OperationalAlertPayload, RiskAlertPayload
from fairness_pipeline.store import alerts as store
from fairness_pipeline.store.schema import transaction

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
    payload: AlertPayload,
    now: datetime | None = None,
    *,
    window_hours: int = DEFAULT_WINDOW_HOURS,
) -> AlertRecord | None:
    """Write an alert to the outbox; ``None`` when an alert with the same key exists (de-duplicated).

    Tenant, scope, level and the analysed day come from the payload, which must be a :class:`RiskAlertPayload` or an
    :class:`OperationalAlertPayload` (anything else is refused with :class:`PayloadError`): those hold only checked
    numbers, levels, vocabulary values and texts rendered from templates, so no candidate id can be in an alert. The
    key is (tenant, scope, level, bucket of ``now`` in windows of ``window_hours``). HIGH and CRITICAL alerts open a
    review item (priority from the level) in the same transaction.
    """
    now = require_aware(now)
    if not isinstance(payload, RiskAlertPayload | OperationalAlertPayload):
        raise PayloadError("an alert payload is a RiskAlertPayload or an OperationalAlertPayload")
    if not isinstance(window_hours, int) or window_hours <= 0:
        raise ValueError("the de-duplication window is a positive whole number of hours")
    tenant_id, scope, level, day = payload.tenant_id, payload.scope, payload.level, payload.day
    start = window_start(now, window_hours)
    key = dedup_key(tenant_id, scope, level, start, window_hours)
    alert = {
        "dedup_key": key,
        "tenant_id": tenant_id,
        "scope": scope,
        "level": level,
        "day": day,
        "window_start": start,
        "window_hours": window_hours,
    }
    with transaction(conn) as tx:
        row = store.insert_alert(tx, alert, payload.to_dict(), now)
        if row is None:
            return None
        review_id = None
        if level in REVIEW_LEVELS:
            review_id = store.open_review(tx, row[0], tenant_id, priority_for(level), now)
            store.record_history(
                tx, review_id, row[0], "open", None, "open", SYSTEM_ACTOR, f"opened by {level} alert {key}", now
            )
    return _alert(row, review_id)


def get_alert(conn, alert_id: int) -> AlertRecord | None:
    row = store.alert_row(conn, alert_id)
    return _alert(row) if row else None


def delivery_attempts(conn, alert_id: int) -> list[DeliveryAttempt]:
    """Every delivery attempt of an alert, oldest first."""
    return [
        DeliveryAttempt(row[0], alert_id, *row[1:8], uuid.UUID(row[8])) for row in store.delivery_rows(conn, alert_id)
    ]


def deliver_pending(
    conn, channels: Sequence[Channel], now: datetime | None = None, *, limit: int = 100
) -> list[DeliveryAttempt]:
    """One outbox tick: send every undelivered alert (at most ``limit``) on each enabled channel that lacks it.

    An alert is sent once per channel and stage (initial, then escalated): that is one *delivery*, identified by a
    UUID (uuid4) drawn at its first attempt and reused by every retry of it, on later ticks too, so a receiver that
    de-duplicates on the id takes a retry after a lost response for what it is; an escalation is a new delivery with
    a new id, and ids never repeat across databases. Every attempt is recorded with its outcome and delivery id;
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
        with transaction(conn) as tx:
            row = store.lock_next_undelivered(tx, seen)
            if row is None:
                break
            alert = _alert(row, row[15])
            seen.append(alert.id)
            attempts += _deliver_one(tx, alert, row[16], channels, down, now)
    return attempts


def _deliver_one(
    tx, alert: AlertRecord, priority: str | None, channels: Sequence[Channel], down: set[str], now: datetime
) -> list[DeliveryAttempt]:
    stage = alert.escalated
    state = store.delivery_state(tx, alert.id, stage)
    delivered = {channel for channel, (_, ok, _) in state.items() if ok}
    made: list[DeliveryAttempt] = []
    for channel in channels:
        if channel.name in delivered or channel.name in down:
            continue
        previous, _, known_id = state.get(channel.name, (0, False, None))
        delivery_id = uuid.UUID(known_id) if known_id else uuid.uuid4()
        message = AlertMessage.for_alert(alert, now, delivery_id, alert.review_id, priority)
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
        attempt = previous + 1
        attempt_id = store.insert_delivery(
            tx,
            {
                "alert_id": alert.id,
                "channel": channel.name,
                "escalation": stage,
                "attempt": attempt,
                "outcome": outcome,
                "detail": detail,
                "error": error,
                "delivery_id": str(delivery_id),
            },
            now,
        )
        made.append(
            DeliveryAttempt(
                attempt_id, alert.id, channel.name, stage, attempt, outcome, detail, error, now, delivery_id
            )
        )
        if error is None:
            delivered.add(channel.name)
    if {channel.name for channel in channels} <= delivered:
        status = "delivered"
    else:
        status = "partially" if delivered else "pending"
    store.set_delivery_status(tx, alert.id, status, now)
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
    escalated: list[Escalation] = []
    with transaction(conn) as tx:
        overdue = store.lock_overdue(
            tx, {level: deadline.total_seconds() for level, deadline in deadlines.items()}, now
        )
        for alert_id, tenant_id, level, created_at, review_id, priority, seconds in overdue:
            if not store.escalate_alert(tx, alert_id, now):
                continue
            new_priority = raised_priority(priority)
            store.raise_review_priority(tx, review_id, new_priority, now)
            deadline = timedelta(seconds=seconds)
            change = f"{priority} -> {new_priority}" if new_priority != priority else f"stays {priority}"
            note = f"not acknowledged within {_duration(deadline)}; priority {change}"
            store.record_history(tx, review_id, alert_id, "escalate", "open", "open", SYSTEM_ACTOR, note, now)
            escalated.append(Escalation(alert_id, review_id, tenant_id, level, created_at, deadline, now, new_priority))
    return escalated


def _duration(value: timedelta) -> str:
    hours = value.total_seconds() / 3600
    if hours >= 48 and hours % 24 == 0:
        return f"{int(hours // 24)} days"
    return f"{hours:g} h"
