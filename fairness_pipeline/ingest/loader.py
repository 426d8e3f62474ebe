"""Load parsed events into ``selection_events``: COPY through a staging table, ``ON CONFLICT DO NOTHING``.

Every record read ends in exactly one place: inserted, a duplicate of a stored ``event_id``, or a row of
``selection_event_rejects`` with its line number and reason. Each chunk is one transaction.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pandas as pd

from fairness_pipeline.ingest.reader import DEFAULT_CHUNK_ROWS, ParsedChunk, Reject, read_chunks
from fairness_pipeline.ingest.storable import STORED_COLUMNS, check_rows
from fairness_pipeline.queries import ingest as q

T = TypeVar("T")
_DONE = object()


@dataclass
class IngestCounts:
    read: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0

    def __iadd__(self, other: IngestCounts) -> IngestCounts:
        self.read += other.read
        self.inserted += other.inserted
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        return self

    def as_dict(self) -> dict[str, int]:
        return {"read": self.read, "inserted": self.inserted, "duplicates": self.duplicates, "rejected": self.rejected}


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
    totals = IngestCounts()
    source = source or path.name
    chunks = read_chunks(path, chunk_rows=chunk_rows, on_bytes=on_bytes)
    for prepared in prefetched(map(prepare_chunk, chunks)):
        totals += store_prepared(conn, prepared, source)
    return totals


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
    """A parsed chunk after the storability checks: typed rows to store and rows already rejected."""

    read: int
    storable: pd.DataFrame
    rejects: list[Reject]
    raw_by_line: dict[int, str]


def prepare_chunk(chunk: ParsedChunk) -> PreparedChunk:
    """Type the parsed rows and set aside those the table cannot hold (vectorised checks)."""
    rejects = list(chunk.rejects)
    storable = pd.DataFrame()
    if chunk.rows:
        typed, reasons = check_rows(chunk.rows)
        typed.insert(0, "line_number", chunk.line_numbers)
        bad = (reasons != "").to_numpy()
        for position in bad.nonzero()[0]:  # loop over rejected rows only
            rejects.append(
                Reject(chunk.line_numbers[position], chunk.raw_records[position], str(reasons.iloc[position]))
            )
        storable = typed[~bad]
    raw_by_line = dict(zip(chunk.line_numbers, chunk.raw_records, strict=True))
    return PreparedChunk(chunk.read, storable, rejects, raw_by_line)


def load_chunk(conn, chunk: ParsedChunk, source: str) -> IngestCounts:
    """Check and store one parsed chunk in a single transaction."""
    return store_prepared(conn, prepare_chunk(chunk), source)


def store_prepared(conn, prepared: PreparedChunk, source: str) -> IngestCounts:
    """Store a prepared chunk in a single transaction: COPY to staging, insert skipping duplicates, keep rejects."""
    storable, rejects = prepared.storable, list(prepared.rejects)
    with conn, conn.cursor() as cur:
        cur.execute(q.CREATE_STAGING)
        inserted, failed = 0, 0
        if len(storable):
            cur.copy_expert(q.COPY_STAGING, _csv_buffer(storable))
            try:
                cur.execute("SAVEPOINT bulk_insert")
                cur.execute(q.INSERT_FROM_STAGING)
                inserted = cur.rowcount
                cur.execute("RELEASE SAVEPOINT bulk_insert")
            except Exception:  # a rule the pre-checks missed: fall back to row-by-row so one row cannot sink the rest
                cur.execute("ROLLBACK TO SAVEPOINT bulk_insert")
                inserted, late_rejects = _insert_row_by_row(cur, storable, prepared.raw_by_line)
                rejects.extend(late_rejects)
                failed = len(late_rejects)
        if rejects:
            cur.copy_expert(q.COPY_REJECTS, _rejects_buffer(source, rejects))
    duplicates = len(storable) - failed - inserted
    return IngestCounts(read=prepared.read, inserted=inserted, duplicates=duplicates, rejected=len(rejects))


def _insert_row_by_row(cur, storable: pd.DataFrame, raw_by_line: dict[int, str]) -> tuple[int, list[Reject]]:
    import psycopg2

    inserted, rejects = 0, []
    for line_number in storable["line_number"].tolist():
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


def _csv_buffer(frame: pd.DataFrame) -> io.BytesIO:
    """The staging rows as CSV for COPY, written by Arrow (missing values are empty, i.e. NULL)."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    buffer = io.BytesIO()
    table = pa.Table.from_pandas(frame[["line_number", *STORED_COLUMNS]], preserve_index=False)
    pa_csv.write_csv(table, buffer, pa_csv.WriteOptions(include_header=False))
    buffer.seek(0)
    return buffer


def _rejects_buffer(source: str, rejects: list[Reject]) -> io.StringIO:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerows((source, r.line_number, r.raw_record.replace("\x00", "\\x00"), r.reason) for r in rejects)
    buffer.seek(0)
    return buffer
