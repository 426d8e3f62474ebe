"""Read queries of the transparency API: tenants, stored reports, risk assessments and the rank and trend audits.

Each function runs one read-only transaction on the caller's psycopg2 connection and ends it. Reports are returned as
stored (the internal JSON); the API publishes them (``reports.publish``) before serving.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

PING = "SELECT 1"

TENANT_KNOWN = """
SELECT EXISTS (SELECT 1 FROM fairness_reports WHERE tenant_id = %(tenant_id)s)
    OR EXISTS (SELECT 1 FROM risk_assessments WHERE tenant_id = %(tenant_id)s)
    OR EXISTS (SELECT 1 FROM fairness_alerts WHERE tenant_id = %(tenant_id)s)
    OR EXISTS (SELECT 1 FROM selection_events WHERE tenant_id = %(tenant_id)s)
"""
"""A tenant exists when it has events, an assessment, a report or an alert."""

REPORT_VERSION = """
SELECT window_end, generated_at FROM fairness_reports
WHERE tenant_id = %(tenant_id)s AND (%(window_end)s::date IS NULL OR window_end = %(window_end)s)
ORDER BY window_end DESC
LIMIT 1
"""
"""Which report is stored for a day, or the latest when no day is given (without its content)."""

REPORT_JSON = """
SELECT report_json FROM fairness_reports WHERE tenant_id = %(tenant_id)s AND window_end = %(window_end)s
"""

REPORT_HTML = """
SELECT report_html FROM fairness_reports WHERE tenant_id = %(tenant_id)s AND window_end = %(window_end)s
"""

REPORT_DAYS = """
SELECT window_end, generated_at FROM fairness_reports
WHERE tenant_id = %(tenant_id)s
ORDER BY window_end DESC
LIMIT %(limit)s
"""

ASSESSMENTS = """
SELECT window_end, level, score, ci_low, ci_high, band, profile, context, dominant_component, computed_at
FROM risk_assessments
WHERE tenant_id = %(tenant_id)s
  AND (%(first_day)s::date IS NULL OR window_end >= %(first_day)s)
  AND (%(last_day)s::date IS NULL OR window_end <= %(last_day)s)
ORDER BY window_end DESC
LIMIT %(limit)s
"""

EXPOSURE = """
SELECT group_value AS "group", searches, is_reference, excluded_small_share, exposure_ratio, ratio_ci_low,
       ratio_ci_high, p_adjusted, significant, skew_at_k, treatment_ratio, treatment_p_adjusted,
       treatment_significant, low_sample
FROM rank_exposure
WHERE tenant_id = %(tenant_id)s AND window_end = %(window_end)s AND dimension = %(dimension)s
ORDER BY group_value
"""
"""A dimension's rank-exposure audit of a window (per group: ratios, intervals, adjusted p; searches counted)."""

TRENDS = """
SELECT group_value AS "group", n_previous, x_previous, n_current, x_current, ratio_previous, ratio_current,
       p_adjusted, significant, worsening, improving, latest_ratio, slope_per_day, approaching_threshold
FROM fairness_trends
WHERE tenant_id = %(tenant_id)s AND window_end = %(window_end)s AND stage_pair = %(stage_pair)s
  AND dimension = %(dimension)s
ORDER BY group_value
"""
"""A stage pair and dimension's week-over-week trend audit as of a window's last day."""


@dataclass(frozen=True)
class ReportVersion:
    """A stored report's day and when it was generated: together they identify its content."""

    window_end: date
    generated_at: datetime


def _rows(conn, statement: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    with conn, conn.cursor() as cur:
        cur.execute(statement, params)
        names = [d.name for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def ping(conn) -> None:
    """Raises when the database does not answer."""
    with conn, conn.cursor() as cur:
        cur.execute(PING)
        cur.fetchone()


def tenant_known(conn, tenant_id: str) -> bool:
    with conn, conn.cursor() as cur:
        cur.execute(TENANT_KNOWN, {"tenant_id": tenant_id})
        return bool(cur.fetchone()[0])


def report_version(conn, tenant_id: str, window_end: date | None = None) -> ReportVersion | None:
    """The report stored for ``window_end`` (default: the latest), or None."""
    with conn, conn.cursor() as cur:
        cur.execute(REPORT_VERSION, {"tenant_id": tenant_id, "window_end": window_end})
        row = cur.fetchone()
    return ReportVersion(*row) if row else None


def report_json(conn, tenant_id: str, window_end: date) -> dict[str, Any] | None:
    """The internal (unsuppressed) JSON report of a day: publish it before it leaves the process."""
    with conn, conn.cursor() as cur:
        cur.execute(REPORT_JSON, {"tenant_id": tenant_id, "window_end": window_end})
        row = cur.fetchone()
    return row[0] if row else None


def report_html(conn, tenant_id: str, window_end: date) -> str | None:
    """The published HTML page stored for a day, or None."""
    with conn, conn.cursor() as cur:
        cur.execute(REPORT_HTML, {"tenant_id": tenant_id, "window_end": window_end})
        row = cur.fetchone()
    return row[0] if row else None


def report_days(conn, tenant_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """The days a report is stored for, latest first: ``window_end`` and ``generated_at``."""
    return _rows(conn, REPORT_DAYS, {"tenant_id": tenant_id, "limit": limit})


def assessments(
    conn, tenant_id: str, first_day: date | None = None, last_day: date | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Stored risk verdicts between two days (inclusive, either open), latest first."""
    params = {"tenant_id": tenant_id, "first_day": first_day, "last_day": last_day, "limit": limit}
    return _rows(conn, ASSESSMENTS, params)


def exposure_rows(conn, tenant_id: str, window_end: date, dimension: str) -> list[dict[str, Any]]:
    return _rows(conn, EXPOSURE, {"tenant_id": tenant_id, "window_end": window_end, "dimension": dimension})


def trend_rows(conn, tenant_id: str, window_end: date, stage_pair: str, dimension: str) -> list[dict[str, Any]]:
    params = {"tenant_id": tenant_id, "window_end": window_end, "stage_pair": stage_pair, "dimension": dimension}
    return _rows(conn, TRENDS, params)
