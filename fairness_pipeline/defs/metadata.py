"""Materialisation metadata: row counts, column schemas, small markdown previews, and plain numbers to chart."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
import pandas as pd

PREVIEW_ROWS = 10


def column_schema(columns: Sequence[tuple[str, str, str]]) -> dg.TableSchema:
    """(name, type, description) triples as a Dagster table schema."""
    return dg.TableSchema(columns=[dg.TableColumn(n, t, description=d) for n, t, d in columns])


def markdown_preview(frame: pd.DataFrame, rows: int = PREVIEW_ROWS) -> dg.MetadataValue:
    """The first ``rows`` rows as a markdown table (small, so the event log stays small)."""
    if frame.empty:
        return dg.MetadataValue.md("_no rows_")
    head = frame.head(rows).copy()
    for column in head.columns:
        if pd.api.types.is_float_dtype(head[column]):
            head[column] = head[column].map(lambda v: "" if pd.isna(v) else f"{v:.4g}")
    lines = ["| " + " | ".join(map(str, head.columns)) + " |", "|" + "---|" * len(head.columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in head.itertuples(False)]
    return dg.MetadataValue.md("\n".join(lines))


def _cell(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return "" if pd.isna(value) else str(value).replace("|", "\\|")


def table_metadata(
    row_count: int, schema: dg.TableSchema, preview: dg.MetadataValue, numbers: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Standard metadata of an asset that writes a table, plus plain numbers the UI charts across partitions."""
    metadata: dict[str, Any] = {
        "dagster/row_count": dg.MetadataValue.int(int(row_count)),
        "dagster/column_schema": schema,
        "preview": preview,
    }
    for key, value in (numbers or {}).items():
        if value is None:
            continue
        metadata[key] = dg.MetadataValue.float(float(value)) if isinstance(value, float) else value
    return metadata
