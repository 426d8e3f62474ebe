"""A parsed chunk made ready to store: typed rows as COPY input, and the rows the table cannot hold, rejected with
their reasons. What ``store.events`` receives from the loaders."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from fairness_pipeline.ingest.reader import ParsedChunk, Reject
from fairness_pipeline.ingest.storable import STORED_COLUMNS, check_columns, text_columns

_WRITE_OPTIONS = pa_csv.WriteOptions(include_header=False)


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
