"""Two writers of the same partition at once give the result of one: the partition lock, the keys of migration 013,
two real Dagster runs of the same days at once, and the instance's concurrency and run-monitoring settings."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import psycopg2
import pytest
from psycopg2 import errors

from fairness_pipeline import synthetic
from fairness_pipeline.cli.runs import run_range
from fairness_pipeline.defs.partitions import PARTITION_WRITES_POOL
from fairness_pipeline.defs.resources import FairnessDatabase
from fairness_pipeline.ingest.frames import load_frames
from fairness_pipeline.store import partition_lock as lock_queries
from fairness_pipeline.store.connection import child_environment
from fairness_pipeline.store.migrations import migrate, migrations_dir
from fairness_pipeline.store.partition_lock import (
    PartitionLockError,
    lock_partition,
    partition_lock_key,
    partition_transaction,
    tenant_writer,
)

DAY = date(2026, 3, 4)
WAIT = 20.0
"""Seconds a test waits for something that should happen at once (a slow CI machine, never a passing condition)."""


def _held_locks(url: str) -> pd.DataFrame:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(lock_queries.HELD_PARTITION_LOCKS)
            return pd.DataFrame(cur.fetchall(), columns=["pid", "granted", "classid", "objid"])
    finally:
        conn.close()


class _Writer(threading.Thread):
    """A second connection that runs ``work(cur)`` inside the partition transaction of (writer, day)."""

    def __init__(self, url: str, writer: str, day: date, work=None, tenant: str | None = None) -> None:
        super().__init__(daemon=True)
        self.url, self.writer, self.day, self.work, self.tenant = url, writer, day, work, tenant
        self.locked = threading.Event()
        self.pid: int | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        conn = psycopg2.connect(self.url)
        try:
            self.pid = conn.get_backend_pid()
            with partition_transaction(conn, self.writer, self.day, self.tenant) as cur:
                self.locked.set()
                if self.work:
                    self.work(cur)
        except BaseException as error:  # reported to the test thread
            self.error = error
        finally:
            conn.close()


def test_second_writer_waits_for_the_first_to_commit_and_pg_locks_shows_it(db_url: str, conn) -> None:
    with partition_transaction(conn, "impact_ratios", DAY) as cur:
        key = partition_lock_key(cur, "impact_ratios", DAY)
        waiter = _Writer(db_url, "impact_ratios", DAY)
        waiter.start()
        other_day = _Writer(db_url, "impact_ratios", DAY + timedelta(days=1))
        other_writer = _Writer(db_url, "bias_metrics", DAY)
        for independent in (other_day, other_writer):
            independent.start()
            assert independent.locked.wait(WAIT), "another day or writer does not wait"
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            locks = _held_locks(db_url)
            if (~locks["granted"]).any():
                break
            time.sleep(0.05)
        assert not waiter.locked.is_set()
        same_key = locks[(locks["classid"] == key[0]) & (locks["objid"] == key[1])]
        assert same_key[["pid", "granted"]].values.tolist() == [
            [conn.get_backend_pid(), True],
            [waiter.pid, False],
        ]
        time.sleep(0.3)
        assert not waiter.locked.is_set(), "the lock is held until the transaction ends"
    assert waiter.locked.wait(WAIT), "the commit released the lock"
    for thread in (waiter, other_day, other_writer):
        thread.join(WAIT)
        assert thread.error is None
    assert _held_locks(db_url).empty


def _waits(url: str, writer: _Writer) -> bool:
    """Start ``writer`` and say whether it waits (True: a lock request of its backend is not granted) or takes its
    lock within a second (False)."""
    writer.start()
    if writer.locked.wait(1.0):
        return False
    locks = _held_locks(url)
    return bool((~locks["granted"] & (locks["pid"] == writer.pid)).any())


def test_tenant_day_writes_of_other_tenants_run_at_once_and_a_whole_day_write_waits(db_url: str, conn) -> None:
    with partition_transaction(conn, "impact_ratios", DAY, tenant="acme"):
        other_tenant = _Writer(db_url, "impact_ratios", DAY, tenant="beta")
        assert not _waits(db_url, other_tenant)
        same_tenant = _Writer(db_url, "impact_ratios", DAY, tenant="acme")
        assert _waits(db_url, same_tenant)
        whole_day = _Writer(db_url, "impact_ratios", DAY)
        assert _waits(db_url, whole_day)
        time.sleep(0.3)
        assert not same_tenant.locked.is_set() and not whole_day.locked.is_set()
    for thread in (other_tenant, same_tenant, whole_day):
        thread.join(WAIT)
        assert thread.locked.is_set() and thread.error is None
    assert _held_locks(db_url).empty

    with partition_transaction(conn, "impact_ratios", DAY):
        tenant_writer = _Writer(db_url, "impact_ratios", DAY, tenant="acme")
        assert _waits(db_url, tenant_writer)
    tenant_writer.join(WAIT)
    assert tenant_writer.locked.is_set() and tenant_writer.error is None


def test_key_is_hashtext_of_the_writer_and_the_day_number(conn) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT hashtext('impact_ratios')")
        (hashed,) = cur.fetchone()
        assert partition_lock_key(cur, "impact_ratios", DAY) == (hashed & 0xFFFFFFFF, (DAY - date(1970, 1, 1)).days)
    conn.rollback()


def test_lock_refuses_autocommit_and_snapshot_isolation(conn) -> None:
    conn.autocommit = True
    with conn.cursor() as cur, pytest.raises(PartitionLockError, match="autocommit"):
        lock_partition(cur, "impact_ratios", DAY)
    conn.autocommit = False
    conn.set_session(isolation_level="REPEATABLE READ")
    with pytest.raises(PartitionLockError, match="REPEATABLE READ"), partition_transaction(conn, "impact_ratios", DAY):
        pass


SLATE_ROW = """
INSERT INTO slate_concentration (day, tenant_id, dimension, searches, assessed, too_small, concentrated, concentration,
    min_slate)
VALUES (%(day)s, 't', 'company_tier', %(searches)s, %(searches)s, 0, 1, 0.7, 5)
"""


def _replace_slates(searches: int):
    def work(cur) -> None:
        cur.execute("DELETE FROM slate_concentration WHERE day = %(day)s", {"day": DAY})
        cur.execute(SLATE_ROW, {"day": DAY, "searches": searches})

    return work


def test_waiting_writer_replaces_the_rows_of_the_first_instead_of_a_unique_violation(db_url: str, conn) -> None:
    """The asset pattern (delete the day, insert it) in two connections, the first transaction held open."""
    with partition_transaction(conn, "slate_concentration", DAY) as cur:
        _replace_slates(10)(cur)
        second = _Writer(db_url, "slate_concentration", DAY, _replace_slates(20))
        second.start()
        time.sleep(0.5)
        assert not second.locked.is_set()
    second.join(WAIT)
    assert second.error is None
    with conn.cursor() as cur:
        cur.execute("SELECT searches FROM slate_concentration WHERE day = %(day)s", {"day": DAY})
        assert cur.fetchall() == [(20,)]
    conn.rollback()


def test_without_the_lock_the_same_writes_die_on_the_key(db_url: str, conn) -> None:
    """What the lock prevents: the second delete cannot see the first's uncommitted rows, its insert then collides."""
    with conn, conn.cursor() as cur:
        _replace_slates(10)(cur)
        failure: list[BaseException] = []

        def unlocked() -> None:
            other = psycopg2.connect(db_url)
            try:
                with other, other.cursor() as other_cur:
                    _replace_slates(20)(other_cur)
            except BaseException as error:
                failure.append(error)
            finally:
                other.close()

        thread = threading.Thread(target=unlocked, daemon=True)
        thread.start()
        time.sleep(0.5)
    thread.join(WAIT)
    assert len(failure) == 1 and isinstance(failure[0], errors.UniqueViolation)


# --- migration 013 --------------------------------------------------------------------------------------------------

SEARCH_ROW = """
INSERT INTO search_daily_aggregates (tenant_id, day, search_id, search_number, company_tier, experience_band,
    specialty, shown, ranked, weight_sum, top_k, scored, score_sum, scored_weight_sum, merit_weight_sum)
VALUES ('t', %(day)s, %(search)s, 1, %(tier)s, '0-3', NULL, 1, 1, 1.0, 1, 1, 0.5, 1.0, 1.0)
"""


def test_migration_013_removes_doubled_rows_and_keys_the_tables(empty_db_url: str, tmp_path: Path) -> None:
    before = tmp_path / "migrations"
    before.mkdir()
    for path in migrations_dir().glob("*.sql"):
        if int(path.name[:3]) < 13:
            shutil.copy(path, before / path.name)
    conn = psycopg2.connect(empty_db_url)
    try:
        migrate(conn, before)
        doubled, clean = DAY, DAY + timedelta(days=1)
        with conn, conn.cursor() as cur:
            rows = [(doubled, "s1", "faang"), (doubled, "s1", None), (doubled, "s2", None), (clean, "s1", None)]
            for day, search, tier in rows + rows[:3]:  # the first day stored twice, as two racing runs did
                cur.execute(SEARCH_ROW, {"day": day, "search": search, "tier": tier})
            cur.execute(
                "INSERT INTO search_daily_aggregates_days (day, searches, aggregate_rows, tenants) "
                "VALUES (%s, 4, 6, '{t}'), (%s, 1, 1, '{t}')",
                (doubled, clean),
            )
            for day in (doubled, clean):
                cur.execute(
                    "INSERT INTO exposure_day_sums (tenant_id, day, layout_key, n_boot, bootstrap_seed, searches, "
                    "totals, shown, group_searches) VALUES ('t', %s, 1, 0, 0, 1, '', '', '')",
                    (day,),
                )
            cur.execute(
                "INSERT INTO selection_events (event_id, timestamp, candidate_id, event_type, search_id, tenant_id, "
                "user_id_hash) VALUES ('e1', '2026-03-04 10:00+00', 'c1', 'shown', 's1', 't', 'u')"
            )
            for _ in range(2):
                cur.execute("INSERT INTO quarantined_selection_events SELECT e.*, ARRAY['x'] FROM selection_events e")
        migrate(conn)
        with conn.cursor() as cur:
            cur.execute(
                "SELECT day, search_id, company_tier FROM search_daily_aggregates ORDER BY day, search_id, company_tier"
            )
            assert cur.fetchall() == [
                (doubled, "s1", "faang"),
                (doubled, "s1", None),
                (doubled, "s2", None),
                (clean, "s1", None),
            ]
            cur.execute("SELECT day, searches, aggregate_rows FROM search_daily_aggregates_days ORDER BY day")
            assert cur.fetchall() == [(doubled, 2, 3), (clean, 1, 1)]
            cur.execute("SELECT day FROM exposure_day_sums")
            assert cur.fetchall() == [(clean,)]  # the doubled day's sums are recomputed on use
            cur.execute("SELECT count(*) FROM quarantined_selection_events")
            assert cur.fetchone() == (1,)
        conn.rollback()
        for statement, params in (
            (SEARCH_ROW, {"day": doubled, "search": "s1", "tier": None}),
            ("INSERT INTO quarantined_selection_events SELECT e.*, ARRAY['x'] FROM selection_events e", None),
        ):
            with pytest.raises(errors.UniqueViolation), conn, conn.cursor() as cur:
                cur.execute(statement, params)
    finally:
        conn.close()


# --- two real runs of the same days at once --------------------------------------------------------------------------

START = date(2026, 3, 1)
DAYS = 3
LAST = START + timedelta(days=DAYS - 1)
TIME_COLUMNS = {
    "computed_at",
    "validated_at",
    "quarantined_at",
    "generated_at",
    "summarised_at",
    "aggregated_at",
    "arrays_written_at",
    "id",
}
TABLES = (
    "validated_selection_events",
    "quarantined_selection_events",
    "candidate_daily_stages",
    "candidate_daily_stages_days",
    "candidate_day_arrays",
    "search_daily_aggregates",
    "search_daily_aggregates_days",
    "exposure_day_sums",
    "selection_rate_frames",
    "impact_ratios",
    "bias_metrics",
    "scoring_rate_ratios",
    "rank_exposure",
    "slate_concentration",
    "slate_concentration_groups",
    "fairness_trends",
    "trend_week_counts",
    "risk_assessments",
)


def _without_times(document: dict) -> str:
    """A stored JSON document without the time it was computed and how long its bootstrap took."""
    document = {**document, "computed_at": None}
    if "bootstrap" in document:
        document["bootstrap"] = {**document["bootstrap"], "seconds": None}
    return json.dumps(document, sort_keys=True)


def _snapshot(db_url: str) -> dict[str, pd.DataFrame]:
    """Every table the runs write, as text without the times of writing, rows sorted."""
    conn = psycopg2.connect(db_url)
    result = {}
    try:
        with conn.cursor() as cur:
            for table in TABLES:
                cur.execute(f"SELECT * FROM {table}")  # test-only: names are the literals above
                frame = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
                frame = frame.drop(columns=[c for c in frame.columns if c in TIME_COLUMNS])
                for column in ("metrics_json", "assessment"):
                    if column in frame:
                        frame[column] = frame[column].map(_without_times)
                frame = frame.map(lambda v: bytes(v).hex() if isinstance(v, memoryview) else v).astype(str)
                result[table] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    finally:
        conn.close()
    return result


RUN_RANGE = """
import json, sys, time
from datetime import date
from pathlib import Path

import dagster as dg

from fairness_pipeline.defs.resources import FairnessDatabase
from fairness_pipeline.cli.runs import run_range

url, first, last, window_days, ready, go = sys.argv[1:]
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.01)
with dg.DagsterInstance.get() as instance:
    runs = run_range(instance, date.fromisoformat(first), date.fromisoformat(last), window_days=int(window_days),
                     database=FairnessDatabase(url=url))
print(json.dumps([run.success for run in runs]))
"""
"""``fairness-pipeline run`` for a window length of its own, on the project's instance, started on a signal."""


WRITERS = (
    "validated_selection_events",
    "candidate_daily_stages",
    "search_daily_aggregates",
    "selection_rate_frames",
    "impact_ratios",
    "bias_metrics",
    "scoring_rate_ratios",
    "rank_exposure",
    "slate_concentration",
    "fairness_trends",
    "trend_week_counts",
    "risk_classification",
    "fairness_reports",
)


def _lock_names(db_url: str, keys: set[tuple[int, int]], first: date, last: date) -> set[tuple[str, date] | None]:
    """The (writer, day) of each lock key, ``writer/tenant`` for a tenant-day's (None for a key of no writer and day
    in first .. last)."""
    names = {}
    conn = psycopg2.connect(db_url)
    try:
        with conn.cursor() as cur:
            for writer in WRITERS:
                for name in (writer, *(tenant_writer(writer, tenant) for tenant in ("tenant-1", "tenant-2"))):
                    for day in (first + timedelta(days=i) for i in range((last - first).days + 1)):
                        names[partition_lock_key(cur, name, day)] = (name, day)
    finally:
        conn.close()
    return {names.get(key) for key in keys}


@pytest.mark.slow
def test_two_runs_of_the_same_days_at_once_store_the_result_of_one(db_url: str, tmp_path: Path, monkeypatch) -> None:
    config = synthetic.GeneratorConfig(
        seed=5, start=START, days=DAYS, tenants=2, events_per_day=2000, bias=("company_tier=startup:0.6",)
    )
    conn = psycopg2.connect(db_url)
    try:
        assert load_frames(conn, list(synthetic.generate_events(config)), source="test").rejected == 0
    finally:
        conn.close()
    _project_instance(tmp_path, db_url, monkeypatch)[0].dispose()  # the processes and the single run open their own
    env = child_environment(db_url)
    waits_seen: set[tuple[int, int]] = set()
    done = threading.Event()

    def watch_waits() -> None:
        while not done.is_set():
            locks = _held_locks(db_url)
            waits_seen.update(map(tuple, locks.loc[~locks["granted"], ["classid", "objid"]].values.tolist()))
            time.sleep(0.05)

    go = tmp_path / "go"
    processes = []
    for name in ("a", "b"):
        arguments = [db_url, START.isoformat(), LAST.isoformat(), str(DAYS), str(tmp_path / name), str(go)]
        processes.append(
            subprocess.Popen([sys.executable, "-c", RUN_RANGE, *arguments], env=env, stdout=subprocess.PIPE, text=True)
        )
    watcher = threading.Thread(target=watch_waits, daemon=True)
    try:
        deadline = time.monotonic() + 120
        while not all((tmp_path / name).exists() for name in ("a", "b")) and time.monotonic() < deadline:
            time.sleep(0.05)
        watcher.start()
        go.touch()  # both processes have imported everything: they start their runs together
        outputs = [process.communicate(timeout=900)[0] for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        done.set()
    watcher.join(WAIT)
    assert [process.returncode for process in processes] == [0, 0]
    # each: the event layer, then the windows of each of the two tenants
    assert [json.loads(output.strip().splitlines()[-1]) for output in outputs] == [[True] * 3, [True] * 3]
    concurrent = _snapshot(db_url)
    met = _lock_names(db_url, waits_seen, START - timedelta(days=DAYS), LAST)
    print(f"waits at: {sorted(met, key=str)}")
    assert met and None not in met, f"the runs never waited for each other at a partition lock: {met}"

    with dg.DagsterInstance.get() as instance:
        assert all(
            s.success for s in run_range(instance, START, LAST, window_days=DAYS, database=FairnessDatabase(url=db_url))
        )
    single = _snapshot(db_url)
    for table in TABLES:
        assert len(single[table]) > 0 or table in ("quarantined_selection_events", "trend_week_counts"), table
        pd.testing.assert_frame_equal(concurrent[table], single[table], check_like=True, obj=table)
    searches = single["search_daily_aggregates"]
    assert not searches.duplicated(
        ["day", "tenant_id", "search_id", "company_tier", "experience_band", "specialty"]
    ).any()


# --- the instance: concurrency limits and run monitoring -------------------------------------------------------------


def _project_instance(tmp_path: Path, db_url: str, monkeypatch) -> tuple[dg.DagsterInstance, dict[str, str]]:
    """The instance the UI and daemon load (the CLI's environment: ``DAGSTER_HOME`` with the project's dagster.yaml,
    storage on ``db_url``), and that environment."""
    monkeypatch.setenv("FAIRNESS_HOME", str(tmp_path))
    env = child_environment(db_url)
    for name in ("DAGSTER_HOME", "FAIRNESS_DAGSTER_STORAGE_URL"):
        monkeypatch.setenv(name, env[name])
    return dg.DagsterInstance.get(), env


def test_project_instance_loads_with_run_monitoring_and_concurrency_limits(
    tmp_path: Path, db_url: str, monkeypatch
) -> None:
    instance, _ = _project_instance(tmp_path, db_url, monkeypatch)
    with instance:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_max_runtime_seconds == 6 * 3600
        assert instance.run_monitoring_start_timeout_seconds == 180
        assert instance.run_monitoring_max_resume_run_attempts == 0
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == 4
        assert queue.tag_concurrency_limits == [
            {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
        ]
        pools = instance.get_concurrency_config().pool_config
        assert (pools.pool_granularity.value, pools.default_pool_limit) == ("run", 2)


def test_every_partition_writer_is_in_the_pool() -> None:
    from fairness_pipeline.definitions import build_definitions

    defs = build_definitions(FairnessDatabase(url="postgresql://unused/none"))
    graph = defs.resolve_asset_graph()
    pools = {key.to_user_string(): graph.get(key).pools for key in graph.get_all_asset_keys()}
    asset_writers = set(WRITERS) - {"trend_week_counts"}  # week counts are written by fairness_trends
    assert {name for name, pool in pools.items() if pool} == asset_writers | {"quarantined_selection_events"}
    assert all(pool == {PARTITION_WRITES_POOL} for pool in pools.values() if pool)


SLEEPING_RUN = """
import time, dagster as dg

@dg.op
def sleep_long():
    time.sleep(300)

@dg.job(tags={"dagster/max_runtime": "2"})
def sleeping_job():
    sleep_long()

sleeping_job.execute_in_process(instance=dg.DagsterInstance.get())
"""


@pytest.mark.slow
def test_run_whose_process_is_killed_ends_failed_with_the_monitoring_loop(
    tmp_path: Path, db_url: str, monkeypatch
) -> None:
    instance, env = _project_instance(tmp_path, db_url, monkeypatch)
    with instance:
        _kill_and_monitor(instance, env)


def _kill_and_monitor(instance: dg.DagsterInstance, env: dict[str, str]) -> None:
    from dagster._daemon.monitoring.run_monitoring import execute_run_monitoring_iteration

    process = subprocess.Popen([sys.executable, "-c", SLEEPING_RUN], env=env)
    try:
        deadline, run = time.monotonic() + 60, None
        while time.monotonic() < deadline and run is None:
            started = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
            run = started[0] if started else None
            time.sleep(0.2)
        assert run is not None, "the run did not start"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(WAIT)
    time.sleep(2.5)  # past the run's max runtime
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED  # nobody else will fail it

    class Workspace:  # the loop needs a workspace only to resume runs (max_resume_run_attempts: 0)
        def __init__(self) -> None:
            self.instance = instance

        def create_request_context(self):
            return None

    list(execute_run_monitoring_iteration(Workspace(), dg.get_dagster_logger()))
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
