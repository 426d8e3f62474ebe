"""Escalation of unacknowledged alerts, driven by an explicit clock."""

from __future__ import annotations

import json
import threading
from datetime import date, timedelta

import pytest

from fairness_pipeline.alerts import (
    LogChannel,
    WebhookChannel,
    acknowledge,
    deliver_pending,
    delivery_attempts,
    escalate_overdue,
    raise_alert,
    resolve,
    review_history,
    verify,
)
from fairness_pipeline_tests.test_alerts_support import (
    SECRET,
    T0,
    RecordingChannel,
    WebhookReceiver,
    connection,
    query,
    risk_payload,
)

DAY = date(2026, 3, 9)
HOUR = timedelta(hours=1)


def _raise(conn, level: str, tenant: str = "t1", at=T0):
    return raise_alert(conn, risk_payload(tenant, level), at)


def test_critical_alert_escalates_after_24_hours_once_and_is_resent_marked(conn) -> None:
    alert = _raise(conn, "CRITICAL")
    with WebhookReceiver() as receiver:
        channels = [LogChannel(), WebhookChannel(receiver.url, SECRET)]
        deliver_pending(conn, channels, T0)
        assert escalate_overdue(conn, T0 + 23 * HOUR) == []
        [escalation] = escalate_overdue(conn, T0 + 24 * HOUR)
        assert (escalation.alert_id, escalation.review_id, escalation.level) == (alert.id, alert.review_id, "CRITICAL")
        assert escalation.deadline == 24 * HOUR and escalation.priority == "critical"
        assert query(conn, "SELECT status, escalated_at, escalation_count FROM fairness_alerts") == [
            ("pending", T0 + 24 * HOUR, 1)
        ]
        assert escalate_overdue(conn, T0 + 72 * HOUR) == []  # once

        attempts = deliver_pending(conn, channels, T0 + 24 * HOUR + timedelta(minutes=5))
        assert [(a.channel, a.escalation, a.attempt, a.outcome) for a in attempts] == [
            ("log", True, 1, "delivered"),
            ("webhook", True, 1, "delivered"),
        ]
        assert deliver_pending(conn, channels, T0 + 25 * HOUR) == []
    first, second = receiver.received
    assert json.loads(first.body)["escalated"] is False
    body = json.loads(second.body)
    assert body["escalated"] is True and body["escalated_at"] == (T0 + 24 * HOUR).isoformat()
    assert second.headers["X-Fairness-Event"] == "escalation"
    # the escalation is a new delivery of the alert on the channel: a new id, stored with its attempt
    webhook_ids = [a.delivery_id for a in delivery_attempts(conn, alert.id) if a.channel == "webhook"]
    assert [first.headers["X-Fairness-Delivery"], second.headers["X-Fairness-Delivery"]] == list(map(str, webhook_ids))
    assert webhook_ids[0] != webhook_ids[1]
    assert verify(SECRET, second.body, second.headers["X-Fairness-Signature"])
    assert query(conn, "SELECT status FROM fairness_alerts") == [("delivered",)]
    [_opened, escalated] = review_history(conn, alert.review_id)
    assert (escalated.action, escalated.from_status, escalated.to_status, escalated.actor) == (
        "escalate",
        "open",
        "open",
        "system",
    )
    assert escalated.at == T0 + 24 * HOUR and "24 h" in escalated.note


def test_high_alert_escalates_after_14_days_and_its_priority_rises(conn) -> None:
    alert = _raise(conn, "HIGH")
    deliver_pending(conn, [LogChannel()], T0)
    assert escalate_overdue(conn, T0 + timedelta(days=13, hours=23)) == []
    [escalation] = escalate_overdue(conn, T0 + timedelta(days=14))
    assert escalation.priority == "critical"
    assert query(conn, "SELECT priority, status FROM fairness_reviews") == [("critical", "open")]
    memory = RecordingChannel()
    deliver_pending(conn, [LogChannel(), memory], T0 + timedelta(days=14, minutes=1))
    [message] = memory.sent
    assert message.escalated and message.alert_id == alert.id and message.review_priority == "critical"
    assert message.subject().startswith("[ESCALATED] ")
    assert "not acknowledged within 14 days" in review_history(conn, alert.review_id)[-1].note


def test_acknowledged_or_resolved_alerts_are_not_escalated(conn) -> None:
    acked = _raise(conn, "CRITICAL", "t1")
    resolved = _raise(conn, "CRITICAL", "t2")
    acknowledge(conn, acked.review_id, "ana", now=T0 + HOUR)
    resolve(conn, resolved.review_id, "ana", "false alarm: test tenant", now=T0 + HOUR)
    assert escalate_overdue(conn, T0 + timedelta(days=30)) == []


def test_only_reviewed_levels_with_a_deadline_escalate(conn) -> None:
    _raise(conn, "LOW")
    _raise(conn, "MEDIUM")
    high = _raise(conn, "HIGH")
    critical = _raise(conn, "CRITICAL")
    deadlines = {"HIGH": 2 * HOUR, "MEDIUM": HOUR, "LOW": HOUR}  # LOW/MEDIUM have no review item to acknowledge
    assert [e.alert_id for e in escalate_overdue(conn, T0 + 2 * HOUR, deadlines)] == [high.id]
    assert [e.alert_id for e in escalate_overdue(conn, T0 + timedelta(days=2))] == [critical.id]
    with pytest.raises(ValueError, match="unknown alert level"):
        escalate_overdue(conn, T0, {"URGENT": HOUR})


def test_concurrent_escalations_escalate_once(db_url: str) -> None:
    with connection(db_url) as conn:
        ids = {_raise(conn, "CRITICAL", f"t{i}").id for i in range(5)}
    barrier = threading.Barrier(3)
    results: list[list] = []

    def run() -> None:
        with connection(db_url) as conn:
            barrier.wait(timeout=10)
            results.append(escalate_overdue(conn, T0 + 25 * HOUR))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(e.alert_id for batch in results for e in batch) == sorted(ids)
    with connection(db_url) as conn:
        assert query(conn, "SELECT count(*) FROM fairness_review_history WHERE action = 'escalate'") == [(5,)]
