"""Event frames from simulated batches, and the CSV / JSON Lines writer of the synthetic generator."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from itertools import repeat
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from fairness_pipeline.events.vocabulary import EVENT_COLUMNS

TEXT_DTYPE: object = "str" if int(pd.__version__.split(".")[0]) >= 3 else object
"""pandas' string dtype (NaN for missing) from pandas 3 on; plain object columns (None for missing) before."""


@functools.cache
def _digits(width: int) -> np.ndarray:
    """All ``width``-digit zero-padded numbers, as an object array of str."""
    return np.array([f"{i:0{width}d}" for i in range(10**width)], dtype=object)


def numbered(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """``prefix`` + numbers zero-padded to ``width`` digits, as an object array of str."""
    if width > 3 and (numbers.size == 0 or int(numbers.max()) < 10**width):
        high, low = np.divmod(numbers, 1000)
        return (prefix + _digits(width - 3)[high]) + _digits(3)[low]
    return np.char.add(prefix, np.char.zfill(numbers.astype(np.str_), width)).astype(object)


# --- writing -------------------------------------------------------------------------------------------------------

_CSV_SPECIAL = re.compile(r'[,"\r\n]')
_SCORE_TEXT = np.array([repr(k / 10_000) for k in range(10_001)], dtype=object)
_INT_TEXT = np.array([str(i) for i in range(4096)], dtype=object)


def _csv_field(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if _CSV_SPECIAL.search(value) else value


def _render_column(series: pd.Series, fmt: str) -> tuple[list[str], str, str]:
    """Render a column as text: (values, prefix, suffix); the caller adds prefix and suffix around every value."""
    null = "" if fmt == "csv" else "null"
    quote = "" if fmt == "csv" else '"'
    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(series.dtype):
        if isinstance(series.dtype, pd.DatetimeTZDtype):  # naive timestamps are taken as UTC
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        stamps = series.to_numpy(dtype="datetime64[us]")
        text = np.datetime_as_string(stamps, unit="us").astype(object)
        missing = np.isnat(stamps)
        if not missing.any():
            return text.tolist(), quote, "+00:00" + quote
        return np.where(missing, null, quote + text + "+00:00" + quote).tolist(), "", ""
    if pd.api.types.is_bool_dtype(series.dtype):
        series = series.astype(object)
    elif pd.api.types.is_integer_dtype(series.dtype):
        missing = series.isna().to_numpy()
        values = series.to_numpy(dtype=np.int64, na_value=0)
        if values.size and values.min() >= 0 and values.max() < _INT_TEXT.size:
            text = _INT_TEXT[values]
        else:
            text = np.array(list(map(str, values.tolist())), dtype=object)
        return (np.where(missing, null, text) if missing.any() else text).tolist(), "", ""
    elif pd.api.types.is_float_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(values) if fmt == "csv" else ~np.isfinite(values)
        scaled = np.rint(np.where(missing, 0.0, values) * 10_000)
        on_grid = (scaled >= 0) & (scaled <= 10_000) & (scaled / 10_000 == values)
        if on_grid[~missing].all():
            text = _SCORE_TEXT[scaled.astype(np.int64)]
        else:
            text = np.array(list(map(repr, values.tolist())), dtype=object)
        return (np.where(missing, null, text) if missing.any() else text).tolist(), "", ""
    if not series.hasnans and pd.api.types.is_string_dtype(series):
        strings = series.to_numpy(dtype=object).tolist()
        joined = "".join(strings)
        if fmt == "csv":
            plain = not any(char in joined for char in ',"\r\n')
        else:  # printable ASCII without quote or backslash needs no JSON escaping
            plain = joined.isascii() and joined.isprintable() and '"' not in joined and "\\" not in joined
        if plain:
            return strings, quote, quote
    codes, uniques = pd.factorize(series.astype(object))
    render = _csv_field if fmt == "csv" else json.dumps
    rendered = np.array([render(str(u)) for u in uniques] + [null], dtype=object)
    return rendered[codes].tolist(), "", ""


def _render_rows(frame: pd.DataFrame, fmt: str, columns: tuple[str, ...]) -> str:
    """The frame's ``columns`` as CSV or JSON Lines text, one line per row without the final newline."""
    parts: list[object] = []
    pending = "{" if fmt == "jsonl" else ""
    for i, name in enumerate(columns):
        values, prefix, suffix = _render_column(frame[name], fmt)
        if i:
            pending += ","
        if fmt == "jsonl":
            pending += json.dumps(name) + ":"
        pending += prefix
        if pending:
            parts.append(repeat(pending))
        parts.append(values)
        pending = suffix
    pending += "}" if fmt == "jsonl" else ""
    if pending:
        parts.append(repeat(pending))
    return "\n".join(map("".join, zip(*parts, strict=False)))  # repeat() parts are endless


def write_events(frames: Iterable[pd.DataFrame], path: str | Path, fmt: Literal["csv", "jsonl"] = "csv") -> int:
    """Write event frames to ``path`` and return the number of rows.

    CSV: a header of ``EVENT_COLUMNS``, ISO-8601 UTC timestamps (``2026-01-05T13:45:12.123456+00:00``), empty fields
    for missing values, minimal quoting. JSON Lines: one object per row, ``null`` for missing values. Lines end in
    ``\\n`` on every platform.
    """
    return write_rows(frames, path, EVENT_COLUMNS, fmt, what="event")


def write_rows(
    frames: Iterable[pd.DataFrame],
    path: str | Path,
    columns: tuple[str, ...],
    fmt: Literal["csv", "jsonl"] = "csv",
    *,
    what: str = "row",
) -> int:
    """Write the ``columns`` of frames to ``path`` as :func:`write_events` does, and return the number of rows."""
    if fmt not in ("csv", "jsonl"):
        raise ValueError(f"unknown format {fmt!r}; expected 'csv' or 'jsonl'")
    rows = 0
    with open(path, "w", encoding="utf-8", newline="") as handle:
        if fmt == "csv":
            handle.write(",".join(columns) + "\n")
        for frame in frames:
            missing = [name for name in columns if name not in frame.columns]
            if missing:
                raise ValueError(f"{what} frame lacks columns: {', '.join(missing)}")
            if frame.empty:
                continue
            handle.write(_render_rows(frame, fmt, columns))
            handle.write("\n")
            rows += len(frame)
    return rows
