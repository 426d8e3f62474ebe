"""Ingestion keeps every row: stored, duplicate or rejected with its line number and reason."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from fairness_pipeline.events.vocabulary import EVENT_COLUMNS
from fairness_pipeline.ingest.loader import ingest_file
from fairness_pipeline.ingest.reader import UnreadableFileError

HASH = "ab" * 32
HEADER = ",".join(EVENT_COLUMNS)


def good(event_id: str, candidate: str = "c1", event_type: str = "shown", ts: str = "2026-03-01T10:00:00+00:00") -> str:
    return f"{event_id},{ts},{candidate},{event_type},s1,tenant-a,{HASH},startup,0-3,backend,1,0.9000"


def rows_in(conn, table: str) -> int:
    with conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {table}")  # test-only, table names are literals
        return cur.fetchone()[0]


def rejects(conn) -> list[tuple[int, str]]:
    with conn.cursor() as cur:
        cur.execute("SELECT line_number, reason FROM selection_event_rejects ORDER BY line_number")
        return cur.fetchall()


def write_csv(path: Path, lines: list[str]) -> Path:
    path.write_bytes(("\n".join([HEADER, *lines]) + "\n").encode())
    return path


def test_csv_with_every_kind_of_bad_row(conn, tmp_path: Path) -> None:
    lines = [
        good("e1"),  # line 2: stored
        good("e2", candidate="c2"),  # line 3: stored
        good("e1"),  # line 4: duplicate of line 2 (same file)
        good("e3", event_type="teleported"),  # line 5: unknown event type
        good("e4").replace(",startup,", ",unicorn,"),  # line 6: unknown dimension value
        good("e5", candidate=""),  # line 7: empty candidate id
        good("e6", ts="yesterday"),  # line 8: bad timestamp
        good("e7") + ",extra",  # line 9: wrong column count
        "",  # line 10: blank, not a row
        good("e9", ts="2026-02-30T00:00:00Z"),  # line 11: impossible date
    ]
    path = write_csv(tmp_path / "events.csv", lines)
    with path.open("ab") as handle:  # line 12: bad encoding
        handle.write(b"e8,2026-03-01T10:00:00Z,caf\xe9,shown,s1,tenant-a," + HASH.encode() + b",,,,1,0.5\n")

    counts = ingest_file(conn, path)

    assert counts.as_dict() == {"read": 10, "inserted": 2, "duplicates": 1, "rejected": 7}
    assert counts.read == counts.inserted + counts.duplicates + counts.rejected
    assert rows_in(conn, "selection_events") == 2
    got = rejects(conn)
    assert [line for line, _ in got] == [5, 6, 7, 8, 9, 11, 12]
    reasons = dict(got)
    assert reasons[5] == "unknown event_type 'teleported'"
    assert reasons[6] == "unknown company_tier 'unicorn'"
    assert reasons[7] == "empty candidate_id"
    assert reasons[8] == "bad timestamp 'yesterday'"
    assert reasons[9] == "wrong column count: expected 12, got 13"
    assert reasons[11].startswith("bad timestamp")
    assert reasons[12].startswith("bad encoding")


def test_reingesting_the_same_file_inserts_nothing(conn, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "events.csv", [good(f"e{i}", candidate=f"c{i}") for i in range(50)])
    first = ingest_file(conn, path)
    second = ingest_file(conn, path)
    assert first.as_dict() == {"read": 50, "inserted": 50, "duplicates": 0, "rejected": 0}
    assert second.as_dict() == {"read": 50, "inserted": 0, "duplicates": 50, "rejected": 0}
    assert rows_in(conn, "selection_events") == 50


def test_values_are_stored_as_given(conn, tmp_path: Path) -> None:
    line = f"e1,2026-03-01T12:30:00+02:00,c1,clicked,s9,tenant-a,{HASH},,15+,,,"
    ingest_file(conn, write_csv(tmp_path / "one.csv", [line]))
    with conn.cursor() as cur:
        cur.execute(
            "SELECT timestamp AT TIME ZONE 'UTC', event_type, company_tier, experience_band, rank, score "
            "FROM selection_events"
        )
        ts, event_type, tier, band, rank, score = cur.fetchone()
    assert (ts.hour, ts.minute, event_type, tier, band, rank, score) == (10, 30, "clicked", None, "15+", None, None)


def test_jsonl_with_bad_rows(conn, tmp_path: Path) -> None:
    base = dict(zip(EVENT_COLUMNS, good("x").split(","), strict=True))
    records = [
        json.dumps({**base, "event_id": "j1", "rank": 3, "score": 0.25}),
        "{not json",
        json.dumps([1, 2]),
        json.dumps({**base, "event_id": "j2", "candidate_id": None}),
        json.dumps({**base, "event_id": "j3", "rank": "first"}),
        json.dumps({**base, "event_id": "j1"}),
    ]
    path = tmp_path / "events.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(records) + "\n")
    counts = ingest_file(conn, path)
    assert counts.as_dict() == {"read": 6, "inserted": 1, "duplicates": 1, "rejected": 4}
    reasons = dict(rejects(conn))
    assert reasons[2].startswith("invalid JSON")
    assert reasons[3] == "not a JSON object"
    assert reasons[4] == "empty candidate_id"
    assert reasons[5] == "bad rank 'first' (not an integer)"


def test_chunks_do_not_change_the_counts(conn, tmp_path: Path) -> None:
    lines = [good(f"e{i}", candidate=f"c{i}") if i % 7 else good(f"e{i}", event_type="bogus") for i in range(1, 101)]
    lines += [good("e1")]  # duplicate across chunks
    counts = ingest_file(conn, write_csv(tmp_path / "many.csv", lines), chunk_rows=8)
    assert counts.as_dict() == {"read": 101, "inserted": 86, "duplicates": 1, "rejected": 14}


def test_rows_the_prechecks_miss_are_rejected_by_the_database(conn, tmp_path: Path) -> None:
    """A constraint added by a deployment (not known to the pre-checks) rejects rows one by one, not the file."""
    with conn, conn.cursor() as cur:
        cur.execute("ALTER TABLE selection_events ADD CONSTRAINT no_tenant_b CHECK (tenant_id <> 'tenant-b')")
    lines = [good("e1"), good("e2").replace("tenant-a", "tenant-b"), good("e3")]
    counts = ingest_file(conn, write_csv(tmp_path / "events.csv", lines))
    assert counts.as_dict() == {"read": 3, "inserted": 2, "duplicates": 0, "rejected": 1}
    ((line, reason),) = rejects(conn)
    assert line == 3 and reason.startswith("database:") and "no_tenant_b" in reason


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("events.txt", b"", "unknown file type"),
        ("empty.csv", b"", "the file is empty"),
        ("noheader.csv", b"a,b,c\n1,2,3\n", "lacks required column"),
    ],
)
def test_unreadable_files_raise_a_clear_error(conn, tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UnreadableFileError, match=message):
        ingest_file(conn, path)


def test_missing_file(conn, tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError, match="cannot open"):
        ingest_file(conn, tmp_path / "absent.csv")
