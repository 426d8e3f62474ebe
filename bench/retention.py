"""Is day-partitioning selection_events worth it for retention? DELETE of old days against dropping partitions.

Run: ``.venv/bin/python bench/retention.py [--days 30] [--per-day 100000]`` (a few minutes). In a private embedded
PostgreSQL (fresh ``FAIRNESS_HOME``, migrated), the script fills ``selection_events`` with ``--days`` days of
``--per-day`` events in insertion order (as ingest writes them), then times what retention does: the DELETE of the
oldest day and of the next seven days (BRIN on ``timestamp``, migration 019), and the erasure of one candidate (a
read of the table: no candidate index). For comparison it builds the same rows as a table partitioned by day and
times dropping one day's partition. The numbers say whether the DROP is worth the partitioned table's costs: its
primary key must include the partition column, so ``ON CONFLICT (event_id)`` can no longer find a re-sent event
stored under another day.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import Server, load, machine  # the sibling benchmark's private server

START = date(2026, 1, 1)

FILL = """
INSERT INTO {table} (event_id, timestamp, candidate_id, event_type, search_id, tenant_id, user_id_hash,
    company_tier, experience_band, specialty, rank, score)
SELECT 'e-' || %(day)s || '-' || g,
       %(start)s::timestamptz + (g * interval '86399 milliseconds' / %(per_day)s),
       't-' || (g %% 2) || '-cand-' || (hashtext(%(day)s || g) & 65535),
       (ARRAY['shown', 'shown', 'shown', 'clicked', 'shortlisted'])[1 + g %% 5],
       's-' || %(day)s || '-' || (g / 20), 'tenant-' || (g %% 2), md5(g::text),
       'faang', '3-7', 'backend', 1 + g %% 20, 0.5
FROM generate_series(1, %(per_day)s) AS g
"""


def timed(cur, statement: str, params: dict | None = None) -> tuple[float, int]:
    started = time.perf_counter()
    cur.execute(statement, params)
    return time.perf_counter() - started, cur.rowcount


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=100_000)
    args = parser.parse_args()
    import psycopg2

    work = Path(tempfile.mkdtemp(prefix="bench-retention-"))
    work.chmod(0o711)
    load_before = load()
    results: list[tuple[str, float, int]] = []
    try:
        with Server(work / "home") as server:
            conn = psycopg2.connect(server.url)
            conn.autocommit = True
            cur = conn.cursor()
            cur.execute(
                "CREATE TABLE events_by_day (LIKE selection_events INCLUDING DEFAULTS, PRIMARY KEY (event_id, "
                "timestamp)) PARTITION BY RANGE (timestamp)"
            )
            started = time.perf_counter()
            for i in range(args.days):
                day = START + timedelta(days=i)
                start = datetime(day.year, day.month, day.day, tzinfo=UTC)
                cur.execute(
                    f"CREATE TABLE events_{day:%Y%m%d} PARTITION OF events_by_day FOR VALUES FROM (%s) TO (%s)",
                    (start, start + timedelta(days=1)),
                )
                params = {"day": day.isoformat(), "start": start, "per_day": args.per_day}
                for table in ("selection_events", "events_by_day"):
                    cur.execute(FILL.format(table=table), params)
            cur.execute("SELECT brin_summarize_new_values('idx_selection_events_timestamp_brin')")
            cur.execute("VACUUM ANALYZE selection_events")
            cur.execute("VACUUM ANALYZE events_by_day")
            print(
                f"filled 2 x {args.days * args.per_day:,} events in {time.perf_counter() - started:.0f}s",
                file=sys.stderr,
            )
            cur.execute("SELECT pg_size_pretty(pg_total_relation_size('selection_events'))")
            size = cur.fetchone()[0]

            def cutoff(days: int) -> datetime:
                day = START + timedelta(days=days)
                return datetime(day.year, day.month, day.day, tzinfo=UTC)

            delete = "DELETE FROM selection_events WHERE timestamp < %(cutoff)s"
            results.append(("DELETE oldest day", *timed(cur, delete, {"cutoff": cutoff(1)})))
            results.append(("DELETE next 7 days", *timed(cur, delete, {"cutoff": cutoff(8)})))
            results.append(("VACUUM after the deletes", *timed(cur, "VACUUM selection_events")))
            drop = f"DROP TABLE events_{START:%Y%m%d}"
            results.append(("DROP one day's partition", *timed(cur, drop)))
            erase = "DELETE FROM selection_events WHERE tenant_id = %(t)s AND candidate_id = %(c)s"
            results.append(("erase one candidate", *timed(cur, erase, {"t": "tenant-1", "c": "t-1-cand-77"})))
            conn.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"\nretention benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {args.days} days x {args.per_day:,} events "
        f"({size} with indexes)"
    )
    for key, value in machine().items():
        print(f"  {key:10s} {value}")
    print(f"  load avg   before {load_before}; after {load()}")
    for name, seconds, rows in results:
        print(f"  {name:28s} {seconds:8.2f} s  {rows if rows >= 0 else '':>10}")
    print(f"  ({os.cpu_count()} CPUs; rows = rows deleted)")


if __name__ == "__main__":
    main()
