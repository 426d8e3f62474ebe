"""Human review: open -> acknowledged -> resolved by named reviewers, its history, and the CLI."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from typer.testing import CliRunner

from fairness_pipeline.alerts import (
    LogChannel,
    ReviewNotFoundError,
    ReviewTransitionError,
    acknowledge,
    deliver_pending,
    list_reviews,
    raise_alert,
    resolve,
    show_review,
)
from fairness_pipeline.cli.alerts import alerts_app
from fairness_pipeline_tests.test_alerts_support import STARTUP_REASON, T0, RecordingChannel, query, risk_payload

DAY = date(2026, 3, 9)
HOUR = timedelta(hours=1)


def _raise(conn, level: str = "HIGH", tenant: str = "t1", at=T0):
    return raise_alert(conn, risk_payload(tenant, level), at)


def test_review_moves_open_acknowledged_resolved_with_history(conn) -> None:
    alert = _raise(conn, "CRITICAL")
    flaky = RecordingChannel("flaky", failing=True)
    deliver_pending(conn, [LogChannel(), flaky], T0)

    acked = acknowledge(conn, alert.review_id, "  Ana   Lima ", "looking into it", now=T0 + HOUR)
    assert (acked.status, acked.reviewer, acked.note, acked.acknowledged_at) == (
        "acknowledged",
        "Ana Lima",
        "looking into it",
        T0 + HOUR,
    )
    done = resolve(conn, alert.review_id, "Bo", "threshold data error, rerun fixed it", now=T0 + 5 * HOUR)
    assert (done.status, done.reviewer, done.resolved_at, done.acknowledged_at) == (
        "resolved",
        "Bo",
        T0 + 5 * HOUR,
        T0 + HOUR,
    )

    detail = show_review(conn, alert.review_id)
    assert detail.alert.id == alert.id and detail.alert.payload["reasons"] == [STARTUP_REASON.format(level="CRITICAL")]
    assert [(d.channel, d.outcome) for d in detail.deliveries] == [("log", "delivered"), ("flaky", "failed")]
    assert [(e.action, e.from_status, e.to_status, e.actor, e.note, e.at) for e in detail.history] == [
        ("open", None, "open", "system", f"opened by CRITICAL alert {alert.dedup_key}", T0),
        ("acknowledge", "open", "acknowledged", "Ana Lima", "looking into it", T0 + HOUR),
        ("resolve", "acknowledged", "resolved", "Bo", "threshold data error, rerun fixed it", T0 + 5 * HOUR),
    ]
    attempts = json.loads(json.dumps(detail.as_dict()))["deliveries"]  # serialisable for --json
    assert [a["delivery_id"] for a in attempts] == [str(d.delivery_id) for d in detail.deliveries]


def test_resolve_straight_from_open_needs_a_note(conn) -> None:
    alert = _raise(conn)
    with pytest.raises(ReviewTransitionError, match="needs a note"):
        resolve(conn, alert.review_id, "ana", "  ")
    review = resolve(conn, alert.review_id, "ana", "duplicate of review 1", now=T0 + HOUR)
    assert review.status == "resolved" and review.acknowledged_at is None
    assert [e.action for e in show_review(conn, alert.review_id).history] == ["open", "resolve"]


def test_invalid_changes_are_refused_and_leave_no_history(conn) -> None:
    alert = _raise(conn)
    acknowledge(conn, alert.review_id, "ana", now=T0)
    with pytest.raises(ReviewTransitionError, match="is acknowledged; cannot acknowledge"):
        acknowledge(conn, alert.review_id, "bo")
    resolve(conn, alert.review_id, "ana", "fixed", now=T0 + HOUR)
    with pytest.raises(ReviewTransitionError, match="is resolved; cannot resolve"):
        resolve(conn, alert.review_id, "ana", "again")
    with pytest.raises(ReviewTransitionError, match="is resolved; cannot acknowledge"):
        acknowledge(conn, alert.review_id, "ana")
    with pytest.raises(ReviewNotFoundError):
        acknowledge(conn, 999_999, "ana")
    with pytest.raises(ReviewNotFoundError):
        show_review(conn, 999_999)
    other = _raise(conn, tenant="t2")
    for reviewer in ("", "   ", "system", "SYSTEM"):
        with pytest.raises(ValueError, match=r"reviewer|reserved"):
            acknowledge(conn, other.review_id, reviewer)
    assert query(conn, "SELECT count(*) FROM fairness_review_history") == [(4,)]  # 2 opened, 1 ack, 1 resolve


def test_list_is_most_urgent_first_and_filters(conn) -> None:
    high_old = _raise(conn, "HIGH", "t1", T0)
    critical = _raise(conn, "CRITICAL", "t2", T0 + HOUR)
    high_new = _raise(conn, "HIGH", "t3", T0 + 2 * HOUR)
    _raise(conn, "MEDIUM", "t4")  # no review
    assert [r.id for r in list_reviews(conn)] == [critical.review_id, high_old.review_id, high_new.review_id]
    acknowledge(conn, high_old.review_id, "ana")
    resolve(conn, high_new.review_id, "ana", "noise")
    assert [r.status for r in list_reviews(conn)] == ["open", "acknowledged"]
    assert [r.id for r in list_reviews(conn, ["resolved"])] == [high_new.review_id]
    assert [r.id for r in list_reviews(conn, tenant_id="t1")] == [high_old.review_id]
    with pytest.raises(ValueError, match="unknown review status"):
        list_reviews(conn, ["closed"])


def test_cli_list_show_ack_resolve(conn, db_url: str, monkeypatch) -> None:
    monkeypatch.setenv("FAIRNESS_DATABASE_URL", db_url)
    monkeypatch.delenv("FAIRNESS_REVIEWER", raising=False)
    alert = _raise(conn, "CRITICAL")
    rid = str(alert.review_id)
    runner = CliRunner()

    listed = runner.invoke(alerts_app, ["list", "--json"])
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.stdout)
    assert (row["id"], row["priority"], row["status"]) == (alert.review_id, "critical", "open")
    table = runner.invoke(alerts_app, ["list"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and f"│ {rid} " in table.stdout and "critical" in table.stdout

    missing_reviewer = runner.invoke(alerts_app, ["ack", rid])
    assert missing_reviewer.exit_code != 0
    acked = runner.invoke(alerts_app, ["ack", rid], env={"FAIRNESS_REVIEWER": "ana"})
    assert acked.exit_code == 0, acked.output
    assert json.loads(acked.stdout)["status"] == "acknowledged"
    again = runner.invoke(alerts_app, ["ack", rid, "--reviewer", "bo"])
    assert again.exit_code == 1 and "cannot acknowledge" in again.stderr

    no_note = runner.invoke(alerts_app, ["resolve", rid, "--reviewer", "bo"])
    assert no_note.exit_code != 0
    resolved = runner.invoke(alerts_app, ["resolve", rid, "--reviewer", "bo", "--note", "mitigated in ranking v2"])
    assert resolved.exit_code == 0, resolved.output
    assert json.loads(resolved.stdout)["note"] == "mitigated in ranking v2"

    shown = runner.invoke(alerts_app, ["show", rid, "--json"])
    assert shown.exit_code == 0, shown.output
    detail = json.loads(shown.stdout)
    assert [(e["action"], e["actor"]) for e in detail["history"]] == [
        ("open", "system"),
        ("acknowledge", "ana"),
        ("resolve", "bo"),
    ]
    text = runner.invoke(alerts_app, ["show", rid], env={"COLUMNS": "200"})
    assert text.exit_code == 0 and "resolved" in text.stdout and "mitigated in ranking v2" in text.stdout
    assert runner.invoke(alerts_app, ["show", "424242"]).exit_code == 2
    assert json.loads(runner.invoke(alerts_app, ["list", "--json"]).stdout) == []
    assert len(json.loads(runner.invoke(alerts_app, ["list", "--status", "all", "--json"]).stdout)) == 1
