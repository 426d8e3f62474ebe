"""The Dagster wrapping: channel resources from the environment, the alert job and the delivery/escalation job."""

from __future__ import annotations

import json
from datetime import timedelta

import dagster as dg
import pytest

from fairness_pipeline.defs.alerting import (
    alert_delivery_schedule,
    alert_job,
    alert_resources,
    alert_run_config,
    deliver_and_escalate_job,
)
from fairness_pipeline.defs.resources import FairnessDatabase
from fairness_pipeline_tests.test_alerts_support import SECRET, T0, SmtpSink, WebhookReceiver, connection, query

ENV_VARS = (
    "FAIRNESS_WEBHOOK_URL", "FAIRNESS_WEBHOOK_SECRET", "FAIRNESS_WEBHOOK_TIMEOUT", "FAIRNESS_WEBHOOK_RETRIES",
    "FAIRNESS_WEBHOOK_BACKOFF", "FAIRNESS_SMTP_HOST", "FAIRNESS_SMTP_PORT", "FAIRNESS_SMTP_FROM", "FAIRNESS_SMTP_TO",
    "FAIRNESS_SMTP_STARTTLS", "FAIRNESS_SMTP_USERNAME", "FAIRNESS_SMTP_PASSWORD", "FAIRNESS_SMTP_TIMEOUT",
)  # fmt: skip


@pytest.fixture
def environment(monkeypatch):
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture(scope="module")
def instance():
    with dg.instance_for_test() as dagster_instance:
        yield dagster_instance


def _run(job, db_url: str, instance, run_config: dict | None = None, raise_on_error: bool = True):
    resources = {"database": FairnessDatabase(url=db_url), **alert_resources()}
    return job.execute_in_process(run_config=run_config or {}, resources=resources, instance=instance,
                                  raise_on_error=raise_on_error)  # fmt: skip


def _alert_config(tenant: str = "t1", **overrides) -> dict:
    fields = {"scope": "risk", "score": 0.81, "reasons": ["impact ratio 0.55 for startup"], "window_days": 30,
              "report_path": f"reports/{tenant}/2026-03-09.json", "now": T0.isoformat(), **overrides}  # fmt: skip
    return alert_run_config(tenant, "CRITICAL", "2026-03-09", **fields)


def test_alert_job_raises_and_delivers_once(db_url: str, instance, environment) -> None:
    with WebhookReceiver() as receiver:
        environment.setenv("FAIRNESS_WEBHOOK_URL", receiver.url)
        environment.setenv("FAIRNESS_WEBHOOK_SECRET", SECRET)
        first = _run(alert_job, db_url, instance, _alert_config())
        assert first.success
        [alert_id] = first.output_for_node("raise_alerts_op")
        assert first.output_for_node("deliver_alerts_op") == 2  # log + webhook
        second = _run(alert_job, db_url, instance, _alert_config(now=(T0 + timedelta(hours=3)).isoformat()))
        assert second.success and second.output_for_node("raise_alerts_op") == []
        assert second.output_for_node("deliver_alerts_op") == 0
    [request] = receiver.received
    body = json.loads(request.body)
    assert body["alert_id"] == alert_id
    assert body["details"]["window"] == {"end": "2026-03-09", "days": 30}
    assert body["details"]["links"] == {"report": "reports/t1/2026-03-09.json"}
    # the secret and the URL's token are neither in the run config nor in the event log
    events = " ".join(str(e.event_specific_data) + (e.message or "") for e in first.all_events)
    assert SECRET not in events and "url-token" not in events


def test_schedule_job_escalates_and_retries_on_later_ticks(db_url: str, instance, environment) -> None:
    with WebhookReceiver(default_status=503) as receiver:
        environment.setenv("FAIRNESS_WEBHOOK_URL", receiver.url)
        environment.setenv("FAIRNESS_WEBHOOK_SECRET", SECRET)
        environment.setenv("FAIRNESS_WEBHOOK_RETRIES", "0")
        assert _run(alert_job, db_url, instance, _alert_config()).success
        with connection(db_url) as conn:
            assert query(conn, "SELECT status FROM fairness_alerts") == [("partially",)]

        def tick(hours: float):
            now = (T0 + timedelta(hours=hours)).isoformat()
            config = {"ops": {"escalate_alerts_op": {"config": {"now": now}},
                              "deliver_alerts_op": {"config": {"now": now}}}}  # fmt: skip
            result = _run(deliver_and_escalate_job, db_url, instance, config)
            return result.output_for_node("escalate_alerts_op"), result.output_for_node("deliver_alerts_op")

        receiver.default_status = 204
        assert tick(0.1) == (0, 1)  # the webhook catches up
        assert tick(12) == (0, 0)
        assert tick(24) == (1, 2)  # escalated, re-sent on log and webhook
        assert tick(48) == (0, 0)
    assert [json.loads(r.body)["escalated"] for r in receiver.received] == [False, False, True]
    assert receiver.answered == [503, 204, 204]
    assert alert_delivery_schedule.job_name == "deliver_and_escalate_job"


def test_email_channel_from_the_environment(db_url: str, instance, environment) -> None:
    with SmtpSink() as sink:
        environment.setenv("FAIRNESS_SMTP_HOST", "127.0.0.1")
        environment.setenv("FAIRNESS_SMTP_PORT", str(sink.port))
        environment.setenv("FAIRNESS_SMTP_FROM", "alerts@fairness.test")
        environment.setenv("FAIRNESS_SMTP_TO", "a@example.test,b@example.test")
        environment.setenv("FAIRNESS_SMTP_STARTTLS", "false")
        result = _run(alert_job, db_url, instance, _alert_config())
    assert result.success and result.output_for_node("deliver_alerts_op") == 2  # log + email
    [envelope] = sink.messages
    assert envelope.rcpt_tos == ["a@example.test", "b@example.test"]


def test_unset_channels_are_disabled_and_misconfigured_ones_fail_the_run(db_url: str, instance, environment) -> None:
    result = _run(alert_job, db_url, instance, _alert_config())
    assert result.success and result.output_for_node("deliver_alerts_op") == 1  # the log channel only

    environment.setenv("FAIRNESS_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    failed = _run(alert_job, db_url, instance, _alert_config("t2"), raise_on_error=False)
    assert not failed.success
    failure = failed.failure_data_for_node("deliver_alerts_op")
    assert "FAIRNESS_WEBHOOK_SECRET is not" in str(failure.error)
    with connection(db_url) as conn:  # raised, waiting for a working configuration
        assert query(conn, "SELECT tenant_id, status FROM fairness_alerts ORDER BY id") == [
            ("t1", "delivered"), ("t2", "pending")
        ]  # fmt: skip

    environment.setenv("FAIRNESS_SMTP_STARTTLS", "maybe")
    with pytest.raises(ValueError, match="FAIRNESS_SMTP_STARTTLS"):
        alert_resources()


def test_raise_alerts_op_refuses_candidate_ids(db_url: str, instance, environment) -> None:
    config = _alert_config(reasons=["see candidate t1-cand-0000001"])
    with connection(db_url) as conn:
        query(
            conn,
            """INSERT INTO selection_events (event_id, candidate_id, event_type, search_id, tenant_id,
                       user_id_hash) VALUES ('e1', 't1-cand-0000001', 'shown', 's', 't1', 'u') RETURNING 1""",
        )
    result = _run(alert_job, db_url, instance, config, raise_on_error=False)
    assert not result.success
    assert "candidate" in str(result.failure_data_for_node("raise_alerts_op").error)
