"""Load parsed events into ``selection_events``: COPY through a staging table, ``ON CONFLICT DO NOTHING``.

Every record read ends in exactly one place: inserted, a duplicate of a stored ``event_id``, or a row of
``selection_event_rejects`` with its line number and reason. Each chunk is one transaction. A duplicate whose stored
columns differ from the stored event's (compared in SQL) is rejected as a conflicting duplicate; rejects are written
so that any text can be stored (NUL escaped as ``\\x00``). After a load, the tables written to are analysed.

Files and frames are loaded faster by copying a chunk straight into ``selection_events`` inside a savepoint while no
duplicates turn up: the server then skips the staging table and the speculative inserts of ``ON CONFLICT``. A COPY
that fails (a duplicate, a rule the pre-checks missed) is undone and the chunk goes through staging as before, so
the outcome is the same; the next chunk tries again only if this one had no duplicates. The indexes and constraints
of the table are never touched. Parsing and checks run in a background thread, overlapping the database's work.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from fairness_pipeline.ingest.counts import IngestCounts
from fairness_pipeline.ingest.reader import (
    DEFAULT_CHUNK_ROWS,
    ParsedChunk,
    Reject,
    UnreadableFileError,
    read_chunks,
)
from fairness_pipeline.ingest.storable import STORED_COLUMNS, check_columns, text_columns
from fairness_pipeline.store import events as q

T = TypeVar("T")
_DONE = object()

SESSION_SETTINGS = "SET LOCAL TimeZone = 'UTC'"
"""For the load transaction only: the COPY input holds UTC times without an offset."""
COPY_DIRECT = f"COPY selection_events ({', '.join(STORED_COLUMNS)}) FROM STDIN WITH (FORMAT csv)"
"""Straight into the table: about a third less work for the server than staging + ``INSERT .. ON CONFLICT``, but the
whole COPY fails on the first duplicate ``event_id`` (it is then undone and the chunk goes through staging)."""
COPY_BLOCK_BYTES = 1 << 20
_WRITE_OPTIONS = pa_csv.WriteOptions(include_header=False)


def ingest_file(
    conn,
    path: Path,
    *,
    source: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_bytes: Callable[[int], None] | None = None,
) -> IngestCounts:
    """Stream ``path`` (CSV or JSON Lines) into the database and return the counts.

    Raises ``UnreadableFileError`` only when the file cannot be read at all.
    """
    source = source or path.name
    chunks = read_chunks(path, chunk_rows=chunk_rows, on_bytes=on_bytes)
    return store_all(conn, prefetched(map(partial(prepare_chunk, direct=True), chunks)), source)


def store_all(conn, chunks: Iterable[PreparedChunk], source: str) -> IngestCounts:
    """Store prepared chunks one transaction each, copying straight into the table while no duplicates turn up,
    then ANALYZE the tables written to, so that the planner knows the new rows.

    When the input breaks off (``UnreadableFileError`` from the reader), what came before is stored and counted,
    and the error is raised again with those counts (``counts``) and a message that gives them.
    """
    totals = IngestCounts()
    direct = True
    try:
        for prepared in chunks:
            counts = store_prepared(conn, prepared, source, direct=direct)
            direct = counts.inserted == prepared.storable.num_rows  # a chunk without duplicates: try again
            totals += counts
    except UnreadableFileError as exc:
        if not totals.read:
            raise
        analyze(conn, totals)
        raise UnreadableFileError(f"{exc}; what came before was loaded: {totals.summary()}", totals) from exc
    analyze(conn, totals)
    return totals


def analyze(conn, counts: IngestCounts) -> None:
    """Refresh the planner's statistics of the tables a load wrote to (a bulk COPY leaves them stale)."""
    written = ((q.ANALYZE_EVENTS, counts.inserted), (q.ANALYZE_REJECTS, counts.rejected))
    statements = [statement for statement, rows in written if rows]
    if statements:
        with conn, conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)


def prefetched(items: Iterator[T]) -> Iterator[T]:
    """Produce the next item in a background thread while the caller works on the current one.

    Parsing (Python) then overlaps with the database's insert (PostgreSQL's own process); at most two chunks are
    in memory at a time. Exceptions of the producer are raised in the caller.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-reader") as pool:
        pending = pool.submit(next, items, _DONE)
        while True:
            item = pending.result()
            if item is _DONE:
                return
            pending = pool.submit(next, items, _DONE)
            yield item


@dataclass
class PreparedChunk:
    """A parsed chunk after the storability checks: the rows to store (as COPY input) and the rows rejected."""

    read: int
    storable: pa.Table
    rejects: list[Reject]
    line_numbers: list[int]
    raw_records: list[str]
    direct_data: bytes = b""
    """The rows as COPY input for ``selection_events`` (rendered in the reading thread)."""

    def staging_data(self) -> bytes:
        """The rows as COPY input for the staging table (with line numbers)."""
        return _copy_data(self.storable, ["line_number", *STORED_COLUMNS])

    def raw_by_line(self) -> dict[int, str]:
        return dict(zip(self.line_numbers, self.raw_records, strict=True))


def prepare_chunk(chunk: ParsedChunk, *, direct: bool = False) -> PreparedChunk:
    """Type the parsed rows and set aside those the table cannot hold (vectorised checks).

    With ``direct``, also render the COPY input for ``store_prepared(..., direct=True)``.
    """
    rejects = list(chunk.rejects)
    line_numbers, raw_records = chunk.line_numbers, chunk.raw_records
    columns = chunk.columns
    if columns is None:
        line_numbers, raw_records, rows = _encodable(chunk, rejects)
        columns = text_columns(rows)
    checked = check_columns(columns)
    positions = np.flatnonzero(checked.bad).tolist()
    for position, reason in zip(positions, checked.reasons, strict=True):
        rejects.append(Reject(line_numbers[position], raw_records[position], reason))
    rejects.sort(key=lambda reject: reject.line_number)
    storable = checked.table.add_column(0, "line_number", pa.array(line_numbers, pa.int64()))
    if checked.bad.any():
        storable = storable.filter(pa.array(~checked.bad))
    direct_data = _copy_data(storable, list(STORED_COLUMNS)) if direct and storable.num_rows else b""
    return PreparedChunk(chunk.read, storable, rejects, line_numbers, raw_records, direct_data)


def _encodable(chunk: ParsedChunk, rejects: list[Reject]) -> tuple[list[int], list[str], list[list[str]]]:
    """The rows of an API chunk that are valid Unicode (no lone surrogates); the others are rejected."""
    try:
        "".join(value for row in chunk.rows for value in row if value).encode("utf-8")
        return chunk.line_numbers, chunk.raw_records, chunk.rows
    except UnicodeEncodeError:
        pass
    line_numbers, raw_records, rows = [], [], []
    for number, raw, row in zip(chunk.line_numbers, chunk.raw_records, chunk.rows, strict=True):
        try:
            "".join(value for value in row if value).encode("utf-8")
        except UnicodeEncodeError as exc:
            text = raw.encode("utf-8", "backslashreplace").decode("utf-8")
            rejects.append(Reject(number, text, f"bad encoding: unpaired surrogate ({exc.reason})"))
            continue
        line_numbers.append(number)
        raw_records.append(raw)
        rows.append(row)
    return line_numbers, raw_records, rows


def load_chunk(conn, chunk: ParsedChunk, source: str) -> IngestCounts:
    """Check and store one parsed chunk in a single transaction."""
    return store_prepared(conn, prepare_chunk(chunk), source)


def store_prepared(conn, prepared: PreparedChunk, source: str, *, direct: bool = False) -> IngestCounts:
    """Store a prepared chunk in a single transaction: COPY to staging, insert skipping duplicates, keep rejects.

    With ``direct``, first try to COPY the rows straight into the table (in a savepoint); if that fails for any reason
    (a duplicate, a rule the pre-checks missed, a deadlock), it is undone and the chunk takes the staging path.
    """
    import psycopg2

    storable, rejects = prepared.storable, list(prepared.rejects)
    with conn, conn.cursor() as cur:
        cur.execute(SESSION_SETTINGS)
        inserted, failed = 0, 0
        copied = False
        if direct and storable.num_rows and prepared.direct_data:
            cur.execute("SAVEPOINT direct_copy")
            try:
                cur.copy_expert(COPY_DIRECT, io.BytesIO(prepared.direct_data), size=COPY_BLOCK_BYTES)
                cur.execute("RELEASE SAVEPOINT direct_copy")
                inserted, copied = storable.num_rows, True
            except psycopg2.Error:
                cur.execute("ROLLBACK TO SAVEPOINT direct_copy")
        if storable.num_rows and not copied:
            cur.execute(q.CREATE_STAGING)
            cur.copy_expert(q.COPY_STAGING, io.BytesIO(prepared.staging_data()), size=COPY_BLOCK_BYTES)
            try:
                cur.execute("SAVEPOINT bulk_insert")
                cur.execute(q.INSERT_FROM_STAGING)
                inserted = cur.rowcount
                cur.execute("RELEASE SAVEPOINT bulk_insert")
            except Exception:  # a rule the pre-checks missed: fall back to row-by-row so one row cannot sink the rest
                cur.execute("ROLLBACK TO SAVEPOINT bulk_insert")
                inserted, late_rejects = _insert_row_by_row(cur, storable, prepared.raw_by_line())
                rejects.extend(late_rejects)
                failed = len(late_rejects)
        if storable.num_rows > inserted + failed:  # duplicates: those with other content are rejected
            conflicts = _conflicting(cur, prepared, {r.line_number for r in rejects[len(prepared.rejects) :]})
            rejects.extend(conflicts)
            failed += len(conflicts)
        if rejects:
            cur.copy_expert(q.COPY_REJECTS, _rejects_data(source, rejects))
    duplicates = storable.num_rows - failed - inserted
    return IngestCounts(read=prepared.read, inserted=inserted, duplicates=duplicates, rejected=len(rejects))


CONFLICT_REASON = "conflicting duplicate of a stored event_id"


def _conflicting(cur, prepared: PreparedChunk, rejected_lines: set[int]) -> list[Reject]:
    """Staged rows whose ``event_id`` is stored with other content (compared column by column, in SQL)."""
    cur.execute(q.CONFLICTING_STAGED_LINES)
    lines = [line for (line,) in cur.fetchall() if line not in rejected_lines]
    if not lines:
        return []
    raw_by_line = prepared.raw_by_line()
    return [Reject(line, raw_by_line[line], CONFLICT_REASON) for line in lines]


def _insert_row_by_row(cur, storable: pa.Table, raw_by_line: dict[int, str]) -> tuple[int, list[Reject]]:
    import psycopg2

    inserted, rejects = 0, []
    for line_number in storable.column("line_number").to_pylist():
        cur.execute("SAVEPOINT one_row")
        try:
            cur.execute(q.INSERT_ONE_FROM_STAGING, (line_number,))
            inserted += cur.rowcount
            cur.execute("RELEASE SAVEPOINT one_row")
        except psycopg2.Error as exc:
            cur.execute("ROLLBACK TO SAVEPOINT one_row")
            message = (exc.pgerror or str(exc)).strip().splitlines()[0]
            rejects.append(Reject(line_number, raw_by_line[line_number], f"database: {message}"))
    return inserted, rejects


def _copy_data(table: pa.Table, columns: list[str]) -> bytes:
    """``columns`` of the rows as CSV for COPY, written by Arrow (missing values are empty, i.e. NULL).

    Timestamps are written as UTC wall-clock times without an offset (much faster than with one); the load
    transaction sets its time zone to UTC so that PostgreSQL reads them as such.
    """
    stamps = table.column("timestamp")
    naive = stamps.cast(pa.timestamp(stamps.type.unit))
    table = table.set_column(table.schema.get_field_index("timestamp"), "timestamp", naive)
    buffer = io.BytesIO()
    pa_csv.write_csv(table.select(columns), buffer, _WRITE_OPTIONS)
    return buffer.getvalue()


def _rejects_data(source: str, rejects: list[Reject]) -> io.BytesIO:
    """The rejects as COPY input, storable whatever they quote: NUL (which PostgreSQL text cannot hold) is written
    as the four characters ``\\x00`` and lone surrogates as ``\\udc80``-style escapes."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows((source, r.line_number, r.raw_record, r.reason) for r in rejects)
    text = buffer.getvalue().replace("\x00", "\\x00")
    return io.BytesIO(text.encode("utf-8", "backslashreplace"))
