"""The seed worker's job, done right: selection rates and impact ratios straight from ``selection_events``.

``fairness-pipeline worker`` answers like ``scripts/bias_metrics_worker.py`` (same flags, same JSON keys) without
Dagster, for one window and one stage pair. Unlike the seed it never pools tenants: without ``--tenant-id`` it
returns one document per tenant.

Dimensions are the catalogue's (``fairness_pipeline.catalogue``): the event proxies, the candidate attributes (the
value in force at each candidate's first baseline event of the window, joined per tenant and candidate in SQL;
a candidate without one is ``unknown``) and the declared intersections. ``unknown`` is counted and reported
(``unknown_count``), never the reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fairness_pipeline.catalogue import CatalogueError, load_catalogue
from fairness_pipeline.events.vocabulary import EVENT_TYPES, stage_pair_name
from fairness_pipeline.metrics.seed_format import tenant_metrics_json
from fairness_pipeline.metrics.window import DEFAULT_ANALYSIS, AnalysisSettings, analyse_window
from fairness_pipeline.store.attributes import window_cells_with_attributes


@dataclass(frozen=True)
class WorkerRequest:
    days: int = DEFAULT_ANALYSIS.window_days
    end: date | None = None
    tenant_id: str | None = None
    dimension: str | None = None
    """A catalogue dimension or declared intersection (``sex+race_ethnicity``); None: all of them."""
    baseline_event: str = "shown"
    selection_event: str = "shortlisted"

    def validate(self) -> None:
        if self.days < 1:
            raise ValueError("--days must be at least 1")
        for name, value in (("--baseline-event", self.baseline_event), ("--selection-event", self.selection_event)):
            if value not in EVENT_TYPES:
                raise ValueError(f"{name} {value!r} is not one of {', '.join(EVENT_TYPES)}")
        if self.dimension is not None:
            try:
                load_catalogue().parts(self.dimension)
            except CatalogueError as exc:
                raise ValueError(f"--dimension: {exc}") from None

    def dimension_sets(self) -> list[tuple[str, ...]]:
        """The dimensions and intersections to analyse."""
        catalogue = load_catalogue()
        return catalogue.analysis_dimensions() if self.dimension is None else [catalogue.parts(self.dimension)]


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
    pair = stage_pair_name(request.baseline_event, request.selection_event)
    dimension_sets = request.dimension_sets()
    attributes = [d for d in load_catalogue().attribute_dimensions if any(d in dims for dims in dimension_sets)]
    cells = window_cells_with_attributes(
        conn,
        stage_pairs=[(pair, request.baseline_event, request.selection_event)],
        attributes=attributes,
        window_start=window_start,
        window_stop=window_stop,
        tenant_id=request.tenant_id,
    )
    analysis = analyse_window(cells, settings, dimension_sets)
    documents = {}
    for tenant in sorted(cells["tenant_id"].unique()) if len(cells) else []:
        documents[tenant] = tenant_metrics_json(
            analysis.frames, analysis.impacts, tenant, end, settings, now, stage_pair=pair
        )
    return documents


def dimension_block(document: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The block of one dimension (under ``dimensions``) or intersection (under ``intersections``) of a document."""
    return document["dimensions"].get(name) or document.get("intersections", {}).get(name)
