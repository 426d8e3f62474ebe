"""The seed worker's job, done right: selection rates and impact ratios straight from ``selection_events``.

``fairness-pipeline worker`` answers like ``scripts/bias_metrics_worker.py`` (same flags, same JSON keys) without
Dagster, for one window and one stage pair. Unlike the seed it never pools tenants: without ``--tenant-id`` it
returns one document per tenant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from fairness_pipeline.events.vocabulary import DIMENSIONS, EVENT_TYPES, stage_pair_name
from fairness_pipeline.metrics.seed_format import tenant_metrics_json
from fairness_pipeline.metrics.window import AnalysisSettings, analyse_window
from fairness_pipeline.store import analysis as q


@dataclass(frozen=True)
class WorkerRequest:
    days: int = 30
    end: date | None = None
    tenant_id: str | None = None
    dimension: str | None = None
    baseline_event: str = "shown"
    selection_event: str = "shortlisted"

    def validate(self) -> None:
        if self.days < 1:
            raise ValueError("--days must be at least 1")
        for name, value in (("--baseline-event", self.baseline_event), ("--selection-event", self.selection_event)):
            if value not in EVENT_TYPES:
                raise ValueError(f"{name} {value!r} is not one of {', '.join(EVENT_TYPES)}")
        if self.dimension is not None and self.dimension not in DIMENSIONS:
            raise ValueError(f"--dimension {self.dimension!r} is not one of {', '.join(DIMENSIONS)}")


def compute(conn, request: WorkerRequest, now: datetime | None = None) -> dict[str, dict[str, Any]]:
    """Seed-shaped documents keyed by tenant id (only the requested tenant when one is given)."""
    request.validate()
    now = now or datetime.now(UTC)
    end = request.end or now.date()
    settings = AnalysisSettings(
        window_days=request.days, stage_pairs=((request.baseline_event, request.selection_event),)
    )
    first_day, last_day = settings.window(end)
    window_start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
    window_stop = datetime(last_day.year, last_day.month, last_day.day, tzinfo=UTC) + timedelta(days=1)
    params = {
        "pair_names": settings.stage_pair_names,
        "baselines": [request.baseline_event],
        "selections": [request.selection_event],
        "window_start": window_start,
        "window_stop": window_stop,
        "tenant_id": request.tenant_id,
    }
    with conn.cursor() as cur:
        cur.execute(q.WINDOW_CELLS_FROM_EVENTS, params)
        cells = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
    analysis = analyse_window(cells, settings)
    pair = stage_pair_name(request.baseline_event, request.selection_event)
    dimensions = [request.dimension] if request.dimension else None
    documents = {}
    for tenant in sorted(cells["tenant_id"].unique()) if len(cells) else []:
        documents[tenant] = tenant_metrics_json(
            analysis.frames, analysis.impacts, tenant, end, settings, now, stage_pair=pair, dimensions=dimensions
        )
    return documents
