"""Benchmark of ``fairness-pipeline ingest``: events per second and peak memory, 100k vs 1M events, against COPY.

Run: ``.venv/bin/python bench/ingest.py`` (a few minutes). Options: ``--sizes 100000,1000000``, ``--jsonl`` (also
time JSON Lines files), ``--no-trace`` (skip the tracemalloc runs), ``--keep`` (keep the temporary directory).

For each file the script starts a private embedded PostgreSQL (a fresh ``FAIRNESS_HOME``, so a fresh database with
the migrations applied), then times the CLI as a child process, end to end (interpreter start included), and reads
the child's own peak RSS from ``os.wait4``. A second child runs ``ingest_file`` in-process into another fresh
server with tracemalloc on, for the peak of the Python heap and of Arrow's memory pool (tracemalloc slows Python, so
its time is not reported). A third measurement, in this process, times parsing and the checks alone (no database).
Every server started is stopped at the end, even on errors or Ctrl-C.

Yardsticks, in the same server and run, just before the CLI: plain ``COPY`` of the same file into copies of the
table (``LIKE selection_events`` with its defaults and checks): bare (no index), with the primary key alone, with the
indexes the table had before migration 019 (key + six btrees), and with the table's current indexes. The CLI's rate
is reported as a ratio to each (issue 17's target: at least 0.5x of the key-alone COPY).

The machine may be shared: the load average before and after is printed, because other work on the same cores makes
the wall-clock figures worse.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
CLI = str(VENV_BIN / "fairness-pipeline")
SEED = 7
TENANTS = 2
EVENTS_PER_DAY = 5000

TRACE_CHILD = """
import json, sys, time, tracemalloc
from pathlib import Path
import pyarrow as pa
from fairness_pipeline.ingest.loader import ingest_file
from fairness_pipeline.store.connection import connect
with connect(sys.argv[2]) as conn:
    tracemalloc.start()
    counts = ingest_file(conn, Path(sys.argv[1]))
    _, peak = tracemalloc.get_traced_memory()
print(json.dumps({"python_peak": peak, "arrow_peak": pa.default_memory_pool().max_memory(), **counts.as_dict()}))
"""


def generate(path: Path, rows: int, fmt: str) -> int:
    """Exactly ``rows`` synthetic events (fixed seed) written to ``path``."""
    from fairness_pipeline import synthetic

    days = math.ceil(rows / (TENANTS * EVENTS_PER_DAY)) + 2
    config = synthetic.GeneratorConfig(seed=SEED, days=days, tenants=TENANTS, events_per_day=EVENTS_PER_DAY)

    def frames():
        left = rows
        for frame in synthetic.generate_events(config):
            if left <= 0:
                return
            yield frame.iloc[:left]
            left -= len(frame)

    written = synthetic.write_events(frames(), path, fmt)
    if written != rows:
        raise SystemExit(f"generator gave {written} events, wanted {rows}; raise the number of days")
    return written


class Server:
    """A private embedded PostgreSQL under its own FAIRNESS_HOME, migrated; stopped on exit."""

    def __init__(self, home: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if k != "FAIRNESS_DATABASE_URL"}
        self.env["FAIRNESS_HOME"] = str(home)
        self.url = ""

    def __enter__(self) -> Server:
        try:
            for command in (["db", "start"], ["db", "url"]):
                done = subprocess.run([CLI, *command], env=self.env, capture_output=True, text=True, check=False)
                if done.returncode:
                    raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
            self.url = done.stdout.strip()
        except BaseException:
            self.__exit__()
            raise
        return self

    def cpu_seconds(self) -> float:
        """CPU time of the server's finished processes (backends, once their connection closed), in seconds."""
        pid = int((Path(self.env["FAIRNESS_HOME"]) / "pgdata" / "postmaster.pid").read_text().split()[0])
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # cutime + cstime

    def __exit__(self, *exc: object) -> None:
        subprocess.run([CLI, "db", "stop"], env=self.env, capture_output=True, check=False)


OLD_INDEXES = (
    "(tenant_id, timestamp)",
    "(search_id)",
    "(event_type)",
    "(tenant_id, company_tier, experience_band, specialty)",
    "(timestamp)",
    "(created_at)",
)
"""The secondary btrees of selection_events before migration 019."""
YARDSTICKS = {
    "bare": "LIKE selection_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS",
    "key": "LIKE selection_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS, PRIMARY KEY (event_id)",
    "before 019": "LIKE selection_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS, PRIMARY KEY (event_id)",
    "current": "LIKE selection_events INCLUDING ALL",
}


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def copy_yardsticks(url: str, path: Path) -> dict[str, tuple[float, float]]:
    """Seconds and server CPU seconds to COPY ``path`` (CSV with a header) into each yardstick table, created and
    dropped in turn."""
    import psycopg2
    from psycopg2 import sql

    from fairness_pipeline.events.vocabulary import EVENT_COLUMNS

    copy = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, HEADER true)")
    columns = sql.SQL(", ").join(map(sql.Identifier, EVENT_COLUMNS))
    seconds = {}
    conn = psycopg2.connect(url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            backend = cur.fetchone()[0]
            for name, definition in YARDSTICKS.items():
                table = sql.Identifier("bench_copy_" + name.replace(" ", "_"))
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
                cur.execute(sql.SQL("CREATE TABLE {} (" + definition + ")").format(table))
                if name == "before 019":
                    for columns_sql in OLD_INDEXES:
                        cur.execute(sql.SQL("CREATE INDEX ON {} " + columns_sql).format(table))
                cur.execute("CHECKPOINT")
                with open(path, "rb") as data:
                    started, cpu = time.perf_counter(), process_cpu(backend)
                    cur.copy_expert(copy.format(table, columns), data, size=1 << 20)
                    seconds[name] = (time.perf_counter() - started, process_cpu(backend) - cpu)
                cur.execute(sql.SQL("DROP TABLE {}").format(table))
            cur.execute("CHECKPOINT")
    finally:
        conn.close()
    return seconds


def run_child(args: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """Run a child process; return its wall time, CPU time, own peak RSS in bytes, and its stdout."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen(args, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(child.pid, 0)  # the child's own rusage (RUSAGE_CHILDREN would mix children)
        elapsed = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode:
            raise SystemExit(f"{' '.join(args)} failed ({child.returncode}):\n{err.read()}")
        return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, out.read()


def parse_only(path: Path) -> float:
    """CPU seconds to read, check and render the COPY input of ``path`` (no database)."""
    from fairness_pipeline.ingest.prepared import prepare_chunk
    from fairness_pipeline.ingest.reader import read_chunks

    started = time.process_time()
    for chunk in read_chunks(path):
        prepare_chunk(chunk, direct=True)
    return time.process_time() - started


def machine() -> dict[str, str]:
    model = "?"
    memory = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpus": f"{os.cpu_count()} ({usable} usable)",
        "model": model,
        "memory": memory,
        "system": f"{platform.system()} {platform.release()}",
    }


def versions(url: str) -> dict[str, str]:
    import numpy
    import pandas
    import psycopg2
    import pyarrow

    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SHOW server_version")
        server = cur.fetchone()[0]
    conn.close()
    return {
        "python": platform.python_version(),
        "postgresql": server,
        "pandas": pandas.__version__,
        "numpy": numpy.__version__,
        "pyarrow": pyarrow.__version__,
        "psycopg2": psycopg2.__version__.split()[0],
    }


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated event counts")
    parser.add_argument("--jsonl", action="store_true", help="also benchmark JSON Lines files")
    parser.add_argument("--no-trace", action="store_true", help="skip the tracemalloc runs")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    formats = ["csv", "jsonl"] if args.jsonl else ["csv"]

    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    work.chmod(0o711)  # as root the embedded server runs as `pgserver`, which must traverse it
    results = []
    info: dict[str, str] = {}
    load_before = load()
    try:
        for fmt in formats:
            for rows in sizes:
                path = work / f"events-{rows}.{fmt}"
                started = time.perf_counter()
                generate(path, rows, fmt)
                print(
                    f"generated {path.name} ({path.stat().st_size / 1e6:.0f} MB) in "
                    f"{time.perf_counter() - started:.1f}s",
                    file=sys.stderr,
                )
                with Server(work / f"home-{fmt}-{rows}") as server:
                    info = info or versions(server.url)
                    yardsticks = copy_yardsticks(server.url, path)
                    time.sleep(0.5)  # let the postmaster reap the yardsticks' backend before counting CPU
                    server_cpu = server.cpu_seconds()
                    elapsed, cpu, rss, out = run_child([CLI, "ingest", "--json", str(path)], server.env)
                    time.sleep(0.5)  # let the postmaster reap the backend
                    server_cpu = server.cpu_seconds() - server_cpu
                counts = json.loads(out.strip().splitlines()[-1])
                if counts["read"] != rows or counts["inserted"] != rows:
                    raise SystemExit(f"unexpected counts for {path.name}: {counts}")
                result = {
                    "format": fmt,
                    "rows": rows,
                    "mb": path.stat().st_size / 1e6,
                    "seconds": elapsed,
                    "rate": rows / elapsed,
                    "rss": rss,
                    "parse": parse_only(path),
                    "cpu": cpu,
                    "server_cpu": server_cpu,
                    "copy": yardsticks,
                }
                if not args.no_trace:
                    with Server(work / f"home-{fmt}-{rows}-trace") as server:
                        _, _, _, out = run_child([sys.executable, "-c", TRACE_CHILD, str(path), server.url], server.env)
                    result.update(json.loads(out.strip().splitlines()[-1]))
                print(
                    f"  {fmt} {rows:,}: {elapsed:.1f}s, {rows / elapsed:,.0f} events/s, RSS {rss / 2**20:.0f} MiB; "
                    + ", ".join(f"COPY {k} {rows / v:,.0f}/s" for k, (v, _) in yardsticks.items()),
                    file=sys.stderr,
                )
                results.append(result)
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    report(results, info, load_before, load())


def report(results: list[dict], info: dict[str, str], load_before: str, load_after: str) -> None:
    mib = 2**20
    print(f"\nfairness-pipeline ingest benchmark, {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    for key, value in machine().items():
        print(f"  {key:10s} {value}")
    print("  versions   " + ", ".join(f"{k} {v}" for k, v in info.items()))
    print(f"  load avg   before {load_before}; after {load_after} (1, 5, 15 min)")
    print("  timed      the CLI end to end in a child process (start-up and migration check included), fresh database")
    print()
    traced = any("python_peak" in r for r in results)
    columns = ["file", "MB", "wall s", "events/s", "peak RSS", "client CPU s", "server CPU s", "parse+check CPU s"]
    columns += ["Python peak", "Arrow peak"] if traced else []
    table = []
    for r in results:
        row = [
            f"{r['rows']:,} {r['format']}",
            f"{r['mb']:.0f}",
            f"{r['seconds']:.1f}",
            f"{r['rate']:,.0f}",
            f"{r['rss'] / mib:.0f} MiB",
            f"{r['cpu']:.1f}",
            f"{r['server_cpu']:.1f}",
            f"{r['parse']:.1f}",
        ]
        if traced:
            row += [f"{r['python_peak'] / mib:.0f} MiB", f"{r['arrow_peak'] / mib:.0f} MiB"]
        table.append(row)
    widths = [max(len(row[i]) for row in [columns, *table]) for i in range(len(columns))]
    for row in [columns, *table]:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
    print("\nCOPY of the same file in the same server just before the CLI (events/s; CLI rate as a ratio to it):")
    for r in results:
        cells = [
            f"{name} {r['rows'] / secs:,.0f}/s, {cpu:.1f} CPU s (CLI {r['rate'] * secs / r['rows']:.2f}x)"
            for name, (secs, cpu) in r["copy"].items()
        ]
        print(f"  {r['rows']:,} {r['format']}: " + "; ".join(cells))
        print(f"    CLI: {r['rate']:,.0f}/s, {r['cpu']:.1f} client + {r['server_cpu']:.1f} server CPU s")
    for fmt in sorted({r["format"] for r in results}):
        rows = sorted((r for r in results if r["format"] == fmt), key=lambda r: r["rows"])
        if len(rows) >= 2:
            small, large = rows[0], rows[-1]
            print(
                f"\n{fmt}: peak RSS {large['rows']:,} vs {small['rows']:,} events: "
                f"{large['rss'] / small['rss']:.2f}x for {large['rows'] / small['rows']:.0f}x the events"
            )
    print(
        "\nclient CPU: the CLI process (user + system); server CPU: PostgreSQL processes that ended meanwhile (the"
        "\nbackend); parse+check: reading, checks and COPY rendering alone, no database (the CLI overlaps them with the"
        "\ndatabase's work). Python peak: tracemalloc; Arrow peak: Arrow's memory pool (not seen by tracemalloc)."
        "\nOn a shared machine wall times include waiting for a core: compare the load average."
    )


if __name__ == "__main__":
    sys.path.insert(0, str(PROJECT))
    main()
