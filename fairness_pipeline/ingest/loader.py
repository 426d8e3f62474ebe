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
from fairness_pipeline.store.events import analyze, store_prepared

T = TypeVar("T")
_DONE = object()

_WRITE_OPTIONS = pa_csv.WriteOptions(include_header=False)


def ingest_file(
    conn,
    path: Path,
    *,
    source: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_bytes: Callable[[int], None] | None = None,
    on_tenants: TenantsHook | None = None,
) -> IngestCounts:
    """Stream ``path`` (CSV or JSON Lines) into the database and return the counts.

    Raises ``UnreadableFileError`` only when the file cannot be read at all.
    """
    source = source or path.name
    chunks = read_chunks(path, chunk_rows=chunk_rows, on_bytes=on_bytes)
    return store_all(conn, prefetched(map(partial(prepare_chunk, direct=True), chunks)), source, on_tenants)


TenantsHook = Callable[[list[str]], object]
"""Called after a load with the tenants of the stored rows, sorted (the CLI registers them as Dagster partitions)."""


def store_all(
    conn, chunks: Iterable[PreparedChunk], source: str, on_tenants: TenantsHook | None = None
) -> IngestCounts:
    """Store prepared chunks one transaction each, copying straight into the table while no duplicates turn up,
    then ANALYZE the tables written to, so that the planner knows the new rows, and pass the tenants of the
    storable rows (inserted or duplicates of stored ones) to ``on_tenants``.

    When the input breaks off (``UnreadableFileError`` from the reader), what came before is stored and counted,
    and the error is raised again with those counts (``counts``) and a message that gives them.
    """
    totals = IngestCounts()
    tenants: set[str] = set()
    direct = True
    try:
        for prepared in chunks:
            counts = store_prepared(conn, prepared, source, direct=direct)
            direct = counts.inserted == prepared.storable.num_rows  # a chunk without duplicates: try again
            totals += counts
            tenants.update(_tenants_of(prepared.storable))
    except UnreadableFileError as exc:
        if not totals.read:
            raise
        _finish(conn, totals, tenants, on_tenants)
        raise UnreadableFileError(f"{exc}; what came before was loaded: {totals.summary()}", totals) from exc
    _finish(conn, totals, tenants, on_tenants)
    return totals


def _tenants_of(storable: pa.Table) -> list[str]:
    import pyarrow.compute as pc

    if not storable.num_rows:
        return []
    return pc.unique(storable.column("tenant_id")).to_pylist()


def _finish(conn, totals: IngestCounts, tenants: set[str], on_tenants: TenantsHook | None) -> None:
    """After a load: statistics of the tables written to, then the tenants to the hook."""
    analyze(conn, totals)
    if on_tenants is not None and tenants:
        on_tenants(sorted(tenants))


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
