"""The endpoints: health, compliance status, assessments, impact ratios and audits, reports, reviews.

Everything served about a tenant comes from its published report (small counts suppressed, no candidate ids) or from
aggregate tables read through ``store.api_reads`` and suppressed with the same rules (``reports.publish``).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from fairness_pipeline.alerts import ReviewNotFoundError, ReviewTransitionError
from fairness_pipeline.alerts import review as reviews
from fairness_pipeline.alerts.model import ACTIVE_REVIEW_STATES, REVIEW_STATES
from fairness_pipeline.api import schemas
from fairness_pipeline.api.auth import Connection, Reviewer, Tenant
from fairness_pipeline.api.errors import ApiError
from fairness_pipeline.metrics.window import HEADLINE_STAGE_PAIR
from fairness_pipeline.reports.publish import publish_report, suppress_rows
from fairness_pipeline.store import api_reads
from fairness_pipeline.store.api_reviews import request_review
from fairness_pipeline.store.api_tokens import ApiToken

router = APIRouter(prefix="/v1")
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": schemas.ErrorBody, "description": text}
    for status, text in (
        (400, "bad input (a date, a stage pair, a dimension, a status)"),
        (401, "no token, or an invalid or revoked one"),
        (403, "the token may not read this tenant (or may not change reviews)"),
        (404, "nothing stored for what was asked"),
        (413, "request body too large"),
        (422, "the request does not match the schema"),
    )
}
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
LATEST = "latest"
PUBLISHED_CACHE_SIZE = 64


def parse_day(value: str, name: str) -> date:
    """A YYYY-MM-DD day, else 400."""
    try:
        if DAY.fullmatch(value):
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise ApiError(400, f"{name} must be a day written YYYY-MM-DD, got {value[:40]!r}")


def optional_day(value: str | None, name: str) -> date | None:
    return None if value is None or value == LATEST else parse_day(value, name)


def report_links(tenant: str, day: date) -> dict[str, str]:
    base = f"/v1/tenants/{quote(tenant, safe='')}/reports/{day.isoformat()}"
    return {"report_json": base, "report_html": f"{base}/html", "report_pdf": f"{base}/pdf"}


class _PublishedReports:
    """Published reports by (tenant, day, generated_at): publishing rebuilds every derived section, so it is done once
    per stored report, not once per request. Entries are shared: never mutate one."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[tuple, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, conn, tenant: str, version: api_reads.ReportVersion) -> dict[str, Any] | None:
        key = (tenant, version.window_end, version.generated_at)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        internal = api_reads.report_json(conn, tenant, version.window_end)
        if internal is None:  # replaced between the two reads
            return None
        published = publish_report(internal)
        with self._lock:
            self._entries[key] = published
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return published


_published = _PublishedReports(PUBLISHED_CACHE_SIZE)


def published_report(conn, tenant: str, day: date | None) -> tuple[date, dict[str, Any]]:
    """The published report of ``day`` (default: the latest), else 404."""
    version = api_reads.report_version(conn, tenant, day)
    report = _published.get(conn, tenant, version) if version else None
    if version is None or report is None:
        raise ApiError(404, f"no report for this tenant on {day}" if day else "no report for this tenant yet")
    return version.window_end, report


DateQuery = Annotated[str | None, Query(alias="date", description="Window end, YYYY-MM-DD; default: the latest.")]
DayPath = Annotated[str, "YYYY-MM-DD or 'latest'"]


# --- health ----------------------------------------------------------------------------------------------------------


@router.get("/health", response_model=schemas.Health, responses={503: {"model": schemas.Health}})
def health(request: Request) -> Any:
    """Whether the service and its database answer. Needs no token."""
    body = {"status": "ok", "database": "ok", "version": request.app.state.version}
    try:
        with request.app.state.pool.connection() as conn:
            api_reads.ping(conn)
    except Exception:
        return JSONResponse({**body, "status": "unavailable", "database": "unavailable"}, status_code=503)
    return body


# --- compliance, assessments, impact ratios ------------------------------------------------------------------------


@router.get("/tenants/{tenant}/compliance", response_model=schemas.Compliance, responses=ERRORS)
def compliance(tenant: Tenant, conn: Connection, day: DateQuery = None) -> Any:
    """The latest risk verdict (or that of ``date``): level, score and interval, window, reasons, rules applied,
    actions, the LL144 summary and the report's links, all from the published report."""
    window_end, report = published_report(conn, tenant, optional_day(day, "date"))
    risk = report["risk_assessment"]
    interval = [risk["ci_low"], risk["ci_high"]] if risk.get("ci_low") is not None else None
    rules = [
        {
            "rule": r.get("rule"),
            "level_before": r.get("level_before"),
            "level_after": r.get("level_after"),
            "reason": r.get("reason"),
        }
        for r in risk.get("applied_rules") or []
    ]
    return {
        "tenant_id": tenant,
        "window": report["window"],
        "level": risk["level"],
        "score": risk.get("score"),
        "score_interval": interval,
        "band": risk.get("band"),
        "profile": risk.get("profile"),
        "context": risk.get("context"),
        "dominant_component": risk.get("dominant_component"),
        "reasons": [r["reason"] for r in rules if r["reason"]],
        "rules_applied": rules,
        "actions": list(risk.get("actions") or []),
        "ll144_summary": report["ll144_audit_summary"],
        "generated_at": report["generated_at"],
        "links": report_links(tenant, window_end),
    }


@router.get("/tenants/{tenant}/assessments", response_model=schemas.Assessments, responses=ERRORS)
def assessments(
    tenant: Tenant,
    conn: Connection,
    first: Annotated[str | None, Query(alias="from", description="First window end, YYYY-MM-DD.")] = None,
    last: Annotated[str | None, Query(alias="to", description="Last window end, YYYY-MM-DD.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """Risk verdicts over time, latest first."""
    first_day, last_day = optional_day(first, "from"), optional_day(last, "to")
    if first_day and last_day and first_day > last_day:
        raise ApiError(400, "from is after to")
    rows = api_reads.assessments(conn, tenant, first_day, last_day, limit)
    return {
        "tenant_id": tenant,
        "assessments": [
            {
                **{
                    k: r[k]
                    for k in ("window_end", "level", "score", "band", "profile", "context", "dominant_component")
                },
                "score_interval": [r["ci_low"], r["ci_high"]] if r["ci_low"] is not None else None,
                "computed_at": r["computed_at"].isoformat(),
            }
            for r in rows
        ],
    }


EXPOSURE_DERIVED = (
    "exposure_ratio",
    "ratio_ci_low",
    "ratio_ci_high",
    "p_adjusted",
    "significant",
    "skew_at_k",
    "treatment_ratio",
    "treatment_p_adjusted",
    "treatment_significant",
)
TREND_DERIVED = (
    "ratio_previous",
    "ratio_current",
    "p_adjusted",
    "significant",
    "worsening",
    "improving",
    "latest_ratio",
    "slope_per_day",
    "approaching_threshold",
)


def suppress_counts(
    rows: list[dict[str, Any]], n_key: str, x_key: str | None, derived: tuple[str, ...], k: int
) -> None:
    """Hide small counts of ``rows`` in place with the published reports' rules (primary and complementary), and
    withhold ``derived`` where a count is hidden."""
    cells = [{"n": r[n_key], "x": r[x_key] if x_key else 0} for r in rows]
    suppress_rows(cells, k)
    for row, cell in zip(rows, cells, strict=True):
        if cell.get("suppressed"):
            row[n_key] = cell["n"]
            if x_key:
                row[x_key] = cell["x"]
            row.update(dict.fromkeys(derived))
            row["suppressed"] = True


@router.get("/tenants/{tenant}/impact-ratios", response_model=schemas.ImpactRatios, responses=ERRORS)
def impact_ratios(
    tenant: Tenant,
    conn: Connection,
    day: DateQuery = None,
    stage_pair: Annotated[str, Query(max_length=100, description="baseline->selection")] = HEADLINE_STAGE_PAIR,
    dimension: Annotated[str, Query(max_length=100, description="a dimension or an intersection a+b")] = "company_tier",
) -> Any:
    """Impact ratios of one window, stage pair and dimension (the published report's table), with the scoring-rate,
    rank-exposure and trend audits of the same dimension."""
    dimension = dimension.replace(" ", "+")  # an unencoded '+' of an intersection arrives as a space
    window_end, report = published_report(conn, tenant, optional_day(day, "date"))
    selection = [t for t in report["detailed_analysis"] if t["kind"] == "selection"]
    pairs = list(dict.fromkeys(t["stage_pair"] for t in selection))
    if stage_pair not in pairs:
        raise ApiError(
            400, f"unknown stage pair {stage_pair[:100]!r}; the report of {window_end} has {', '.join(pairs) or 'none'}"
        )
    tables = {t["dimension"]: t for t in selection if t["stage_pair"] == stage_pair}
    if dimension not in tables:
        raise ApiError(
            400,
            f"unknown dimension {dimension[:100]!r} for {stage_pair}; the report of {window_end} "
            f"has {', '.join(tables)}",
        )
    k = report["publication"]["min_cell"]
    scoring = next(
        (t for t in report["detailed_analysis"] if t["kind"] == "scoring" and t["dimension"] == dimension), None
    )
    exposure = api_reads.exposure_rows(conn, tenant, window_end, dimension)
    suppress_counts(exposure, "searches", None, EXPOSURE_DERIVED, k)
    trends = api_reads.trend_rows(conn, tenant, window_end, stage_pair, dimension)
    suppress_counts(trends, "n_previous", "x_previous", TREND_DERIVED, k)
    suppress_counts(trends, "n_current", "x_current", TREND_DERIVED, k)
    return {
        "tenant_id": tenant,
        "window": report["window"],
        "stage_pair": stage_pair,
        "dimension": dimension,
        "min_cell": k,
        "selection": tables[dimension],
        "scoring": scoring,
        "exposure": exposure,
        "trends": trends,
    }


# --- reports ---------------------------------------------------------------------------------------------------------


@router.get("/tenants/{tenant}/reports", response_model=schemas.ReportList, responses=ERRORS)
def reports(tenant: Tenant, conn: Connection, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Any:
    """The days a report is stored for, latest first, with links to each format."""
    rows = api_reads.report_days(conn, tenant, limit)
    return {
        "tenant_id": tenant,
        "reports": [
            {
                "window_end": r["window_end"],
                "generated_at": r["generated_at"].isoformat(),
                "links": report_links(tenant, r["window_end"]),
            }
            for r in rows
        ],
    }


@router.get("/tenants/{tenant}/reports/{day}", responses=ERRORS)
def report_json(tenant: Tenant, conn: Connection, day: DayPath) -> Any:
    """The published report (JSON, small counts suppressed) of ``day`` or ``latest``."""
    return published_report(conn, tenant, optional_day(day, "day"))[1]


@router.get("/tenants/{tenant}/reports/{day}/html", response_class=HTMLResponse, responses=ERRORS)
def report_html(tenant: Tenant, conn: Connection, day: DayPath) -> Any:
    """The published report as a self-contained HTML page."""
    return HTMLResponse(_html(conn, tenant, optional_day(day, "day")))


@router.get(
    "/tenants/{tenant}/reports/{day}/pdf",
    response_class=Response,
    responses={**ERRORS, 200: {"content": {"application/pdf": {}}}, 501: {"model": schemas.ErrorBody}},
)
def report_pdf(tenant: Tenant, conn: Connection, day: DayPath) -> Any:
    """The published report as PDF (the HTML page laid out by WeasyPrint); 501 when the system lacks Pango."""
    from fairness_pipeline.reports.pdf import PdfUnavailableError, render_pdf

    html = _html(conn, tenant, optional_day(day, "day"))
    try:
        return Response(render_pdf(html), media_type="application/pdf")
    except PdfUnavailableError:
        raise ApiError(501, "PDF reports need the Pango library on the server; use the html or json format") from None


def _html(conn, tenant: str, day: date | None) -> str:
    if day is None:
        day = published_report(conn, tenant, None)[0]
    html = api_reads.report_html(conn, tenant, day)
    if html is None:
        raise ApiError(404, f"no report for this tenant on {day}")
    return html


# --- reviews ---------------------------------------------------------------------------------------------------------


def _review_body(conn, review_id: int) -> dict[str, Any]:
    return {
        "review": reviews.get_review(conn, review_id).as_dict(),
        "history": [event.as_dict() for event in reviews.review_history(conn, review_id)],
    }


def _own_review(conn, tenant: str, review_id: int) -> None:
    """404 unless the review exists and belongs to ``tenant`` (another tenant's review is 'not found' too)."""
    try:
        review = reviews.get_review(conn, review_id)
    except ReviewNotFoundError:
        review = None
    if review is None or review.tenant_id != tenant:
        raise ApiError(404, f"no review {review_id} for this tenant")


@router.get("/tenants/{tenant}/reviews", response_model=schemas.ReviewList, responses=ERRORS)
def list_reviews(
    tenant: Tenant,
    conn: Connection,
    status: Annotated[list[str] | None, Query(description="open, acknowledged, resolved or all (repeatable)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """The tenant's reviews (default: open and acknowledged), most urgent first."""
    statuses = list(status or ACTIVE_REVIEW_STATES)
    if "all" in statuses:
        statuses = list(REVIEW_STATES)
    unknown = sorted(set(statuses) - set(REVIEW_STATES))
    if unknown:
        raise ApiError(400, f"unknown status {unknown[0][:40]!r}; expected {', '.join(REVIEW_STATES)} or all")
    found = reviews.list_reviews(conn, statuses, tenant_id=tenant, limit=limit)
    return {"tenant_id": tenant, "reviews": [r.as_dict() for r in found]}


@router.post("/tenants/{tenant}/reviews", status_code=201, response_model=schemas.ReviewWithHistory, responses=ERRORS)
def request_a_review(tenant: Tenant, token: Reviewer, conn: Connection, body: schemas.ReviewRequest) -> Any:
    """Request a human review of the tenant, with a reason and a priority; the requester is the token's holder."""
    try:
        review_id = request_review(conn, tenant, token.reviewer, body.reason, body.priority, body.day)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    return _review_body(conn, review_id)


@router.get("/tenants/{tenant}/reviews/{review_id}", response_model=schemas.ReviewWithHistory, responses=ERRORS)
def show_review(tenant: Tenant, conn: Connection, review_id: int) -> Any:
    """A review with its append-only history."""
    _own_review(conn, tenant, review_id)
    return _review_body(conn, review_id)


def _change(conn, tenant: str, review_id: int, token: ApiToken, change) -> dict[str, Any]:
    _own_review(conn, tenant, review_id)
    try:
        change(conn, review_id, token.reviewer)
    except ReviewTransitionError as exc:
        raise ApiError(409, str(exc)) from None
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    return _review_body(conn, review_id)


@router.post(
    "/tenants/{tenant}/reviews/{review_id}/acknowledge",
    response_model=schemas.ReviewWithHistory,
    responses={**ERRORS, 409: {"model": schemas.ErrorBody, "description": "not open"}},
)
def acknowledge_review(
    tenant: Tenant, token: Reviewer, conn: Connection, review_id: int, body: schemas.ReviewNote | None = None
) -> Any:
    """open -> acknowledged (stops its escalation), by the token's holder, with an optional note."""
    note = body.note if body else None
    return _change(conn, tenant, review_id, token, lambda c, i, who: reviews.acknowledge(c, i, who, note))


@router.post(
    "/tenants/{tenant}/reviews/{review_id}/resolve",
    response_model=schemas.ReviewWithHistory,
    responses={**ERRORS, 409: {"model": schemas.ErrorBody, "description": "already resolved"}},
)
def resolve_review(tenant: Tenant, token: Reviewer, conn: Connection, review_id: int, body: schemas.ResolveNote) -> Any:
    """open or acknowledged -> resolved, by the token's holder, with a note saying what was found or done."""
    return _change(conn, tenant, review_id, token, lambda c, i, who: reviews.resolve(c, i, who, body.note))
