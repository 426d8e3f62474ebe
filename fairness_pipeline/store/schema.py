"""How the store declares a table once: its columns with their PostgreSQL types, its key, what each column means.

The declarations live beside the SQL that reads and writes the table (``store.events``, ``store.validation``,
``store.analysis``, ``store.audits``, ``store.reports``, ``store.alerts``); ``store.catalog`` lists them all, a test
checks each against the migrated database, and the Dagster layer derives its column schemas from them. The types are
written as PostgreSQL's ``format_type`` prints them, so the comparison is exact.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pandas as pd

PANDAS_DTYPES: Mapping[str, str] = {
    "bigint": "Int64",
    "integer": "Int64",
    "smallint": "Int64",
    "double precision": "float64",
    "real": "float64",
    "boolean": "boolean",
}
"""Frame dtypes of the column types that have one; other types (text, dates, numeric, arrays, JSON) stay objects."""


@dataclass(frozen=True)
class Column:
    """One column: name, type as ``format_type`` prints it, whether NULL is allowed, and what it holds."""

    name: str
    type: str
    description: str = ""
    nullable: bool = True


@dataclass(frozen=True)
class Table:
    """One table: name, columns in their stored order, primary key, and what a row is."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    description: str = ""
    unique: tuple[tuple[str, ...], ...] = field(default=())
    """Other unique column sets (constraints or unique indexes) rows are identified by."""

    def __post_init__(self) -> None:
        names = self.column_names
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: a column is declared twice")
        unknown = {c for cols in (self.key, *self.unique) for c in cols} - set(names)
        if unknown:
            raise ValueError(f"{self.name}: key columns {sorted(unknown)} are not declared")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.name} has no column {name!r}")

    def dtypes(self, names: Sequence[str] | None = None) -> dict[str, str]:
        """Pandas dtypes of the named columns (all by default) that have one."""
        chosen = self.columns if names is None else [self.column(n) for n in names]
        return {c.name: PANDAS_DTYPES[c.type] for c in chosen if c.type in PANDAS_DTYPES}


TENANT_FILTER = "(%(tenant_id)s::text IS NULL OR tenant_id = %(tenant_id)s)"
"""The clause that keeps one tenant's rows (``tenant_id`` given) or every tenant's (``tenant_id`` None): a run of one
tenant-day reads and replaces that tenant's rows only."""


def fetch_frame(
    cur,
    statement: str,
    params: Mapping[str, Any] | Sequence[Any] | None = None,
    dtypes: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Run a query and return its rows as a frame named by the cursor's columns (an empty frame keeps the names),
    the columns in ``dtypes`` converted (``Table.dtypes()``); others as psycopg2 returns them."""
    cur.execute(statement, params)
    frame = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
    present = {name: dtype for name, dtype in (dtypes or {}).items() if name in frame.columns}
    return frame.astype(present) if present else frame


def insert_rows(cur, statement: str, frame: pd.DataFrame, columns: Sequence[str], prefix: tuple = ()) -> int:
    """Insert ``frame[columns]`` with ``prefix`` values before each row through ``execute_values`` (``statement``
    ends in ``VALUES %s``): NaN/NA as NULL, numpy scalars as Python values. Returns the rows inserted."""
    from psycopg2.extras import execute_values

    if frame.empty:
        return 0
    chosen = frame[list(columns)]
    clean = chosen.astype(object).where(chosen.notna(), None)
    rows = [prefix + tuple(v.item() if hasattr(v, "item") else v for v in row) for row in clean.itertuples(False)]
    execute_values(cur, statement, rows)
    return len(rows)


def missing_days(present: set[date], first_day: date, last_day: date) -> list[date]:
    """The days from ``first_day`` to ``last_day`` not in ``present``."""
    days = [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]
    return [d for d in days if d not in present]


@contextmanager
def transaction(conn) -> Iterator:
    """A transaction on ``conn`` (committed on exit, rolled back on error) and the cursor the store functions take."""
    with conn, conn.cursor() as cur:
        yield cur
