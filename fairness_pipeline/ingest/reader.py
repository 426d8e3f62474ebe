"""Streaming readers for CSV and JSON Lines files of selection events.

A reader yields chunks of at most ``chunk_rows`` physical lines. Each chunk holds the records that parsed into the
event columns (text, with their line numbers) and the records that did not, each with its reason. Memory is bounded by
the chunk size, whatever the file size. Files ending in ``.gz`` are read through gzip.

Whatever the bytes, a record read is either parsed or rejected: lines that are not UTF-8, JSON values that are not
scalars, quoted CSV fields over several lines (read whole even across chunks) are rejected with a reason; CR-only
line endings and a UTF-8 byte order mark are read as such. When a compressed file breaks off, the records decoded
before the break are yielded, the incomplete line is rejected, and then ``UnreadableFileError`` names the file and
the line.

Speed without changing results: a chunk is decoded at once (line by line only when it is not all UTF-8), and CSV lines
without a quote or a stray carriage return are split on commas by Arrow, which is exactly what the ``csv`` module does
with such a line. Lines with a quote go through the ``csv`` module, so quoting and its errors behave as they always
did.
"""

from __future__ import annotations

import csv
import gzip
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fairness_pipeline.events.vocabulary import EVENT_COLUMNS, REQUIRED_COLUMNS
from fairness_pipeline.ingest.counts import IngestCounts

DEFAULT_CHUNK_ROWS = 50_000

_BLANK = " \t\r\x0b\x0c"
"""A line of only these characters (what ``bytes.strip`` removes) is blank: it is not a record."""


@dataclass(frozen=True)
class ColumnLayout:
    """The columns a file is read into (in order), those that may not be missing, and whether other columns or
    keys are refused (a CSV header naming another column: the file; a JSON key: the record)."""

    columns: tuple[str, ...]
    required: tuple[str, ...]
    known_only: bool = False


EVENT_LAYOUT = ColumnLayout(EVENT_COLUMNS, REQUIRED_COLUMNS)


class UnreadableFileError(Exception):
    """The file cannot be read at all (missing, unknown format, no usable header), or not to its end.

    ``counts`` holds what was loaded from the file before the error (set by the loader; zero when nothing was).
    """

    def __init__(self, message: str, counts: IngestCounts | None = None) -> None:
        super().__init__(message)
        self.counts = counts if counts is not None else IngestCounts()


@dataclass
class Reject:
    line_number: int
    raw_record: str
    reason: str


@dataclass
class ParsedChunk:
    """Records of one chunk, in line order: those that parsed (``line_numbers``, ``raw_records``) and ``rejects``.

    The text values of the parsed records ('' = missing) are given either as ``columns``, Arrow string arrays in the
    order of the layout's columns (the file readers; ``EVENT_COLUMNS`` by default), or as ``rows``, lists in
    ``EVENT_COLUMNS`` order (API callers).
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
    path: Path,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_bytes: Callable[[int], None] | None = None,
    layout: ColumnLayout | None = None,
) -> Iterator[ParsedChunk]:
    """Parse ``path`` chunk by chunk. ``on_bytes`` is called with the number of bytes consumed (for progress).
    ``layout`` gives the columns to read (default: the event columns).

    When the data breaks off (a truncated or corrupt compressed file), every record before the break is yielded,
    the incomplete line at the break is rejected, and then ``UnreadableFileError`` says where it happened.
    """
    fmt = file_format(path)
    layout = layout or EVENT_LAYOUT
    with _open(path) as handle:
        lines = _Lines(handle, path, on_bytes)
        if fmt == "csv":
            yield from _csv_chunks(path, lines, chunk_rows, layout)
        else:
            yield from _jsonl_chunks(lines, chunk_rows, layout)
        if lines.error is not None:
            if lines.broken_line is not None:
                number = lines.count = lines.count + 1
                text = lines.broken_line.decode("utf-8", "backslashreplace")
                yield ParsedChunk(rejects=[Reject(number, text, BROKEN_LINE_REASON)])
            raise UnreadableFileError(lines.error)


BROKEN_LINE_REASON = "incomplete line: the compressed data breaks off inside it"
READ_BLOCK_BYTES = 1 << 20

_WIDE_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)
"""Byte order marks of encodings the readers refuse (UTF-32 first: its little-endian mark starts like UTF-16's)."""
_UTF8_BOM = b"\xef\xbb\xbf"


class _Lines:
    """The physical lines of a binary stream, a batch at a time, without their line endings.

    Lines end at ``\\n`` (a ``\\r`` before it stays on the line; the parsers drop it), or, in a file whose first line
    ends with a lone ``\\r`` (old Mac files), at ``\\r``, ``\\r\\n`` or ``\\n``. A UTF-8 byte order mark at the start
    is dropped; UTF-16 and UTF-32 files are refused. When the stream breaks off (a truncated or corrupt compressed
    file), the whole lines decoded before are still given, the partial line after them is ``broken_line`` and
    ``error`` says what happened.
    """

    def __init__(self, handle: BinaryIO, path: Path, on_bytes: Callable[[int], None] | None) -> None:
        self._handle = handle
        self._path = path
        self._on_bytes = on_bytes
        self._pending: list[bytes] = []
        self._tail = b""  # bytes after the last line ending read so far
        self._starting = True
        self._cr_endings: bool | None = None  # undecided until the first line ending is seen
        self._ended = False
        self.count = 0
        self.error: str | None = None
        self.broken_line: bytes | None = None

    def at_end(self) -> bool:
        """True when every line has been given out (reads ahead to know)."""
        while not self._pending and not self._ended:
            self._read_block()
        return not self._pending

    def batch(self, size: int) -> list[bytes]:
        """Up to ``size`` lines; empty at the end of the stream."""
        while len(self._pending) < size and not self._ended:
            self._read_block()
        if len(self._pending) <= size:
            lines, self._pending = self._pending, []
        else:
            lines = self._pending[:size]
            del self._pending[:size]
        self.count += len(lines)
        return lines

    def _read_block(self) -> None:
        try:
            block = self._handle.read1(READ_BLOCK_BYTES)
        except (OSError, EOFError, zlib.error) as exc:  # a truncated or corrupt gzip stream
            block = b""
            self.error = self._break_message(exc)
        if block and self._on_bytes is not None:
            self._on_bytes(len(block))
        data = self._tail + block
        if self._starting:
            if block and len(data) < 4:  # too short to tell a byte order mark
                self._tail = data
                return
            data = self._without_bom(data)
            self._starting = False
        if self._cr_endings is None:
            self._cr_endings = _first_ending_is_cr(data, final=not block)
        held = b""
        if self._cr_endings:
            if block and data.endswith(b"\r"):  # perhaps the first half of a \r\n
                data, held = data[:-1], b"\r"
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = data.split(b"\n")
        self._tail = lines.pop() + held
        if not block:
            self._ended = True
            if self._tail and self.error is None:
                lines.append(self._tail)  # the last line has no line ending
            elif self._tail:
                self.broken_line = self._tail
            self._tail = b""
        if self._pending:
            self._pending.extend(lines)
        else:
            self._pending = lines

    def _without_bom(self, data: bytes) -> bytes:
        if data.startswith(_UTF8_BOM):
            return data[len(_UTF8_BOM) :]
        for bom, encoding in _WIDE_BOMS:
            if data.startswith(bom):
                raise UnreadableFileError(
                    f"{self._path}: the file is {encoding} (it starts with a byte order mark); save it as UTF-8"
                )
        return data

    def _break_message(self, exc: BaseException) -> str:
        lines = self.count + len(self._pending) + (1 if self._tail else 0)
        detail = str(exc) or type(exc).__name__
        if not lines:
            return f"{self._path}: {detail}"
        return f"{self._path}: the data breaks off after line {lines:,} ({detail})"


def _first_ending_is_cr(data: bytes, *, final: bool) -> bool | None:
    """Whether the first line ending in ``data`` is a lone ``\\r``; None while ``data`` cannot tell."""
    cr, lf = data.find(b"\r"), data.find(b"\n")
    if cr == -1 or (lf != -1 and lf < cr):
        return False if lf != -1 or final else None
    if cr + 1 < len(data):
        return data[cr + 1] != ord("\n")
    return True if final else None


def _decoded_lines(raw: list[bytes], first_number: int, rejects: list[Reject]) -> tuple[list[str], list[int], bool]:
    """The non-blank lines of a batch as text without line endings, and their numbers; non-UTF-8 lines are rejected.

    ``raw`` lines come without their ending; trailing carriage returns are removed. The flag is True when no line
    holds a double quote or a carriage return (False when unsure).
    """
    data = b"\n".join(raw) + b"\n"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:  # find the bad lines one by one
        return (*_decoded_lines_one_by_one(raw, first_number, rejects), False)
    plain = '"' not in text and text.count("\r") == text.count("\r\n")
    lines = text.split("\n")  # a newline byte is never part of a multi-byte character
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


def _csv_chunks(path: Path, lines: _Lines, chunk_rows: int, layout: ColumnLayout) -> Iterator[ParsedChunk]:
    """Chunks of about ``chunk_rows`` lines; a record whose quoted field is still open at the end of a chunk is
    carried over to the next one (whole), unless it already spans a whole chunk."""
    header_text = _header(path, lines)
    try:
        header = [name.strip().lstrip("\ufeff") for name in next(csv.reader([header_text]))]
    except csv.Error as exc:
        raise UnreadableFileError(f"{path}: the header line is not valid CSV ({exc})") from None
    missing = [c for c in layout.required if c not in header]
    if missing:
        raise UnreadableFileError(
            f"{path}: the header lacks required column(s) {', '.join(missing)}; expected columns: "
            + ",".join(layout.columns)
        )
    unknown = [c for c in header if c not in layout.columns]
    if layout.known_only and unknown:
        raise UnreadableFileError(
            f"{path}: the header names unknown column(s) {', '.join(unknown)}; known columns: "
            + ",".join(layout.columns)
        )
    positions = [header.index(c) if c in header else None for c in layout.columns]
    carried: list[bytes] = []
    while (raw := lines.batch(chunk_rows)) or carried:
        first_number = lines.count - len(raw) - len(carried) + 1
        raw = carried + raw if carried else raw
        chunk, open_from = _csv_chunk(raw, first_number, positions, len(header), at_end=lines.at_end())
        carried = raw[open_from - first_number :] if open_from is not None else []
        yield chunk


def _header(path: Path, lines: _Lines) -> str:
    """The first non-blank line, decoded."""
    while raw := lines.batch(1):
        stripped = raw[0].rstrip(b"\r\n")
        if stripped.strip():
            try:
                return stripped.decode("utf-8")
            except UnicodeDecodeError:
                raise UnreadableFileError(f"{path}: the header line is not UTF-8") from None
    if lines.error is not None:
        raise UnreadableFileError(lines.error)
    raise UnreadableFileError(f"{path}: the file is empty; a CSV file starts with a header line")


def _csv_chunk(
    raw: list[bytes], first_number: int, positions: list[int | None], width: int, *, at_end: bool = True
) -> tuple[ParsedChunk, int | None]:
    """The records of ``raw``, and the line number of a record still open at its end (to be read again with the
    next lines), if any. ``at_end``: no lines follow ``raw``."""
    chunk = ParsedChunk()
    texts, numbers, plain_text = _decoded_lines(raw, first_number, chunk.rejects)
    limit = csv.field_size_limit()
    special: list[int] = []
    if texts and (not plain_text or max(map(len, texts)) >= limit):
        special = [i for i, text in enumerate(texts) if '"' in text or "\r" in text or len(text) >= limit]

    # Single-line records without quotes: split by Arrow. Records starting at a special line: the csv module.
    plain: list[int] | range = range(len(texts))
    parsed: list[tuple[int, list[str]]] = []  # (index of the first line, values) of good csv-module records
    open_from: int | None = None
    if special:
        plain, parsed, open_start = _parse_special(texts, numbers, special, width, chunk.rejects, at_end=at_end)
        if open_start is not None:
            open_from = numbers[open_start]
            chunk.rejects = [r for r in chunk.rejects if r.line_number < open_from]  # read again with the rest

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
    return chunk, open_from


class _Feed:
    """An iterator over a list of lines that can be moved to any line (the input of a ``csv.reader``)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.position = 0
        self.exhausted = False
        """Set when the reader asked for a line past the last one: its record was still open."""

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        if self.position >= len(self.lines):
            self.exhausted = True
            raise StopIteration
        self.position += 1
        return self.lines[self.position - 1]


def _parse_special(
    texts: list[str], numbers: list[int], special: list[int], width: int, rejects: list[Reject], *, at_end: bool
) -> tuple[list[int], list[tuple[int, list[str]]], int | None]:
    """Parse the records that start at ``special`` lines with the csv module, as it would parse the whole chunk.

    Returns the indices of the other (single-line, plain) records, the good csv-module records, and the index of a
    record whose quoted field is still open at the last line when more lines follow (``at_end`` false) and it does
    not start the chunk: the caller reads it again with them. A quoted field over several lines swallows the lines
    it spans, which are rejected together: no value of an event may hold a line break.
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
        feed.position, feed.exhausted = start, False
        try:
            values = next(reader)
        except csv.Error as exc:
            position = feed.position
            rejects.append(Reject(numbers[start], "\n".join(texts[start:position]), f"bad CSV: {exc}"))
            continue
        position = feed.position
        number, last = numbers[start], numbers[position - 1]
        raw_text = "\n".join(texts[start:position])
        if feed.exhausted and not at_end and start > 0:
            return plain, parsed, start
        if feed.exhausted:
            where = "the end of the file" if at_end else f"the end of a chunk of {len(texts):,} lines"
            rejects.append(Reject(number, raw_text, f"unterminated quoted field: lines {number}-{last} run to {where}"))
        elif position - start > 1:
            reason = f"quoted field spans lines {number}-{last} (a value may not hold a line break)"
            rejects.append(Reject(number, raw_text, reason))
        elif len(values) != width:
            rejects.append(Reject(number, raw_text, f"wrong column count: expected {width}, got {len(values)}"))
        else:
            parsed.append((start, values))
    plain.extend(range(position, len(texts)))
    return plain, parsed, None


def _jsonl_chunks(lines: _Lines, chunk_rows: int, layout: ColumnLayout) -> Iterator[ParsedChunk]:
    while raw := lines.batch(chunk_rows):
        yield _jsonl_chunk(raw, lines.count - len(raw) + 1, layout)


def _jsonl_chunk(raw: list[bytes], first_number: int, layout: ColumnLayout = EVENT_LAYOUT) -> ParsedChunk:
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
        if ("\\ud" in text or "\\uD" in text) and (bad := _lone_surrogate(record, layout.columns)):
            chunk.rejects.append(Reject(number, text, f"bad encoding: {bad}"))
            continue
        if layout.known_only and (unknown := [str(key) for key in record if key not in layout.columns]):
            chunk.rejects.append(Reject(number, text, f"unknown key(s) {', '.join(unknown)}"))
            continue
        records.append(record)
        chunk.line_numbers.append(number)
        chunk.raw_records.append(text)
    columns: list[pa.Array] = []
    wrong: dict[int, list[str]] = {}  # position of a record -> why its values cannot be stored
    for name in layout.columns:
        column, kinds = _json_column(list(map(dict.get, records, repeat(name))))
        columns.append(column)
        for position, kind in kinds:
            wrong.setdefault(position, []).append(f"{name} is a JSON {kind}, not a string or a number")
    if wrong:
        keep = np.ones(len(records), dtype=bool)
        keep[list(wrong)] = False
        for position, reasons in wrong.items():
            chunk.rejects.append(Reject(chunk.line_numbers[position], chunk.raw_records[position], "; ".join(reasons)))
        columns = [column.filter(pa.array(keep)) for column in columns]
        chunk.line_numbers = [n for n, k in zip(chunk.line_numbers, keep.tolist(), strict=True) if k]
        chunk.raw_records = [r for r, k in zip(chunk.raw_records, keep.tolist(), strict=True) if k]
    chunk.columns = columns
    return chunk


def _lone_surrogate(record: dict, columns: tuple[str, ...] = EVENT_COLUMNS) -> str | None:
    """Why a value of ``record`` cannot be stored as UTF-8 (a ``\\ud800``-style escape without its pair), if so."""
    for column in columns:
        value = record.get(column)
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                return f"{column} holds an unpaired surrogate (\\u{ord(value[exc.start]):04x})"
    return None


def _json_column(values: list[object]) -> tuple[pa.Array, list[tuple[int, str]]]:
    """Text values of one column (strings as they are, numbers as text, missing or null as ''), and the positions
    and kinds of the values that are not scalars (objects, arrays, booleans: no column can hold them)."""
    try:
        return pa.array(values, pa.string()).fill_null(""), []
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # numbers, booleans, objects
        pass
    try:  # integers only (with nulls): Arrow writes them as str() does
        numbers = pa.array(values)
        if pa.types.is_int64(numbers.type):
            return numbers.cast(pa.string()).fill_null(""), []
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        pass
    texts: list[str] = []
    wrong: list[tuple[int, str]] = []
    for position, value in enumerate(values):
        if type(value) is str:
            texts.append(value)
        elif value is None:
            texts.append("")
        elif isinstance(value, bool | dict | list):
            texts.append("")
            wrong.append((position, _JSON_KINDS[type(value)]))
        else:  # int, float
            texts.append(str(value))
    return pa.array(texts, pa.string()), wrong


_JSON_KINDS = {bool: "boolean", dict: "object", list: "array"}
