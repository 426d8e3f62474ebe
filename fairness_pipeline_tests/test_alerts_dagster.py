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

pytestmark = pytest.mark.slow  # Dagster runs of the alert jobs

ENV_VARS = (
    "FAIRNESS_WEBHOOK_URL",
    "FAIRNESS_WEBHOOK_SECRET",
    "FAIRNESS_WEBHOOK_TIMEOUT",
    "FAIRNESS_WEBHOOK_RETRIES",
    "FAIRNESS_WEBHOOK_BACKOFF",
    "FAIRNESS_SMTP_HOST",
    "FAIRNESS_SMTP_PORT",
    "FAIRNESS_SMTP_FROM",
    "FAIRNESS_SMTP_TO",
    "FAIRNESS_SMTP_STARTTLS",
    "FAIRNESS_SMTP_USERNAME",
    "FAIRNESS_SMTP_PASSWORD",
    "FAIRNESS_SMTP_TIMEOUT",
)


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
    return job.execute_in_process(
        run_config=run_config or {}, resources=resources, instance=instance, raise_on_error=raise_on_error
    )


STARTUP = {
    "stage_pair": "shown->shortlisted",
    "dimension": "company_tier",
    "group": "startup",
    "impact_ratio": 0.347,
    "p_adjusted": 3.7e-91,
    "n": 19424,
    "x": 1203,
    "significant": True,
}
EXPECTED_REASONS = [
    "significant_adverse_below_half (MEDIUM -> CRITICAL): statistically and practically significant adverse impact "
    "(impact ratio below 0.50); lowest: startup (company_tier, shown->shortlisted) at 0.35, adjusted p = 3.7e-91.",
    "several_high_components (CRITICAL -> CRITICAL): 3 risk components at or above 0.60: adverse_impact, evidence, "
    "slate.",
]
"""The reasons of :func:`_store_assessment`'s verdict, written out by hand."""


def _store_assessment(db_url: str, tenant: str = "t1", finding: dict = STARTUP) -> None:
    """A CRITICAL verdict of 2026-03-09 as ``risk_classification`` stores it, free-text reasons included."""
    components = {
        "adverse_impact": 0.9,
        "evidence": 1.0,
        "scoring_rate": 0.3,
        "exposure": 0.2,
        "slate": 0.62,
        "trend": None,
    }
    assessment = {
        "level": "CRITICAL",
        "score": 0.64,
        "ci_low": 0.6,
        "ci_high": 0.7,
        "components": {name: {"name": name, "value": value, "note": "free text"} for name, value in components.items()},
        "applied_rules": [
            {
                "rule": "significant_adverse_below_half",
                "reason": "rarely shortlisted: t1-cand-0000042",
                "level_before": "MEDIUM",
                "level_after": "CRITICAL",
                "finding": finding,
            },
            {
                "rule": "several_high_components",
                "reason": "3 risk components at or above 0.60",
                "level_before": "CRITICAL",
                "level_after": "CRITICAL",
                "finding": None,
            },
        ],
        "actions": ["Escalate to the compliance lead"],
        "scope": {},
    }
    with connection(db_url) as conn:
        query(
            conn,
            """INSERT INTO risk_assessments (window_end, tenant_id, profile, score, ci_low, ci_high, level,
                       assessment) VALUES ('2026-03-09', %s, 'default', 0.64, 0.6, 0.7, 'CRITICAL', %s)
                       RETURNING 1""",
            (tenant, json.dumps(assessment)),
        )


def _alert_config(tenant: str = "t1", db_url: str | None = None, **overrides) -> dict:
    if db_url:
        _store_assessment(db_url, tenant)
    fields = {"scope": "risk", "window_days": 30, "now": T0.isoformat(), **overrides}
    return alert_run_config(tenant, "CRITICAL", "2026-03-09", **fields)


def test_alert_job_raises_and_delivers_once(db_url: str, instance, environment) -> None:
    with WebhookReceiver() as receiver:
        environment.setenv("FAIRNESS_WEBHOOK_URL", receiver.url)
        environment.setenv("FAIRNESS_WEBHOOK_SECRET", SECRET)
        first = _run(alert_job, db_url, instance, _alert_config(db_url=db_url))
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
    assert body["details"]["reasons"] == EXPECTED_REASONS
    assert body["details"]["links"] == {"report": "fairness-pipeline report --tenant t1 --date 2026-03-09"}
    assert "t1-cand-0000042" not in request.body.decode() and "free text" not in request.body.decode()
    # the secret and the URL's token are neither in the run config nor in the event log
    events = " ".join(str(e.event_specific_data) + (e.message or "") for e in first.all_events)
    assert SECRET not in events and "url-token" not in events


def test_schedule_job_escalates_and_retries_on_later_ticks(db_url: str, instance, environment) -> None:
    with WebhookReceiver(default_status=503) as receiver:
        environment.setenv("FAIRNESS_WEBHOOK_URL", receiver.url)
        environment.setenv("FAIRNESS_WEBHOOK_SECRET", SECRET)
        environment.setenv("FAIRNESS_WEBHOOK_RETRIES", "0")
        assert _run(alert_job, db_url, instance, _alert_config(db_url=db_url)).success
        with connection(db_url) as conn:
            assert query(conn, "SELECT status FROM fairness_alerts") == [("partially",)]

        def tick(hours: float):
            now = (T0 + timedelta(hours=hours)).isoformat()
            config = {
                "ops": {"escalate_alerts_op": {"config": {"now": now}}, "deliver_alerts_op": {"config": {"now": now}}}
            }
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
        result = _run(alert_job, db_url, instance, _alert_config(db_url=db_url))
    assert result.success and result.output_for_node("deliver_alerts_op") == 2  # log + email
    [envelope] = sink.messages
    assert envelope.rcpt_tos == ["a@example.test", "b@example.test"]


def test_unset_channels_are_disabled_and_misconfigured_ones_fail_the_run(db_url: str, instance, environment) -> None:
    result = _run(alert_job, db_url, instance, _alert_config(db_url=db_url))
    assert result.success and result.output_for_node("deliver_alerts_op") == 1  # the log channel only

    environment.setenv("FAIRNESS_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    failed = _run(alert_job, db_url, instance, _alert_config("t2", db_url), raise_on_error=False)
    assert not failed.success
    failure = failed.failure_data_for_node("deliver_alerts_op")
    assert "FAIRNESS_WEBHOOK_SECRET is not" in str(failure.error)
    with connection(db_url) as conn:  # raised, waiting for a working configuration
        assert query(conn, "SELECT tenant_id, status FROM fairness_alerts ORDER BY id") == [
            ("t1", "delivered"),
            ("t2", "pending"),
        ]

    environment.setenv("FAIRNESS_SMTP_STARTTLS", "maybe")
    with pytest.raises(ValueError, match="FAIRNESS_SMTP_STARTTLS"):
        alert_resources()


CANDIDATE_LOOKALIKES = ("3", "0.60", "0.35", "HIGH", "CRITICAL", "risk", "startup", "adverse_impact", "t1", "1")


def test_tenant_whose_candidate_ids_look_like_alert_words_gets_its_alert(db_url: str, instance, environment) -> None:
    """Candidate ids equal to numbers and words of the alert do not stop it: nothing is scanned, nothing can leak."""
    with connection(db_url) as conn:
        for index, candidate in enumerate(CANDIDATE_LOOKALIKES):
            query(
                conn,
                """INSERT INTO selection_events (event_id, candidate_id, event_type, search_id, tenant_id,
                           user_id_hash) VALUES (%s, %s, 'shown', 's', 't1', 'u') RETURNING 1""",
                (f"e{index}", candidate),
            )
    with WebhookReceiver() as receiver:
        environment.setenv("FAIRNESS_WEBHOOK_URL", receiver.url)
        environment.setenv("FAIRNESS_WEBHOOK_SECRET", SECRET)
        result = _run(alert_job, db_url, instance, _alert_config(db_url=db_url))
    assert result.success and result.output_for_node("deliver_alerts_op") == 2
    [request] = receiver.received
    assert json.loads(request.body)["details"]["reasons"] == EXPECTED_REASONS  # "3 ... at or above 0.60"
    with connection(db_url) as conn:
        assert query(conn, "SELECT level, status FROM fairness_alerts") == [("CRITICAL", "delivered")]


def test_free_text_cannot_be_configured_and_stored_values_outside_the_vocabulary_are_refused(
    db_url: str, instance, environment
) -> None:
    with pytest.raises(dg.DagsterInvalidConfigError, match="reasons"):
        _run(alert_job, db_url, instance, _alert_config(reasons=["see candidate t1-cand-0000042"]))
    _store_assessment(db_url, "t2", finding={**STARTUP, "group": "t1-cand-0000042"})
    result = _run(alert_job, db_url, instance, _alert_config("t2"), raise_on_error=False)
    assert not result.success
    error = str(result.failure_data_for_node("raise_alerts_op").error)
    assert "payload field rules[0].finding.group" in error and "t1-cand-0000042" not in error
    missing = _run(alert_job, db_url, instance, _alert_config("t3"), raise_on_error=False)
    assert "no risk assessment is stored for tenant t3" in str(missing.failure_data_for_node("raise_alerts_op").error)
    with connection(db_url) as conn:
        assert query(conn, "SELECT count(*) FROM fairness_alerts") == [(0,)]


def test_operational_alert_names_a_failed_pipeline_run(db_url: str, instance, environment) -> None:
    run_id = "0b0e5a3e-6a09-4b8e-9a0f-1c2d3e4f5a6b"
    config = alert_run_config(
        "operations",
        "MEDIUM",
        "2026-03-09",
        scope="operational",
        failed_job="metrics_job",
        failed_run_id=run_id,
        now=T0.isoformat(),
    )
    assert _run(alert_job, db_url, instance, config).success
    with connection(db_url) as conn:
        [(payload,)] = query(conn, "SELECT payload FROM fairness_alerts")
    assert payload["reasons"] == [
        f"run {run_id} of metrics_job failed; its error is in the Dagster run log, not in this alert."
    ]
    for job, run in (("alert_job", run_id), ("metrics_job", "t1-cand-0000042")):
        bad = alert_run_config(
            "operations",
            "MEDIUM",
            "2026-03-10",
            scope="operational",
            failed_job=job,
            failed_run_id=run,
            now=T0.isoformat(),
        )
        failure = str(
            _run(alert_job, db_url, instance, bad, raise_on_error=False).failure_data_for_node("raise_alerts_op").error
        )
        assert "operational alerts are for" in failure or "payload field run_id" in failure
        assert "t1-cand-0000042" not in failure
