"""Materialise a range of days through Dagster from the command line (``fairness-pipeline run``).

A window ending on day D needs the candidate days D-29 .. D. One run has one partition range, so a range of days is
served by one run of the event layer (per UTC day, every tenant) for every day the windows read that is not yet
summarised (and for the requested days themselves, whose events may have changed), then one run of the metric layer
per tenant (tenant-days), each tenant's result its own: one tenant's failure leaves the others'. With a
Dagster daemon running on the instance the range is submitted to it as one asset backfill; otherwise the runs execute
here, recorded in the instance as one backfill (``cli/backfill.py``). Either way each run is watched from a thread
that reads its event log, so the command shows the steps done, the asset at work and the partitions done.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from fairness_pipeline.defs.tags import DAGSTER_RANGE_END_TAG, DAGSTER_RANGE_START_TAG
from fairness_pipeline.metrics.window import DEFAULT_ANALYSIS

UI_URL_ENV = "FAIRNESS_UI_URL"
DEFAULT_UI_URL = "http://127.0.0.1:3000"
POLL_SECONDS = 1.0
HEARTBEAT_TOLERANCE_SECONDS = 60

METRIC_ASSETS = (
    "selection_rate_frames",
    "impact_ratios",
    "bias_metrics",
    "scoring_rate_ratios",
    "rank_exposure",
    "fairness_trends",
    "risk_classification",
    "fairness_reports",
)
"""Assets whose config takes ``window_days`` (``slate_concentration`` is per day and has no window)."""
PROFILE_ASSETS = ("risk_classification", "fairness_reports")
"""Assets whose config takes the risk ``profile``."""


@dataclass(frozen=True)
class RunSummary:
    job_name: str
    first_day: date
    last_day: date
    run_id: str
    success: bool
    seconds: float = 0.0
    steps: int = 0
    tenant: str | None = None


@dataclass(frozen=True)
class PlannedRun:
    """One run of a range: a job over ``first_day .. last_day``, of one tenant's partitions when ``tenant`` is set."""

    job_name: str
    first_day: date
    last_day: date
    run_config: dict
    tenant: str | None = None

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def range_tags(self) -> dict[str, str]:
        """Dagster's partition range tags of the run (tenant-day keys for a tenant's run)."""
        from fairness_pipeline.defs.partitions import tenant_day_key

        if self.tenant is None:
            first, last = self.first_day.isoformat(), self.last_day.isoformat()
        else:
            first, last = tenant_day_key(self.tenant, self.first_day), tenant_day_key(self.tenant, self.last_day)
        return {DAGSTER_RANGE_START_TAG: first, DAGSTER_RANGE_END_TAG: last}

    @property
    def label(self) -> str:
        return self.job_name if self.tenant is None else f"{self.job_name} {self.tenant}"


@dataclass
class RangeProgress:
    """What a watcher knows of the range at one moment; ``text()`` is the one-line status."""

    run_index: int
    runs: int
    job_name: str
    steps_total: int
    days: int
    partitions_before: int
    partitions_total: int
    steps_done: set[str] = field(default_factory=set)
    at_work: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    finished: bool = False

    @property
    def partitions_done(self) -> int:
        return self.partitions_before + len(self.steps_done) * self.days

    def text(self) -> str:
        idle = "waiting for the daemon's next run" if self.finished else "starting"
        working = ", ".join(self.at_work) or idle
        return (
            f"run {self.run_index + 1} of {self.runs} ({self.job_name}): {len(self.steps_done)} of {self.steps_total} "
            f"steps, {self.partitions_done:,} of {self.partitions_total:,} asset-partitions; at work: {working} "
            f"({time.monotonic() - self.started:.0f} s)"
        )


def ui_url() -> str:
    """The UI address for printed links: ``FAIRNESS_UI_URL``, else the one ``fairness-pipeline ui`` announced on this
    ``FAIRNESS_HOME``, else the default port on this machine."""
    from fairness_pipeline.ui import announced_ui_url

    return (os.environ.get(UI_URL_ENV) or announced_ui_url() or DEFAULT_UI_URL).rstrip("/")


def days_to_summarise(summarised: set[date], first_day: date, last_day: date, window_days: int) -> tuple[date, date]:
    """The contiguous range of event days to (re)materialise before computing windows ``first_day .. last_day``."""
    earliest_needed = first_day - timedelta(days=window_days - 1)
    lacking = [
        earliest_needed + timedelta(days=i)
        for i in range((first_day - earliest_needed).days)
        if earliest_needed + timedelta(days=i) not in summarised
    ]
    return (min(lacking) if lacking else first_day), last_day


def _watch(instance, run_id: str, progress: RangeProgress, stop: threading.Event, show: Callable) -> None:
    """Follow a run's step events until ``stop`` is set, calling ``show(progress, finished_step)``; every step
    is reported once, the last ones by a final reading after the run has ended."""
    from dagster import DagsterEventType

    seen, stopping = 0, False
    while not stopping:
        stopping = stop.wait(POLL_SECONDS)  # one more reading after the run ends: its last steps
        try:
            entries = instance.all_logs(
                run_id,
                of_type={DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE},
            )
        except Exception:  # the event log is being written; try again on the next tick
            continue
        for entry in entries[seen:]:
            step, kind = entry.step_key, entry.dagster_event.event_type
            if kind == DagsterEventType.STEP_START:
                progress.at_work.append(step)
                show(progress, None)
                continue
            if step in progress.at_work:
                progress.at_work.remove(step)
            if kind == DagsterEventType.STEP_SUCCESS:
                progress.steps_done.add(step)
            show(progress, (step, kind == DagsterEventType.STEP_SUCCESS))
        seen = len(entries)
        show(progress, None)


@dataclass(frozen=True)
class RangePlan:
    """The runs that materialise a range, each job's steps (``assets``: its ops, one per asset or multi-asset) and
    the asset keys they materialise (``keys``)."""

    defs: object
    runs: list[PlannedRun]
    assets: dict[str, list[str]]
    keys: dict[str, list[str]]

    @property
    def targets(self) -> list[tuple[list[str], date, date, list[str]]]:
        """The backfill's target: every asset of each run (a multi-asset's whole set: the daemon launches it whole)
        over its days, of its tenant."""
        return [(self.keys[r.job_name], r.first_day, r.last_day, [r.tenant] if r.tenant else []) for r in self.runs]

    @property
    def partitions_total(self) -> int:
        return sum(len(self.assets[r.job_name]) * r.days for r in self.runs)


def job_asset_names(job) -> list[str]:
    """The assets a job materialises (a multi-asset's several, where ``job.graph.nodes`` has its one op)."""
    return sorted(key.to_user_string() for key in job.asset_layer.selected_asset_keys)


def plan_range(
    first_day: date, last_day: date, window_days: int, database, profile: str, tenants: list[str]
) -> RangePlan:
    """The event layer for the days the windows of ``first_day .. last_day`` lack (and those days themselves), then
    the metric layer for ``first_day .. last_day``, one run per tenant of ``tenants``; ``ValueError`` for a range
    before the first partition."""
    from fairness_pipeline.definitions import build_definitions
    from fairness_pipeline.defs.partitions import daily_partitions
    from fairness_pipeline.store import analysis
    from fairness_pipeline.store.schema import transaction

    if last_day < first_day:
        raise ValueError(f"--end {last_day} is before --start {first_day}")
    partitions_start = daily_partitions.start.date()
    if first_day < partitions_start:
        raise ValueError(
            f"--start {first_day} is before the first partition {partitions_start} (FAIRNESS_PARTITIONS_START)"
        )
    defs = build_definitions(database)
    with database.connect() as conn, transaction(conn) as cur:
        summarised = analysis.summarised_days(cur, first_day - timedelta(days=window_days), last_day)
    event_first, event_last = days_to_summarise(summarised, first_day, last_day, window_days)
    event_first = max(event_first, partitions_start)

    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # the instance keeps the full event log
    ops = {name: {"config": {"window_days": window_days}} for name in METRIC_ASSETS}
    for name in PROFILE_ASSETS:
        ops[name]["config"]["profile"] = profile
    runs = [PlannedRun("event_days_job", event_first, event_last, quiet)]
    runs += [PlannedRun("metrics_job", first_day, last_day, {"ops": ops, **quiet}, tenant) for tenant in tenants]
    jobs = {name: defs.resolve_job_def(name) for name in ("event_days_job", "metrics_job")}
    assets = {name: [node.name for node in job.graph.nodes] for name, job in jobs.items()}
    keys = {
        name: sorted(key.to_user_string() for key in job.asset_layer.selected_asset_keys) for name, job in jobs.items()
    }
    return RangePlan(defs, runs, assets, keys)


def range_title(first_day: date, last_day: date) -> str:
    return f"fairness_pipeline_run_{first_day:%Y%m%d}_{last_day:%Y%m%d}"


def range_tenants(instance, database, wanted: list[str] | None) -> list[str]:
    """The tenants of a range run: ``wanted`` (each must have events), or every tenant with events; all registered
    as tenant partitions of the instance first. ``ValueError`` names a tenant without events."""
    from datetime import UTC, datetime

    from fairness_pipeline.defs.tenants import register_tenants
    from fairness_pipeline.store import tenants as tenant_store
    from fairness_pipeline.store.schema import transaction

    with database.connect() as conn, transaction(conn) as cur:
        stored = tenant_store.tenants_inserted(cur, None, datetime.now(UTC))
    unknown = sorted(set(wanted or ()) - set(stored))
    if unknown:
        raise ValueError(f"no events of tenant(s) {', '.join(unknown)}; known: {', '.join(stored) or 'none'}")
    register_tenants(instance, stored)
    return sorted(set(wanted)) if wanted else stored


def run_range(
    instance,
    first_day: date,
    last_day: date,
    *,
    window_days: int = DEFAULT_ANALYSIS.window_days,
    database=None,
    profile: str = "default",
    tenants: list[str] | None = None,
    show: Callable[[RangeProgress, tuple[str, bool] | None], None] | None = None,
    on_start: Callable[[str, list[str]], None] | None = None,
) -> list[RunSummary]:
    """Materialise ``first_day .. last_day`` (and the event days their windows lack) through Dagster in this
    process, as one backfill of the instance: the event layer, then each tenant's windows (``tenants``, default every
    tenant with events). A tenant whose run fails leaves the other tenants' runs to go on.

    ``database`` is a ``FairnessDatabase`` resource (default: FAIRNESS_DATABASE_URL or the embedded server);
    ``profile`` the risk profile's name (a profile file is read through ``$FAIRNESS_RISK_PROFILES``). ``on_start``
    receives the backfill id and the run ids before the first run; ``show`` the progress while they run.
    """
    from dagster._core.utils import make_new_run_id

    from fairness_pipeline.cli.backfill import BACKFILL_ID_TAG, LocalBackfill
    from fairness_pipeline.defs.resources import FairnessDatabase

    database = database or FairnessDatabase()
    ranged = plan_range(first_day, last_day, window_days, database, profile, range_tenants(instance, database, tenants))
    plan, assets = ranged.runs, ranged.assets
    jobs = {planned.job_name: ranged.defs.resolve_job_def(planned.job_name) for planned in plan}
    backfill = LocalBackfill(
        instance, ranged.defs.resolve_asset_graph(), ranged.targets, title=range_title(first_day, last_day)
    )
    run_ids = [make_new_run_id() for _ in plan]
    if on_start:
        on_start(backfill.backfill_id, run_ids)
    total = ranged.partitions_total
    summaries: list[RunSummary] = []
    done = 0
    for index, (planned, run_id) in enumerate(zip(plan, run_ids, strict=True)):
        job_name, days = planned.job_name, planned.days
        progress = RangeProgress(index, len(plan), planned.label, len(assets[job_name]), days, done, total)
        stop = threading.Event()
        watcher = threading.Thread(
            target=_watch, args=(instance, run_id, progress, stop, show or (lambda *_: None)), daemon=True
        )
        watcher.start()
        began = time.monotonic()
        try:
            result = jobs[job_name].execute_in_process(
                run_config=planned.run_config,
                instance=instance,
                run_id=run_id,
                tags={**planned.range_tags(), BACKFILL_ID_TAG: backfill.backfill_id},
                raise_on_error=False,
            )
            success = result.success
        except BaseException:
            backfill.run_ended(index, False)
            backfill.close(False)
            raise
        finally:
            stop.set()
            watcher.join()
        backfill.run_ended(index, success, downstream=planned.tenant is None)
        done += len(assets[job_name]) * days
        seconds = time.monotonic() - began
        summaries.append(
            RunSummary(
                job_name,
                planned.first_day,
                planned.last_day,
                run_id,
                success,
                seconds,
                len(progress.steps_done),
                planned.tenant,
            )
        )
        if not success and planned.tenant is None:  # without the event layer no tenant's windows can run
            break
    backfill.close(all(s.success for s in summaries))
    return summaries


def daemon_running(instance) -> bool:
    """True when a Dagster daemon serves this instance: its backfill daemon (and its run queue, if the instance
    queues runs) sent a heartbeat in the last 30 s (Dagster's interval) plus ``HEARTBEAT_TOLERANCE_SECONDS``, with no
    error in it. Dagster's own tolerance (30 minutes) would count a daemon stopped minutes ago as running."""
    from dagster._daemon.controller import get_daemon_statuses
    from dagster._daemon.daemon import BackfillDaemon
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

    needed = [BackfillDaemon.daemon_type(), QueuedRunCoordinatorDaemon.daemon_type()]
    try:
        statuses = get_daemon_statuses(instance, needed, heartbeat_tolerance_seconds=HEARTBEAT_TOLERANCE_SECONDS)
    except Exception:  # no heartbeat table or storage unreachable: no daemon to hand the range to
        return False
    backfill = statuses[BackfillDaemon.daemon_type()]
    return bool(backfill.required and backfill.healthy) and all(s.healthy or not s.required for s in statuses.values())


def submit_range(
    instance,
    first_day: date,
    last_day: date,
    *,
    window_days: int = DEFAULT_ANALYSIS.window_days,
    database=None,
    profile: str = "default",
    tenants: list[str] | None = None,
    show: Callable[[RangeProgress, tuple[str, bool] | None], None] | None = None,
    on_start: Callable[[str, list[str]], None] | None = None,
    on_run: Callable[[str], None] | None = None,
) -> tuple[list[RunSummary], bool]:
    """Submit the range that ``run_range`` would run here as an asset backfill for the daemon (same assets, days
    and run config), then follow it until it ends: ``on_start`` gets its id, ``on_run`` each run's id as the daemon
    launches it, ``show`` the progress. Returns the runs' summaries and whether the backfill succeeded."""
    from fairness_pipeline.cli.backfill import submit_backfill
    from fairness_pipeline.defs.resources import FairnessDatabase

    database = database or FairnessDatabase()
    ranged = plan_range(first_day, last_day, window_days, database, profile, range_tenants(instance, database, tenants))
    run_config = ranged.runs[-1].run_config  # the metric layer's; event-layer runs ignore its ops
    backfill_id = submit_backfill(
        instance, ranged.defs.resolve_asset_graph(), ranged.targets, range_title(first_day, last_day), run_config
    )
    if on_start:
        on_start(backfill_id, [])
    return follow_backfill(instance, backfill_id, ranged, show or (lambda *_: None), on_run or (lambda _: None))


def _run_range(run) -> tuple[tuple[str | None, date], tuple[str | None, date]]:
    """(tenant, day) of the first and last partition of a daemon's run (tenant None: a day partition)."""
    from dagster._core.storage.tags import PARTITION_NAME_TAG

    from fairness_pipeline.defs.partitions import split_partition_key

    tags = run.tags
    first = tags.get(DAGSTER_RANGE_START_TAG) or tags[PARTITION_NAME_TAG]
    return split_partition_key(first), split_partition_key(tags.get(DAGSTER_RANGE_END_TAG) or first)


def _run_days(run) -> tuple[date, date]:
    (_, first), (_, last) = _run_range(run)
    return first, last


def _run_tenants(run) -> str:
    """The tenants of a daemon's run for its progress line: one, a first..last range, or empty (day partitions)."""
    (first, _), (last, _) = _run_range(run)
    if first is None:
        return ""
    return f"; {first}" if first == last else f"; {first}..{last}"


def follow_backfill(
    instance, backfill_id: str, ranged: RangePlan, show: Callable, on_run: Callable[[str], None]
) -> tuple[list[RunSummary], bool]:
    """Watch a daemon's backfill: each run's steps as they start and end, until the backfill is over."""
    import dagster as dg
    from dagster._core.execution.backfill import BULK_ACTION_TERMINAL_STATUSES, BulkActionStatus

    from fairness_pipeline.cli.backfill import BACKFILL_ID_TAG

    def describe(names: frozenset[str]) -> tuple[str, int]:
        """The run's label (its job in the plan, or the part of it the daemon launched) and its step count."""
        for name, keys in ranged.keys.items():
            if names == set(keys):
                return name, len(ranged.assets[name])
            if names < set(keys):
                return f"{name}: {len(names)} of {len(keys)} assets", len(names)
        return f"{len(names)} asset(s)", len(names)

    watched: dict[str, tuple[threading.Event, threading.Thread, RangeProgress]] = {}
    summaries: dict[str, RunSummary] = {}
    done = 0
    latest: RangeProgress | None = None
    try:
        while True:
            if latest is not None:
                show(latest, None)  # the status line keeps moving between the daemon's ticks
            backfill = instance.get_backfill(backfill_id)
            records = instance.get_run_records(dg.RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}), ascending=True)
            for record in records:
                run = record.dagster_run
                if run.run_id not in watched:
                    names = frozenset(key.to_user_string() for key in run.asset_selection or ())
                    first, last = _run_days(run)
                    label, steps = describe(names)
                    progress = RangeProgress(
                        len(watched),
                        max(len(ranged.runs), len(watched) + 1),
                        label + _run_tenants(run),
                        steps,
                        (last - first).days + 1,
                        done,
                        ranged.partitions_total,
                    )
                    stop = threading.Event()
                    thread = threading.Thread(target=_watch, args=(instance, run.run_id, progress, stop, show))
                    thread.daemon = True
                    thread.start()
                    watched[run.run_id] = (stop, thread, progress)
                    latest = progress
                    on_run(run.run_id)
                if run.is_finished and run.run_id not in summaries:
                    stop, thread, progress = watched[run.run_id]
                    stop.set()
                    thread.join()
                    progress.finished = True
                    first, last = _run_days(run)
                    began = record.start_time or record.create_timestamp.timestamp()
                    seconds = (record.end_time or time.time()) - began
                    summaries[run.run_id] = RunSummary(
                        progress.job_name, first, last, run.run_id, run.is_success, seconds, len(progress.steps_done)
                    )
                    if run.is_success:
                        done += progress.steps_total * progress.days
            if backfill.status in BULK_ACTION_TERMINAL_STATUSES and len(summaries) == len(watched):
                return list(summaries.values()), backfill.status == BulkActionStatus.COMPLETED_SUCCESS
            time.sleep(POLL_SECONDS)
    finally:
        for stop, _, _ in watched.values():
            stop.set()


# --- the command's side: the instance, the profile option, what is printed -------------------------------------------


def dagster_instance():
    """The project's Dagster instance (``$FAIRNESS_HOME/dagster_home``, storage on the project's PostgreSQL)."""
    from fairness_pipeline.store.connection import child_environment

    os.environ.update(child_environment())
    import dagster as dg

    return dg.DagsterInstance.get()


def resolve_profile(value: str) -> str:
    """The profile name for ``--profile``: a shipped name, or a YAML file holding exactly one profile (whose path
    then goes to ``$FAIRNESS_RISK_PROFILES`` so that the assets read it); ``ProfileError`` otherwise."""
    from pathlib import Path

    from fairness_pipeline.risk.profiles import PROFILES_ENV, ProfileError, get_profile, load_profile_file

    path = Path(value)
    if path.suffix.lower() in (".yaml", ".yml") or path.is_file():
        profiles = load_profile_file(path)
        if len(profiles) != 1:
            raise ProfileError(
                f"{path} holds {len(profiles)} profiles ({', '.join(sorted(profiles))}); keep one per file, or set "
                f"{PROFILES_ENV}={path} and give its name to --profile"
            )
        os.environ[PROFILES_ENV] = str(path.resolve())
        return next(iter(profiles))
    return get_profile(value).name


def run_days(
    first_day: date,
    last_day: date,
    profile: str = "default",
    *,
    local: bool = False,
    tenants: list[str] | None = None,
) -> bool:
    """Run the range (of ``tenants``, default every tenant), printing the UI links first, progress while it runs and a
    summary at the end: as a backfill submitted to the Dagster daemon when one is running (unless ``local``),
    otherwise in this process."""
    from fairness_pipeline.cli.output import EXIT_USAGE, fail
    from fairness_pipeline.cli.printing import console, print_run_summary, progress_printer

    instance = dagster_instance()
    base = ui_url()
    use_daemon = not local and daemon_running(instance)
    backfill_link: list[str] = []

    def announce(backfill_id: str, run_ids: list[str]) -> None:
        backfill_link.append(f"{base}/runs/b/{backfill_id}?tab=partitions")
        console.print(f"backfill {backfill_id}: {backfill_link[0]}", highlight=False)
        if use_daemon:
            console.print("  submitted to the Dagster daemon, which launches its runs", highlight=False)
        for run_id in run_ids:
            announce_run(run_id)

    def announce_run(run_id: str) -> None:
        console.print(f"  run {run_id}: {base}/runs/{run_id}", highlight=False)

    with progress_printer(f"materialising {first_day} .. {last_day} through Dagster") as show:
        try:
            if use_daemon:
                summaries, success = submit_range(
                    instance,
                    first_day,
                    last_day,
                    profile=profile,
                    tenants=tenants,
                    show=show,
                    on_start=announce,
                    on_run=announce_run,
                )
            else:
                summaries = run_range(
                    instance, first_day, last_day, profile=profile, tenants=tenants, show=show, on_start=announce
                )
                success = all(summary.success for summary in summaries)
        except ValueError as exc:
            fail(str(exc), EXIT_USAGE)
        except KeyboardInterrupt:
            if not (use_daemon and backfill_link):
                raise
            console.print(
                f"stopped following; the backfill goes on in the daemon: {backfill_link[0]} "
                "(`fairness-pipeline ui` shows it)",
                highlight=False,
            )
            raise SystemExit(130) from None
    print_run_summary(summaries)
    return success
