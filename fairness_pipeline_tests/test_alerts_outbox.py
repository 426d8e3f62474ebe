"""The alert outbox on real PostgreSQL: de-duplication, review opening, payload guard, delivery ticks, races."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import numpy as np
import psycopg2
import pytest

from fairness_pipeline.alerts import (
    DeliveryError,
    LogChannel,
    PayloadError,
    WebhookChannel,
    build_payload,
    dedup_key,
    deliver_pending,
    guard_payload,
    is_candidate_key,
    raise_alert,
    window_start,
)
from fairness_pipeline_tests.test_alerts_support import (
    SECRET,
    T0,
    RecordingChannel,
    WebhookReceiver,
    connection,
    query,
)

DAY = date(2026, 3, 9)


def _payload(tenant: str = "t1", level: str = "HIGH") -> dict:
    return build_payload(
        tenant_id=tenant,
        level=level,
        score=0.71,
        reasons=["impact ratio 0.62 for startup"],
        window={"end": DAY.isoformat(), "days": 30},
        report_path="reports/t1/2026-03-09.json",
    )


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
    first = raise_alert(conn, "t1", "risk", "HIGH", DAY, _payload(), T0)
    assert first is not None and first.dedup_key == "t1|risk|HIGH|2026-03-10" and first.status == "pending"
    assert raise_alert(conn, "t1", "risk", "HIGH", DAY, _payload(), T0 + timedelta(hours=14)) is None
    assert raise_alert(conn, "t1", "risk", "HIGH", DAY + timedelta(days=1), _payload(), T0 + timedelta(hours=3)) is None
    # another level, scope, tenant or window is another alert
    assert raise_alert(conn, "t1", "risk", "CRITICAL", DAY, _payload(level="CRITICAL"), T0) is not None
    assert raise_alert(conn, "t1", "operational", "HIGH", DAY, _payload(), T0) is not None
    assert raise_alert(conn, "t2", "risk", "HIGH", DAY, _payload("t2"), T0) is not None
    assert raise_alert(conn, "t1", "risk", "HIGH", DAY, _payload(), T0 + timedelta(hours=15)) is not None
    hourly = [raise_alert(conn, "t3", "risk", "LOW", DAY, {}, T0 + timedelta(minutes=m), window_hours=1)
              for m in (0, 20, 40)]  # fmt: skip
    assert [a is not None for a in hourly] == [True, False, True]
    assert query(conn, "SELECT count(*) FROM fairness_alerts")[0][0] == 7


def test_high_and_critical_open_a_review_with_priority(conn) -> None:
    alerts = {level: raise_alert(conn, "t1", "risk", level, DAY, _payload(level=level), T0)
              for level in ("LOW", "MEDIUM", "HIGH", "CRITICAL")}  # fmt: skip
    assert alerts["LOW"].review_id is None and alerts["MEDIUM"].review_id is None
    rows = query(conn, "SELECT alert_id, priority, status, opened_at FROM fairness_reviews ORDER BY id")
    assert rows == [(alerts["HIGH"].id, "high", "open", T0), (alerts["CRITICAL"].id, "critical", "open", T0)]
    history = query(conn, "SELECT action, from_status, to_status, actor FROM fairness_review_history ORDER BY id")
    assert history == [("open", None, "open", "system")] * 2


def test_invalid_alerts_are_refused(conn) -> None:
    with pytest.raises(ValueError, match="unknown alert level"):
        raise_alert(conn, "t1", "risk", "SEVERE", DAY, {}, T0)
    with pytest.raises(ValueError, match="timezone-aware"):
        raise_alert(conn, "t1", "risk", "HIGH", DAY, {}, datetime(2026, 3, 10))
    with pytest.raises(ValueError, match="window"):
        raise_alert(conn, "t1", "risk", "HIGH", DAY, {}, T0, window_hours=0)
    assert query(conn, "SELECT count(*) FROM fairness_alerts")[0][0] == 0


# --- payload guard ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["candidate_id", "candidateId", "CANDIDATE-ID", "candidate_ids", "candidates", "candidate", "candidate_uuid",
            "top_candidate_ids"],
)  # fmt: skip
def test_candidate_keys_are_recognised(key: str) -> None:
    assert is_candidate_key(key)
    with pytest.raises(PayloadError, match="candidate"):
        guard_payload({"details": [{"group": "startup", key: "x"}]})


@pytest.mark.parametrize("key", ["tenant_id", "score", "reasons", "candidates_shown_count", "dimension"])
def test_other_keys_pass(key: str) -> None:
    assert not is_candidate_key(key)
    assert guard_payload({key: 1}) == {key: 1}


def test_guard_refuses_candidate_id_values_anywhere() -> None:
    ids = {"t1-cand-0000042", "c-99"}
    assert guard_payload(_payload(), ids) == _payload()
    for payload in (
        {"reasons": ["t1-cand-0000042"]},
        {"nested": {"deeper": [{"who": "c-99"}]}},
        {"reasons": ["shortlisted less often, e.g. (t1-cand-0000042)."]},
    ):
        with pytest.raises(PayloadError, match=r"at \$\.") as raised:
            guard_payload(payload, ids)
        assert "t1-cand-0000042" not in str(raised.value) and "c-99" not in str(raised.value)


def test_guard_returns_json_safe_copy() -> None:
    clean = guard_payload({"score": np.float64(0.5), "day": DAY, "n": np.int64(3)})
    assert clean == {"score": 0.5, "day": "2026-03-09", "n": 3}
    with pytest.raises(PayloadError, match="JSON object"):
        guard_payload(["not", "an", "object"])  # type: ignore[arg-type]
    with pytest.raises(PayloadError, match="JSON"):
        guard_payload({"score": float("nan")})


def test_raise_alert_refuses_the_tenants_stored_candidate_ids(conn) -> None:
    query(conn, """INSERT INTO selection_events (event_id, candidate_id, event_type, search_id, tenant_id, user_id_hash)
                   VALUES ('e1', 't1-cand-0000042', 'shown', 's1', 't1', 'u') RETURNING 1""")  # fmt: skip
    payload = {**_payload(), "reasons": ["rarely shortlisted: t1-cand-0000042"]}
    with pytest.raises(PayloadError, match=r"\$\.reasons\[0\]"):
        raise_alert(conn, "t1", "risk", "HIGH", DAY, payload, T0)
    with pytest.raises(PayloadError):
        raise_alert(conn, "t1", "risk", "HIGH", DAY, {"candidate_id": "anything"}, T0)
    with pytest.raises(PayloadError):
        raise_alert(conn, "t1", "risk", "HIGH", DAY, {"note": "x"}, T0, candidate_ids=["x"], check_store=False)
    assert query(conn, "SELECT count(*) FROM fairness_alerts")[0][0] == 0
    assert raise_alert(conn, "t1", "risk", "HIGH", DAY, _payload(), T0) is not None


# --- delivery ticks -----------------------------------------------------------------------------------------------


def _deliveries(conn) -> list[tuple]:
    return query(conn, """SELECT alert_id, channel, escalation, attempt, outcome FROM fairness_alert_deliveries
                          ORDER BY id""")  # fmt: skip


def test_tick_delivers_each_alert_once_per_channel(conn) -> None:
    memory = RecordingChannel()
    channels = [LogChannel(), memory]
    a = raise_alert(conn, "t1", "risk", "HIGH", DAY, _payload(), T0)
    b = raise_alert(conn, "t2", "risk", "MEDIUM", DAY, _payload("t2", "MEDIUM"), T0 + timedelta(minutes=1))
    attempts = deliver_pending(conn, channels, T0 + timedelta(minutes=5))
    assert [(x.alert_id, x.channel, x.attempt, x.outcome) for x in attempts] == [
        (a.id, "log", 1, "delivered"), (a.id, "memory", 1, "delivered"),
        (b.id, "log", 1, "delivered"), (b.id, "memory", 1, "delivered"),
    ]  # fmt: skip
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
    alert = raise_alert(conn, "t1", "risk", "CRITICAL", DAY, _payload(level="CRITICAL"), T0)
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
        (alert.id, "log", False, 1, "delivered"), (alert.id, "flaky", False, 1, "failed"),
        (alert.id, "flaky", False, 2, "failed"), (alert.id, "flaky", False, 3, "delivered"),
    ]  # fmt: skip


def test_an_unavailable_channel_is_skipped_for_the_rest_of_the_tick(conn) -> None:
    down = RecordingChannel("down", failing=True)  # DeliveryError(unavailable=True)
    bad_alert = BadAlertChannel()  # fails each alert on its own
    for tenant in ("t1", "t2", "t3"):
        raise_alert(conn, tenant, "risk", "HIGH", DAY, _payload(tenant), T0)
    attempts = deliver_pending(conn, [LogChannel(), down, bad_alert], T0)
    assert [a.channel for a in attempts if not a.delivered] == ["down", "bad", "bad", "bad"]
    assert query(conn, "SELECT DISTINCT status FROM fairness_alerts") == [("partially",)]
    down.failing = False
    later = deliver_pending(conn, [LogChannel(), down, bad_alert], T0 + timedelta(minutes=5))
    assert [(a.channel, a.attempt, a.outcome) for a in later if a.channel == "down"] == [
        ("down", 2, "delivered"), ("down", 1, "delivered"), ("down", 1, "delivered")
    ]  # fmt: skip


class BadAlertChannel(RecordingChannel):
    def __init__(self) -> None:
        super().__init__("bad")

    def send(self, message):
        raise DeliveryError("HTTP 413 (Payload Too Large)")


def test_every_channel_failing_leaves_the_alert_pending(conn) -> None:
    raise_alert(conn, "t1", "risk", "HIGH", DAY, _payload(), T0)
    deliver_pending(conn, [RecordingChannel("a", failing=True), RecordingChannel("b", failing=True)], T0)
    assert query(conn, "SELECT status, delivered_at FROM fairness_alerts") == [("pending", None)]


def test_tick_arguments_are_checked(conn) -> None:
    with pytest.raises(ValueError, match="at least one channel"):
        deliver_pending(conn, [], T0)
    with pytest.raises(ValueError, match="unique"):
        deliver_pending(conn, [RecordingChannel("x"), RecordingChannel("x")], T0)


def test_one_successful_delivery_per_alert_channel_and_stage(conn) -> None:
    alert = raise_alert(conn, "t1", "risk", "HIGH", DAY, _payload(), T0)
    deliver_pending(conn, [LogChannel()], T0)
    with pytest.raises(psycopg2.errors.UniqueViolation):
        query(
            conn,
            """INSERT INTO fairness_alert_deliveries (alert_id, channel, escalation, attempt, outcome,
                       attempted_at) VALUES (%s, 'log', false, 2, 'delivered', now()) RETURNING id""",
            (alert.id,),
        )


def test_review_history_is_append_only(conn) -> None:
    raise_alert(conn, "t1", "risk", "HIGH", DAY, _payload(), T0)
    for statement in ("UPDATE fairness_review_history SET actor = 'mallory'", "DELETE FROM fairness_review_history",
                      "TRUNCATE fairness_review_history"):  # fmt: skip
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
                    alert = raise_alert(conn, tenant, "risk", "CRITICAL", DAY, _payload(tenant, "CRITICAL"), T0)
                    webhook = WebhookChannel(receiver.url, SECRET, timeout=5, retries=0)
                    attempts = deliver_pending(conn, [LogChannel(), webhook], T0)
                return alert, attempts

            results = _race(2, alert_run)
            assert sorted(alert is None for alert, _ in results) == [False, True]
            assert sum(len(attempts) for _, attempts in results) == 2  # log + webhook, by one of the two
    assert len(receiver.received) == rounds
    with connection(db_url) as conn:
        assert query(conn, "SELECT count(*), count(DISTINCT dedup_key) FROM fairness_alerts") == [(rounds, rounds)]
        delivered = query(conn, """SELECT channel, count(*) FROM fairness_alert_deliveries
                                   WHERE outcome = 'delivered' GROUP BY channel ORDER BY channel""")  # fmt: skip
        assert delivered == [("log", rounds), ("webhook", rounds)]
        assert query(conn, "SELECT count(*) FROM fairness_reviews")[0][0] == rounds


def test_concurrent_ticks_never_send_an_alert_twice(db_url: str) -> None:
    with connection(db_url) as conn:
        ids = [raise_alert(conn, f"t{i}", "risk", "HIGH", DAY, _payload(f"t{i}"), T0).id for i in range(4)]
    with WebhookReceiver(delay=0.2) as receiver:

        def tick(_: int):
            with connection(db_url) as conn:
                return deliver_pending(conn, [WebhookChannel(receiver.url, SECRET, retries=0)], T0)

        results = _race(3, tick)
    sent = sorted(a.alert_id for attempts in results for a in attempts)
    assert sent == sorted(ids)
    assert len(receiver.received) == 4
    assert sum(1 for attempts in results if attempts) >= 2  # the work was shared, not serialised
