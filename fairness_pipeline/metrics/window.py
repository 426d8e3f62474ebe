"""Analysis of one metric window: from a cell table of candidate counts to selection-rate frames and impact ratios.

The cell table comes from SQL (``store.analysis.WINDOW_CELLS``): one row per tenant, stage pair and combination of
the three dimension values, with ``n`` candidates in the population and ``x`` of them selected. Everything here works
on those groups, never on events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pandas as pd

from fairness_pipeline.catalogue import load_catalogue
from fairness_pipeline.events.vocabulary import DEFAULT_STAGE_PAIRS, DIMENSIONS, stage_pair_name
from fairness_pipeline.metrics.impact import (
    ALPHA,
    IMPACT_COLUMNS,
    MIN_REFERENCE_CANDIDATES,
    MIN_REFERENCE_SELECTIONS,
    MIN_SAMPLE,
    MIN_SHARE,
    THRESHOLD,
    impact_ratio_tables,
)
from fairness_pipeline.metrics.selection_rates import (
    FRAME_COLUMNS,
    analysis_dimensions,
    dimension_name,
    group_labels,
    is_intersection,
    selection_rate_frames,
)

TABLE_KEYS = ["tenant_id", "stage_pair", "dimension"]

HEADLINE_STAGE_PAIR = stage_pair_name("shown", "shortlisted")
"""The stage pair that headlines previews, the demo and reports: shortlisting among shown candidates."""


@dataclass(frozen=True)
class AnalysisSettings:
    """Thresholds of fairness-methods.md; every one is a default that configuration can change.

    The defaults are the project's one declaration of these rules (:data:`DEFAULT_ANALYSIS`): the Dagster config
    classes, the risk components and the audits take theirs from here.
    """

    window_days: int = 30
    stage_pairs: tuple[tuple[str, str], ...] = DEFAULT_STAGE_PAIRS
    alpha: float = ALPHA
    threshold: float = THRESHOLD
    min_share: float = MIN_SHARE
    min_sample: int = MIN_SAMPLE
    intersections: bool = True
    dimensions: tuple[str, ...] = field(default=DIMENSIONS)
    min_reference_candidates: int = MIN_REFERENCE_CANDIDATES
    """A reference group needs at least this many candidates (and ``min_share``, and a known value)."""
    min_reference_selections: int = MIN_REFERENCE_SELECTIONS
    """... and at least this many selections."""
    trend_days: int = 90
    """Days of impact-ratio history behind the risk trend component and the reports' trend charts."""
    reference_groups: tuple[tuple[str, str], ...] = ()
    """(dimension, group) pairs: a reference declared before looking for that dimension (or intersection, e.g.
    ``("company_tier+experience_band", "enterprise|3-7")``); its tests need no omnibus gate. It must be eligible."""

    @property
    def stage_pair_names(self) -> list[str]:
        return [stage_pair_name(b, s) for b, s in self.stage_pairs]

    def impact_options(self, dimensions: pd.Series | None = None) -> dict[str, Any]:
        """Keyword arguments of ``impact_ratio_tables`` from these settings; ``dimensions`` (one dimension name per
        row) maps ``reference_groups`` to the rows' declared references."""
        options: dict[str, Any] = {
            "alpha": self.alpha,
            "threshold": self.threshold,
            "min_share": self.min_share,
            "min_sample": self.min_sample,
            "min_reference_candidates": self.min_reference_candidates,
            "min_reference_selections": self.min_reference_selections,
        }
        if self.reference_groups and dimensions is not None:
            declared = dimensions.astype(object).map(dict(self.reference_groups))
            options["declared_reference"] = declared.where(declared.notna(), None).to_numpy(dtype=object)
        return options

    def window(self, window_end: date) -> tuple[date, date]:
        """First and last day (inclusive) of the window ending on ``window_end``."""
        return window_end - timedelta(days=self.window_days - 1), window_end


DEFAULT_ANALYSIS = AnalysisSettings()
"""The analysis settings of the code location. Its ``window_days`` is the longest window a run may analyse: the
event days ``fairness-pipeline run`` materialises before a range of windows."""


@dataclass(frozen=True)
class WindowAnalysis:
    frames: pd.DataFrame
    """``TABLE_KEYS`` + ``FRAME_COLUMNS``: rates and demographic parity per group."""
    impacts: pd.DataFrame
    """``TABLE_KEYS`` + ``IMPACT_COLUMNS``: impact ratios, tests and checks per group."""


def window_dimension_sets(settings: AnalysisSettings, columns: Sequence[str]) -> list[tuple[str, ...]]:
    """The dimensions a window's impact tables cover: ``settings.dimensions`` (the event proxies) and their pairs,
    then every catalogue ``attribute`` dimension that ``columns`` carries (sex, race_ethnicity) and the catalogue
    intersections holding one of them (``sex+race_ethnicity``), when ``settings.intersections``."""
    sets = analysis_dimensions(settings.dimensions, pairs=settings.intersections)
    catalogue = load_catalogue()
    attributes = [name for name in catalogue.attribute_dimensions if name in columns]
    sets += [(name,) for name in attributes]
    if settings.intersections:
        usable = {*settings.dimensions, *attributes}
        sets += [parts for parts in catalogue.intersections if set(parts) <= usable and set(parts) & set(attributes)]
    return sets


def group_counts(
    cells: pd.DataFrame, settings: AnalysisSettings, dimension_sets: Sequence[tuple[str, ...]] | None = None
) -> pd.DataFrame:
    """Per (tenant, stage pair, dimension, group) counts, for each dimension of :func:`window_dimension_sets` (or for
    each of ``dimension_sets``, e.g. the catalogue's ``analysis_dimensions()``).

    One pandas grouping per dimension (all tenants and stage pairs at once). Rows are ordered by tenant, stage pair,
    dimension in ``analysis_dimensions`` order, then group. Every allowed value of a single dimension is listed, with
    n = 0 when no candidate has it, so reports show empty categories as empty rather than leaving them out. A table
    of a candidate-attribute dimension (or an intersection with one) where every candidate is ``unknown`` (its tenant
    loaded no self-identification) is left out: it compares nothing, and reports leave it out
    (``metrics.impact.unanswered_attribute_table``).
    """
    columns = [*TABLE_KEYS, "group", "n", "x"]
    empty = pd.DataFrame({c: pd.Series(dtype=object if c not in ("n", "x") else "int64") for c in columns})
    if cells.empty:
        return empty
    cells = cells.reset_index(drop=True)
    all_pairs = cells[["tenant_id", "stage_pair"]].drop_duplicates()
    attributes = set(load_catalogue().attribute_dimensions)
    parts = []
    if dimension_sets is None:
        dimension_sets = window_dimension_sets(settings, cells.columns)
    for position, dims in enumerate(dimension_sets):
        table_cells, pairs = cells, all_pairs
        answered = [d for d in dims if d in attributes]
        if answered:
            table_cells = cells[answered_tables(cells, answered)]
            pairs = table_cells[["tenant_id", "stage_pair"]].drop_duplicates()
            if table_cells.empty:
                continue
        labelled = table_cells[["tenant_id", "stage_pair", "n", "x"]].assign(group=group_labels(table_cells, dims))
        counts = labelled.groupby(["tenant_id", "stage_pair", "group"], sort=False, as_index=False)[["n", "x"]].sum()
        if len(dims) == 1:
            grid = pairs.merge(pd.DataFrame({"group": load_catalogue().values(dims[0])}), how="cross")
            present = grid.merge(counts[["tenant_id", "stage_pair", "group"]], how="left", indicator=True)
            absent = grid[(present["_merge"] == "left_only").to_numpy()].assign(n=0, x=0)
            counts = pd.concat([counts, absent], ignore_index=True)
        parts.append(counts.assign(dimension=dimension_name(dims), position=position))
    if not parts:
        return empty
    out = pd.concat(parts, ignore_index=True).sort_values(["tenant_id", "stage_pair", "position", "group"])
    out = out[columns].reset_index(drop=True)
    out[["n", "x"]] = out[["n", "x"]].astype("int64")
    for column in ("tenant_id", "stage_pair", "dimension", "group"):
        out[column] = out[column].astype(object)
    return out


def answered_tables(cells: pd.DataFrame, attributes: Sequence[str]) -> pd.Series:
    """Per cell, whether its (tenant, stage pair) has any candidate known on every one of ``attributes``: False
    for the cells of a table that would hold only ``unknown`` (a tenant without self-identification)."""
    known = cells[list(attributes)].notna().all(axis=1) & (cells["n"] > 0)
    return known.groupby([cells["tenant_id"], cells["stage_pair"]], sort=False).transform("any").astype(bool)


def impacts_for_counts(counts: pd.DataFrame, settings: AnalysisSettings) -> pd.DataFrame:
    """Impact tables of every (tenant, stage pair, dimension) of ``counts`` (``TABLE_KEYS`` + group, n, x).

    Intersections are adjusted with Benjamini-Hochberg, single dimensions with Holm, both behind the table's omnibus
    gate (``metrics.impact``). Rows come sorted by the keys.
    """
    if not len(counts):
        return pd.DataFrame(columns=[*TABLE_KEYS, *IMPACT_COLUMNS])
    ordered = counts.sort_values(TABLE_KEYS, kind="stable").reset_index(drop=True)
    return impact_ratio_tables(
        ordered,
        TABLE_KEYS,
        intersectional=is_intersection(ordered["dimension"]),
        **settings.impact_options(ordered["dimension"]),
    )


def analyse_window(
    cells: pd.DataFrame, settings: AnalysisSettings, dimension_sets: Sequence[tuple[str, ...]] | None = None
) -> WindowAnalysis:
    """Selection-rate frames (one fairlearn ``MetricFrame`` for all tables) and impact ratios for a window."""
    counts = group_counts(cells, settings, dimension_sets)
    frames = selection_rate_frames(counts, keys=TABLE_KEYS)
    return WindowAnalysis(frames=frames[[*TABLE_KEYS, *FRAME_COLUMNS]], impacts=impacts_for_counts(counts, settings))
