"""Hostile input and injected faults against the real CLI and an embedded PostgreSQL: every row accounted for.

Run: ``.venv/bin/python bench/robustness.py`` (a minute or two). Options: ``--rows 200000`` (size of the file used
for the faults), ``--keep`` (keep the temporary directory).

Bad input: for each kind (NUL bytes in every field, invalid UTF-8, CR-only lines, byte-order marks, a truncated
``.gz``, non-scalar JSON values, relative words as timestamps, identical and conflicting re-sends, a quoted field over
several lines, random bytes, an empty file) a small file is ingested through ``fairness-pipeline ingest --json``. A
kind is handled when the command ends without a traceback, with exit code 0 (or 2 for a file that breaks off, with
its counts), when read = inserted + duplicates + rejected, and when the database gained exactly the inserted events
and the rejected rows. Rows lost = records read that are in neither table nor counted as duplicates.

Faults: the ingest of a large file is interrupted by ``kill -9`` of the PostgreSQL server, then of the CLI itself,
and the file is ingested again; two ingests of the same file run at once. After each, every event id of the file must
be stored exactly once (the primary key forbids a second copy): rows lost = ids of the file missing from the table.

Concurrent runs of the same partition (Dagster) are covered by ``fairness_pipeline_tests/test_concurrency.py``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg2

VENV_BIN = Path(sys.executable).parent
CLI = str(VENV_BIN / "fairness-pipeline")
CASE_ROWS = 600


@dataclass
class Outcome:
    kind: str
    written: int
    read: int
    inserted: int
    duplicates: int
    rejected: int
    exit_code: int
    handled: bool
    lost: int
    note: str


class Database:
    """A private embedded PostgreSQL under its own FAIRNESS_HOME (0711 so its system user can enter it as root)."""

    def __init__(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        home.chmod(0o711)
        self.env = {k: v for k, v in os.environ.items() if k != "FAIRNESS_DATABASE_URL"}
        self.env["FAIRNESS_HOME"] = str(home)
        self.url = ""

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run([CLI, *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False)

    def start(self) -> None:
        for _attempt in range(20):  # a server just killed may still be exiting
            started = self.cli("db", "start")
            if started.returncode == 0:
                break
            time.sleep(0.5)
        else:
            raise SystemExit(f"db start failed for 10 s: {started.stderr.strip()}")
        self.url = self.cli("db", "url").stdout.strip()

    def stop(self) -> None:
        self.cli("db", "stop")

    def scalar(self, statement: str, params: tuple = ()) -> int:
        conn = psycopg2.connect(self.url)
        try:
            with conn.cursor() as cur:
                cur.execute(statement, params)
                return int(cur.fetchone()[0])
        finally:
            conn.close()

    def table_counts(self) -> tuple[int, int]:
        return (
            self.scalar("SELECT count(*) FROM selection_events"),
            self.scalar("SELECT count(*) FROM selection_event_rejects"),
        )

    def postmaster_pid(self) -> int:
        return int((Path(self.env["FAIRNESS_HOME"]) / "pgdata" / "postmaster.pid").read_text().split()[0])


def clean_lines(prefix: str, rows: int, fmt: str, seed: int = 11) -> list[str]:
    """``rows`` generated events as lines (CSV: header first), event ids prefixed so that cases do not collide."""
    from fairness_pipeline import synthetic

    config = synthetic.GeneratorConfig(seed=seed, days=max(2, rows // 2000 + 2), tenants=1, events_per_day=2000)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / f"events.{fmt}"

        def frames():
            left = rows
            for frame in synthetic.generate_events(config):
                if left <= 0:
                    return
                frame = frame.iloc[:left].copy()
                frame["event_id"] = prefix + frame["event_id"].astype(str)
                yield frame
                left -= len(frame)

        synthetic.write_events(frames(), path, fmt)
        return path.read_text(encoding="utf-8").splitlines()


def with_field(line: str, column: int, value: str) -> str:
    fields = line.split(",")
    fields[column] = value
    return ",".join(fields)


def bad_input_files(directory: Path) -> list[tuple[str, Path, int, set[int]]]:
    """(kind, file, records written, accepted exit codes) for every kind of bad input."""
    cases: list[tuple[str, Path, int, set[int]]] = []

    def add(kind: str, name: str, data: bytes, records: int, exits: frozenset = frozenset({0})) -> None:
        path = directory / name
        path.write_bytes(data)
        cases.append((kind, path, records, set(exits)))

    def csv(prefix: str) -> list[str]:
        return clean_lines(prefix, CASE_ROWS, "csv")

    def jsonl(prefix: str) -> list[str]:
        return clean_lines(prefix, CASE_ROWS, "jsonl")

    def text(lines: list[str], end: str = "\n") -> bytes:
        return end.join(lines).encode("utf-8") + end.encode()

    base = csv("clean-")
    add("clean CSV", "clean.csv", text(base), CASE_ROWS)
    columns = base[0].split(",")
    for field in ("event_type", "timestamp", "rank", "score", "company_tier"):
        lines = csv(f"nul-{field}-")
        for i in (1, 50, 300):
            lines[i] = with_field(lines[i], columns.index(field), f"x\x00{field}")
        add(f"NUL in {field} (CSV)", f"nul-{field}.csv", text(lines), CASE_ROWS)
    lines = jsonl("nul-json-")
    for i in (0, 10, 200):
        lines[i] = lines[i].replace('"shown"', '"sh\\u0000own"', 1).replace('"clicked"', '"cl\\u0000icked"', 1)
    add("\\u0000 in JSON Lines", "nul.jsonl", text(lines), CASE_ROWS)
    raw = bytearray(text(csv("utf8-")))
    for position in (5000, 20000, 40000):
        raw[position] = 0xFF
    add("invalid UTF-8 (CSV)", "invalid-utf8.csv", bytes(raw), CASE_ROWS)
    add("CR-only line ends (CSV)", "cr-only.csv", text(csv("cr-"), "\r"), CASE_ROWS)
    add("UTF-8 BOM (CSV)", "bom.csv", b"\xef\xbb\xbf" + text(csv("bom-csv-")), CASE_ROWS)
    add("UTF-8 BOM (JSON Lines)", "bom.jsonl", b"\xef\xbb\xbf" + text(jsonl("bom-json-")), CASE_ROWS)
    whole = gzip.compress(text(csv("gz-")))
    add("truncated .gz", "truncated.csv.gz", whole[: len(whole) * 2 // 3], CASE_ROWS, frozenset({2}))
    lines = jsonl("nonscalar-")
    for i, value in ((3, '{"a": 1}'), (30, "[1, 2]"), (300, "true")):
        record = json.loads(lines[i])
        lines[i] = json.dumps({**record, "rank": json.loads(value)})
    add("JSON object, array, boolean values", "nonscalar.jsonl", text(lines), CASE_ROWS)
    lines = csv("relative-")
    for i, word in ((2, "now"), (20, "today"), (200, "2026")):
        lines[i] = with_field(lines[i], columns.index("timestamp"), word)
    add("relative words as timestamps", "relative.csv", text(lines), CASE_ROWS)
    add("identical re-send", "resend-identical.csv", text(base), CASE_ROWS)
    conflicting = [base[0]] + [with_field(line, columns.index("score"), "0.0001") for line in base[1:11]]
    add("conflicting re-send", "resend-conflicting.csv", text(conflicting), 10)
    lines = csv("multiline-")
    lines[100] = with_field(lines[100], columns.index("specialty"), '"front\nend"')
    lines[400] = with_field(lines[400], columns.index("specialty"), '"open')
    add("quoted field over lines (CSV)", "multiline.csv", text(lines), CASE_ROWS)
    rng = __import__("random").Random(5)
    noise = bytes(rng.randrange(256) for _ in range(20000))
    add("random bytes after a header", "noise.csv", (base[0] + "\n").encode() + noise, -1, frozenset({0, 2}))
    add("header only", "header-only.csv", text(base[:1]), 0)
    add("empty file", "empty.csv", b"", 0, frozenset({0, 2}))
    return cases


def run_case(db: Database, kind: str, path: Path, written: int, exits: set[int]) -> Outcome:
    before = db.table_counts()
    done = db.cli("ingest", "--json", str(path))
    after = db.table_counts()
    try:
        counts = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
    except json.JSONDecodeError:
        counts = {}
    read, inserted = counts.get("read", 0), counts.get("inserted", 0)
    duplicates, rejected = counts.get("duplicates", 0), counts.get("rejected", 0)
    gained_events, gained_rejects = after[0] - before[0], after[1] - before[1]
    adds_up = read == inserted + duplicates + rejected
    agrees = gained_events == inserted and gained_rejects == rejected
    no_traceback = "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) <= 1
    handled = done.returncode in exits and adds_up and agrees and no_traceback and (bool(counts) or not written)
    lost = read - (gained_events + duplicates + gained_rejects)
    note = done.stderr.strip().splitlines()[0][:90] if done.stderr.strip() else ""
    return Outcome(kind, written, read, inserted, duplicates, rejected, done.returncode, handled, lost, note)


def missing_ids(db: Database, prefix: str, expected: int) -> int:
    return expected - db.scalar("SELECT count(*) FROM selection_events WHERE event_id LIKE %s", (prefix + "%",))


def fault_kill_server(db: Database, path: Path, prefix: str, rows: int) -> Outcome:
    """kill -9 of the postmaster while ingest runs; restart; ingest again."""
    child = subprocess.Popen(
        [CLI, "ingest", "--json", str(path)], env=db.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait_for_rows(db, prefix)
    os.kill(db.postmaster_pid(), signal.SIGKILL)
    _, err = child.communicate(timeout=300)
    first_exit = child.returncode
    db.start()
    outcome = run_case(db, "kill -9 of PostgreSQL mid-ingest, then re-ingest", path, rows, {0})
    outcome.lost = missing_ids(db, prefix, rows)
    outcome.note = f"interrupted run exit {first_exit}: {(err.strip().splitlines() or [''])[-1][:60]}"
    outcome.handled = outcome.handled and outcome.lost == 0 and "Traceback" not in err
    return outcome


def fault_kill_cli(db: Database, path: Path, prefix: str, rows: int) -> Outcome:
    """kill -9 of the ingest process while it loads; ingest again."""
    child = subprocess.Popen(
        [CLI, "ingest", "--json", str(path)], env=db.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait_for_rows(db, prefix)
    child.kill()
    child.communicate(timeout=60)
    outcome = run_case(db, "kill -9 of the CLI mid-ingest, then re-ingest", path, rows, {0})
    outcome.lost = missing_ids(db, prefix, rows)
    outcome.handled = outcome.handled and outcome.lost == 0
    return outcome


def fault_concurrent(db: Database, path: Path, prefix: str, rows: int) -> Outcome:
    """Two ingests of the same file at once: each id stored once, the two runs' inserted add up to the file."""
    before = db.table_counts()
    children = [
        subprocess.Popen(
            [CLI, "ingest", "--json", str(path)], env=db.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = [child.communicate(timeout=600) for child in children]
    counts = [json.loads(out.strip().splitlines()[-1]) for out, _ in results]
    after = db.table_counts()
    inserted = sum(c["inserted"] for c in counts)
    duplicates = sum(c["duplicates"] for c in counts)
    rejected = sum(c["rejected"] for c in counts)
    read = sum(c["read"] for c in counts)
    lost = missing_ids(db, prefix, rows)
    handled = (
        all(child.returncode == 0 for child in children)
        and inserted == rows
        and after[0] - before[0] == inserted
        and read == inserted + duplicates + rejected
        and lost == 0
    )
    codes = [child.returncode for child in children]
    return Outcome(
        "two ingests of one file at once",
        2 * rows,
        read,
        inserted,
        duplicates,
        rejected,
        max(codes),
        handled,
        lost,
        f"exit codes {codes}",
    )


def _wait_for_rows(db: Database, prefix: str, at_least: int = 1000, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if db.scalar("SELECT count(*) FROM selection_events WHERE event_id LIKE %s", (prefix + "%",)) >= at_least:
            return
        time.sleep(0.05)
    raise SystemExit("the ingest never stored its first rows")


def print_table(outcomes: list[Outcome]) -> None:
    header = f"| {'case':<48} | written | read | ins | dup | rej | exit | handled | lost |"
    print(header)
    print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
    for o in outcomes:
        written = "?" if o.written < 0 else o.written
        print(
            f"| {o.kind:<48} | {written:>7} | {o.read:>4} | {o.inserted:>3} | {o.duplicates:>3} | {o.rejected:>3} "
            f"| {o.exit_code:>4} | {'yes' if o.handled else 'NO':>7} | {o.lost:>4} |"
        )
    notes = [(o.kind, o.note) for o in outcomes if o.note]
    for kind, note in notes:
        print(f"  {kind}: {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the file used for the faults")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(
        f"# {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, load average {load:.2f}"
    )
    work = Path(tempfile.mkdtemp(prefix="fairness-robustness-", dir="/tmp"))
    work.chmod(0o711)
    db = Database(work / "home")
    try:
        db.start()
        files = work / "files"
        files.mkdir()
        outcomes = [run_case(db, *case) for case in bad_input_files(files)]
        big = files / "big.csv"
        for name, fault in (
            ("kill-server", fault_kill_server),
            ("kill-cli", fault_kill_cli),
            ("concurrent", fault_concurrent),
        ):
            prefix = f"fault-{name}-"
            big.write_text("\n".join(clean_lines(prefix, args.rows, "csv")) + "\n", encoding="utf-8")
            outcomes.append(fault(db, big, prefix, args.rows))
        print_table(outcomes)
        kinds = [o for o in outcomes if not o.kind.startswith(("kill", "two"))]
        faults = [o for o in outcomes if o.kind.startswith(("kill", "two"))]
        print(
            f"\nbad-input kinds tried {len(kinds)}, handled {sum(o.handled for o in kinds)}; "
            f"faults injected {len(faults)}, survived {sum(o.handled for o in faults)}; "
            f"rows lost {sum(max(o.lost, 0) for o in outcomes)}"
        )
        if not all(o.handled for o in outcomes):
            sys.exit(1)
    finally:
        db.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
