"""The transparency API against a real server (``fairness-pipeline api`` in a subprocess) and a real database.

The database holds two tenants' stored verdicts and reports, built by hand through the domain (impact tables,
``risk.assess``, ``reports.build_report``) and written with the pipeline's own statements. Numbers asserted are
worked out by hand from the counts below.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
import psycopg2
import pytest
from psycopg2 import sql
from typer.testing import CliRunner

from fairness_pipeline.cli.main import app as cli_app
from fairness_pipeline.metrics.impact import impact_ratio_table
from fairness_pipeline.reports import build_report, render_html, render_markdown
from fairness_pipeline.risk import assess
from fairness_pipeline.store import connection
from fairness_pipeline.store import reports as risk_queries
from fairness_pipeline.store.api_tokens import create_token, revoke_token
from fairness_pipeline_tests.conftest import TEMPLATE, _with_database

pytestmark = pytest.mark.slow  # a server in a subprocess

END = date(2026, 11, 21)
SHORTLIST = "shown->shortlisted"
CONTACT = "shortlisted->contacted"
HAND_COUNTS = {
    "tenant-1": {
        (SHORTLIST, "company_tier"): [
            ("faang", 100, 40),
            ("enterprise", 300, 105),
            ("startup", 200, 40),
            ("other", 4, 1),
            ("unknown", 60, 18),
        ],
        (SHORTLIST, "experience_band"): [("0-3", 300, 90), ("3-7", 250, 80), ("7-15", 110, 30), ("15+", 30, 6)],
        (CONTACT, "company_tier"): [("faang", 40, 20), ("enterprise", 105, 50), ("startup", 40, 10)],
    },
    "tenant-2": {
        (SHORTLIST, "company_tier"): [("faang", 100, 40), ("enterprise", 300, 120), ("startup", 200, 80)],
    },
}
"""tenant-1, shown->shortlisted, company_tier: faang 40/100 = 0.40 is the reference, startup 40/200 = 0.20 (impact
ratio exactly 0.50), enterprise 105/300 = 0.35 (0.875); 'other' has 4 candidates (published as '< 5', its ratio
withheld) and, as the only hidden n, makes the next smallest (unknown, 60) hidden too. 664 candidates in all."""


def _impacts(tenant: str) -> pd.DataFrame:
    tables = []
    for (pair, dimension), rows in HAND_COUNTS[tenant].items():
        counts = pd.DataFrame(rows, columns=["group", "n", "x"])
        table = impact_ratio_table(counts, intersectional="+" in dimension)
        tables.append(table.assign(tenant_id=tenant, stage_pair=pair, dimension=dimension))
    return pd.concat(tables, ignore_index=True)


def _store_verdict_and_report(conn, tenant: str, window_end: date, with_report: bool = True) -> None:
    """The tenant's verdict and report for a day, written with the risk and report assets' statements."""
    impacts = _impacts(tenant)
    assessment = assess(impacts, window_end=window_end, seed=3)
    with conn, conn.cursor() as cur:
        cur.execute(
            risk_queries.INSERT_ASSESSMENT,
            {
                "window_end": window_end,
                "tenant_id": tenant,
                "profile": assessment.profile,
                "context": None,
                "score": assessment.score,
                "ci_low": assessment.ci_low,
                "ci_high": assessment.ci_high,
                "band": assessment.band,
                "level": assessment.level,
                "dominant_component": assessment.dominant_component,
                "assessment": json.dumps(assessment.to_dict()),
            },
        )
        if with_report:
            report = build_report(tenant, window_end, impacts, None, assessment, data_source="hand-built test data")
            cur.execute(
                risk_queries.INSERT_REPORT,
                {
                    "window_end": window_end,
                    "tenant_id": tenant,
                    "report_json": json.dumps(report),
                    "report_html": render_html(report, min_cell=5),
                    "report_markdown": render_markdown(report),
                },
            )


TREND_ROWS = [  # group, n/x previous week, n/x current week, ratio previous, ratio current
    ("startup", 200, 60, 3, 1, 0.75, 0.83),
    ("faang", 100, 40, 100, 40, 1.0, 1.0),
    ("enterprise", 300, 105, 300, 105, 0.875, 0.875),
]
"""startup's current week has 3 candidates: shown as '< 5' with its ratios withheld, and faang (the next smallest n)
hidden as 'suppressed' so that the week's total does not give it back; enterprise is shown as stored."""


def _store_trends(conn) -> None:
    with conn, conn.cursor() as cur:
        for group, n_prev, x_prev, n_cur, x_cur, r_prev, r_cur in TREND_ROWS:
            cur.execute(
                "INSERT INTO fairness_trends (window_end, window_days, tenant_id, stage_pair, dimension, group_value, "
                "n_previous, x_previous, n_current, x_current, ratio_previous, ratio_current, p_adjusted, worsening) "
                "VALUES (%s, 30, 'tenant-1', %s, 'company_tier', %s, %s, %s, %s, %s, %s, %s, 0.5, false)",
                (END, SHORTLIST, group, n_prev, x_prev, n_cur, x_cur, r_prev, r_cur),
            )


@pytest.fixture(scope="module")
def api_db(pg_admin_url: str, template_url: str) -> Iterator[str]:
    """A migrated database for this module, holding tenant-1 (biased) and tenant-2 (fair) for END, tenant-1's
    verdict of the day before, and a trend audit."""
    name = f"fairness_api_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(pg_admin_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(TEMPLATE)))
    url = _with_database(pg_admin_url, name)
    conn = psycopg2.connect(url)
    try:
        _store_verdict_and_report(conn, "tenant-1", END)
        _store_verdict_and_report(conn, "tenant-1", END - timedelta(days=1), with_report=False)
        _store_verdict_and_report(conn, "tenant-2", END)
        _store_trends(conn)
    finally:
        conn.close()
    yield url
    with admin.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    admin.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, port: int, process: subprocess.Popen, log: Path) -> None:
        self.port, self.process, self.log = port, process, log

    def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            sent = dict(headers or {})
            if token is not None:
                sent["Authorization"] = f"Bearer {token}"
            payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
            if payload is not None:
                sent.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=payload, headers=sent)
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def json(self, method: str, path: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
        status, headers, data = self.call(method, path, token, body)
        assert headers["content-type"].startswith("application/json"), (status, data[:200])
        return status, json.loads(data)


def _wait_for_health(server: Server, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"api exited with {server.process.returncode}: {server.log.read_text()}")
        try:
            if server.call("GET", "/v1/health")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError("the API did not answer /v1/health in time")


@pytest.fixture(scope="module")
def server(api_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``fairness-pipeline api`` on a free loopback port; stopped with SIGTERM at the end, which must exit 0."""
    home = tmp_path_factory.mktemp("api-home")
    log = home / "api.log"
    port = _free_port()
    env = {**os.environ, "FAIRNESS_DATABASE_URL": api_db, "FAIRNESS_HOME": str(home)}
    command = [os.path.join(os.path.dirname(sys.executable), "fairness-pipeline"), "api", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    running = Server(port, process, log)
    try:
        _wait_for_health(running)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise
    assert code == 0, log.read_text()
    assert "stopped the transparency API" in log.read_text()


@pytest.fixture(scope="module")
def tokens(api_db: str) -> dict[str, str]:
    conn = psycopg2.connect(api_db)
    try:
        made = {
            "t1_read": create_token(conn, "Ana at tenant-1", "tenant-1", "read")[1],
            "t1_review": create_token(conn, "Bo Reviewer", "tenant-1", "review")[1],
            "t2_read": create_token(conn, "tenant-2 app", "tenant-2", "read")[1],
            "operator": create_token(conn, "ops", None, "review")[1],
        }
        revoked, secret = create_token(conn, "old", "tenant-1", "read")
        revoke_token(conn, revoked.id)
        made["revoked"] = secret
    finally:
        conn.close()
    return made


def _query(url: str, statement: str, params: tuple = ()) -> list[tuple]:
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall()
    finally:
        conn.close()


# --- health, authentication, isolation ---------------------------------------------------------------------------


def test_health_needs_no_token(server: Server) -> None:
    status, body = server.json("GET", "/v1/health")
    assert status == 200
    assert (body["status"], body["database"]) == ("ok", "ok")


@pytest.mark.parametrize("token", [None, "nonsense", "fpt_" + "x" * 43, "revoked"])
def test_401_without_a_valid_token(server: Server, tokens: dict[str, str], token: str | None) -> None:
    sent = tokens.get(token, token) if token else None
    status, headers, data = server.call("GET", "/v1/tenants/tenant-1/compliance", sent)
    assert status == 401
    assert headers["www-authenticate"] == "Bearer"
    assert json.loads(data)["status"] == 401


def test_basic_scheme_is_refused(server: Server, tokens: dict[str, str]) -> None:
    status, _, _ = server.call(
        "GET", "/v1/tenants/tenant-1/compliance", headers={"Authorization": f"Basic {tokens['t1_read']}"}
    )
    assert status == 401


def test_tenant_token_reads_its_tenant_only_and_the_same_403_for_a_missing_tenant(
    server: Server, tokens: dict[str, str]
) -> None:
    assert server.json("GET", "/v1/tenants/tenant-1/compliance", tokens["t1_read"])[0] == 200
    other = server.json("GET", "/v1/tenants/tenant-2/compliance", tokens["t1_read"])
    missing = server.json("GET", "/v1/tenants/no-such-tenant/compliance", tokens["t1_read"])
    assert other[0] == missing[0] == 403
    assert other[1] == missing[1]  # nothing tells an existing tenant from a missing one
    for path in ("reports", "reports/latest", "reviews", "assessments", "impact-ratios", "reports/2026-11-21/html"):
        assert server.call("GET", f"/v1/tenants/tenant-2/{path}", tokens["t1_read"])[0] == 403, path
    assert server.json("GET", "/v1/tenants/tenant-1/compliance", tokens["t2_read"])[0] == 403


def test_operator_token_reads_every_tenant_and_404_for_a_missing_one(server: Server, tokens: dict[str, str]) -> None:
    for tenant in ("tenant-1", "tenant-2"):
        status, body = server.json("GET", f"/v1/tenants/{tenant}/compliance", tokens["operator"])
        assert status == 200 and body["tenant_id"] == tenant
    assert server.json("GET", "/v1/tenants/no-such-tenant/compliance", tokens["operator"])[0] == 404


# --- reads ---------------------------------------------------------------------------------------------------------


def test_compliance_status_is_the_stored_verdict(server: Server, tokens: dict[str, str], api_db: str) -> None:
    status, body = server.json("GET", "/v1/tenants/tenant-1/compliance", tokens["t1_read"])
    assert status == 200
    level, score, low, high = _query(
        api_db,
        "SELECT level, score, ci_low, ci_high FROM risk_assessments WHERE tenant_id = 'tenant-1' AND window_end = %s",
        (END,),
    )[0]
    assert (body["level"], body["score"], body["score_interval"]) == (level, score, [low, high])
    assert body["window"] == {"start": "2026-10-23", "end": "2026-11-21", "days": 30}
    assert body["reasons"] and body["reasons"] == [r["reason"] for r in body["rules_applied"]]
    ll144 = body["ll144_summary"]["selection"]
    assert (ll144["stage_pair"], ll144["number_of_candidates"]) == (SHORTLIST, 664)
    startup = next(c for c in ll144["categories"] if (c["dimension"], c["category"]) == ("company_tier", "startup"))
    assert (startup["n"], startup["rate"], startup["impact_ratio"]) == (200, 0.2, 0.5)
    other = next(c for c in ll144["categories"] if (c["dimension"], c["category"]) == ("company_tier", "other"))
    assert (other["n"], other["impact_ratio"], other["suppressed"]) == ("< 5", None, True)
    assert body["links"]["report_html"] == "/v1/tenants/tenant-1/reports/2026-11-21/html"
    assert server.json("GET", "/v1/tenants/tenant-1/compliance?date=2026-11-21", tokens["t1_read"])[1] == body
    assert server.json("GET", "/v1/tenants/tenant-1/compliance?date=2026-11-20", tokens["t1_read"])[0] == 404


def test_assessments_over_time(server: Server, tokens: dict[str, str]) -> None:
    status, body = server.json("GET", "/v1/tenants/tenant-1/assessments", tokens["t1_read"])
    assert status == 200
    assert [a["window_end"] for a in body["assessments"]] == ["2026-11-21", "2026-11-20"]
    status, body = server.json("GET", "/v1/tenants/tenant-1/assessments?from=2026-11-21", tokens["t1_read"])
    assert [a["window_end"] for a in body["assessments"]] == ["2026-11-21"]
    status, body = server.json("GET", "/v1/tenants/tenant-1/assessments?to=2026-11-20&limit=5", tokens["t1_read"])
    assert [a["window_end"] for a in body["assessments"]] == ["2026-11-20"]


def test_impact_ratios_of_a_stage_pair_and_dimension_published(server: Server, tokens: dict[str, str]) -> None:
    status, body = server.json(
        "GET",
        "/v1/tenants/tenant-1/impact-ratios?date=2026-11-21&stage_pair=shown-%3Eshortlisted&dimension=company_tier",
        tokens["t1_read"],
    )
    assert status == 200
    groups = {g["group"]: g for g in body["selection"]["groups"]}
    assert body["selection"]["reference_group"] == "faang"
    assert groups["startup"]["impact_ratio"] == 0.5  # (40/200) / (40/100)
    assert groups["enterprise"]["impact_ratio"] == pytest.approx(0.875)  # (105/300) / (40/100)
    assert (groups["other"]["n"], groups["other"]["x"], groups["other"]["impact_ratio"]) == ("< 5", "< 5", None)
    assert groups["unknown"]["n"] == "suppressed"  # complementary: the table total would give 'other' back
    trends = {t["group"]: t for t in body["trends"]}
    assert (trends["startup"]["n_current"], trends["startup"]["ratio_current"]) == ("< 5", None)
    assert trends["faang"]["n_current"] == "suppressed" and trends["faang"]["suppressed"]
    assert (trends["enterprise"]["n_current"], trends["enterprise"]["ratio_current"]) == (300, 0.875)
    assert body["exposure"] == [] and body["scoring"] is None  # no such audits stored for this window


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("date=2026-13-01", "YYYY-MM-DD"),
        ("date=21.11.2026", "YYYY-MM-DD"),
        ("stage_pair=shown-%3Ehired", "unknown stage pair 'shown->hired'"),
        ("stage_pair=bogus", "unknown stage pair"),
        ("dimension=gender", "unknown dimension 'gender'"),
        ("dimension=company_tier+specialty", "unknown dimension 'company_tier+specialty'"),
        ("dimension=experience_band&stage_pair=shortlisted-%3Econtacted", "unknown dimension 'experience_band'"),
    ],
)
def test_bad_input_is_a_400_with_a_json_body(server: Server, tokens: dict[str, str], query: str, says: str) -> None:
    status, body = server.json("GET", f"/v1/tenants/tenant-1/impact-ratios?{query}", tokens["t1_read"])
    assert status == 400
    assert says in body["error"] and "Traceback" not in body["error"]


def test_other_bad_input_is_4xx_json(server: Server, tokens: dict[str, str]) -> None:
    assert server.json("GET", "/v1/tenants/tenant-1/reports/yesterday", tokens["t1_read"])[0] == 400
    assert server.json("GET", "/v1/tenants/tenant-1/assessments?limit=0", tokens["t1_read"])[0] == 422
    assert server.json("GET", "/v1/tenants/tenant-1/reviews?status=closed", tokens["t1_read"])[0] == 400
    assert server.json("GET", "/v1/tenants/tenant-1/reviews/abc", tokens["t1_read"])[0] == 422
    assert server.json("GET", "/v1/no/such/path", tokens["t1_read"])[0] == 404
    status, _, data = server.call("POST", "/v1/tenants/tenant-1/reviews", tokens["t1_review"], raw=b"{not json")
    assert status == 422 and json.loads(data)["status"] == 422


def test_reports_json_html_and_pdf_published(server: Server, tokens: dict[str, str], api_db: str) -> None:
    token = tokens["t1_read"]
    status, listing = server.json("GET", "/v1/tenants/tenant-1/reports", token)
    assert [r["window_end"] for r in listing["reports"]] == ["2026-11-21"]
    status, report = server.json("GET", "/v1/tenants/tenant-1/reports/2026-11-21", token)
    assert status == 200 and report["publication"]["suppressed"] is True
    assert server.json("GET", "/v1/tenants/tenant-1/reports/latest", token)[1] == report
    table = next(
        t for t in report["detailed_analysis"] if (t["stage_pair"], t["dimension"]) == (SHORTLIST, "company_tier")
    )
    assert next(g for g in table["groups"] if g["group"] == "other")["n"] == "< 5"  # stored internally as 4
    status, headers, html = server.call("GET", "/v1/tenants/tenant-1/reports/2026-11-21/html", token)
    stored_html = _query(api_db, "SELECT report_html FROM fairness_reports WHERE tenant_id = 'tenant-1'")[0][0]
    assert status == 200 and headers["content-type"].startswith("text/html") and html.decode() == stored_html
    status, headers, pdf = server.call("GET", "/v1/tenants/tenant-1/reports/2026-11-21/pdf", token)
    assert status == 200 and headers["content-type"] == "application/pdf" and pdf.startswith(b"%PDF-")
    pdfium = pytest.importorskip("pypdfium2")
    pages = pdfium.PdfDocument(pdf)
    text = " ".join(page.get_textpage().get_text_range() for page in pages)
    assert len(pages) >= 2 and "tenant-1" in text and "tenant-2" not in text
    assert server.json("GET", "/v1/tenants/tenant-1/reports/2026-11-20", token)[0] == 404


# --- reviews -------------------------------------------------------------------------------------------------------


def test_review_request_acknowledge_resolve_with_the_token_as_reviewer(
    server: Server, tokens: dict[str, str], api_db: str
) -> None:
    base = "/v1/tenants/tenant-1/reviews"
    request = {"reason": "our admin questions the startup ratio", "priority": "high", "day": "2026-11-21"}
    assert server.json("POST", base, tokens["t1_read"], request)[0] == 403  # a read token may not
    assert server.json("POST", "/v1/tenants/tenant-2/reviews", tokens["t1_review"], request)[0] == 403
    status, opened = server.json("POST", base, tokens["t1_review"], request)
    assert status == 201
    review_id = opened["review"]["id"]
    assert (opened["review"]["status"], opened["review"]["priority"], opened["review"]["scope"]) == (
        "open",
        "high",
        "review_request",
    )
    token_id = _query(api_db, "SELECT id FROM api_tokens WHERE name = 'Bo Reviewer'")[0][0]
    reviewer = f"Bo Reviewer (api token {token_id})"

    status, listed = server.json("GET", base, tokens["t1_read"])
    assert review_id in [r["id"] for r in listed["reviews"]]
    assert server.json("GET", f"/v1/tenants/tenant-2/reviews/{review_id}", tokens["operator"])[0] == 404

    status, acked = server.json("POST", f"{base}/{review_id}/acknowledge", tokens["t1_review"], {"note": "on it"})
    assert status == 200 and (acked["review"]["status"], acked["review"]["reviewer"]) == ("acknowledged", reviewer)
    assert server.json("POST", f"{base}/{review_id}/acknowledge", tokens["t1_review"])[0] == 409
    assert server.json("POST", f"{base}/{review_id}/resolve", tokens["t1_review"], {})[0] == 422  # a note is needed
    status, done = server.json("POST", f"{base}/{review_id}/resolve", tokens["operator"], {"note": "data checked"})
    assert status == 200 and done["review"]["status"] == "resolved"

    history = _query(
        api_db,
        "SELECT action, from_status, to_status, actor, note FROM fairness_review_history "
        "WHERE review_id = %s ORDER BY id",
        (review_id,),
    )
    operator_id = _query(api_db, "SELECT id FROM api_tokens WHERE name = 'ops'")[0][0]
    assert history == [
        ("open", None, "open", reviewer, "our admin questions the startup ratio"),
        ("acknowledge", "open", "acknowledged", reviewer, "on it"),
        ("resolve", "acknowledged", "resolved", f"ops (api token {operator_id})", "data checked"),
    ]
    assert [h["action"] for h in done["history"]] == ["open", "acknowledge", "resolve"]
    alert = _query(
        api_db,
        "SELECT a.tenant_id, a.scope, a.level, a.payload FROM fairness_alerts a "
        "JOIN fairness_reviews r ON r.alert_id = a.id WHERE r.id = %s",
        (review_id,),
    )[0]
    assert alert[:3] == ("tenant-1", "review_request", "HIGH")
    assert "startup ratio" not in json.dumps(alert[3])  # the free-text reason stays out of the alert payload


def test_request_size_is_bounded(server: Server, tokens: dict[str, str]) -> None:
    big = {"reason": "x" * 20_000}
    status, _, data = server.call("POST", "/v1/tenants/tenant-1/reviews", tokens["t1_review"], big)
    assert status == 413 and json.loads(data)["status"] == 413
    status, _, _ = server.call("POST", "/v1/tenants/tenant-1/reviews", tokens["t1_review"], {"reason": "y" * 2001})
    assert status == 422  # under the byte bound, over the reason's length

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:  # no Content-Length: the bound is counted while the chunks arrive
        chunks = (b'{"reason": "' if i == 0 else b"z" * 1024 for i in range(40))
        headers = {"Authorization": f"Bearer {tokens['t1_review']}", "Content-Type": "application/json"}
        conn.request("POST", "/v1/tenants/tenant-1/reviews", body=chunks, headers=headers, encode_chunked=True)
        response = conn.getresponse()
        assert response.status == 413 and json.loads(response.read())["status"] == 413
    finally:
        conn.close()


# --- the OpenAPI document, tokens at rest, logs, load ------------------------------------------------------------


def test_openapi_document_is_valid_openapi_3(server: Server) -> None:
    from openapi_spec_validator import validate

    status, document = server.json("GET", "/v1/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.")
    validate(document)
    for path in (
        "/v1/health",
        "/v1/tenants/{tenant}/compliance",
        "/v1/tenants/{tenant}/impact-ratios",
        "/v1/tenants/{tenant}/reports/{day}/html",
        "/v1/tenants/{tenant}/reviews/{review_id}/resolve",
    ):
        assert path in document["paths"], path
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_tokens_are_stored_only_as_digests(api_db: str, tokens: dict[str, str]) -> None:
    rows = _query(api_db, "SELECT to_jsonb(t)::text FROM api_tokens t")
    assert len(rows) == 5
    everything = " ".join(row[0] for row in rows)
    for secret in tokens.values():
        assert secret not in everything and secret[4:] not in everything


def test_cli_creates_lists_and_revokes_tokens(
    server: Server, api_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FAIRNESS_DATABASE_URL", api_db)
    monkeypatch.setenv("FAIRNESS_HOME", str(tmp_path))
    connection.database_url.cache_clear()
    runner = CliRunner()
    try:
        created = runner.invoke(cli_app, ["api", "token", "create", "--tenant", "tenant-2", "--name", "cli test"])
        assert created.exit_code == 0, created.output
        secret = created.stdout.strip().splitlines()[-1]
        assert secret.startswith("fpt_") and len(secret) == 47
        assert server.json("GET", "/v1/tenants/tenant-2/compliance", secret)[0] == 200
        listed = json.loads(runner.invoke(cli_app, ["api", "token", "list", "--json"]).stdout)
        mine = next(t for t in listed if t["name"] == "cli test")
        assert (mine["tenant_id"], mine["role"]) == ("tenant-2", "read") and secret not in json.dumps(listed)
        assert runner.invoke(cli_app, ["api", "token", "revoke", str(mine["id"])]).exit_code == 0
        assert server.json("GET", "/v1/tenants/tenant-2/compliance", secret)[0] == 401
        assert runner.invoke(cli_app, ["api", "token", "create", "--tenant", "nobody"]).exit_code == 2
        assert runner.invoke(cli_app, ["api", "token", "create"]).exit_code == 2
    finally:
        connection.database_url.cache_clear()


def test_no_token_text_in_the_logs(server: Server, tokens: dict[str, str]) -> None:
    marker = f"/v1/tenants/tenant-1/compliance?probe={uuid.uuid4().hex}"
    for token in tokens.values():
        server.call("GET", marker, token)
    server.call("GET", "/v1/tenants/tenant-1/compliance", "fpt_secret-that-is-not-a-token")
    time.sleep(0.3)
    log = server.log.read_text()
    assert marker in log  # requests are logged ...
    for token in (*tokens.values(), "fpt_secret-that-is-not-a-token"):
        assert token not in log  # ... their tokens are not


def test_load_2000_requests_over_8_threads(server: Server, tokens: dict[str, str]) -> None:
    """Bounded: 2,000 requests on loopback, at most 60 s; every answer 200."""
    total, threads, limit_seconds = 2000, 8, 60.0
    paths = [
        "/v1/tenants/tenant-1/compliance",
        "/v1/tenants/tenant-1/reviews",
        "/v1/health",
        f"/v1/tenants/{quote('tenant-1')}/assessments",
    ]
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + limit_seconds

    def worker(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        headers = {"Authorization": f"Bearer {tokens['t1_read']}"}
        mine = []
        try:
            for i in range(index, total, threads):
                if time.monotonic() > deadline:
                    errors.append("time limit")
                    return
                start = time.perf_counter()
                conn.request("GET", paths[i % len(paths)], headers=headers)
                response = conn.getresponse()
                response.read()
                mine.append(time.perf_counter() - start)
                if response.status != 200:
                    with lock:
                        errors.append(f"{response.status} on {paths[i % len(paths)]}")
        finally:
            conn.close()
            with lock:
                latencies.extend(mine)

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    wall = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"\nload: {len(latencies)} requests, {threads} threads, {wall:.1f} s, {len(latencies) / wall:.0f} req/s, "
        f"p50 {cuts[49] * 1000:.1f} ms, p95 {cuts[94] * 1000:.1f} ms, errors {len(errors)}"
    )
    assert errors == []
    assert len(latencies) == total
    assert server.call("GET", "/v1/health")[0] == 200  # still serving
