"""Load candidate attributes (self-identification) from CSV or JSON Lines files in wide form.

A file holds ``tenant_id``, ``candidate_id``, optionally ``collected_at`` (ISO 8601; default: the load time), then
any of the catalogue's attribute dimensions as columns (``sex``, ``race_ethnicity``, ...). A line sets every
attribute dimension of the catalogue: a blank, ``declined``, ``unknown`` or missing answer (an absent column or key)
is ``unknown``. An answer is the value's code or its display label, in any case.

The accounting is event ingest's: every line read is stored (it set or changed at least one value), unchanged (every
value was already in force) or rejected with its reason in ``candidate_attribute_rejects``; read = stored +
unchanged + rejected. Reading (encodings, broken compressed files, quoting, JSON value kinds) is the event reader's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fairness_pipeline.catalogue import Catalogue, CatalogueError, load_catalogue
from fairness_pipeline.ingest.reader import (
    DEFAULT_CHUNK_ROWS,
    ColumnLayout,
    ParsedChunk,
    UnreadableFileError,
    read_chunks,
)
from fairness_pipeline.ingest.storable import ISO_DATE_START
from fairness_pipeline.store.attributes import (
    AttributeReject,
    AttributeRow,
    analyze_attributes,
    build_stale_snapshots,
    store_attribute_rows,
)

ID_COLUMNS: tuple[str, ...] = ("tenant_id", "candidate_id")
COLLECTED_AT = "collected_at"
MAX_ID_LENGTH = 255
"""VARCHAR limit of ``tenant_id`` and ``candidate_id``."""
FUTURE_TOLERANCE = timedelta(minutes=5)
"""A ``collected_at`` later than the load time by more than this is rejected (clock skew allowed)."""
_DATED = re.compile(ISO_DATE_START)


class BrokenAttributeFileError(UnreadableFileError):
    """The file broke off after some lines were loaded; ``attribute_counts`` holds what was."""

    def __init__(self, message: str, counts: AttributeCounts) -> None:
        super().__init__(message)
        self.attribute_counts = counts


@dataclass
class AttributeCounts:
    read: int = 0
    stored: int = 0
    unchanged: int = 0
    rejected: int = 0

    def __iadd__(self, other: AttributeCounts) -> AttributeCounts:
        self.read += other.read
        self.stored += other.stored
        self.unchanged += other.unchanged
        self.rejected += other.rejected
        return self

    def as_dict(self) -> dict[str, int]:
        return {"read": self.read, "stored": self.stored, "unchanged": self.unchanged, "rejected": self.rejected}


def attribute_layout(catalogue: Catalogue) -> ColumnLayout:
    """The columns of an attribute file; any other column or key is refused."""
    return ColumnLayout((*ID_COLUMNS, COLLECTED_AT, *catalogue.attribute_dimensions), ID_COLUMNS, known_only=True)


def _collected_at(text: str, loaded_at: datetime) -> datetime:
    """``collected_at`` as an aware UTC time (naive: UTC; blank: the load time); ValueError with the reason."""
    if not text:
        return loaded_at
    try:
        if not _DATED.match(text):
            raise ValueError
        value = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise ValueError(f"bad collected_at {text!r} (not an ISO 8601 date or time)") from None
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if value > loaded_at + FUTURE_TOLERANCE:
        raise ValueError(f"collected_at {text!r} is in the future")
    return value


def parse_chunk(
    chunk: ParsedChunk, catalogue: Catalogue, loaded_at: datetime
) -> tuple[list[AttributeRow], list[AttributeReject]]:
    """The chunk's lines as attribute rows, and the lines rejected with their reasons (in line order)."""
    layout = attribute_layout(catalogue)
    attributes = catalogue.attribute_dimensions
    checked = (*ID_COLUMNS, COLLECTED_AT, *attributes)
    # per attribute, each distinct answer's code (or why it is not one): a file holds few distinct answers
    answers: dict[str, dict[str, str | CatalogueError | None]] = {name: {} for name in attributes}
    rejects = [AttributeReject(r.line_number, r.raw_record, r.reason) for r in chunk.rejects]
    rows: list[AttributeRow] = []
    columns = [column.to_pylist() for column in chunk.columns] if chunk.columns is not None else []
    for position, (number, raw) in enumerate(zip(chunk.line_numbers, chunk.raw_records, strict=True)):
        record = {name: (column[position] or "").strip() for name, column in zip(layout.columns, columns, strict=True)}
        reasons = [f"NUL character in {name}" for name in checked if "\x00" in record[name]]
        for name in ID_COLUMNS:
            if not record[name]:
                reasons.append(f"empty {name}")
            elif len(record[name]) > MAX_ID_LENGTH:
                reasons.append(f"{name} longer than {MAX_ID_LENGTH} characters")
        collected_at = loaded_at
        try:
            collected_at = _collected_at(record[COLLECTED_AT], loaded_at)
        except ValueError as exc:
            reasons.append(str(exc))
        values: dict[str, str | None] = {}
        for name in attributes:
            known = answers[name]
            answer = record[name]
            if answer not in known:
                try:
                    known[answer] = catalogue.code_for(name, answer)
                except CatalogueError as exc:
                    known[answer] = exc
            code = known[answer]
            if isinstance(code, CatalogueError):
                reasons.append(str(code))
            else:
                values[name] = code
        if reasons:
            ids = [record[name] for name in ID_COLUMNS]
            readable = all(0 < len(value) <= MAX_ID_LENGTH and "\x00" not in value for value in ids)
            tenant, candidate = ids if readable else (None, None)
            rejects.append(AttributeReject(number, raw, "; ".join(reasons), tenant, candidate))
        else:
            rows.append(AttributeRow(number, record["tenant_id"], record["candidate_id"], collected_at, values))
    rejects.sort(key=lambda reject: reject.line_number)
    return rows, rejects


def load_attribute_file(
    conn,
    path: Path,
    *,
    catalogue: Catalogue | None = None,
    source: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    loaded_at: datetime | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> AttributeCounts:
    """Stream ``path`` into the attribute tables, one transaction per chunk, and return the counts.

    Raises ``UnreadableFileError`` when the file cannot be read at all (an unknown column in a CSV header, say), or
    breaks off (then with the counts of what was loaded before, as event ingest does).
    """
    catalogue = catalogue or load_catalogue()
    loaded_at = loaded_at or datetime.now(UTC)
    source = source or path.name
    totals = AttributeCounts()
    chunks: Iterator[ParsedChunk] = read_chunks(
        path, chunk_rows=chunk_rows, on_bytes=on_bytes, layout=attribute_layout(catalogue)
    )
    try:
        for chunk in chunks:
            rows, rejects = parse_chunk(chunk, catalogue, loaded_at)
            stored, unchanged = store_attribute_rows(conn, rows, rejects, source)
            totals += AttributeCounts(chunk.read, stored, unchanged, len(rejects))
    except UnreadableFileError as exc:
        if not totals.read:
            raise
        analyze_attributes(conn)
        summary = ", ".join(f"{k} {v:,}" for k, v in totals.as_dict().items())
        raise BrokenAttributeFileError(f"{exc}; what came before was loaded: {summary}", totals) from exc
    if totals.stored:
        analyze_attributes(conn)
        build_stale_snapshots(conn)
    return totals
