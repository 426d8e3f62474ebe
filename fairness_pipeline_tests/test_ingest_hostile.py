"""Hostile input: whatever the bytes, every record read is stored, a duplicate, or a reject with its reason."""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import pytest

from fairness_pipeline.events.vocabulary import EVENT_COLUMNS
from fairness_pipeline.ingest.loader import ingest_file
from fairness_pipeline.ingest.reader import UnreadableFileError
from fairness_pipeline_tests.test_ingest import HEADER, good, rejects, write_csv
from fairness_pipeline_tests.test_ingest import rows_in as count


def record(ident: str, **values: object) -> dict[str, object]:
    return {**dict(zip(EVENT_COLUMNS, good(ident).split(","), strict=True)), **values}


def raw_rejects(conn) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("SELECT raw_record FROM selection_event_rejects ORDER BY line_number")
        return [row[0] for row in cur.fetchall()]


def assert_database_agrees(conn, counts) -> None:
    assert counts.read == counts.inserted + counts.duplicates + counts.rejected
    assert count(conn, "selection_events") == counts.inserted
    assert count(conn, "selection_event_rejects") == counts.rejected


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


# --- NUL bytes --------------------------------------------------------------------------------------------------

NUL_CASES = [
    ("event_type", "sh\x00own", "unknown event_type 'sh\\x00own'"),
    ("company_tier", "start\x00up", "unknown company_tier 'start\\x00up'"),
    ("timestamp", "2026-03-01T10:00:00\x00Z", "bad timestamp '2026-03-01T10:00:00\\x00Z'"),
    ("rank", "1\x00", "bad rank '1\\x00' (not an integer)"),
    ("score", "0.5\x00", "bad score '0.5\\x00' (not a number that NUMERIC(5,4) can hold)"),
    ("candidate_id", "c\x001", "NUL character in candidate_id"),
]


@pytest.mark.parametrize(("column", "value", "reason"), NUL_CASES, ids=[c[0] for c in NUL_CASES])
def test_nul_in_a_csv_field_is_one_reject_and_the_rest_of_the_file_is_read(
    conn, tmp_path: Path, column: str, value: str, reason: str
) -> None:
    lines = [good(f"e{i}", candidate=f"c{i}") for i in range(1, 31)]
    fields = lines[4].split(",")
    fields[EVENT_COLUMNS.index(column)] = value
    lines[4] = ",".join(fields)  # line 6, in the first of three chunks
    counts = ingest_file(conn, write_csv(tmp_path / "nul.csv", lines), chunk_rows=10)
    assert counts.as_dict() == {"read": 30, "inserted": 29, "duplicates": 0, "rejected": 1}
    assert rejects(conn) == [(6, reason)]
    assert raw_rejects(conn) == [lines[4].replace("\x00", "\\x00")]
    assert_database_agrees(conn, counts)


@pytest.mark.parametrize(("column", "value", "reason"), NUL_CASES, ids=[c[0] for c in NUL_CASES])
def test_nul_escape_in_json_lines_is_one_reject(conn, tmp_path: Path, column: str, value: str, reason: str) -> None:
    records = [record(f"j{i}", candidate_id=f"c{i}") for i in range(1, 6)]
    records[1][column] = value
    counts = ingest_file(conn, write_jsonl(tmp_path / "nul.jsonl", records), chunk_rows=2)
    assert counts.as_dict() == {"read": 5, "inserted": 4, "duplicates": 0, "rejected": 1}
    assert rejects(conn) == [(2, reason)]
    assert "\\u0000" in raw_rejects(conn)[0]
    assert_database_agrees(conn, counts)


def test_nul_in_an_id_of_a_record_with_a_quote(conn, tmp_path: Path) -> None:
    """Lines with quotes take the csv module: a NUL there is rejected the same way."""
    lines = [good("e1"), good('"e\x002"'), good("e3")]
    counts = ingest_file(conn, write_csv(tmp_path / "nul.csv", lines))
    assert counts.as_dict() == {"read": 3, "inserted": 2, "duplicates": 0, "rejected": 1}
    assert rejects(conn) == [(3, "NUL character in event_id")]


# --- truncated compressed files ----------------------------------------------------------------------------------


def truncated_gzip(path: Path, lines: list[str], keep: float) -> bytes:
    """Write ``lines`` gzip-compressed to ``path``, cut to ``keep`` of its size; return what zlib can decode."""
    whole = gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)
    cut = whole[: int(len(whole) * keep)]
    path.write_bytes(cut)
    return zlib.decompressobj(31).decompress(cut)


def test_truncated_gzip_loads_what_was_decoded_and_says_where_it_stopped(conn, tmp_path: Path) -> None:
    lines = [HEADER, *(good(f"e{i}", candidate=f"c{i}") for i in range(1, 3001))]
    path = tmp_path / "events.csv.gz"
    decoded = truncated_gzip(path, lines, 0.6)
    complete = decoded.count(b"\n")  # whole lines, the header included
    partial = not decoded.endswith(b"\n")
    assert 100 < complete < 3000 and partial  # the cut falls inside a line (checked, not assumed)

    with pytest.raises(UnreadableFileError) as raised:
        ingest_file(conn, path, chunk_rows=500)
    counts = raised.value.counts
    assert counts.as_dict() == {"read": complete, "inserted": complete - 1, "duplicates": 0, "rejected": 1}
    assert_database_agrees(conn, counts)
    message = str(raised.value)
    assert message.startswith(f"{path}: ")
    assert f"after line {complete + 1:,}" in message and "cannot read" not in message
    ((line, reason),) = rejects(conn)
    assert line == complete + 1 and reason == "incomplete line: the compressed data breaks off inside it"


def test_truncated_gzip_json_lines(conn, tmp_path: Path) -> None:
    records = [json.dumps(record(f"j{i}", candidate_id=f"c{i}")) for i in range(1, 2001)]
    path = tmp_path / "events.jsonl.gz"
    decoded = truncated_gzip(path, records, 0.5)
    complete = decoded.count(b"\n")
    with pytest.raises(UnreadableFileError, match=r"events\.jsonl\.gz: ") as raised:
        ingest_file(conn, path, chunk_rows=300)
    partial = 0 if decoded.endswith(b"\n") else 1
    assert raised.value.counts.as_dict() == {
        "read": complete + partial,
        "inserted": complete,
        "duplicates": 0,
        "rejected": partial,
    }
    assert_database_agrees(conn, raised.value.counts)


def test_not_gzip_at_all(conn, tmp_path: Path) -> None:
    path = tmp_path / "events.csv.gz"
    path.write_bytes(("\n".join([HEADER, good("e1")]) + "\n").encode())
    with pytest.raises(UnreadableFileError, match=r"events.csv.gz: .*gzip") as raised:
        ingest_file(conn, path)
    assert raised.value.counts.read == 0


# --- timestamps, line endings, byte order marks ------------------------------------------------------------------


def test_relative_words_are_not_timestamps(conn, tmp_path: Path) -> None:
    lines = [good("e1", ts="now"), good("e2", ts="today"), good("e3", ts="2026"), good("e4", ts="20260301T100000Z")]
    counts = ingest_file(conn, write_csv(tmp_path / "words.csv", lines))
    assert counts.as_dict() == {"read": 4, "inserted": 1, "duplicates": 0, "rejected": 3}
    assert rejects(conn) == [(2, "bad timestamp 'now'"), (3, "bad timestamp 'today'"), (4, "bad timestamp '2026'")]


def test_cr_only_csv(conn, tmp_path: Path) -> None:
    lines = [good("e1"), good("e2", candidate='"c,2"'), "", good("e3", event_type="bogus"), good("e4")]
    counts = ingest_file(conn, write_csv(tmp_path / "mac.csv", lines, ending="\r"))
    assert counts.as_dict() == {"read": 4, "inserted": 3, "duplicates": 0, "rejected": 1}
    assert rejects(conn) == [(5, "unknown event_type 'bogus'")]
    with conn.cursor() as cur:
        cur.execute("SELECT candidate_id FROM selection_events WHERE event_id = 'e2'")
        assert cur.fetchone() == ("c,2",)


def test_cr_only_json_lines(conn, tmp_path: Path) -> None:
    path = tmp_path / "mac.jsonl"
    path.write_bytes("".join(json.dumps(record(f"j{i}")) + "\r" for i in range(3)).encode())
    assert ingest_file(conn, path).as_dict() == {"read": 3, "inserted": 3, "duplicates": 0, "rejected": 0}


def test_byte_order_mark_in_json_lines(conn, tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(record(f"j{i}")) + "\n" for i in range(3)).encode())
    assert ingest_file(conn, path).as_dict() == {"read": 3, "inserted": 3, "duplicates": 0, "rejected": 0}


def test_byte_order_mark_in_gzip_csv(conn, tmp_path: Path) -> None:
    path = tmp_path / "bom.csv.gz"
    path.write_bytes(gzip.compress(b"\xef\xbb\xbf" + ("\n".join([HEADER, good("e1")]) + "\n").encode()))
    assert ingest_file(conn, path).as_dict() == {"read": 1, "inserted": 1, "duplicates": 0, "rejected": 0}


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_utf16_and_utf32_files_are_refused_with_a_clear_message(conn, tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "wide.csv"
    path.write_bytes(("\n".join([HEADER, good("e1")]) + "\n").encode(encoding))
    with pytest.raises(UnreadableFileError, match=f"wide.csv: the file is {encoding.upper()}"):
        ingest_file(conn, path)


def test_invalid_utf8_in_json_lines(conn, tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    lines = [
        json.dumps(record("j1")).encode(),
        json.dumps(record("j2", candidate_id="caf\u00e9"), ensure_ascii=False).encode("latin-1"),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    counts = ingest_file(conn, path)
    assert counts.as_dict() == {"read": 2, "inserted": 1, "duplicates": 0, "rejected": 1}
    ((line, reason),) = rejects(conn)
    assert line == 2 and reason.startswith("bad encoding: not UTF-8")
    assert "caf\\xe9" in raw_rejects(conn)[0]


def test_header_that_is_not_csv(conn, tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_bytes(b"event_id," + b"x" * 200_000 + b"\n" + good("e1").encode() + b"\n")
    with pytest.raises(UnreadableFileError, match=r"header\.csv: the header line is not valid CSV \(field larger"):
        ingest_file(conn, path)


# --- JSON values that are not scalars ----------------------------------------------------------------------------


def test_json_objects_arrays_and_booleans_are_rejected(conn, tmp_path: Path) -> None:
    records = [
        record("j1"),
        record("j2", candidate_id={"id": "c2"}),
        record("j3", event_id=["j3"]),
        record("j4", rank=True),
        record("j5", company_tier=False, score=[0.5]),
        record("j6", rank=3, score=0.25, candidate_id=12345),  # numbers are scalars: stored as text
    ]
    counts = ingest_file(conn, write_jsonl(tmp_path / "values.jsonl", records))
    assert counts.as_dict() == {"read": 6, "inserted": 2, "duplicates": 0, "rejected": 4}
    assert rejects(conn) == [
        (2, "candidate_id is a JSON object, not a string or a number"),
        (3, "event_id is a JSON array, not a string or a number"),
        (4, "rank is a JSON boolean, not a string or a number"),
        (
            5,
            "company_tier is a JSON boolean, not a string or a number; score is a JSON array, not a string or a number",
        ),
    ]
    with conn.cursor() as cur:
        cur.execute("SELECT candidate_id, rank, score FROM selection_events WHERE event_id = 'j6'")
        assert cur.fetchone() == ("12345", 3, pytest.approx(0.25))


# --- duplicates with other content ---------------------------------------------------------------------------------


def test_conflicting_resend_is_rejected_and_identical_resend_is_a_duplicate(conn, tmp_path: Path) -> None:
    first = [good(f"e{i}", candidate=f"c{i}") for i in range(1, 6)]
    ingest_file(conn, write_csv(tmp_path / "first.csv", first))
    again = [
        good("e1", candidate="c1"),  # line 2: identical
        good("e2", candidate="c2", ts="2026-03-01T12:00:00+02:00"),  # line 3: the same instant, written otherwise
        good("e3", candidate="someone-else"),  # line 4: conflicting
        good("e4", candidate="c4").replace(",0.9000", ",0.9"),  # line 5: the same score
        good("e5", candidate="c5").replace(",startup,", ",,"),  # line 6: a dimension now missing: conflicting
        good("e6"),  # line 7: new
        good("e6", event_type="clicked"),  # line 8: conflicts with line 7 of the same file
        good("e6"),  # line 9: identical to line 7
    ]
    counts = ingest_file(conn, write_csv(tmp_path / "again.csv", again))
    assert counts.as_dict() == {"read": 8, "inserted": 1, "duplicates": 4, "rejected": 3}
    reason = "conflicting duplicate of a stored event_id"
    assert rejects(conn) == [(4, reason), (6, reason), (8, reason)]
    assert raw_rejects(conn) == [again[2], again[4], again[6]]
    with conn.cursor() as cur:
        cur.execute("SELECT candidate_id, company_tier FROM selection_events WHERE event_id IN ('e3', 'e5') ORDER BY 1")
        assert cur.fetchall() == [("c3", "startup"), ("c5", "startup")]  # the stored content is kept
    assert count(conn, "selection_events") == 6


def test_conflicting_duplicate_inside_one_chunk_of_a_new_file(conn, tmp_path: Path) -> None:
    lines = [good("e1"), good("e1", candidate="c2"), good("e1"), good("e2")]
    counts = ingest_file(conn, write_csv(tmp_path / "one.csv", lines))
    assert counts.as_dict() == {"read": 4, "inserted": 2, "duplicates": 1, "rejected": 1}
    assert rejects(conn) == [(3, "conflicting duplicate of a stored event_id")]


# --- quoted fields over several lines ------------------------------------------------------------------------------


def test_closed_multiline_quoted_field_has_an_accurate_reason(conn, tmp_path: Path) -> None:
    lines = [good("e1"), good("e2", candidate='"c\n2"'), good("e3")]  # the record of e2 spans lines 3-4
    counts = ingest_file(conn, write_csv(tmp_path / "multi.csv", lines))
    assert counts.as_dict() == {"read": 3, "inserted": 2, "duplicates": 0, "rejected": 1}
    assert rejects(conn) == [(3, "quoted field spans lines 3-4 (a value may not hold a line break)")]


def test_multiline_quoted_field_across_a_chunk_boundary_is_one_reject(conn, tmp_path: Path) -> None:
    lines = [good(f"e{i}", candidate=f"c{i}") for i in range(1, 10)]
    lines[3] = good("e4", candidate='"c\nx\n4"')  # lines 5-7; chunks of 6 lines: lines 1-6 (header, 2-6), 7-12
    counts = ingest_file(conn, write_csv(tmp_path / "multi.csv", lines), chunk_rows=6)
    assert counts.as_dict() == {"read": 9, "inserted": 8, "duplicates": 0, "rejected": 1}
    assert rejects(conn) == [(5, "quoted field spans lines 5-7 (a value may not hold a line break)")]
    assert raw_rejects(conn) == [lines[3]]


def test_unterminated_quote_at_the_end_of_the_file(conn, tmp_path: Path) -> None:
    lines = [good("e1"), good("e2", candidate='"c2'), good("e3"), good("e4")]
    counts = ingest_file(conn, write_csv(tmp_path / "open.csv", lines), chunk_rows=2)
    assert counts.as_dict() == {"read": 2, "inserted": 1, "duplicates": 0, "rejected": 1}
    assert rejects(conn) == [(3, "unterminated quoted field: lines 3-5 run to the end of the file")]


# --- the command ---------------------------------------------------------------------------------------------------


def test_cli_counts_what_a_truncated_file_loaded_and_says_so_once(
    db_url: str, conn, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from fairness_pipeline.cli.main import app
    from fairness_pipeline.store import connection

    monkeypatch.setenv("FAIRNESS_DATABASE_URL", db_url)
    monkeypatch.setenv("FAIRNESS_HOME", str(tmp_path / "home"))
    connection.database_url.cache_clear()
    path = tmp_path / "events.csv.gz"
    decoded = truncated_gzip(path, [HEADER, *(good(f"e{i}", candidate=f"c{i}") for i in range(1, 2001))], 0.7)
    complete = decoded.count(b"\n")
    try:
        result = CliRunner().invoke(app, ["ingest", "--json", str(path)])
    finally:
        connection.database_url.cache_clear()
    assert result.exit_code == 2
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert counts == {"read": complete, "inserted": complete - 1, "duplicates": 0, "rejected": 1}
    assert count(conn, "selection_events") == counts["inserted"]
    assert count(conn, "selection_event_rejects") == counts["rejected"]
    message = " ".join(result.output.split())
    assert message.count("cannot read") == 1 and message.count("events.csv.gz") == 1
    assert f"breaks off after line {complete + 1:,}" in message
