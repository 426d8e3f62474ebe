"""Streaming readers for CSV and JSON Lines files of selection events.

A reader yields chunks of at most ``chunk_rows`` records. Each chunk holds the records that parsed into the event
columns (as text, with their line numbers) and the records that did not, each with its reason. Memory is bounded by
the chunk size, whatever the file size. Files ending in ``.gz`` are read through gzip.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from fairness_pipeline.events.vocabulary import EVENT_COLUMNS, REQUIRED_COLUMNS

DEFAULT_CHUNK_ROWS = 50_000


class UnreadableFileError(Exception):
    """The file cannot be read at all (missing, unknown format, no usable header)."""


@dataclass
class Reject:
    line_number: int
    raw_record: str
    reason: str


@dataclass
class ParsedChunk:
    """Records of one chunk: ``rows`` are lists of text values in ``EVENT_COLUMNS`` order ('' = missing)."""

    line_numbers: list[int] = field(default_factory=list)
    raw_records: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)

    @property
    def read(self) -> int:
        return len(self.rows) + len(self.rejects)


def file_format(path: Path) -> str:
    """``csv`` or ``jsonl`` from the file name (``.gz`` allowed)."""
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    last = suffixes[-1] if suffixes else ""
    if last == ".csv":
        return "csv"
    if last in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    raise UnreadableFileError(f"{path}: unknown file type {last or '(none)'!r}; use .csv, .jsonl or .ndjson")


def _open(path: Path) -> BinaryIO:
    try:
        if path.suffix.lower() == ".gz":
            return gzip.open(path, "rb")
        return path.open("rb")
    except OSError as exc:
        raise UnreadableFileError(f"{path}: cannot open: {exc.strerror or exc}") from exc


def read_chunks(
    path: Path, *, chunk_rows: int = DEFAULT_CHUNK_ROWS, on_bytes: Callable[[int], None] | None = None
) -> Iterator[ParsedChunk]:
    """Parse ``path`` chunk by chunk. ``on_bytes`` is called with the number of bytes consumed (for progress)."""
    fmt = file_format(path)
    with _open(path) as handle:
        lines = _physical_lines(handle, on_bytes)
        if fmt == "csv":
            yield from _csv_chunks(path, lines, chunk_rows)
        else:
            yield from _jsonl_chunks(lines, chunk_rows)


def _physical_lines(handle: BinaryIO, on_bytes: Callable[[int], None] | None) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, bytes without the line ending), skipping blank lines."""
    number = 0
    try:
        for number, raw in enumerate(handle, start=1):
            if on_bytes is not None:
                on_bytes(len(raw))
            stripped = raw.rstrip(b"\r\n")
            if stripped.strip():
                yield number, stripped
    except (OSError, EOFError) as exc:  # e.g. a truncated gzip stream
        raise UnreadableFileError(f"cannot read past line {number}: {exc}") from exc


def _decode(number: int, raw: bytes) -> tuple[str | None, Reject | None]:
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        text = raw.decode("utf-8", "backslashreplace")
        return None, Reject(number, text, f"bad encoding: not UTF-8 ({exc.reason} at byte {exc.start})")


def _csv_chunks(path: Path, lines: Iterator[tuple[int, bytes]], chunk_rows: int) -> Iterator[ParsedChunk]:
    try:
        header_number, header_raw = next(lines)
    except StopIteration:
        raise UnreadableFileError(f"{path}: the file is empty; a CSV file starts with a header line") from None
    header_text, bad = _decode(header_number, header_raw)
    if bad is not None:
        raise UnreadableFileError(f"{path}: the header line is not UTF-8")
    header = [name.strip().lstrip("\ufeff") for name in next(csv.reader([header_text]))]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise UnreadableFileError(
            f"{path}: the header lacks required column(s) {', '.join(missing)}; expected columns: "
            + ",".join(EVENT_COLUMNS)
        )
    positions = [header.index(c) if c in header else None for c in EVENT_COLUMNS]
    width = len(header)

    while True:
        batch = _take(lines, chunk_rows)
        if not batch:
            return
        chunk = ParsedChunk()
        texts: list[str] = []
        numbers: list[int] = []
        for number, raw in batch:
            text, bad = _decode(number, raw)
            if bad is not None:
                chunk.rejects.append(bad)
            else:
                texts.append(text)
                numbers.append(number)
        reader = csv.reader(texts)
        consumed = 0
        while True:
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                first = consumed
                consumed = reader.line_num
                chunk.rejects.append(Reject(numbers[first], "\n".join(texts[first:consumed]), f"bad CSV: {exc}"))
                continue
            first, consumed = consumed, reader.line_num
            number, raw_text = numbers[first], "\n".join(texts[first:consumed])
            if consumed - first > 1:
                chunk.rejects.append(
                    Reject(
                        number, raw_text, f"unterminated quoted field spanning lines {number}-{numbers[consumed - 1]}"
                    )
                )
            elif len(values) != width:
                chunk.rejects.append(
                    Reject(number, raw_text, f"wrong column count: expected {width}, got {len(values)}")
                )
            else:
                chunk.rows.append(["" if p is None else values[p] for p in positions])
                chunk.line_numbers.append(number)
                chunk.raw_records.append(raw_text)
        yield chunk


def _jsonl_chunks(lines: Iterator[tuple[int, bytes]], chunk_rows: int) -> Iterator[ParsedChunk]:
    while True:
        batch = _take(lines, chunk_rows)
        if not batch:
            return
        chunk = ParsedChunk()
        for number, raw in batch:
            text, bad = _decode(number, raw)
            if bad is not None:
                chunk.rejects.append(bad)
                continue
            try:
                record = json.loads(text)
            except ValueError as exc:
                chunk.rejects.append(Reject(number, text, f"invalid JSON: {exc}"))
                continue
            if not isinstance(record, dict):
                chunk.rejects.append(Reject(number, text, "not a JSON object"))
                continue
            chunk.rows.append([_json_text(record.get(c)) for c in EVENT_COLUMNS])
            chunk.line_numbers.append(number)
            chunk.raw_records.append(text)
        yield chunk


def _json_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # not a valid value for any column; keep it recognisable in the reason
        return json.dumps(value)
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def _take(lines: Iterator[tuple[int, bytes]], count: int) -> list[tuple[int, bytes]]:
    batch = []
    for item in lines:
        batch.append(item)
        if len(batch) >= count:
            break
    return batch
