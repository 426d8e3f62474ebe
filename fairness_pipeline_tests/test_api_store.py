"""The API's store functions and helpers without a server: tokens at rest, review requests in the review history,
suppression of audit rows."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta

import pytest

from fairness_pipeline.alerts import LogChannel, acknowledge, deliver_pending, list_reviews, review_history
from fairness_pipeline.api.errors import ApiError
from fairness_pipeline.api.routes import parse_day, suppress_counts
from fairness_pipeline.store.api_reviews import request_review
from fairness_pipeline.store.api_tokens import authenticate, create_token, list_tokens, revoke_token

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def test_a_token_is_stored_as_its_sha256_digest_and_revocation_is_immediate(conn) -> None:
    token, secret = create_token(conn, "  Ana   Lima ", "tenant-1", "review", now=T0)
    assert (token.name, token.tenant_id, token.role, token.created_at) == ("Ana Lima", "tenant-1", "review", T0)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT token_sha256 FROM api_tokens WHERE id = %s", (token.id,))
        stored = bytes(cur.fetchone()[0])
    assert stored == hashlib.sha256(secret.encode()).digest()
    assert authenticate(conn, secret) == token
    assert authenticate(conn, secret + "x") is None
    assert revoke_token(conn, token.id, now=T0 + timedelta(hours=1)).revoked_at == T0 + timedelta(hours=1)
    assert authenticate(conn, secret) is None
    assert revoke_token(conn, token.id) is None  # already revoked
    assert list_tokens(conn) == [] and [t.id for t in list_tokens(conn, include_revoked=True)] == [token.id]


@pytest.mark.parametrize(
    ("name", "tenant", "role"), [("", "t", "read"), ("x" * 201, "t", "read"), ("a", "t", "admin"), ("a", " ", "read")]
)
def test_create_token_refuses_bad_input(conn, name: str, tenant: str, role: str) -> None:
    with pytest.raises(ValueError):
        create_token(conn, name, tenant, role)


def test_operator_token_has_no_tenant(conn) -> None:
    token, secret = create_token(conn, "ops", None, "read")
    assert token.operator and authenticate(conn, secret).operator
    assert token.reviewer == f"ops (api token {token.id})"


def test_a_review_request_is_a_review_in_the_existing_history(conn) -> None:
    review_id = request_review(
        conn, "tenant-1", "Bo (api token 7)", " please check startup ", "critical", date(2026, 11, 21), now=T0
    )
    [review] = list_reviews(conn, tenant_id="tenant-1")
    assert (review.id, review.scope, review.level, review.priority, review.status, review.day) == (
        review_id,
        "review_request",
        "CRITICAL",
        "critical",
        "open",
        date(2026, 11, 21),
    )
    assert list_reviews(conn, tenant_id="tenant-2") == []
    acknowledge(conn, review_id, "Cy", now=T0 + timedelta(minutes=5))
    history = [(e.action, e.from_status, e.to_status, e.actor, e.note) for e in review_history(conn, review_id)]
    assert history == [
        ("open", None, "open", "Bo (api token 7)", "please check startup"),
        ("acknowledge", "open", "acknowledged", "Cy", None),
    ]
    [attempt] = deliver_pending(conn, [LogChannel()], T0 + timedelta(minutes=1))
    assert attempt.delivered  # the outbox tells the channels about the request
    with conn, conn.cursor() as cur:
        cur.execute("SELECT payload FROM fairness_alerts WHERE id = %s", (review.alert_id,))
        payload = cur.fetchone()[0]
    assert payload["kind"] == "review_request" and "startup" not in json.dumps(payload)


def test_two_requests_on_one_day_are_two_reviews(conn) -> None:
    first = request_review(conn, "tenant-1", "Bo", "one", "low", now=T0)
    second = request_review(conn, "tenant-1", "Bo", "two", "low", now=T0)
    assert first != second and len(list_reviews(conn, tenant_id="tenant-1")) == 2


@pytest.mark.parametrize(
    ("requester", "reason", "priority"),
    [("Bo", "", "low"), ("Bo", "x" * 10_001, "low"), ("system", "r", "low"), ("Bo", "r", "urgent")],
)
def test_request_review_refuses_bad_input(conn, requester: str, reason: str, priority: str) -> None:
    with pytest.raises(ValueError):
        request_review(conn, "tenant-1", requester, reason, priority, now=T0)


def test_suppress_counts_hides_small_counts_and_their_complement() -> None:
    rows = [
        {"g": "a", "n": 3, "x": 1, "ratio": 0.5},
        {"g": "b", "n": 100, "x": 40, "ratio": 1.0},
        {"g": "c", "n": 300, "x": 105, "ratio": 0.875},
    ]
    suppress_counts(rows, "n", "x", ("ratio",), 5)
    assert [(r["n"], r["x"], r["ratio"], r.get("suppressed", False)) for r in rows] == [
        ("< 5", "< 5", None, True),
        ("suppressed", "suppressed", None, True),
        (300, 105, 0.875, False),
    ]
    searches = [
        {"searches": 2, "r": 1.0},
        {"searches": 0, "r": None},
        {"searches": 9, "r": 0.7},
        {"searches": 50, "r": 0.9},
    ]
    suppress_counts(searches, "searches", None, ("r",), 5)
    assert [(r["searches"], r["r"]) for r in searches] == [("< 5", None), (0, None), ("suppressed", None), (50, 0.9)]


@pytest.mark.parametrize("text", ["2026-02-30", "2026-1-01", "21/11/2026", "2026-11-21T00:00", ""])
def test_parse_day_refuses_what_is_not_a_day(text: str) -> None:
    with pytest.raises(ApiError) as raised:
        parse_day(text, "date")
    assert raised.value.status == 400


def test_parse_day() -> None:
    assert parse_day("2026-11-21", "date") == date(2026, 11, 21)
