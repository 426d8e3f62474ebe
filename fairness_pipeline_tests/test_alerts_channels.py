"""Channels against real servers on 127.0.0.1: a webhook receiver that checks signatures, and aiosmtpd."""

from __future__ import annotations

import email
import json
import logging
import uuid
from datetime import timedelta
from email import policy

import pytest

from fairness_pipeline.alerts import (
    AlertMessage,
    DeliveryError,
    EmailChannel,
    LogChannel,
    WebhookChannel,
    deliver_pending,
    delivery_attempts,
    get_alert,
    raise_alert,
    sign,
    verify,
)
from fairness_pipeline_tests.test_alerts_support import (
    SECRET,
    STARTUP_REASON,
    T0,
    SmtpSink,
    WebhookReceiver,
    query,
    risk_payload,
    tls_contexts,
)


def _raise(conn, tenant: str = "t1", level: str = "CRITICAL"):
    return raise_alert(conn, risk_payload(tenant, level), T0)


def _message(conn) -> AlertMessage:
    alert = _raise(conn)
    return AlertMessage.for_alert(get_alert(conn, alert.id), T0, uuid.uuid4(), alert.review_id, "critical")


def _no_sleep(_: float) -> None:
    pass


# --- webhook ------------------------------------------------------------------------------------------------------


def test_webhook_posts_a_signed_payload_without_candidate_ids(conn) -> None:
    alert = _raise(conn)
    with WebhookReceiver() as receiver:
        attempts = deliver_pending(conn, [LogChannel(), WebhookChannel(receiver.url, SECRET)], T0)
    assert [(a.channel, a.outcome, a.detail) for a in attempts] == [
        ("log", "delivered", "logged"),
        ("webhook", "delivered", "HTTP 204 after 1 request(s)"),
    ]
    [request] = receiver.received
    assert request.path == "/hooks/fairness?token=url-token-5e9a"
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert verify(SECRET, request.body, request.headers["X-Fairness-Signature"])
    assert request.headers["X-Fairness-Signature"] == sign(SECRET, request.body)
    assert not verify(SECRET, request.body + b" ", request.headers["X-Fairness-Signature"])
    assert not verify("another-secret", request.body, request.headers["X-Fairness-Signature"])
    [stored] = [a.delivery_id for a in delivery_attempts(conn, alert.id) if a.channel == "webhook"]
    assert stored == attempts[1].delivery_id and stored.version == 4
    assert request.headers["X-Fairness-Delivery"] == str(stored)
    assert request.headers["X-Fairness-Event"] == "alert"
    body = json.loads(request.body)
    assert body["delivery_id"] == str(stored)
    assert body["alert_id"] == alert.id and body["dedup_key"] == "t1|risk|CRITICAL|2026-03-10"
    assert (body["tenant_id"], body["level"], body["scope"], body["day"]) == ("t1", "CRITICAL", "risk", "2026-03-09")
    assert body["escalated"] is False and body["escalated_at"] is None
    assert body["review"] == {"id": alert.review_id, "priority": "critical"}
    assert body["details"] == {
        "kind": "risk",
        "tenant_id": "t1",
        "level": "CRITICAL",
        "score": 0.71,
        "score_interval": [0.64, 0.78],
        "window": {"end": "2026-03-09", "days": 30},
        "components": {"adverse_impact": 0.4},
        "rules": [
            {
                "rule": "significant_adverse",
                "condition": "significant_adverse",
                "threshold": 0.8,
                "level_before": "MEDIUM",
                "level_after": "CRITICAL",
                "finding": {
                    "stage_pair": "shown->shortlisted",
                    "dimension": "company_tier",
                    "group": "startup",
                    "impact_ratio": 0.58,
                    "p_adjusted": 0.0012,
                },
            }
        ],
        "reasons": [STARTUP_REASON.format(level="CRITICAL")],
        "links": {"report": "fairness-pipeline report --tenant t1 --date 2026-03-09"},
    }
    assert SECRET not in request.body.decode()


def test_webhook_retries_with_backoff(conn) -> None:
    sleeps: list[float] = []
    message = _message(conn)
    with WebhookReceiver(statuses=[503, 429]) as receiver:
        channel = WebhookChannel(receiver.url, SECRET, retries=3, backoff=0.5, sleep=sleeps.append)
        assert channel.send(message) == "HTTP 204 after 3 request(s)"
    assert receiver.answered == [503, 429, 204]
    assert sleeps == [0.5, 1.0]
    # every retry carries the same body and signature
    assert len({(r.body, r.headers["X-Fairness-Signature"]) for r in receiver.received}) == 1


def test_webhook_gives_up_after_its_retries(conn) -> None:
    sleeps: list[float] = []
    message = _message(conn)
    with WebhookReceiver(default_status=500) as receiver:
        channel = WebhookChannel(receiver.url, SECRET, retries=2, backoff=1, sleep=sleeps.append)
        with pytest.raises(DeliveryError, match=r"HTTP 500 \(Internal Server Error\) after 3 request\(s\)") as raised:
            channel.send(message)
    assert raised.value.unavailable
    assert sleeps == [1, 2]


@pytest.mark.parametrize("status", [400, 401, 404, 302])
def test_webhook_client_errors_and_redirects_are_not_retried(conn, status: int) -> None:
    message = _message(conn)
    with WebhookReceiver(default_status=status) as receiver:
        channel = WebhookChannel(receiver.url, SECRET, retries=3, sleep=_no_sleep)
        with pytest.raises(DeliveryError, match=f"HTTP {status}") as raised:
            channel.send(message)
    assert len(receiver.received) == 1
    # a refused request concerns this alert; a missing endpoint, bad credentials or a redirect the whole channel
    assert raised.value.unavailable == (status != 400)


def test_unreachable_webhook_error_names_no_secret(conn) -> None:
    with WebhookReceiver() as receiver:
        url = receiver.url
    alert = _raise(conn)
    channel = WebhookChannel(url, SECRET, timeout=1, retries=1, sleep=_no_sleep)
    [attempt] = deliver_pending(conn, [channel], T0)
    assert attempt.outcome == "failed" and attempt.alert_id == alert.id
    assert attempt.error.startswith("connection failed") and attempt.error.endswith("after 2 request(s)")
    assert "token" not in attempt.error and SECRET not in attempt.error
    assert "url-token" not in repr(channel) and SECRET not in repr(channel)


def test_failing_receiver_leaves_the_alert_pending_and_a_later_tick_delivers(conn) -> None:
    alert = _raise(conn)
    with WebhookReceiver(default_status=503) as receiver:
        webhook = WebhookChannel(receiver.url, SECRET, retries=1, sleep=_no_sleep)
        [log, failed] = deliver_pending(conn, [LogChannel(), webhook], T0)
        assert (log.outcome, failed.outcome) == ("delivered", "failed")
        assert failed.error == "HTTP 503 (Service Unavailable) after 2 request(s)"
        assert query(conn, "SELECT status FROM fairness_alerts") == [("partially",)]

        receiver.default_status = 200
        [delivered] = deliver_pending(conn, [LogChannel(), webhook], T0 + timedelta(minutes=5))
    assert (delivered.channel, delivered.attempt, delivered.outcome) == ("webhook", 2, "delivered")
    assert receiver.answered == [503, 503, 200]
    # a retry on a later tick is the same delivery: same id, stored with every attempt
    stored = {a.delivery_id for a in delivery_attempts(conn, alert.id) if a.channel == "webhook"}
    assert len(stored) == 1 and {r.headers["X-Fairness-Delivery"] for r in receiver.received} == {str(*stored)}
    assert all(verify(SECRET, r.body, r.headers["X-Fairness-Signature"]) for r in receiver.received)
    assert query(conn, "SELECT status FROM fairness_alerts") == [("delivered",)]
    assert query(
        conn,
        """SELECT channel, attempt, outcome, error IS NULL FROM fairness_alert_deliveries
                          ORDER BY id""",
    ) == [("log", 1, "delivered", True), ("webhook", 1, "failed", False), ("webhook", 2, "delivered", True)]


def test_webhook_configuration_is_checked() -> None:
    with pytest.raises(ValueError, match="secret"):
        WebhookChannel("https://hooks.example/x", "")
    with pytest.raises(ValueError, match="http"):
        WebhookChannel("ftp://hooks.example/x", SECRET)


# --- e-mail -------------------------------------------------------------------------------------------------------


def test_email_is_received_by_an_smtp_server(conn) -> None:
    alert = _raise(conn)
    with SmtpSink() as sink:
        channel = EmailChannel(
            "127.0.0.1",
            sink.port,
            "alerts@fairness.test",
            ["a@example.test", " b@example.test"],
            starttls=False,
            timeout=5,
        )
        [attempt] = deliver_pending(conn, [channel], T0)
    assert attempt.outcome == "delivered", attempt.error
    assert attempt.detail == f"accepted by 127.0.0.1:{sink.port} for 2 recipient(s)"
    [envelope] = sink.messages
    assert envelope.mail_from == "alerts@fairness.test"
    assert envelope.rcpt_tos == ["a@example.test", "b@example.test"]
    mail = email.message_from_bytes(envelope.content, policy=policy.default)
    assert mail["Subject"] == "[fairness] CRITICAL risk alert for tenant t1 (2026-03-09)"
    assert mail["X-Fairness-Delivery"] == str(attempt.delivery_id)
    text = mail.get_body(("plain",)).get_content()
    assert "Tenant:    t1" in text and f"  - {STARTUP_REASON.format(level='CRITICAL')}" in text
    assert f"Review:    #{alert.review_id} (critical priority)" in text
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == f"fairness-alert-{alert.id}.json"
    assert json.loads(attachment.get_content())["alert_id"] == alert.id


def test_email_over_starttls_with_login(conn, tmp_path) -> None:
    pytest.importorskip("cryptography")
    from aiosmtpd.smtp import AuthResult

    server_tls, client_tls = tls_contexts(tmp_path)
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret-pw", handled=False)

    message = _message(conn)
    with SmtpSink(
        tls_context=server_tls,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
        auth_required=True,
    ) as sink:
        channel = EmailChannel(
            "127.0.0.1",
            sink.port,
            "alerts@fairness.test",
            ["a@example.test"],
            starttls=True,
            username="alerts",
            password="s3cret-pw",
            ssl_context=client_tls,
            timeout=5,
        )
        assert channel.send(message).startswith("accepted by 127.0.0.1")
        wrong = EmailChannel(
            "127.0.0.1",
            sink.port,
            "alerts@fairness.test",
            ["a@example.test"],
            username="alerts",
            password="wrong",
            ssl_context=client_tls,
            timeout=5,
        )
        with pytest.raises(DeliveryError, match="authentication failed") as raised:
            wrong.send(message)
        assert "wrong" not in str(raised.value)
    assert len(sink.messages) == 1
    assert logins[0] == (b"alerts", b"s3cret-pw")
    assert set(logins[1:]) == {(b"alerts", b"wrong")}  # smtplib tries each mechanism the server offers


def test_email_needs_starttls_when_asked(conn) -> None:
    message = _message(conn)
    with SmtpSink() as sink:
        channel = EmailChannel("127.0.0.1", sink.port, "alerts@fairness.test", ["a@example.test"], timeout=5)
        with pytest.raises(DeliveryError, match="does not offer STARTTLS"):
            channel.send(message)
    assert sink.messages == []


def test_email_configuration_is_checked() -> None:
    with pytest.raises(ValueError, match="only sent over STARTTLS"):
        EmailChannel("smtp.example", 25, "a@x.test", ["b@x.test"], starttls=False, username="u", password="p")
    with pytest.raises(ValueError, match="recipient"):
        EmailChannel("smtp.example", 587, "a@x.test", ["", " "])
    with pytest.raises(ValueError, match="without a username"):
        EmailChannel("smtp.example", 587, "a@x.test", ["b@x.test"], password="p")


# --- log ----------------------------------------------------------------------------------------------------------


def test_log_channel_writes_one_json_line(conn, caplog) -> None:
    message = _message(conn)
    with caplog.at_level(logging.INFO, logger="fairness_pipeline.alerts"):
        assert LogChannel().send(message) == "logged"
    [record] = [r for r in caplog.records if r.name == "fairness_pipeline.alerts"]
    assert record.levelno == logging.WARNING
    assert json.loads(record.getMessage().removeprefix("fairness alert: "))["alert_id"] == message.alert_id
