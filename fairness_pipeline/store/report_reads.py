"""Reading stored fairness reports, and the inputs to build one again (``fairness-pipeline report``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd

LATEST_REPORT_DAY = "SELECT max(window_end) FROM fairness_reports WHERE tenant_id = %(tenant_id)s"
STORED_REPORT = """
SELECT report_json, report_html, report_markdown FROM fairness_reports
WHERE tenant_id = %(tenant_id)s AND window_end = %(window_end)s
"""


@dataclass(frozen=True)
class StoredReport:
    internal: dict[str, Any]
    html: str
    markdown: str


def latest_report_day(conn, tenant_id: str) -> date | None:
    """The window end of the tenant's latest stored report, or None."""
    with conn.cursor() as cur:
        cur.execute(LATEST_REPORT_DAY, {"tenant_id": tenant_id})
        return cur.fetchone()[0]


def stored_report(conn, tenant_id: str, window_end: date) -> StoredReport | None:
    """The tenant's stored report for a window (internal JSON, published HTML and markdown), or None."""
    with conn.cursor() as cur:
        cur.execute(STORED_REPORT, {"tenant_id": tenant_id, "window_end": window_end})
        row = cur.fetchone()
    return None if row is None else StoredReport(*row)


def report_inputs(conn, window_end: date) -> dict[str, pd.DataFrame]:
    """What ``fairness_reports`` reads for a window: impacts, past series, audits and selection-rate frames."""
    from fairness_pipeline.defs.assets.risk import _frame, window_inputs
    from fairness_pipeline.queries import analysis as analysis_queries

    with conn.cursor() as cur:
        inputs = window_inputs(cur, window_end)
        inputs["frames"] = _frame(cur, analysis_queries.FRAMES_WINDOW, {"window_end": window_end})
    return inputs
