"""Audit assets: LL144 scoring rates, rank exposure, concentrated slates and impact-ratio trends, per UTC day.

``search_daily_aggregates`` (event layer) sums each day's searches per dimension cell once, and each tenant's exposure
sums of the day; ``rank_exposure`` adds up 30 days of the latter and ``slate_concentration`` reads one day of the
former. ``scoring_rate_ratios`` de-duplicates the per-day candidate arrays written with ``candidate_daily_stages``;
``fairness_trends`` reads the stored impact ratios, counts this week's candidates and reads last week's counts as
stored a week before. SQL does the aggregating, the statistics are those of ``fairness_pipeline.audits``, and every
asset replaces its partition's rows, so re-runs never duplicate.
"""

import dataclasses
import io
import time
from collections.abc import Sequence
from datetime import date, timedelta

import dagster as dg
import numpy as np
import pandas as pd
from psycopg2 import sql
from psycopg2.extras import execute_values

from fairness_pipeline.audits import exposure, scoring, slates, trends
from fairness_pipeline.defs.assets.events import store_candidate_arrays
from fairness_pipeline.defs.assets.metrics import WindowConfig, impact_ratios, missing_summary_days
from fairness_pipeline.defs.metadata import column_schema, markdown_preview, table_metadata
from fairness_pipeline.defs.partitions import (
    PARTITION_WRITES_POOL,
    daily_partitions,
    day_bounds,
    downstream_automation,
    partition_days,
    single_run,
    window_mapping,
)
from fairness_pipeline.defs.resources import FairnessDatabase
from fairness_pipeline.events.vocabulary import DIMENSION_VALUES, DIMENSIONS
from fairness_pipeline.metrics import candidate_arrays as candidate_arrays_module
from fairness_pipeline.metrics.window import (
    DEFAULT_ANALYSIS,
    HEADLINE_STAGE_PAIR,
    TABLE_KEYS,
    AnalysisSettings,
    group_counts,
)
from fairness_pipeline.queries import audits as q
from fairness_pipeline.store.binary_copy import read_binary_copy, read_binary_records
from fairness_pipeline.store.partition_lock import lock_partition, partition_transaction

GROUP = "audits"
WEEK_DAYS = 7
SEARCH_LOOKBACK = timedelta(days=1)
"""Shown events are read from this long before a day so that a search running over midnight belongs to the day of its
first shown event only."""

previous_day_mapping = dg.TimeWindowPartitionMapping(
    start_offset=-1, end_offset=0, allow_nonexistent_upstream_partitions=True
)
"""A day's searches are read with the previous day's events (to leave out searches that started before midnight)."""

trend_mapping = dg.TimeWindowPartitionMapping(
    start_offset=-(trends.DEFAULT_SLOPE_WINDOWS - 1), end_offset=0, allow_nonexistent_upstream_partitions=True
)
"""Trends as of day D read the windows ending on D-13 .. D and the candidate days of the two weeks D-13 .. D."""


DEFAULT_BOOTSTRAP_SEED = 0


class AuditConfig(WindowConfig):
    """Window settings plus the exposure bootstrap."""

    n_boot: int = exposure.DEFAULT_N_BOOT
    """Bootstrap resamples of the searches (0 skips intervals and p-values)."""
    bootstrap_seed: int = DEFAULT_BOOTSTRAP_SEED
    """Seed of the bootstrap; each tenant and day draws its own stream from it, the same in every window holding the
    day (so that stored day sums serve every window)."""


class SlateConfig(dg.Config):
    """Settings of the concentrated-slate audit (seed 001)."""

    concentration: float = slates.DEFAULT_CONCENTRATION
    """A slate is concentrated when one group holds strictly more than this share of it."""
    min_slate: int = slates.DEFAULT_MIN_SLATE
    """Slates with fewer shown candidates are counted but not assessed."""
    alpha: float = DEFAULT_ANALYSIS.alpha
    intersections: bool = False
    """Also assess the pairwise intersections (the seed asks per dimension)."""


class TrendConfig(WindowConfig):
    """Window settings plus the "approaching threshold" rule."""

    horizon_days: float = trends.DEFAULT_HORIZON_DAYS
    """Approaching: the fitted line reaches the threshold within this many days."""
    min_points: int = trends.DEFAULT_MIN_POINTS
    """Defined impact ratios needed in the last 14 windows to fit a slope."""


def _fetch(cur, statement: str, params: dict) -> pd.DataFrame:
    cur.execute(statement, params)
    return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


def _records(frame: pd.DataFrame, columns: list[str], prefix: tuple) -> list[tuple]:
    """Tuples for execute_values: NaN/NA as NULL, numpy scalars as Python values (groups, never events)."""
    clean = frame[columns].astype(object).where(frame[columns].notna(), None)
    return [prefix + tuple(v.item() if hasattr(v, "item") else v for v in row) for row in clean.itertuples(False)]


def _flag(frame: pd.DataFrame, column: str) -> pd.Series:
    """A nullable boolean column as plain booleans (missing = False)."""
    if frame.empty:
        return pd.Series(False, index=frame.index, dtype=bool)
    return frame[column].astype("boolean").fillna(False).astype(bool)


def _min_or_nan(values: list[float]) -> float:
    defined = [float(v) for v in values if pd.notna(v)]
    return min(defined, default=float("nan"))


NULL_MARKER = "\\N"
SEARCH_TEXT_COLUMNS = ("tenant_id", "search_id", *DIMENSIONS)


DEFAULT_EXPOSURE_LAYOUT = exposure.ExposureLayout.build(AnalysisSettings())
"""The layout whose day sums the event layer stores (rank_exposure's default settings; others are computed on use)."""


def search_aggregates(cur, first_day: date, last_day: date) -> pd.DataFrame:
    """The stored per (tenant, day, search, dimension values) sums of the searches that start in the days
    (``audits.exposure.AGGREGATE_COLUMNS``), in a stable order; missing dimension values are NaN."""
    statement = sql.SQL(q.SEARCH_DAYS).format(first_day=sql.Literal(first_day), last_day=sql.Literal(last_day))
    buffer = io.StringIO()
    cur.copy_expert(statement.as_string(cur.connection), buffer)
    buffer.seek(0)
    frame = pd.read_csv(
        buffer,
        dtype={c: object for c in (*SEARCH_TEXT_COLUMNS, "day")},  # plain str: the audits group them fastest
        keep_default_na=False,
        na_values=[NULL_MARKER],
        float_precision="round_trip",  # the exact doubles PostgreSQL printed (shortest round-trip text)
    )
    frame["day"] = pd.to_datetime(frame["day"], format="%Y-%m-%d").dt.date
    return frame


def exposure_window(cur, first_day: date, last_day: date) -> pd.DataFrame:
    """The window's stored search sums as ``audits.exposure.rank_exposure`` takes them, read through one binary COPY of
    numbers (tenant and dimensions coded by ``queries.audits.coded_columns``): ``search_id`` is an integer that sorts
    as (day, search id) within a tenant, ``tenant_id`` and dimensions are categoricals (missing = NaN), rows in
    (tenant, search, dimension codes) order. Raises ValueError on a tenant not listed for the window's days or a
    dimension value outside the vocabulary."""
    cur.execute(q.WINDOW_TENANTS, {"first_day": first_day, "last_day": last_day})
    tenants = [row[0] for row in cur.fetchall()]
    composed = sql.SQL(q.SEARCH_WINDOW_CODES).format(
        codes=q.coded_columns(tenants), first_day=sql.Literal(first_day), last_day=sql.Literal(last_day)
    )
    arrays = read_binary_copy(cur, composed.as_string(cur.connection), q.SEARCH_WINDOW_CODE_COLUMNS)
    if (arrays["tenant"] < 1).any():
        raise ValueError(f"the window holds rows of tenants other than {tenants}")
    tenant_id = pd.Categorical.from_codes(arrays.pop("tenant").astype(np.int64) - 1, categories=tenants)
    dimensions = {}
    for dim in DIMENSIONS:
        if (arrays[dim] < 0).any():
            raise ValueError(f"{dim} values outside the vocabulary {list(DIMENSION_VALUES[dim])}")
        dimensions[dim] = pd.Categorical.from_codes(arrays[dim].astype(np.int64) - 1, categories=DIMENSION_VALUES[dim])
    search = (arrays.pop("day_offset").astype(np.int64) << 32) | arrays.pop("search_number").astype(np.int64)
    keys = [dimensions[dim].codes for dim in reversed(DIMENSIONS)] + [search, tenant_id.codes]
    order = np.lexsort(keys)  # one row order whatever the physical order: the same float sums on every read
    frame = pd.DataFrame({"tenant_id": tenant_id[order], "search_id": search[order]})
    for dim in DIMENSIONS:
        frame[dim] = dimensions[dim][order]
    for column in exposure.AGGREGATE_COLUMNS:
        frame[column] = arrays[column][order]
    return frame


def missing_search_days(cur, first_day: date, last_day: date) -> list[date]:
    """Days of the window whose search_daily_aggregates partition has not been materialised."""
    cur.execute(q.AGGREGATED_DAYS, {"first_day": first_day, "last_day": last_day})
    present = {row[0] for row in cur.fetchall()}
    days = [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]
    return [d for d in days if d not in present]


def store_exposure_day_sums(cur, layout: exposure.ExposureLayout, n_boot: int, seed: int, day: date) -> int:
    """Compute and store (replacing) each tenant's exposure sums of the day from its search aggregates, the searches
    resampled from ``audits.exposure.stratum_rng(seed, (tenant,), day)``. Returns the number of tenants. The sums
    are part of the day's search_daily_aggregates partition: written under its lock."""
    params = {"day": day, "layout_key": layout.fingerprint, "n_boot": n_boot, "bootstrap_seed": seed}
    lock_partition(cur, "search_daily_aggregates", day)
    cur.execute(q.DELETE_EXPOSURE_SUMS_DAY, params)
    aggregates = exposure_window(cur, day, day)
    tenants = 0
    for tenant, table in aggregates.groupby("tenant_id", sort=True, observed=True):
        rng = exposure.stratum_rng(seed, (tenant,), day) if n_boot else None
        sums = exposure.exposure_sums(table, layout, rng, n_boot)
        cur.execute(q.INSERT_EXPOSURE_SUMS, {**params, "tenant_id": tenant, **sums.pack()})
        tenants += 1
    return tenants


def exposure_window_sums(
    cur, layout: exposure.ExposureLayout, n_boot: int, seed: int, first_day: date, last_day: date
) -> tuple[dict[tuple, exposure.ExposureSums], list[date]]:
    """Per tenant, the window's exposure sums: the stored per-day sums (``exposure_day_sums``), after computing and
    storing those of the days that lack them (from the day's search aggregates; each tenant's searches of the day
    resampled from ``audits.exposure.stratum_rng(seed, (tenant,), day)``). Returns the sums and the days computed."""
    params = {"first_day": first_day, "last_day": last_day, "layout_key": layout.fingerprint, "n_boot": n_boot,
              "bootstrap_seed": seed}  # fmt: skip
    cur.execute(q.EXPOSURE_SUM_DAYS, params)
    computed = [day for day, tenants, stored in cur.fetchall() if sorted(tenants) != sorted(stored)]
    for day in computed:
        store_exposure_day_sums(cur, layout, n_boot, seed, day)
    statement = cur.mogrify(q.EXPOSURE_SUMS_WINDOW, params).decode()
    window: dict[tuple, exposure.ExposureSums] = {}
    for tenant, searches, totals, shown, group_searches, replicates in read_binary_records(
        cur, statement, q.EXPOSURE_SUMS_WINDOW_KINDS
    ):
        sums = exposure.ExposureSums.unpack(layout, n_boot, searches, totals, shown, group_searches, replicates)
        window[(tenant,)] = window[(tenant,)] + sums if (tenant,) in window else sums
    return window, computed


SEARCH_SCHEMA = column_schema(
    [
        ("tenant_id, day, search_id", "key", "a search, on the day of its first shown event"),
        ("company_tier, experience_band, specialty", "varchar", "one combination of dimension values (NULL = unknown)"),
        ("shown, ranked, top_k, scored", "integer", "impressions; with a rank; at rank <= 10; with rank and score"),
        ("weight_sum, scored_weight_sum", "double", "sum of 1 / log2(1 + rank) (over ranked; over scored)"),
        ("score_sum, merit_weight_sum", "double", "sum of scores; of 1 / log2(1 + rank) if ordered by score"),
    ]
)


@dg.asset(
    deps=[dg.AssetDep("validated_selection_events", partition_mapping=previous_day_mapping)],
    automation_condition=downstream_automation,
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    pool=PARTITION_WRITES_POOL,
    group_name="events",
    kinds={"postgres"},
    description="Per tenant, day, search and combination of dimension values: sums over the search's shown "
    "impressions (first shown event per candidate; a search belongs to the day of its first shown event), so that "
    "exposure windows and slate audits read aggregates instead of events; and each tenant's exposure sums of the day "
    "with their bootstrap replicates (default settings), which exposure windows add up.",
)
def search_daily_aggregates(context: dg.AssetExecutionContext, database: FairnessDatabase) -> dg.MaterializeResult:
    per_day = []
    with database.connect() as conn:
        for day in partition_days(context):
            bounds = day_bounds(day)
            params = {"day": day, "scan_start": bounds["day_start"] - SEARCH_LOOKBACK,
                      "window_start": bounds["day_start"], "window_stop": bounds["day_end"],
                      "top_k": exposure.DEFAULT_TOP_K}  # fmt: skip
            with partition_transaction(conn, "search_daily_aggregates", day) as cur:
                cur.execute(q.DELETE_SEARCH_DAY, params)
                cur.execute(q.DELETE_ALL_EXPOSURE_SUMS_DAY, params)
                cur.execute(q.INSERT_SEARCH_DAY, params)
                rows = cur.rowcount
                cur.execute(q.RECORD_SEARCH_DAY, params)
                searches = cur.fetchone()[0]
                summed = store_exposure_day_sums(
                    cur, DEFAULT_EXPOSURE_LAYOUT, exposure.DEFAULT_N_BOOT, DEFAULT_BOOTSTRAP_SEED, day
                )
            per_day.append(
                {
                    "day": day.isoformat(),
                    "searches": searches,
                    "aggregate_rows": rows,
                    "tenants_with_exposure_sums": summed,
                }
            )
    total = sum(d["aggregate_rows"] for d in per_day)
    return dg.MaterializeResult(
        metadata=table_metadata(
            total,
            SEARCH_SCHEMA,
            markdown_preview(pd.DataFrame(per_day)),
            {"aggregate_rows": total, "searches": sum(d["searches"] for d in per_day)},
        )
    )


def candidate_arrays(
    cur, first_day: date, last_day: date, event_types: Sequence[str]
) -> dict[str, dict[str, candidate_arrays_module.StageArrays]]:
    """Per tenant and event type, the window's candidates as arrays (``metrics.candidate_arrays``), days in order, from
    ``candidate_day_arrays`` (written with candidate_daily_stages; here for days summarised before they existed).
    Raises ValueError on a dimension value outside the vocabulary."""
    window = {"first_day": first_day, "last_day": last_day}
    cur.execute(q.DAYS_WITHOUT_ARRAYS, window)
    for (day,) in cur.fetchall():
        store_candidate_arrays(cur, day)
    statement = cur.mogrify(q.CANDIDATE_ARRAYS_WINDOW, {**window, "event_types": list(event_types)}).decode()
    days: dict[tuple[str, str], list[tuple]] = {}
    for tenant, event_type, keys, scores, codes in read_binary_records(cur, statement,
                                                                       q.CANDIDATE_ARRAYS_WINDOW_KINDS):  # fmt: skip
        days.setdefault((tenant, event_type), []).append((keys, scores, codes))
    out: dict[str, dict[str, candidate_arrays_module.StageArrays]] = {}
    for (tenant, event_type), parts in days.items():
        out.setdefault(tenant, {})[event_type] = candidate_arrays_module.StageArrays.concatenate(parts)
    return out


def scoring_cells(cur, first_day: date, last_day: date) -> pd.DataFrame:
    """Scoring cells of the window (``audits.scoring.SCORING_CELL_COLUMNS``): each candidate's first shown event of
    the window, from the per-day arrays (:func:`candidate_arrays`), counted by ``audits.scoring.coded_scoring_cells``;
    missing values None."""
    frames = []
    for tenant, stages in candidate_arrays(cur, first_day, last_day, ["shown"]).items():
        first = stages["shown"].first()
        frames.append(scoring.coded_scoring_cells(tenant, first.scores, first.codes))
    if not frames:
        return pd.DataFrame(columns=["tenant_id", *DIMENSIONS, *scoring.SCORING_CELL_COLUMNS])
    return pd.concat(frames, ignore_index=True)


def window_cells_from_arrays(cur, settings: AnalysisSettings, window_end: date) -> pd.DataFrame:
    """``metrics.window_cells`` of the window (the same cells), counted in numpy from the per-day arrays."""
    stages = sorted({stage for pair in settings.stage_pairs for stage in pair})
    frames = [
        candidate_arrays_module.stage_pair_cells(tenant, arrays, settings.stage_pairs, settings.stage_pair_names)
        for tenant, arrays in candidate_arrays(cur, *settings.window(window_end), stages).items()
    ]
    columns = ["tenant_id", "stage_pair", *DIMENSIONS, "n", "x"]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True).sort_values(columns[:5], na_position="last", ignore_index=True)


SCORING_SCHEMA = column_schema(
    [
        ("window_end, tenant_id, dimension, group_value", "key", "which table and group (pairs: `a+b`, `x|y`)"),
        ("median_score", "double", "median M of the tenant's scored candidates in the window"),
        ("n, above_median, missing_score", "bigint", "scored candidates, with score > M, without a score"),
        ("scoring_rate, reference_group, reference_rate", "double, text", "above_median / n; highest-rate group"),
        ("impact_ratio, adverse_impact", "double, bool", "rate / reference rate; adverse when < 0.80"),
        ("test, p_value, p_adjusted, significant", "mixed", "Fisher or pooled z; Holm (BH for pairs)"),
        ("ci_low, ci_high, shortfall, flip_flop, cohens_h, low_sample", "mixed", "as for selection rates"),
        ("excluded_small_share, undefined_reason", "bool, text", "2% rule; why a value is NULL"),
    ]
)

SCORING_INSERT_COLUMNS = ["tenant_id", "dimension", *scoring.SCORING_COLUMNS[1:]]


@dg.asset(
    deps=[dg.AssetDep("candidate_daily_stages", partition_mapping=window_mapping)],
    automation_condition=downstream_automation,
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    pool=PARTITION_WRITES_POOL,
    group_name=GROUP,
    kinds={"postgres", "scipy"},
    description="LL144 scoring rates: the share of each group's candidates scoring above the window's median score "
    "(first shown event per candidate), and their impact ratios with the tests, intervals and small-sample rules of "
    "selection-rate impact ratios, per tenant, dimension and pairwise intersection.",
)
def scoring_rate_ratios(
    context: dg.AssetExecutionContext, database: FairnessDatabase, config: WindowConfig
) -> dg.MaterializeResult:
    settings = config.settings()
    written, lowest, adverse, significant = 0, [], 0, 0
    last = pd.DataFrame()
    with database.connect() as conn:
        for window_end in partition_days(context):
            with partition_transaction(conn, "scoring_rate_ratios", window_end) as cur:
                cells = scoring_cells(cur, *settings.window(window_end))
                table = scoring_rate_ratios_table(cells, settings)
                cur.execute(q.DELETE_SCORING_WINDOW, {"window_end": window_end})
                if len(table):
                    execute_values(cur, q.INSERT_SCORING, _records(table, SCORING_INSERT_COLUMNS,
                                                                   (window_end, settings.window_days)))  # fmt: skip
            written += len(table)
            if len(table):
                lowest.append(table.loc[~table["is_reference"], "impact_ratio"].min())
                flagged = _flag(table, "adverse_impact")
                adverse += int(flagged.sum())
                significant += int((flagged & _flag(table, "significant")).sum())
                last = table
    findings = last[_flag(last, "adverse_impact")].sort_values("impact_ratio") if len(last) else last
    columns = ["tenant_id", "dimension", "group", "n", "above_median", "scoring_rate", "impact_ratio", "p_adjusted",
               "significant"]  # fmt: skip
    numbers = {
        "windows": len(partition_days(context)),
        "lowest_scoring_impact_ratio": _min_or_nan(lowest),
        "adverse_scoring_groups": adverse,
        "significant_adverse_scoring_groups": significant,
        "median_score": float(last["median_score"].median()) if len(last) else float("nan"),
    }
    preview = markdown_preview(findings[columns] if len(findings) else pd.DataFrame())
    return dg.MaterializeResult(metadata=table_metadata(written, SCORING_SCHEMA, preview, numbers))


def scoring_rate_ratios_table(cells: pd.DataFrame, settings: AnalysisSettings) -> pd.DataFrame:
    """The scoring impact table of a window's cells (empty frame when the window has no shown candidate)."""
    if cells.empty:
        return pd.DataFrame(columns=["tenant_id", *scoring.SCORING_COLUMNS])
    return scoring.scoring_rate_ratios(cells, settings)


EXPOSURE_SCHEMA = column_schema(
    [
        ("window_end, tenant_id, dimension, group_value", "key", "which table and group"),
        ("searches, shown, ranked, missing_rank, share", "mixed", "searches showing the group; impressions"),
        ("exposure (+ ci)", "double", "mean 1 / log2(1 + rank) over the group's ranked impressions"),
        ("exposure_ratio (+ ci), low_exposure", "double, bool", "exposure / best-exposed group's; low when < 0.80"),
        ("p_value, p_adjusted, significant", "mixed", "bootstrap over searches; Holm (BH for pairs)"),
        ("top_k, skew_at_k (+ ci)", "int, double", "share of top-k impressions / share of all (k = 10)"),
        ("mean_score, treatment_ratio (+ ci, p)", "double", "exposure per unit of score against the reference"),
        ("merit_ratio (+ ci, p)", "double", "exposure / exposure if slates were ordered by score"),
        ("low_sample, n_boot, undefined_reason, score_undefined_reason", "mixed", "searches < 20; why NULL"),
    ]
)

EXPOSURE_INSERT_COLUMNS = ["tenant_id", *exposure.EXPOSURE_COLUMNS]


@dg.asset(
    deps=[dg.AssetDep(search_daily_aggregates, partition_mapping=window_mapping)],
    automation_condition=downstream_automation,
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    pool=PARTITION_WRITES_POOL,
    group_name=GROUP,
    kinds={"postgres", "numpy"},
    description="Position-discounted exposure (1 / log2(1 + rank)) per group over the window's shown impressions, "
    "exposure ratios against the best-exposed group, skew@10 and exposure relative to score (treatment and merit "
    "ratios), with intervals and p-values from a seeded, vectorised bootstrap over searches.",
)
def rank_exposure(
    context: dg.AssetExecutionContext, database: FairnessDatabase, config: AuditConfig
) -> dg.MaterializeResult:
    settings = config.settings()
    written, lowest, lowest_merit, low, significant, searches = 0, [], [], 0, 0, 0
    sums_seconds = exposure_seconds = 0.0
    days_computed = 0
    layout = exposure.ExposureLayout.build(settings)
    missing_all: dict[str, list[str]] = {}
    last = pd.DataFrame()
    with database.connect() as conn:
        for window_end in partition_days(context):
            with partition_transaction(conn, "rank_exposure", window_end) as cur:
                missing = missing_search_days(cur, *settings.window(window_end))
                if missing:
                    missing_all[window_end.isoformat()] = [d.isoformat() for d in missing]
                    context.log.warning(f"window ending {window_end}: search_daily_aggregates lacks {len(missing)} "
                                        f"day(s): {', '.join(d.isoformat() for d in missing)}")  # fmt: skip
                started = time.perf_counter()
                sums, computed = exposure_window_sums(cur, layout, config.n_boot, config.bootstrap_seed,
                                                      *settings.window(window_end))  # fmt: skip
                sums_seconds += time.perf_counter() - started
                days_computed += len(computed)
                started = time.perf_counter()
                table = exposure.exposure_table(sums, layout, settings, n_boot=config.n_boot)
                exposure_seconds += time.perf_counter() - started
                cur.execute(q.DELETE_EXPOSURE_WINDOW, {"window_end": window_end})
                if len(table):
                    prefix = (window_end, settings.window_days, exposure.DEFAULT_TOP_K)
                    execute_values(cur, q.INSERT_EXPOSURE, _records(table, EXPOSURE_INSERT_COLUMNS, prefix))
            window_searches = sum(s.searches for s in sums.values())
            context.log.info(f"{window_end}: {window_searches} searches, {len(table)} rows")
            written += len(table)
            searches += window_searches
            if len(table):
                lowest.append(table["exposure_ratio"].min())
                lowest_merit.append(table["merit_ratio"].min())
                flagged = _flag(table, "low_exposure")
                low += int(flagged.sum())
                significant += int((flagged & _flag(table, "significant")).sum())
                last = table
    findings = last[_flag(last, "low_exposure")].sort_values("exposure_ratio") if len(last) else last
    columns = ["tenant_id", "dimension", "group", "searches", "exposure_ratio", "ratio_ci_low", "ratio_ci_high",
               "significant", "skew_at_k", "merit_ratio", "merit_significant"]  # fmt: skip
    numbers = {
        "windows": len(partition_days(context)),
        "searches": searches,
        "lowest_exposure_ratio": _min_or_nan(lowest),
        "lowest_merit_ratio": _min_or_nan(lowest_merit),
        "low_exposure_groups": low,
        "significant_low_exposure_groups": significant,
        "n_boot": config.n_boot,
        "day_sums_seconds": round(sums_seconds, 3),
        "day_sums_computed": days_computed,
        "exposure_seconds": round(exposure_seconds, 3),
        "windows_missing_upstream_days": len(missing_all),
    }
    preview = markdown_preview(findings[columns] if len(findings) else pd.DataFrame())
    metadata = table_metadata(written, EXPOSURE_SCHEMA, preview, numbers)
    if missing_all:
        metadata["missing_upstream_days"] = dg.MetadataValue.json(missing_all)
    return dg.MaterializeResult(metadata=metadata)


SLATE_SCHEMA = column_schema(
    [
        ("day, tenant_id, dimension", "key", "searches whose first shown event is on the day"),
        ("searches, assessed, too_small", "bigint", "slates; of them with >= min_slate shown candidates"),
        ("concentrated, concentrated_share", "bigint, double", "slates with > 70% from one group; / assessed"),
        ("expected_share, excess_p_value, excess_p_adjusted, excess_significant", "mixed",
         "chance share from the day's group shares; one-sided binomial test; Holm across dimensions"),
        ("top_group", "text", "the group dominating most concentrated slates"),
        ("slate_concentration_groups", "table", "per dominating group: concentrated slates, shares"),
    ]
)  # fmt: skip

SLATE_INSERT_COLUMNS = ["tenant_id", "day", *slates.SUMMARY_COLUMNS]
SLATE_GROUP_INSERT_COLUMNS = ["tenant_id", "day", *slates.DOMINANT_COLUMNS]


@dg.asset(
    deps=[search_daily_aggregates],
    automation_condition=downstream_automation,
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    pool=PARTITION_WRITES_POOL,
    group_name=GROUP,
    kinds={"postgres", "scipy"},
    description="Per tenant, day and dimension: the number and share of searches whose shown slate has more than "
    "70% of its candidates from one group, the share expected by chance, and which groups dominate.",
)
def slate_concentration(
    context: dg.AssetExecutionContext, database: FairnessDatabase, config: SlateConfig
) -> dg.MaterializeResult:
    written, highest, concentrated, assessed, significant = 0, [], 0, 0, 0
    shown_rows = []
    with database.connect() as conn:
        for day in partition_days(context):
            with partition_transaction(conn, "slate_concentration", day) as cur:
                aggregates = exposure_window(cur, day, day).assign(day=day)
                result = slates.slate_concentration(
                    aggregates, keys=("tenant_id", "day"), dimensions=DIMENSIONS, pairs=config.intersections,
                    concentration=config.concentration, min_slate=config.min_slate, alpha=config.alpha,
                )  # fmt: skip
                cur.execute(q.DELETE_SLATES_DAY, {"day": day})
                cur.execute(q.DELETE_SLATE_GROUPS_DAY, {"day": day})
                if len(result.summary):
                    prefix = (config.concentration, config.min_slate)
                    execute_values(cur, q.INSERT_SLATES, _records(result.summary, SLATE_INSERT_COLUMNS, prefix))
                if len(result.dominant):
                    execute_values(cur, q.INSERT_SLATE_GROUPS, _records(result.dominant, SLATE_GROUP_INSERT_COLUMNS,
                                                                        ()))  # fmt: skip
            summary = result.summary
            written += len(summary)
            if len(summary):
                highest.append(summary["concentrated_share"].max())
                concentrated += int(summary["concentrated"].sum())
                assessed += int(summary["assessed"].sum())
                significant += int(_flag(summary, "excess_significant").sum())
                shown_rows.append(summary[summary["concentrated"] > 0])
    findings = pd.concat(shown_rows, ignore_index=True) if shown_rows else pd.DataFrame()
    if len(findings):
        findings = findings.sort_values("concentrated_share", ascending=False)[
            ["tenant_id", "day", "dimension", "assessed", "concentrated", "concentrated_share", "expected_share",
             "excess_significant", "top_group"]
        ]  # fmt: skip
    numbers = {
        "days": len(partition_days(context)),
        "concentrated_share": max((float(v) for v in highest if pd.notna(v)), default=float("nan")),
        "concentrated_slates": concentrated,
        "assessed_slate_dimensions": assessed,
        "significant_excess_tables": significant,
    }
    return dg.MaterializeResult(metadata=table_metadata(written, SLATE_SCHEMA, markdown_preview(findings), numbers))


TREND_SCHEMA = column_schema(
    [
        ("window_end, tenant_id, stage_pair, dimension, group_value", "key", "which series (as of window_end)"),
        ("latest_ratio, windows_used, slope_per_day", "mixed", "least-squares slope of the last 14 daily windows"),
        ("days_to_threshold, adverse_now, approaching_threshold", "mixed", ">= 0.80 and reaching it within 30 days"),
        ("reference_group, n/x_current, n/x_previous", "mixed", "7-day windows ending on D and on D-7"),
        ("ratio_current, ratio_previous, ratio_change, log_change", "double", "impact ratios against this week's r"),
        ("se, z, p_value, p_adjusted, significant, worsening", "mixed", "Katz z-test of the log change; Holm/BH"),
        ("low_sample, trend_undefined_reason, wow_undefined_reason", "mixed", "n < 20 in a week; why NULL"),
    ]
)

TREND_INSERT_COLUMNS = [*TABLE_KEYS, "group", *trends.SLOPE_COLUMNS[2:], *trends.WOW_COLUMNS[1:]]


@dg.asset(
    deps=[
        dg.AssetDep(impact_ratios, partition_mapping=trend_mapping),
        dg.AssetDep("candidate_daily_stages", partition_mapping=trend_mapping),
    ],
    automation_condition=downstream_automation,
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    pool=PARTITION_WRITES_POOL,
    group_name=GROUP,
    kinds={"postgres", "scipy"},
    description="Per tenant, stage pair, dimension and group: the impact-ratio series of the daily windows ending in "
    "the last 14 days with its slope ('approaching threshold': above 0.80 and falling towards it), and the "
    "week-over-week change between the non-overlapping 7-day windows with a significance test ('worsening').",
)
def fairness_trends(
    context: dg.AssetExecutionContext, database: FairnessDatabase, config: TrendConfig
) -> dg.MaterializeResult:
    settings = config.settings()
    weekly = dataclasses.replace(settings, window_days=WEEK_DAYS)
    written, worsening, approaching, reused_weeks = 0, 0, 0, 0
    missing_all: dict[str, list[str]] = {}
    last = pd.DataFrame()
    with database.connect() as conn:
        for as_of in partition_days(context):
            first_day = as_of - timedelta(days=trends.DEFAULT_SLOPE_WINDOWS - 1)
            with partition_transaction(conn, "fairness_trends", as_of) as cur:
                missing = missing_summary_days(cur, first_day, as_of)
                if missing:
                    missing_all[as_of.isoformat()] = [d.isoformat() for d in missing]
                    context.log.warning(f"trends as of {as_of}: candidate_daily_stages lacks {len(missing)} day(s)")
                series = _fetch(cur, q.IMPACT_SERIES, {"first_day": first_day, "last_day": as_of,
                                                       "window_days": settings.window_days})  # fmt: skip
                # the earlier week first: the days and weeks this writes are locked in ascending order
                previous = week_counts(cur, weekly, as_of - timedelta(days=WEEK_DAYS))
                current = week_counts(cur, weekly, as_of, reuse=False)
                reused_weeks += int(previous.attrs["stored"])
                table = trends_table(series, current, previous, settings, as_of, config)
                cur.execute(q.DELETE_TRENDS_WINDOW, {"window_end": as_of})
                if len(table):
                    execute_values(cur, q.INSERT_TRENDS, _records(table, TREND_INSERT_COLUMNS,
                                                                  (as_of, settings.window_days)))  # fmt: skip
            written += len(table)
            if len(table):
                worsening += int(_flag(table, "worsening").sum())
                approaching += int(_flag(table, "approaching_threshold").sum())
                last = table
    flagged = _flag(last, "worsening") | _flag(last, "approaching_threshold") if len(last) else pd.Series(dtype=bool)
    findings = last[flagged] if len(last) else last
    if len(findings):
        findings = findings.assign(headline=findings["stage_pair"] != HEADLINE_STAGE_PAIR).sort_values(
            ["headline", "worsening", "p_adjusted"], ascending=[True, False, True]
        )[["tenant_id", "stage_pair", "dimension", "group", "latest_ratio", "slope_per_day", "ratio_previous",
           "ratio_current", "p_adjusted", "worsening", "approaching_threshold"]]  # fmt: skip
    numbers = {
        "windows": len(partition_days(context)),
        "previous_weeks_reused": reused_weeks,
        "worsening_series": worsening,
        "approaching_threshold_series": approaching,
        "windows_missing_upstream_days": len(missing_all),
    }
    metadata = table_metadata(written, TREND_SCHEMA, markdown_preview(findings), numbers)
    if missing_all:
        metadata["missing_upstream_days"] = dg.MetadataValue.json(missing_all)
    return dg.MaterializeResult(metadata=metadata)


def week_counts(cur, weekly: AnalysisSettings, week_end: date, *, reuse: bool = True) -> pd.DataFrame:
    """Group counts (``metrics.window.group_counts``) of the 7-day window ending on ``week_end``: the stored ones when
    ``reuse`` and still valid (``attrs["stored"]`` True), otherwise counted from candidate_daily_stages and stored for
    the trends run a week later."""
    key = {"week_end": week_end, "first_day": weekly.window(week_end)[0], "settings_key": _week_settings_key(weekly)}
    if reuse:
        cur.execute(q.WEEK_COUNTS, key)
        rows = cur.fetchall()
        if rows:
            counts = pd.DataFrame(rows, columns=[*TABLE_KEYS, "group", "n", "x"]).astype({"n": "int64", "x": "int64"})
            counts.attrs["stored"] = True
            return counts
    counts = group_counts(window_cells_from_arrays(cur, weekly, week_end), weekly)
    lock_partition(cur, "trend_week_counts", week_end)
    cur.execute(q.DELETE_WEEK_COUNTS, key)
    if len(counts):
        execute_values(cur, q.INSERT_WEEK_COUNTS, _records(counts, [*TABLE_KEYS, "group", "n", "x"],
                                                           (week_end, key["settings_key"])))  # fmt: skip
    counts.attrs["stored"] = False
    return counts


def _week_settings_key(weekly: AnalysisSettings) -> str:
    """What the stored week counts depend on: the stage pairs and the analysed dimensions."""
    pairs = ",".join(f"{baseline}>{selection}" for baseline, selection in weekly.stage_pairs)
    return f"{pairs};{'+'.join(weekly.dimensions)};intersections={weekly.intersections}"


def trends_table(
    series: pd.DataFrame,
    current: pd.DataFrame,
    previous: pd.DataFrame,
    settings: AnalysisSettings,
    as_of: date,
    config: TrendConfig,
) -> pd.DataFrame:
    """``audits.trends.fairness_trends`` (slopes joined with the week-over-week test), with the slopes computed by
    :func:`audits.trends.ratio_slopes`; integer counts stay nullable. Empty frame when there is nothing."""
    if series.empty and current.empty:
        return pd.DataFrame(columns=TREND_INSERT_COLUMNS)
    keys = list(TABLE_KEYS)
    slopes = trends.ratio_slopes(series, as_of=as_of, keys=keys, horizon_days=config.horizon_days,
                           min_points=config.min_points, threshold=settings.threshold)  # fmt: skip
    wow = trends.week_over_week(current, previous, settings, keys=keys)
    table = slopes.merge(wow, on=[*keys, "group"], how="outer", sort=True)
    for column in ("adverse_now", "approaching_threshold", "significant", "worsening"):
        table[column] = table[column].astype("boolean")
    for column in ("windows_used", "n_current", "x_current", "n_previous", "x_previous"):
        table[column] = table[column].astype("Int64")
    return table.reset_index(drop=True)
