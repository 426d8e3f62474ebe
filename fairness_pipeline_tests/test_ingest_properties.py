"""Property: whatever the bytes, read = inserted + duplicates + rejected, and the database holds exactly that.

Files are made from arbitrary bytes, or from rows of valid and invalid field values (CSV and JSON Lines, any line
ending, a byte order mark or not, stray bytes that are not UTF-8), plain or gzip, truncated or not, and go through
the real reader and loader into the real database. Loading the same file again must give the same records: the
ones inserted or duplicates before are duplicates now, the ones rejected are rejected again.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fairness_pipeline.events.vocabulary import DIMENSION_VALUES, EVENT_COLUMNS, EVENT_TYPES
from fairness_pipeline.ingest.counts import IngestCounts
from fairness_pipeline.ingest.loader import ingest_file
from fairness_pipeline.ingest.reader import UnreadableFileError
from fairness_pipeline_tests.test_ingest import HASH, HEADER
from fairness_pipeline_tests.test_ingest import rows_in as count

SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)

HOSTILE_TEXT = st.sampled_from(
    ["", " ", "\x00", "now", "today", "yesterday", "2026", "NaN", "1e400", "-1", '"', '""', ",", "\r", "\n", "\ufeff"]
) | st.text(max_size=12)
"""Values that are wrong for some or all columns: NUL, relative words, quotes, separators, line breaks, any text."""


def valid_values(column: str) -> st.SearchStrategy[str]:
    if column == "event_id":
        return st.sampled_from(["e1", "e2", "e3", "e4"])  # few ids: duplicates and conflicting re-sends
    if column == "timestamp":
        return st.sampled_from(["2026-03-01T10:00:00Z", "2026-03-01T12:00:00+02:00", "2026-03-02 08:30:00.5"])
    if column == "event_type":
        return st.sampled_from(EVENT_TYPES)
    if column in DIMENSION_VALUES:
        return st.sampled_from(("", *DIMENSION_VALUES[column]))
    if column == "rank":
        return st.sampled_from(["", "1", "2", "17"])
    if column == "score":
        return st.sampled_from(["", "0.5", "0.9000", "1"])
    if column == "user_id_hash":
        return st.just(HASH)
    return st.sampled_from(["c1", "c2", "s1", "tenant-a"])


FIELDS = [valid_values(column) | HOSTILE_TEXT for column in EVENT_COLUMNS]
JSON_EXTRA = (
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=True) | st.lists(st.integers(), max_size=2)
)


@st.composite
def csv_bytes(draw) -> bytes:
    rows = draw(st.lists(st.tuples(*FIELDS), max_size=12))
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    lines = [HEADER]
    for row in rows:
        quote = draw(st.booleans())
        values = [f'"{value.replace(chr(34), chr(34) * 2)}"' if quote else value for value in row]
        lines.append(",".join(values[: draw(st.integers(len(values) - 1, len(values)))]))
    text = ending.join(lines) + draw(st.sampled_from([ending, ""]))
    return draw(st.sampled_from([b"", b"\xef\xbb\xbf"])) + text.encode("utf-8", "surrogatepass")


@st.composite
def jsonl_bytes(draw) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        record = {column: draw(strategy | JSON_EXTRA) for column, strategy in zip(EVENT_COLUMNS, FIELDS, strict=True)}
        lines.append(json.dumps(record, ensure_ascii=draw(st.booleans())))
    lines += draw(st.lists(st.sampled_from(["{", "[]", "null", '{"event_id": {"a": 1}}', "\x00"]), max_size=2))
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    bom = draw(st.sampled_from([b"", b"\xef\xbb\xbf"]))
    return bom + (ending.join(lines) + ending).encode("utf-8", "surrogatepass")


@st.composite
def files(draw) -> tuple[str, bytes]:
    """(file name, content)."""
    fmt = draw(st.sampled_from(["csv", "jsonl"]))
    content = draw(csv_bytes() if fmt == "csv" else jsonl_bytes())
    if draw(st.booleans()):  # stray bytes anywhere: not UTF-8, NUL, line breaks
        at = draw(st.integers(0, len(content)))
        content = content[:at] + draw(st.binary(min_size=1, max_size=4)) + content[at:]
    name = f"events.{fmt}"
    if draw(st.booleans()):
        name += ".gz"
        content = gzip.compress(content, mtime=0)
        if draw(st.booleans()):
            content = content[: draw(st.integers(0, len(content)))]
    return name, content


ARBITRARY = st.tuples(st.sampled_from(["a.csv", "a.jsonl", "a.csv.gz", "a.jsonl.gz"]), st.binary(max_size=600))
WITH_HEADER = st.builds(lambda data: ("h.csv", (HEADER + "\n").encode() + data), st.binary(max_size=600))


def load(conn, directory: Path, name: str, content: bytes, chunk_rows: int) -> IngestCounts:
    path = directory / name
    path.write_bytes(content)
    try:
        return ingest_file(conn, path, chunk_rows=chunk_rows)
    except UnreadableFileError as exc:
        return exc.counts


def check(conn, name: str, content: bytes, chunk_rows: int) -> None:
    with conn, conn.cursor() as cur:
        cur.execute("TRUNCATE selection_events, selection_event_rejects")
    with tempfile.TemporaryDirectory() as directory:
        first = load(conn, Path(directory), name, content, chunk_rows)
        assert first.read == first.inserted + first.duplicates + first.rejected
        assert count(conn, "selection_events") == first.inserted
        assert count(conn, "selection_event_rejects") == first.rejected

        again = load(conn, Path(directory), name, content, chunk_rows)
    assert again.as_dict() == {
        "read": first.read,
        "inserted": 0,
        "duplicates": first.inserted + first.duplicates,
        "rejected": first.rejected,
    }
    assert count(conn, "selection_events") == first.inserted
    assert count(conn, "selection_event_rejects") == 2 * first.rejected


@SETTINGS
@given(file=files(), chunk_rows=st.integers(1, 6))
def test_built_files_are_accounted_for(conn, file: tuple[str, bytes], chunk_rows: int) -> None:
    check(conn, *file, chunk_rows)


@SETTINGS
@given(file=ARBITRARY | WITH_HEADER, chunk_rows=st.integers(1, 6))
def test_arbitrary_bytes_are_accounted_for(conn, file: tuple[str, bytes], chunk_rows: int) -> None:
    check(conn, *file, chunk_rows)
