"""Reading stored fairness reports, and the inputs to build one again (``fairness-pipeline report``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd

from fairness_pipeline.metrics.window import DEFAULT_ANALYSIS
from fairness_pipeline.store import analysis, reports
from fairness_pipeline.store.schema import transaction

latest_report_day = reports.latest_report_day


@dataclass(frozen=True)
class StoredReport:
    internal: dict[str, Any]
    html: str
    markdown: str


def stored_report(conn, tenant_id: str, window_end: date) -> StoredReport | None:
    """The tenant's stored report for a window (internal JSON, published HTML and markdown), or None."""
    row = reports.stored_report(conn, tenant_id, window_end)
    return None if row is None else StoredReport(*row)


def report_inputs(conn, window_end: date) -> dict[str, pd.DataFrame]:
    """What ``fairness_reports`` reads for a window: impacts, past series, audits and selection-rate frames."""
    with transaction(conn) as cur:
        inputs = reports.window_inputs(cur, window_end, DEFAULT_ANALYSIS.trend_days)
        inputs["frames"] = analysis.frames_window(cur, window_end)
    return inputs
