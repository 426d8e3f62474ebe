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


def write_csv(path: Path, lines: list[str], ending: str = "\n") -> Path:
    path.write_bytes((ending.join([HEADER, *lines]) + ending).encode())
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
        json.dumps({**base, "event_id": "j1", "rank": "3", "score": "0.2500"}),  # the same values as line 1
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


def stored(conn) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT event_id, timestamp AT TIME ZONE 'UTC', candidate_id, event_type, company_tier, rank, score "
            "FROM selection_events ORDER BY event_id"
        )
        return cur.fetchall()


def test_crlf_bom_quotes_and_whitespace(conn, tmp_path: Path) -> None:
    lines = [
        good("e1"),  # line 2: stored
        good("e2", candidate='"c,2"'),  # line 3: quoted comma, stored as c,2
        good("e3", candidate='"c""3"'),  # line 4: escaped quote, stored as c"3
        good("e4", candidate='"c4'),  # line 5: unterminated quote swallows lines 6-7 (line 7 closes it with c"7)
        good("e5"),  # line 6
        good("e6", candidate='c"7'),  # line 7
        "   ",  # line 8: blank
        good("e8").replace(",shown,", ",sh\rown,"),  # line 9: stray carriage return
        good(" e9 ", candidate="\u00a0c9 "),  # line 10: surrounding whitespace is stripped
        good("e10"),  # line 11, the last one: ends the file without a line ending
    ]
    path = tmp_path / "windows.csv"
    path.write_bytes(("\ufeff" + "\r\n".join([HEADER, *lines])).encode())
    counts = ingest_file(conn, path)
    assert counts.as_dict() == {"read": 7, "inserted": 5, "duplicates": 0, "rejected": 2}
    got = rejects(conn)
    assert got[0] == (5, "quoted field spans lines 5-7 (a value may not hold a line break)")
    assert got[1][0] == 9 and got[1][1].startswith("bad CSV: new-line character seen in unquoted field")
    assert [(row[0], row[2]) for row in stored(conn)] == [
        ("e1", "c1"),
        ("e10", "c1"),
        ("e2", "c,2"),
        ("e3", 'c"3'),
        ("e9", "c9"),
    ]


def test_quoted_and_plain_lines_give_the_same_rows(conn, tmp_path: Path) -> None:
    """Lines with quotes take the csv module, the others a faster path; mixing them keeps line order and values."""
    plain = [good(f"e{i}", candidate=f"c{i}", event_type="bogus" if i % 5 == 0 else "shown") for i in range(40)]
    mixed = [",".join(f'"{v}"' for v in line.split(",")) if i % 3 == 0 else line for i, line in enumerate(plain)]
    mixed[7] += ","  # wrong column count in a plain line
    mixed[9] += ',""'  # ... and in a quoted one
    counts = ingest_file(conn, write_csv(tmp_path / "mixed.csv", mixed), chunk_rows=16)
    assert counts.as_dict() == {"read": 40, "inserted": 30, "duplicates": 0, "rejected": 10}
    reasons = dict(rejects(conn))
    assert sorted(reasons) == [2, 7, 9, 11, 12, 17, 22, 27, 32, 37]
    assert reasons[9] == reasons[11] == "wrong column count: expected 12, got 13"
    assert reasons[12] == "unknown event_type 'bogus'"
    assert len(stored(conn)) == 30 and stored(conn)[0][:3][::2] == ("e1", "c1")


def test_nul_character_is_rejected_not_fatal(conn, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "nul.csv", [good("e1", candidate="c\x001"), good("e2")])
    counts = ingest_file(conn, path)
    assert counts.as_dict() == {"read": 2, "inserted": 1, "duplicates": 0, "rejected": 1}
    assert rejects(conn) == [(2, "NUL character in candidate_id")]


def test_jsonl_lone_surrogate_is_rejected(conn, tmp_path: Path) -> None:
    base = dict(zip(EVENT_COLUMNS, good("x").split(","), strict=True))
    records = [
        json.dumps({**base, "event_id": "j1", "candidate_id": "c\ud800"}),
        json.dumps({**base, "event_id": "j2"}),
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(records) + "\n")
    counts = ingest_file(conn, path)
    assert counts.as_dict() == {"read": 2, "inserted": 1, "duplicates": 0, "rejected": 1}
    assert rejects(conn) == [(1, "bad encoding: candidate_id holds an unpaired surrogate (\\ud800)")]


def test_duplicates_fall_back_from_direct_copy_and_first_line_wins(conn, tmp_path: Path) -> None:
    """Chunks are copied straight into the table until one has a duplicate; the result is the same either way."""
    lines = [good(f"e{i}", candidate=f"c{i}") for i in range(1, 11)]  # chunk 1 (lines 2-6), chunk 2 (lines 7-11)
    lines += [good("e12"), good("e3", candidate="later"), good("e12", candidate="later"), good("e14"), good("e15")]
    lines += [good("e16"), good("e17"), good("e18")]  # chunk 4: no duplicates again
    counts = ingest_file(conn, write_csv(tmp_path / "dups.csv", lines), chunk_rows=5)
    assert counts.as_dict() == {"read": 18, "inserted": 16, "duplicates": 0, "rejected": 2}
    conflict = "conflicting duplicate of a stored event_id"  # same id, other candidate: the first line is kept
    assert rejects(conn) == [(13, conflict), (14, conflict)]
    rows = {row[0]: row[2] for row in stored(conn)}
    assert rows["e3"] == "c3" and rows["e12"] == "c1"
    again = ingest_file(conn, write_csv(tmp_path / "dups.csv", lines), chunk_rows=5)
    assert again.as_dict() == {"read": 18, "inserted": 0, "duplicates": 16, "rejected": 2}


def test_frames_are_stored_like_files(conn) -> None:
    import pandas as pd

    from fairness_pipeline.ingest.frames import frame_to_chunk, load_frames

    frame = pd.DataFrame([dict(zip(EVENT_COLUMNS, good(f"f{i}").split(","), strict=True)) for i in range(3)]).astype(
        {"rank": "Int64", "score": "float64"}
    )
    frame["timestamp"] = pd.to_datetime(
        ["2026-03-01T10:00:00.5Z", "2026-03-01T12:00:00+02:00", None], utc=True, format="ISO8601"
    )
    frame.loc[1, "company_tier"] = None
    chunk = frame_to_chunk(frame, first_position=4)
    assert chunk.columns[1].to_pylist() == ["2026-03-01T10:00:00.500000+00:00", "2026-03-01T10:00:00.000000+00:00", ""]
    counts = load_frames(conn, [frame], source="frames")
    assert counts.as_dict() == {"read": 3, "inserted": 2, "duplicates": 0, "rejected": 1}
    assert rejects(conn) == [(3, "empty timestamp")]  # positions count from 1 across frames
    assert [row[4] for row in stored(conn)] == ["startup", None]
