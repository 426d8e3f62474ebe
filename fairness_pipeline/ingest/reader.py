"""Streaming readers for CSV and JSON Lines files of selection events.

A reader yields chunks of at most ``chunk_rows`` physical lines. Each chunk holds the records that parsed into the
event columns (text, with their line numbers) and the records that did not, each with its reason. Memory is bounded by
the chunk size, whatever the file size. Files ending in ``.gz`` are read through gzip.

Speed without changing results: a chunk is decoded at once (line by line only when it is not all UTF-8), and CSV lines
without a quote or a stray carriage return are split on commas by Arrow, which is exactly what the ``csv`` module does
with such a line. Lines with a quote go through the ``csv`` module, so quoting and its errors behave as they always
did.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice, repeat
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fairness_pipeline.events.vocabulary import EVENT_COLUMNS, REQUIRED_COLUMNS

DEFAULT_CHUNK_ROWS = 50_000

_BLANK = " \t\r\x0b\x0c"
"""A line of only these characters (what ``bytes.strip`` removes) is blank: it is not a record."""


class UnreadableFileError(Exception):
    """The file cannot be read at all (missing, unknown format, no usable header)."""


@dataclass
class Reject:
    line_number: int
    raw_record: str
    reason: str


@dataclass
class ParsedChunk:
    """Records of one chunk, in line order: those that parsed (``line_numbers``, ``raw_records``) and ``rejects``.

    The text values of the parsed records ('' = missing) are given either as ``columns``, Arrow string arrays in
    ``EVENT_COLUMNS`` order (the file readers), or as ``rows``, lists in ``EVENT_COLUMNS`` order (API callers).
    """

    line_numbers: list[int] = field(default_factory=list)
    raw_records: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    columns: list[pa.Array] | None = None

    @property
    def read(self) -> int:
        return len(self.line_numbers) + len(self.rejects)


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
        lines = _Lines(handle, on_bytes)
        if fmt == "csv":
            yield from _csv_chunks(path, lines, chunk_rows)
        else:
            yield from _jsonl_chunks(lines, chunk_rows)


class _Lines:
    """The physical lines of a binary stream, a batch at a time, with the number of lines read so far."""

    def __init__(self, handle: BinaryIO, on_bytes: Callable[[int], None] | None) -> None:
        self._handle = handle
        self._on_bytes = on_bytes
        self.count = 0

    def batch(self, size: int) -> list[bytes]:
        """Up to ``size`` lines, each with its line ending; empty at the end of the stream."""
        lines: list[bytes] = []
        try:
            lines.extend(islice(self._handle, size))  # keeps the lines read before an error
        except (OSError, EOFError) as exc:  # e.g. a truncated gzip stream
            raise UnreadableFileError(f"cannot read past line {self.count + len(lines)}: {exc}") from exc
        self.count += len(lines)
        if self._on_bytes is not None and lines:
            self._on_bytes(sum(map(len, lines)))
        return lines


def _decoded_lines(raw: list[bytes], first_number: int, rejects: list[Reject]) -> tuple[list[str], list[int], bool]:
    """The non-blank lines of a batch as text without line endings, and their numbers; non-UTF-8 lines are rejected.

    Lines end at ``\\n``; trailing carriage returns are removed. The flag is True when no line holds a double quote
    or a carriage return (False when unsure).
    """
    data = b"".join(raw)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:  # find the bad lines one by one
        return (*_decoded_lines_one_by_one(raw, first_number, rejects), False)
    plain = '"' not in text and text.count("\r") == text.count("\r\n")
    lines = text.split("\n")  # a newline byte is never part of a multi-byte character
    if data.endswith(b"\n"):
        lines.pop()
    if "\r" in text:
        lines = [line.rstrip("\r") for line in lines]
    numbers = range(first_number, first_number + len(lines))
    if "" in lines or any(c in text for c in " \t\x0b\x0c"):  # else no line is blank
        keep = [i for i, line in enumerate(lines) if line.strip(_BLANK)]
        if len(keep) < len(lines):
            return [lines[i] for i in keep], [numbers[i] for i in keep], plain
    return lines, list(numbers), plain


def _decoded_lines_one_by_one(
    raw: list[bytes], first_number: int, rejects: list[Reject]
) -> tuple[list[str], list[int]]:
    texts: list[str] = []
    numbers: list[int] = []
    for number, line in enumerate(raw, start=first_number):
        stripped = line.rstrip(b"\r\n")
        if not stripped.strip():
            continue
        try:
            texts.append(stripped.decode("utf-8"))
            numbers.append(number)
        except UnicodeDecodeError as exc:
            text = stripped.decode("utf-8", "backslashreplace")
            rejects.append(Reject(number, text, f"bad encoding: not UTF-8 ({exc.reason} at byte {exc.start})"))
    return texts, numbers


def _csv_chunks(path: Path, lines: _Lines, chunk_rows: int) -> Iterator[ParsedChunk]:
    header_text = _header(path, lines)
    header = [name.strip().lstrip("\ufeff") for name in next(csv.reader([header_text]))]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise UnreadableFileError(
            f"{path}: the header lacks required column(s) {', '.join(missing)}; expected columns: "
            + ",".join(EVENT_COLUMNS)
        )
    positions = [header.index(c) if c in header else None for c in EVENT_COLUMNS]
    while raw := lines.batch(chunk_rows):
        first_number = lines.count - len(raw) + 1
        yield _csv_chunk(raw, first_number, positions, len(header))


def _header(path: Path, lines: _Lines) -> str:
    """The first non-blank line, decoded."""
    while raw := lines.batch(1):
        stripped = raw[0].rstrip(b"\r\n")
        if stripped.strip():
            try:
                return stripped.decode("utf-8")
            except UnicodeDecodeError:
                raise UnreadableFileError(f"{path}: the header line is not UTF-8") from None
    raise UnreadableFileError(f"{path}: the file is empty; a CSV file starts with a header line")


def _csv_chunk(raw: list[bytes], first_number: int, positions: list[int | None], width: int) -> ParsedChunk:
    chunk = ParsedChunk()
    texts, numbers, plain_text = _decoded_lines(raw, first_number, chunk.rejects)
    limit = csv.field_size_limit()
    special: list[int] = []
    if texts and (not plain_text or max(map(len, texts)) >= limit):
        special = [i for i, text in enumerate(texts) if '"' in text or "\r" in text or len(text) >= limit]

    # Single-line records without quotes: split by Arrow. Records starting at a special line: the csv module.
    plain: list[int] | range = range(len(texts))
    parsed: list[tuple[int, list[str]]] = []  # (index of the first line, values) of good csv-module records
    if special:
        plain, parsed = _parse_special(texts, numbers, special, width, chunk.rejects)

    plain_texts = texts if len(plain) == len(texts) else [texts[i] for i in plain]
    parts = pc.split_pattern(pa.array(plain_texts, pa.string()), ",")
    counts = pc.list_value_length(parts).to_numpy(zero_copy_only=False)
    wrong = np.flatnonzero(counts != width)
    for k in wrong.tolist():
        i = plain[k]
        chunk.rejects.append(Reject(numbers[i], texts[i], f"wrong column count: expected {width}, got {counts[k]}"))
    if len(wrong):
        good = np.ones(len(plain), dtype=bool)
        good[wrong] = False
        parts = parts.filter(pa.array(good))
        plain = [i for i, ok in zip(plain, good.tolist(), strict=True) if ok]
    columns = [pc.list_element(parts, p) if p is not None else pa.repeat("", len(parts)) for p in positions]

    order = list(plain)
    if parsed:  # merge the csv-module records in line order
        order += [i for i, _ in parsed]
        extra = [pa.array(["" if p is None else values[p] for _, values in parsed], pa.string()) for p in positions]
        columns = [pa.concat_arrays([c, e]) for c, e in zip(columns, extra, strict=True)]
        permutation = np.argsort(np.asarray(order), kind="stable")
        columns = [c.take(pa.array(permutation)) for c in columns]
        order = [order[k] for k in permutation.tolist()]
    if len(order) == len(texts):
        chunk.line_numbers, chunk.raw_records = numbers, texts
    else:
        chunk.line_numbers = [numbers[i] for i in order]
        chunk.raw_records = [texts[i] for i in order]
    chunk.columns = columns
    return chunk


class _Feed:
    """An iterator over a list of lines that can be moved to any line (the input of a ``csv.reader``)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.position = 0

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        if self.position >= len(self.lines):
            raise StopIteration
        self.position += 1
        return self.lines[self.position - 1]


def _parse_special(
    texts: list[str], numbers: list[int], special: list[int], width: int, rejects: list[Reject]
) -> tuple[list[int], list[tuple[int, list[str]]]]:
    """Parse the records that start at ``special`` lines with the csv module, as it would parse the whole chunk.

    Returns the indices of the other (single-line, plain) records and the good csv-module records. A quoted field
    that runs past its line swallows the lines it spans, which are rejected together.
    """
    feed = _Feed(texts)
    reader = csv.reader(feed)
    plain: list[int] = []
    parsed: list[tuple[int, list[str]]] = []
    position = 0
    for start in special:
        if start < position:  # part of the previous record
            continue
        plain.extend(range(position, start))
        feed.position = start
        try:
            values = next(reader)
        except csv.Error as exc:
            position = feed.position
            rejects.append(Reject(numbers[start], "\n".join(texts[start:position]), f"bad CSV: {exc}"))
            continue
        position = feed.position
        number, raw_text = numbers[start], "\n".join(texts[start:position])
        if position - start > 1:
            last = numbers[position - 1]
            rejects.append(Reject(number, raw_text, f"unterminated quoted field spanning lines {number}-{last}"))
        elif len(values) != width:
            rejects.append(Reject(number, raw_text, f"wrong column count: expected {width}, got {len(values)}"))
        else:
            parsed.append((start, values))
    plain.extend(range(position, len(texts)))
    return plain, parsed


def _jsonl_chunks(lines: _Lines, chunk_rows: int) -> Iterator[ParsedChunk]:
    while raw := lines.batch(chunk_rows):
        yield _jsonl_chunk(raw, lines.count - len(raw) + 1)


def _jsonl_chunk(raw: list[bytes], first_number: int) -> ParsedChunk:
    chunk = ParsedChunk()
    texts, numbers, _ = _decoded_lines(raw, first_number, chunk.rejects)
    records: list[dict] = []
    for number, text in zip(numbers, texts, strict=True):
        try:
            record = json.loads(text)
        except (ValueError, RecursionError) as exc:
            chunk.rejects.append(Reject(number, text, f"invalid JSON: {exc}"))
            continue
        if not isinstance(record, dict):
            chunk.rejects.append(Reject(number, text, "not a JSON object"))
            continue
        # Arrow and PostgreSQL need valid UTF-8: json turns a lone "\\ud800" escape into a lone surrogate
        if ("\\ud" in text or "\\uD" in text) and (bad := _lone_surrogate(record)):
            chunk.rejects.append(Reject(number, text, f"bad encoding: {bad}"))
            continue
        records.append(record)
        chunk.line_numbers.append(number)
        chunk.raw_records.append(text)
    chunk.columns = [_json_column(list(map(dict.get, records, repeat(c)))) for c in EVENT_COLUMNS]
    return chunk


def _lone_surrogate(record: dict) -> str | None:
    """Why a value of ``record`` cannot be stored as UTF-8 (a ``\\ud800``-style escape without its pair), if so."""
    for column in EVENT_COLUMNS:
        value = record.get(column)
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                return f"{column} holds an unpaired surrogate (\\u{ord(value[exc.start]):04x})"
    return None


def _json_column(values: list[object]) -> pa.Array:
    """Text values of one column: strings as they are, other JSON values as text, missing or null as ''."""
    try:
        return pa.array(values, pa.string()).fill_null("")
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # numbers, booleans, objects
        pass
    try:  # integers only (with nulls): Arrow writes them as str() does
        numbers = pa.array(values)
        if pa.types.is_int64(numbers.type):
            return numbers.cast(pa.string()).fill_null("")
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        pass
    return pa.array([value if type(value) is str else _json_text(value) for value in values], pa.string())


def _json_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # not a valid value for any column; keep it recognisable in the reason
        return json.dumps(value)
    return json.dumps(value) if isinstance(value, dict | list) else str(value)
