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

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TypeVar

import pyarrow as pa

from fairness_pipeline.ingest.counts import IngestCounts
from fairness_pipeline.ingest.prepared import PreparedChunk, prepare_chunk
from fairness_pipeline.ingest.reader import (
    DEFAULT_CHUNK_ROWS,
    ParsedChunk,
    UnreadableFileError,
    read_chunks,
)
from fairness_pipeline.store.events import analyze, store_prepared

T = TypeVar("T")
_DONE = object()


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


def load_chunk(conn, chunk: ParsedChunk, source: str) -> IngestCounts:
    """Check and store one parsed chunk in a single transaction."""
    return store_prepared(conn, prepare_chunk(chunk), source)
