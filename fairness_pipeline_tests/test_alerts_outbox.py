"""The alert outbox on real PostgreSQL: de-duplication, review opening, typed payloads only, delivery ticks, races."""

from __future__ import annotations

import json
import shutil
import threading
import uuid
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest

from fairness_pipeline.alerts import (
    DeliveryError,
    LogChannel,
    OperationalAlertPayload,
    PayloadError,
    RiskAlertPayload,
    WebhookChannel,
    dedup_key,
    deliver_pending,
    escalate_overdue,
    raise_alert,
    window_start,
)
from fairness_pipeline.store.migrations import migrate, migrations_dir
from fairness_pipeline_tests.test_alerts_support import (
    DAY,
    SECRET,
    T0,
    RecordingChannel,
    WebhookReceiver,
    connection,
    query,
    risk_payload,
)

_payload = risk_payload
RUN_ID = uuid.UUID("0b0e5a3e-6a09-4b8e-9a0f-1c2d3e4f5a6b")


# --- key and window -----------------------------------------------------------------------------------------------


def test_window_buckets_and_keys() -> None:
    assert window_start(T0) == datetime(2026, 3, 10, tzinfo=UTC)
    assert window_start(datetime(2026, 3, 10, 23, 59, 59, tzinfo=UTC)) == datetime(2026, 3, 10, tzinfo=UTC)
    assert window_start(T0, 6) == datetime(2026, 3, 10, 6, tzinfo=UTC)
    assert dedup_key("t1", "risk", "HIGH", window_start(T0)) == "t1|risk|HIGH|2026-03-10"
    assert dedup_key("t1", "risk", "HIGH", window_start(T0, 6), 6) == "t1|risk|HIGH|6h@2026-03-10T06:00Z"
    # a '|' inside a tenant or scope cannot make two different alerts share a key
    assert dedup_key("a|b", "c", "HIGH", window_start(T0)) != dedup_key("a", "b|c", "HIGH", window_start(T0))
    with pytest.raises(ValueError, match="timezone-aware"):
        window_start(datetime(2026, 3, 10, 9, 30))


def test_same_key_is_raised_once_per_window(conn) -> None:
    first = raise_alert(conn, _payload(), T0)
    assert first is not None and first.dedup_key == "t1|risk|HIGH|2026-03-10" and first.status == "pending"
    assert (first.tenant_id, first.scope, first.level, first.day) == ("t1", "risk", "HIGH", DAY)
    assert raise_alert(conn, _payload(), T0 + timedelta(hours=14)) is None
    assert raise_alert(conn, _payload(day=DAY + timedelta(days=1)), T0 + timedelta(hours=3)) is None
    # another level, scope, tenant or window is another alert
    assert raise_alert(conn, _payload(level="CRITICAL"), T0) is not None
    assert raise_alert(conn, _payload("operations", "MEDIUM"), T0) is not None
    operational = raise_alert(conn, OperationalAlertPayload("metrics_job", RUN_ID, DAY), T0)
    assert operational is not None and operational.dedup_key == "operations|operational|MEDIUM|2026-03-10"
    assert raise_alert(conn, _payload("t2"), T0) is not None
    assert raise_alert(conn, _payload(), T0 + timedelta(hours=15)) is not None
    hourly = [raise_alert(conn, _payload("t3", "LOW"), T0 + timedelta(minutes=m), window_hours=1) for m in (0, 20, 40)]
    assert [a is not None for a in hourly] == [True, False, True]
    assert query(conn, "SELECT count(*) FROM fairness_alerts")[0][0] == 8


def test_high_and_critical_open_a_review_with_priority(conn) -> None:
    alerts = {level: raise_alert(conn, _payload(level=level), T0) for level in ("LOW", "MEDIUM", "HIGH", "CRITICAL")}
    assert alerts["LOW"].review_id is None and alerts["MEDIUM"].review_id is None
    rows = query(conn, "SELECT alert_id, priority, status, opened_at FROM fairness_reviews ORDER BY id")
    assert rows == [(alerts["HIGH"].id, "high", "open", T0), (alerts["CRITICAL"].id, "critical", "open", T0)]
    history = query(conn, "SELECT action, from_status, to_status, actor FROM fairness_review_history ORDER BY id")
    assert history == [("open", None, "open", "system")] * 2


def test_invalid_alerts_are_refused(conn) -> None:
    with pytest.raises(PayloadError, match="payload field level"):
        raise_alert(conn, RiskAlertPayload("t1", "SEVERE", DAY), T0)
    with pytest.raises(PayloadError, match="RiskAlertPayload or an OperationalAlertPayload"):
        raise_alert(conn, {"tenant_id": "t1", "level": "HIGH", "reasons": ["free text"]}, T0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone-aware"):
        raise_alert(conn, _payload(), datetime(2026, 3, 10))
    with pytest.raises(ValueError, match="window"):
        raise_alert(conn, _payload(), T0, window_hours=0)
    assert query(conn, "SELECT count(*) FROM fairness_alerts")[0][0] == 0


# --- delivery ticks -----------------------------------------------------------------------------------------------


def _deliveries(conn) -> list[tuple]:
    return query(
        conn,
        """SELECT alert_id, channel, escalation, attempt, outcome FROM fairness_alert_deliveries
                          ORDER BY id""",
    )


def test_tick_delivers_each_alert_once_per_channel(conn) -> None:
    memory = RecordingChannel()
    channels = [LogChannel(), memory]
    a = raise_alert(conn, _payload("t1", "HIGH"), T0)
    b = raise_alert(conn, _payload("t2", "MEDIUM"), T0 + timedelta(minutes=1))
    attempts = deliver_pending(conn, channels, T0 + timedelta(minutes=5))
    assert [(x.alert_id, x.channel, x.attempt, x.outcome) for x in attempts] == [
        (a.id, "log", 1, "delivered"),
        (a.id, "memory", 1, "delivered"),
        (b.id, "log", 1, "delivered"),
        (b.id, "memory", 1, "delivered"),
    ]
    assert [m.alert_id for m in memory.sent] == [a.id, b.id]
    assert memory.sent[0].review_id == a.review_id and memory.sent[0].review_priority == "high"
    assert deliver_pending(conn, channels, T0 + timedelta(minutes=10)) == []
    rows = query(conn, "SELECT status, delivered_at, last_attempt_at FROM fairness_alerts ORDER BY id")
    assert rows == [("delivered", T0 + timedelta(minutes=5), T0 + timedelta(minutes=5))] * 2
    # a channel enabled later does not receive alerts that were already delivered
    assert deliver_pending(conn, [LogChannel(), memory, RecordingChannel("late")], T0 + timedelta(hours=1)) == []


def test_failed_channel_never_loses_the_alert(conn) -> None:
    flaky = RecordingChannel("flaky", failing=True)
    channels = [LogChannel(), flaky]
    alert = raise_alert(conn, _payload("t1", "CRITICAL"), T0)
    for minute in (5, 10):
        attempts = deliver_pending(conn, channels, T0 + timedelta(minutes=minute))
        assert [(x.channel, x.outcome) for x in attempts] == ([("log", "delivered")] if minute == 5 else []) + [
            ("flaky", "failed")
        ]
        assert attempts[-1].error == "receiver unavailable"
        assert query(conn, "SELECT status FROM fairness_alerts")[0][0] == "partially"
    flaky.failing = False
    attempts = deliver_pending(conn, channels, T0 + timedelta(minutes=15))
    assert [(x.channel, x.attempt, x.outcome) for x in attempts] == [("flaky", 3, "delivered")]
    assert query(conn, "SELECT status, delivered_at FROM fairness_alerts") == [
        ("delivered", T0 + timedelta(minutes=15))
    ]
    assert _deliveries(conn) == [
        (alert.id, "log", False, 1, "delivered"),
        (alert.id, "flaky", False, 1, "failed"),
        (alert.id, "flaky", False, 2, "failed"),
        (alert.id, "flaky", False, 3, "delivered"),
    ]


def test_an_unavailable_channel_is_skipped_for_the_rest_of_the_tick(conn) -> None:
    down = RecordingChannel("down", failing=True)  # DeliveryError(unavailable=True)
    bad_alert = BadAlertChannel()  # fails each alert on its own
    for tenant in ("t1", "t2", "t3"):
        raise_alert(conn, _payload(tenant), T0)
    attempts = deliver_pending(conn, [LogChannel(), down, bad_alert], T0)
    assert [a.channel for a in attempts if not a.delivered] == ["down", "bad", "bad", "bad"]
    assert query(conn, "SELECT DISTINCT status FROM fairness_alerts") == [("partially",)]
    down.failing = False
    later = deliver_pending(conn, [LogChannel(), down, bad_alert], T0 + timedelta(minutes=5))
    assert [(a.channel, a.attempt, a.outcome) for a in later if a.channel == "down"] == [
        ("down", 2, "delivered"),
        ("down", 1, "delivered"),
        ("down", 1, "delivered"),
    ]


class BadAlertChannel(RecordingChannel):
    def __init__(self) -> None:
        super().__init__("bad")

    def send(self, message):
        raise DeliveryError("HTTP 413 (Payload Too Large)")


def test_every_channel_failing_leaves_the_alert_pending(conn) -> None:
    raise_alert(conn, _payload("t1", "HIGH"), T0)
    deliver_pending(conn, [RecordingChannel("a", failing=True), RecordingChannel("b", failing=True)], T0)
    assert query(conn, "SELECT status, delivered_at FROM fairness_alerts") == [("pending", None)]


def test_tick_arguments_are_checked(conn) -> None:
    with pytest.raises(ValueError, match="at least one channel"):
        deliver_pending(conn, [], T0)
    with pytest.raises(ValueError, match="unique"):
        deliver_pending(conn, [RecordingChannel("x"), RecordingChannel("x")], T0)


def test_one_successful_delivery_per_alert_channel_and_stage(conn) -> None:
    alert = raise_alert(conn, _payload("t1", "HIGH"), T0)
    deliver_pending(conn, [LogChannel()], T0)
    with pytest.raises(psycopg2.errors.UniqueViolation):
        query(
            conn,
            """INSERT INTO fairness_alert_deliveries (alert_id, channel, escalation, attempt, outcome,
                       attempted_at, delivery_id) VALUES (%s, 'log', false, 2, 'delivered', now(),
                       gen_random_uuid()) RETURNING id""",
            (alert.id,),
        )


def test_review_history_is_append_only(conn) -> None:
    raise_alert(conn, _payload("t1", "HIGH"), T0)
    for statement in (
        "UPDATE fairness_review_history SET actor = 'mallory'",
        "DELETE FROM fairness_review_history",
        "TRUNCATE fairness_review_history",
    ):
        with pytest.raises(psycopg2.errors.RaiseException, match="append-only"), conn, conn.cursor() as cur:
            cur.execute(statement)
    assert query(conn, "SELECT actor FROM fairness_review_history") == [("system",)]


# --- races --------------------------------------------------------------------------------------------------------


def _race(workers: int, target) -> list:
    barrier = threading.Barrier(workers)
    results: list = [None] * workers
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = target(index)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


def test_two_concurrent_runs_for_the_same_key_deliver_once(db_url: str) -> None:
    rounds = 8
    with WebhookReceiver() as receiver:
        for round_ in range(rounds):
            tenant = f"race-{round_}"

            def alert_run(_: int, tenant: str = tenant):
                with connection(db_url) as conn:
                    alert = raise_alert(conn, _payload(tenant, "CRITICAL"), T0)
                    webhook = WebhookChannel(receiver.url, SECRET, timeout=5, retries=0)
                    attempts = deliver_pending(conn, [LogChannel(), webhook], T0)
                return alert, attempts

            results = _race(2, alert_run)
            assert sorted(alert is None for alert, _ in results) == [False, True]
            assert sum(len(attempts) for _, attempts in results) == 2  # log + webhook, by one of the two
    assert len(receiver.received) == rounds
    with connection(db_url) as conn:
        assert query(conn, "SELECT count(*), count(DISTINCT dedup_key) FROM fairness_alerts") == [(rounds, rounds)]
        delivered = query(
            conn,
            """SELECT channel, count(*) FROM fairness_alert_deliveries
                                   WHERE outcome = 'delivered' GROUP BY channel ORDER BY channel""",
        )
        assert delivered == [("log", rounds), ("webhook", rounds)]
        assert query(conn, "SELECT count(*) FROM fairness_reviews")[0][0] == rounds


def test_concurrent_ticks_never_send_an_alert_twice(db_url: str) -> None:
    with connection(db_url) as conn:
        ids = [raise_alert(conn, _payload(f"t{i}"), T0).id for i in range(4)]
    with WebhookReceiver(delay=0.2) as receiver:

        def tick(_: int):
            with connection(db_url) as conn:
                return deliver_pending(conn, [WebhookChannel(receiver.url, SECRET, retries=0)], T0)

        results = _race(3, tick)
    sent = sorted(a.alert_id for attempts in results for a in attempts)
    assert sent == sorted(ids)
    assert len(receiver.received) == 4
    assert sum(1 for attempts in results if attempts) >= 2  # the work was shared, not serialised


# --- delivery ids -------------------------------------------------------------------------------------------------


def _stored_ids(conn) -> list[tuple]:
    return query(
        conn,
        """SELECT alert_id, channel, escalation, attempt, delivery_id::text
                          FROM fairness_alert_deliveries ORDER BY id""",
    )


def test_a_delivery_keeps_its_id_through_retries_and_an_escalation_is_a_new_delivery(conn) -> None:
    flaky = RecordingChannel("flaky", failing=True)
    memory = RecordingChannel()
    alert = raise_alert(conn, _payload(level="CRITICAL"), T0)
    deliver_pending(conn, [memory, flaky], T0)
    deliver_pending(conn, [memory, flaky], T0 + timedelta(minutes=5))
    flaky.failing = False
    deliver_pending(conn, [memory, flaky], T0 + timedelta(minutes=10))
    escalate_overdue(conn, T0 + timedelta(hours=24))
    deliver_pending(conn, [memory, flaky], T0 + timedelta(hours=24, minutes=5))
    rows = _stored_ids(conn)
    assert [row[:4] for row in rows] == [
        (alert.id, "memory", False, 1),
        (alert.id, "flaky", False, 1),
        (alert.id, "flaky", False, 2),
        (alert.id, "flaky", False, 3),
        (alert.id, "memory", True, 1),
        (alert.id, "flaky", True, 1),
    ]
    ids = [uuid.UUID(row[4]) for row in rows]
    assert all(i.version == 4 for i in ids)
    assert ids[1] == ids[2] == ids[3]  # the retries of one delivery
    assert len({ids[0], ids[1], ids[4], ids[5]}) == 4  # another channel or stage is another delivery
    assert [m.delivery_id for m in memory.sent] == [ids[0], ids[4]]
    assert [m.delivery_id for m in flaky.sent] == [ids[3], ids[5]]
    assert [json.loads(m.body())["delivery_id"] for m in flaky.sent] == [str(ids[3]), str(ids[5])]


def _deliver_first_alert(url: str) -> tuple[int, str]:
    with connection(url) as conn:
        alert = raise_alert(conn, _payload(level="MEDIUM"), T0)  # no review item: the outbox alone
        [attempt] = deliver_pending(conn, [LogChannel()], T0)
    return alert.id, str(attempt.delivery_id)


def test_delivery_ids_differ_across_databases_and_after_a_reset(db_url: str, second_db_url: str) -> None:
    first_alert, first = _deliver_first_alert(db_url)
    second_alert, second = _deliver_first_alert(second_db_url)
    assert first_alert == second_alert == 1  # what the old '<alert id>:initial' repeated
    with connection(db_url) as conn, conn, conn.cursor() as cur:  # the outbox reset: ids start again at 1
        cur.execute(
            "DELETE FROM fairness_alert_deliveries; DELETE FROM fairness_alerts; "
            "ALTER SEQUENCE fairness_alerts_id_seq RESTART; ALTER SEQUENCE fairness_alert_deliveries_id_seq RESTART"
        )
    reset_alert, after_reset = _deliver_first_alert(db_url)
    assert reset_alert == 1
    assert len({first, second, after_reset}) == 3


def test_migration_015_gives_earlier_attempts_one_id_per_delivery(empty_db_url: str, tmp_path) -> None:
    before = tmp_path / "migrations"
    before.mkdir()
    for path in migrations_dir().glob("*.sql"):
        if int(path.name[:3]) < 15:
            shutil.copy(path, before / path.name)
    with connection(empty_db_url) as conn:
        migrate(conn, before)
        alert = raise_alert(conn, _payload(), T0)
        query(
            conn,
            """INSERT INTO fairness_alert_deliveries (alert_id, channel, escalation, attempt, outcome, error,
                       attempted_at) VALUES (%(a)s, 'webhook', false, 1, 'failed', 'HTTP 503', %(t)s),
                       (%(a)s, 'webhook', false, 2, 'failed', 'HTTP 503', %(t)s),
                       (%(a)s, 'log', false, 1, 'delivered', NULL, %(t)s) RETURNING 1""",
            {"a": alert.id, "t": T0},
        )
        assert 15 in [m.version for m in migrate(conn)]  # 015 and every later migration
        webhook_1, webhook_2, log = [row[4] for row in _stored_ids(conn)]
        assert webhook_1 == webhook_2 != log and None not in (webhook_1, log)
        # the next retry of the webhook delivery keeps the id the migration gave it
        [retry] = deliver_pending(conn, [LogChannel(), RecordingChannel("webhook")], T0 + timedelta(minutes=5))
        assert (retry.channel, retry.attempt, str(retry.delivery_id)) == ("webhook", 3, webhook_1)
        with pytest.raises(psycopg2.errors.NotNullViolation):
            query(
                conn,
                """INSERT INTO fairness_alert_deliveries (alert_id, channel, escalation, attempt, outcome,
                           attempted_at) VALUES (%s, 'x', false, 1, 'delivered', now()) RETURNING 1""",
                (alert.id,),
            )
