"""Read fixed-width query results through ``COPY ... (FORMAT binary)`` straight into numpy arrays.

For result sets of millions of rows of numbers: the server sends doubles as 8 bytes instead of printing them as text,
and the client parses no text at all (one ``np.frombuffer``). Every column must be ``int2``, ``int4``, ``int8`` or
``float8`` and never NULL (``coalesce`` in the query). Rows are checked by field count and field sizes, so a NULL, a
missing column or a column of another size is refused with a clear error rather than misread; a value of another
type but the same size cannot be told apart, so the query casts every column to its declared type.

:func:`read_binary_records` reads a few rows holding large values (``bytea`` arrays) the same way: several times
faster than a cursor, which receives ``bytea`` as hexadecimal text.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
KINDS: dict[str, str] = {"int2": ">i2", "int4": ">i4", "int8": ">i8", "float8": ">f8"}
"""PostgreSQL type of a column -> its big-endian numpy type in the binary COPY format."""


def read_binary_copy(cur, statement: str, columns: Sequence[tuple[str, str]]) -> dict[str, np.ndarray]:
    """Run ``statement`` (a complete ``COPY (...) TO STDOUT WITH (FORMAT binary)``) and return one native-endian
    array per column. ``columns`` lists (name, kind) in the query's order, kind being a key of :data:`KINDS`."""
    buffer = io.BytesIO()
    cur.copy_expert(statement, buffer)
    return parse_binary_copy(buffer.getvalue(), columns)


def parse_binary_copy(data: bytes, columns: Sequence[tuple[str, str]]) -> dict[str, np.ndarray]:
    """Arrays from the bytes of a binary COPY whose rows are the fixed-width, non-null ``columns``."""
    unknown = [kind for _, kind in columns if kind not in KINDS]
    if unknown:
        raise ValueError(f"binary COPY columns must be one of {sorted(KINDS)}, not {unknown}")
    start = _first_row(data)
    if data[-2:] != b"\xff\xff":
        raise ValueError("binary COPY stream is truncated (no end marker)")
    body = data[start:-2]
    fields = [("fields", ">i2")]
    for name, kind in columns:
        fields += [(f"{name}.size", ">i4"), (name, KINDS[kind])]
    row = np.dtype(fields)
    if len(body) % row.itemsize:
        raise ValueError(
            f"binary COPY rows are not {row.itemsize} bytes each: a column is NULL, of another type, or missing"
        )
    rows = np.frombuffer(body, dtype=row)
    if len(rows) and (rows["fields"] != len(columns)).any():
        raise ValueError(f"binary COPY rows do not have {len(columns)} fields")
    for name, kind in columns:
        if len(rows) and (rows[f"{name}.size"] != np.dtype(KINDS[kind]).itemsize).any():
            raise ValueError(f"binary COPY column {name!r} is NULL or not {kind} in some rows")
    return {name: rows[name].astype(KINDS[kind].replace(">", "="), copy=True) for name, kind in columns}


def _first_row(data: bytes | memoryview) -> int:
    """Offset of the first row of a binary COPY stream, after its signature and header extension."""
    if bytes(data[: len(SIGNATURE)]) != SIGNATURE:
        raise ValueError("not a PostgreSQL binary COPY stream (signature missing)")
    return 19 + int.from_bytes(data[15:19], "big")


RECORD_KINDS: tuple[str, ...] = (*KINDS, "bytea", "text")
"""Column kinds of :func:`read_binary_records`: the fixed-width numbers plus ``bytea`` (a memoryview of the bytes)
and ``text`` (a str)."""


def read_binary_records(cur, statement: str, kinds: Sequence[str]) -> list[tuple]:
    """Run ``statement`` (a complete binary ``COPY ... TO STDOUT``) and return its rows as tuples: numbers as Python
    numbers, ``bytea`` as memoryviews of one shared buffer (no copy), ``text`` as str, NULL as None. For a few rows of
    large values, not for millions of rows (use :func:`read_binary_copy`)."""
    unknown = [kind for kind in kinds if kind not in RECORD_KINDS]
    if unknown:
        raise ValueError(f"binary COPY record kinds must be among {list(RECORD_KINDS)}, not {unknown}")
    buffer = io.BytesIO()
    cur.copy_expert(statement, buffer)
    data = memoryview(buffer.getbuffer())
    at = _first_row(data)
    rows = []
    while True:
        if at + 2 > len(data):
            raise ValueError("binary COPY stream is truncated (no end marker)")
        fields = int.from_bytes(data[at : at + 2], "big", signed=True)
        at += 2
        if fields == -1:
            return rows
        if fields != len(kinds):
            raise ValueError(f"binary COPY rows do not have {len(kinds)} fields")
        row = []
        for kind in kinds:
            size = int.from_bytes(data[at : at + 4], "big", signed=True)
            at += 4
            if size < 0:
                row.append(None)
                continue
            value = data[at : at + size]
            at += size
            if kind == "bytea":
                row.append(value)
            elif kind == "text":
                row.append(bytes(value).decode("utf-8"))
            elif size != np.dtype(KINDS[kind]).itemsize:
                raise ValueError(f"binary COPY field of {size} bytes is not {kind}")
            else:
                row.append(np.frombuffer(value, dtype=KINDS[kind])[0].item())
        rows.append(tuple(row))


__all__ = ["KINDS", "RECORD_KINDS", "parse_binary_copy", "read_binary_copy", "read_binary_records"]
