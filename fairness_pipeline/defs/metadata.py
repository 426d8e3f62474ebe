"""Materialisation metadata: row counts, column schemas from the store's table declarations, small markdown
previews, and plain numbers to chart, recorded per partition day so that the UI plots each day's own figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import dagster as dg
import pandas as pd

from fairness_pipeline.defs.partitions import tenant_day_key
from fairness_pipeline.store.schema import Table

PREVIEW_ROWS = 10


def table_schema(table: Table, extra: Sequence[Table] = ()) -> dg.TableSchema:
    """The Dagster column schema of a declared table (one column per stored column, typed as PostgreSQL types it);
    ``extra`` tables written with it are listed as columns of type ``table``."""
    columns = [
        dg.TableColumn(
            c.name,
            c.type,
            description=c.description or None,
            constraints=dg.TableColumnConstraints(
                nullable=c.nullable, unique=(c.name,) == table.key, other=["key"] if c.name in table.key else []
            ),
        )
        for c in table.columns
    ]
    columns += [dg.TableColumn(t.name, "table", description=t.description or None) for t in extra]
    return dg.TableSchema(columns=columns, constraints=dg.TableConstraints(other=[f"key: {', '.join(table.key)}"]))


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


def worst_first(frame: pd.DataFrame, by: str, columns: Sequence[str], ascending: bool = True) -> pd.DataFrame:
    """The preview rows: ``columns`` (the stage pair among them where the table has one), the worst ``by`` first."""
    if frame.empty:
        return pd.DataFrame()
    return frame.sort_values(by, ascending=ascending, na_position="last", kind="stable")[list(columns)]


def numbers_metadata(numbers: Mapping[str, Any]) -> dict[str, Any]:
    """Plain numbers (and texts) the UI charts across partitions; None is left out."""
    metadata: dict[str, Any] = {}
    for key, value in numbers.items():
        if value is None:
            continue
        metadata[key] = dg.MetadataValue.float(float(value)) if isinstance(value, float) else value
    return metadata


def per_tenant(values: Mapping[str, Any], name: str) -> dict[str, Any]:
    """One number per tenant (``name/tenant``): figures that differ by tenant are never pooled. A tenant whose
    figure is undefined (None, NaN) gets no entry that day."""
    return numbers_metadata({f"{name}/{tenant}": value for tenant, value in sorted(values.items()) if pd.notna(value)})


def table_metadata(
    row_count: int, schema: dg.TableSchema, preview: dg.MetadataValue, numbers: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Standard metadata of an asset that writes a table, plus plain numbers the UI charts across partitions."""
    return {
        "dagster/row_count": dg.MetadataValue.int(int(row_count)),
        "dagster/column_schema": schema,
        "preview": preview,
        **numbers_metadata(numbers or {}),
    }


def record_day(
    context: dg.AssetExecutionContext,
    day: date,
    metadata: Mapping[str, Any],
    asset_key: str | None = None,
    tenant: str | None = None,
) -> None:
    """Attach a day's own metadata to that day's materialisation (the tenant-day's, when ``tenant`` is given): a run
    over many days records one materialisation per day, and these entries override the run's totals on it. An asset
    called directly (``build_asset_context``, as tests and benchmarks do) has no run to attach them to: they are left
    out there."""
    from dagster._core.execution.context.invocation import DirectAssetExecutionContext

    if isinstance(context, DirectAssetExecutionContext):  # Dagster 1.13 cannot add per-partition metadata there
        return
    key = day.isoformat() if tenant is None else tenant_day_key(tenant, day)
    context.add_asset_metadata(dict(metadata), asset_key=asset_key, partition_key=key)


def record_tenant_day(
    context: dg.AssetExecutionContext, tenant: str, day: date, metadata: Mapping[str, Any], asset_key: str | None = None
) -> None:
    """:func:`record_day` on one tenant-day's materialisation."""
    record_day(context, day, metadata, asset_key=asset_key, tenant=tenant)
