"""The Great Expectations suite for raw selection events, declared once.

``EXPECTATIONS`` is the only declaration. Each entry has a stable short name (used in quarantine reasons and in
the summary) and the GX 1.x expectation it stands for. The same suite both

* produces the GX validation result (``EventValidation.result``, and ``EventValidation.summary``, a compact
  JSON-serialisable form for a Dagster asset check), and
* decides row by row what is quarantined: a row is quarantined when it appears in the ``unexpected_index_list``
  (result format ``COMPLETE``) of any expectation, and ``failed_expectations`` lists every such expectation name.

There is no second rule set in pandas: every expectation of the suite is a GX column map expectation, so GX itself
returns the unexpected rows. How this is guaranteed, and the GX 1.24 / pandas 3 quirks behind it:

* GX is handed a copy of the frame with a fresh ``RangeIndex``; unexpected indices are therefore row positions,
  whatever the caller's index (duplicates, strings, gaps).
* Columns checked with ``ExpectColumnValuesToBeInTypeList`` are handed to GX as ``object`` dtype. GX checks the type
  of each value only for ``object`` columns; for any other dtype it compares the column dtype and returns no row
  indices (and pandas 3's ``str`` dtype never matches ``"str"`` there, so it would even fail a clean column).
* Map expectations ignore nulls, so a missing dimension, rank or score is valid; nulls in required columns are caught
  by the ``*_not_null`` expectations.
* ``event_id_unique`` (``ExpectColumnValuesToBeUnique``): every row whose event id occurs more than once is
  unexpected, including the first occurrence, so all copies of a duplicated event are quarantined.
* ``rank_integer_like`` is ``ExpectColumnValuesToMatchRegex`` on the value's text: GX's pandas regex check runs
  ``astype(str)``, so ``3`` and ``3.0`` pass while ``2.5``, ``1e+20`` or ``True`` fail. No built-in type expectation
  accepts a float that holds an integer, which a rank read into a float column (NaN for missing) is.
* ``timestamp_not_in_future`` compares against the suite parameter ``now`` (``{"$PARAMETER": "now"}``), supplied
  per run, so the suite stays static while tests control the clock. Both sides must be timezone-aware.
* Python's ``$`` also matches before a trailing newline, so ``user_id_hash_format`` alone would accept a hash
  followed by ``\\n``; ``user_id_hash_max_length`` (65 > 64) rejects it. ``\\Z`` is avoided on purpose: pandas runs
  pyarrow-backed strings through RE2, which does not know it.
* ``unexpected_percent`` in the summary is GX's: relative to the non-null values of the column.
* If GX cannot evaluate an expectation at all (an exception, e.g. a text value in the ``score`` column, or naive
  timestamps), no row can be attributed; ``validate_events`` raises ``EventValidationError`` rather than guessing.

GX is imported lazily (it takes seconds), and one silent ephemeral context (no analytics, no progress bars, no data
docs, nothing on disk) with the suite and a ``ValidationDefinition`` is created per process and reused; runs are
serialised by a lock. GX 1.24 has no usage statistics and does not phone home (its only network code is for GX
Cloud); ``GX_ANALYTICS_ENABLED=false`` is set anyway. ``ValidationDefinition.run`` keeps every result in the
context's in-memory results store, so each run removes it again to keep a long-lived process from growing.
(``Batch.validate`` avoids the store but fetches, and hashes, the dataframe twice.)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fairness_pipeline.events import vocabulary

if TYPE_CHECKING:
    import great_expectations as gx
    from great_expectations.core import ExpectationSuiteValidationResult

SUITE_NAME = "selection_events"
NOW_PARAMETER = "now"
FAILED_EXPECTATIONS_COLUMN = "failed_expectations"
META_KEY = "event_expectation"
"""Key in each GX expectation's ``meta`` holding its short name; results are matched to declarations by it."""

STRING_ID_COLUMNS: tuple[str, ...] = ("event_id", "candidate_id", "search_id", "tenant_id", "user_id_hash")
USER_ID_HASH_REGEX = r"^[0-9a-f]{64}$"
INTEGER_LIKE_REGEX = r"^[+-]?[0-9]+(?:\.0*)?$"
"""Text of an integer-like value as ``astype(str)`` renders it: ``3`` (int) or ``3.0`` (float)."""

_RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "return_unexpected_index_query": False,
}
"""COMPLETE lists only the unexpected (bad) rows, so its cost grows with the bad rows, not with the batch."""


@dataclass(frozen=True)
class EventExpectation:
    """One declared expectation: a stable short name and the GX expectation class (by name) with its arguments."""

    name: str
    gx_type: str
    """Class name in ``great_expectations.expectations``, e.g. ``ExpectColumnValuesToBeInSet``."""
    kwargs: Mapping[str, Any]

    @property
    def column(self) -> str:
        """The column the expectation checks."""
        return str(self.kwargs["column"])

    def build(self) -> gx.expectations.Expectation:
        """The GX expectation, tagged with this name in its ``meta``."""
        import great_expectations as gx

        expectation_class = getattr(gx.expectations, self.gx_type)
        return expectation_class(**self.kwargs, meta={META_KEY: self.name})


def _expect(name: str, gx_type: str, column: str, **kwargs: Any) -> EventExpectation:
    return EventExpectation(name=name, gx_type=gx_type, kwargs={"column": column, **kwargs})


EXPECTATIONS: tuple[EventExpectation, ...] = (
    # Types. The frame handed to GX holds these columns as object dtype so each value is checked.
    *(_expect(f"{c}_is_string", "ExpectColumnValuesToBeInTypeList", c, type_list=["str"]) for c in STRING_ID_COLUMNS),
    _expect("rank_integer_like", "ExpectColumnValuesToMatchRegex", "rank", regex=INTEGER_LIKE_REGEX),
    _expect("score_numeric", "ExpectColumnValuesToBeInTypeList", "score", type_list=["int", "float"]),
    # Required values (NOT NULL in the table).
    *(_expect(f"{c}_not_null", "ExpectColumnValuesToNotBeNull", c) for c in vocabulary.REQUIRED_COLUMNS),
    _expect("candidate_id_not_empty", "ExpectColumnValueLengthsToBeBetween", "candidate_id", min_value=1),
    # Allowed values; nulls are ignored by GX map expectations, so a missing dimension is valid ("unknown"). The
    # dimension values are the catalogue's event dimensions (the columns of selection_events), as in force when the
    # process started: no schema lists them.
    _expect("event_type_in_set", "ExpectColumnValuesToBeInSet", "event_type", value_set=list(vocabulary.EVENT_TYPES)),
    *(
        _expect(f"{d}_in_set", "ExpectColumnValuesToBeInSet", d, value_set=list(values))
        for d, values in vocabulary.DIMENSION_VALUES.items()
    ),
    # VARCHAR limits of the table.
    *(
        _expect(f"{c}_max_length", "ExpectColumnValueLengthsToBeBetween", c, max_value=limit)
        for c, limit in vocabulary.MAX_LENGTHS.items()
    ),
    # Every row of a duplicated event id is unexpected, the first occurrence included.
    _expect("event_id_unique", "ExpectColumnValuesToBeUnique", "event_id"),
    _expect("score_between_0_and_1", "ExpectColumnValuesToBeBetween", "score", min_value=0, max_value=1),
    _expect("rank_at_least_1", "ExpectColumnValuesToBeBetween", "rank", min_value=1),
    _expect(
        "timestamp_not_in_future",
        "ExpectColumnValuesToBeBetween",
        "timestamp",
        max_value={"$PARAMETER": NOW_PARAMETER},
    ),
    _expect("user_id_hash_format", "ExpectColumnValuesToMatchRegex", "user_id_hash", regex=USER_ID_HASH_REGEX),
)
"""The suite, in the order quarantine reasons are listed."""

EXPECTATION_NAMES: tuple[str, ...] = tuple(e.name for e in EXPECTATIONS)

EXPECTATION_COLUMNS: tuple[str, ...] = tuple(dict.fromkeys(e.column for e in EXPECTATIONS))
"""The columns the suite checks (all of ``vocabulary.EVENT_COLUMNS``)."""

_OBJECT_COLUMNS: frozenset[str] = frozenset(
    e.column for e in EXPECTATIONS if e.gx_type == "ExpectColumnValuesToBeInTypeList"
)


class EventValidationError(RuntimeError):
    """GX could not evaluate an expectation, so its failing rows are unknown."""


@dataclass(frozen=True)
class EventValidation:
    """Outcome of validating one batch of events."""

    valid: pd.DataFrame
    """Rows passing every expectation; the input's columns and index."""
    quarantined: pd.DataFrame
    """Rows failing any expectation, plus ``failed_expectations``: their names, in declaration order."""
    summary: dict[str, Any]
    """JSON-serialisable summary (see ``summarize``)."""
    result: ExpectationSuiteValidationResult
    """The full GX validation result."""

    @property
    def success(self) -> bool:
        """Whether every expectation passed (nothing quarantined)."""
        return bool(self.summary["success"])


def build_suite() -> gx.ExpectationSuite:
    """A fresh ``ExpectationSuite`` holding ``EXPECTATIONS``."""
    import great_expectations as gx

    return gx.ExpectationSuite(name=SUITE_NAME, expectations=[e.build() for e in EXPECTATIONS])


@dataclass(frozen=True)
class _Runtime:
    context: Any
    validation_definition: gx.ValidationDefinition
    lock: threading.Lock


@lru_cache(maxsize=1)
def _runtime() -> _Runtime:
    """The process-wide silent ephemeral GX context holding the suite and its validation definition."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    batch_definition = (
        context.data_sources.add_pandas("selection_events")
        .add_dataframe_asset("raw_events")
        .add_batch_definition_whole_dataframe("batch")
    )
    suite = context.suites.add(build_suite())
    validation_definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=SUITE_NAME, data=batch_definition, suite=suite)
    )
    return _Runtime(context=context, validation_definition=validation_definition, lock=threading.Lock())


def _gx_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The frame GX sees: the checked columns, a positional index, type-checked columns as object dtype."""
    columns = {}
    for column in EXPECTATION_COLUMNS:
        series = df[column].reset_index(drop=True)
        columns[column] = series.astype(object) if column in _OBJECT_COLUMNS else series
    return pd.DataFrame(columns, index=pd.RangeIndex(len(df)))


def _exception_message(exception_info: Any) -> str | None:
    """The message of an exception GX caught while evaluating an expectation, if any."""
    if not isinstance(exception_info, Mapping):
        return None
    if "raised_exception" in exception_info:
        return str(exception_info.get("exception_message")) if exception_info.get("raised_exception") else None
    for nested in exception_info.values():
        if (message := _exception_message(nested)) is not None:
            return message
    return None


def _results_by_name(result: ExpectationSuiteValidationResult) -> dict[str, Any]:
    """Expectation results keyed by declared name (GX does not keep the suite's order)."""
    return {(r.expectation_config.meta or {}).get(META_KEY): r for r in result.results}


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def validate_events(df: pd.DataFrame, now: datetime) -> EventValidation:
    """Validate one batch of raw events with the suite and split it into valid and quarantined rows.

    ``df`` has the columns ``vocabulary.EVENT_COLUMNS`` (more, e.g. ``created_at``, are carried along untouched);
    ``now`` is the timezone-aware instant no event may be later than.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    missing = [c for c in EXPECTATION_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"event frame lacks columns: {missing}")

    runtime = _runtime()
    frame = _gx_frame(df)
    with runtime.lock:
        result = runtime.validation_definition.run(
            batch_parameters={"dataframe": frame},
            expectation_parameters={NOW_PARAMETER: now},
            result_format=_RESULT_FORMAT,
        )
        store = runtime.context.validation_results_store
        for key in store.list_keys():
            store.remove_key(key)

    by_name = _results_by_name(result)
    reasons: dict[int, list[str]] = {}
    for declared in EXPECTATIONS:
        expectation_result = by_name[declared.name]
        message = _exception_message(expectation_result.exception_info)
        if message is not None:
            raise EventValidationError(
                f"GX could not evaluate {declared.name} on column {declared.column!r} (does the column have the "
                f"documented dtype?): {message}"
            )
        unexpected = expectation_result.result.get("unexpected_index_list")
        if unexpected is None:
            if expectation_result.success:
                continue
            raise EventValidationError(f"GX returned no unexpected rows for failing {declared.name}")
        for position in unexpected:
            reasons.setdefault(int(position), []).append(declared.name)

    bad = np.zeros(len(df), dtype=bool)
    positions = sorted(reasons)
    bad[positions] = True
    valid = df.iloc[~bad]
    quarantined = df.iloc[positions].copy()
    quarantined[FAILED_EXPECTATIONS_COLUMN] = pd.Series(
        [reasons[p] for p in positions], index=quarantined.index, dtype=object
    )
    summary = summarize(result, now=now, valid_count=len(valid), quarantined_count=len(quarantined))
    return EventValidation(valid=valid, quarantined=quarantined, summary=summary, result=result)


def summarize(
    result: ExpectationSuiteValidationResult,
    *,
    now: datetime | None = None,
    valid_count: int | None = None,
    quarantined_count: int | None = None,
) -> dict[str, Any]:
    """Compact JSON-serialisable summary of a suite result, expectations in declaration order.

    Each expectation: ``name``, ``expectation_type``, ``column``, ``success``, ``unexpected_count``,
    ``unexpected_percent`` (of the column's non-null values; ``None`` for an empty batch).
    """
    by_name = _results_by_name(result)
    expectations = []
    for declared in EXPECTATIONS:
        r = by_name.get(declared.name)
        if r is None:
            continue
        expectations.append(
            {
                "name": declared.name,
                "expectation_type": r.expectation_config.type,
                "column": declared.column,
                "success": bool(r.success),
                "unexpected_count": int(r.result.get("unexpected_count") or 0),
                "unexpected_percent": _optional_float(r.result.get("unexpected_percent")),
            }
        )
    summary: dict[str, Any] = {
        "suite": SUITE_NAME,
        "success": bool(result.success),
        "evaluated_expectations": len(expectations),
        "failed_expectations": [e["name"] for e in expectations if not e["success"]],
    }
    if now is not None:
        summary["now"] = now.isoformat()
    if valid_count is not None:
        summary["valid_count"] = int(valid_count)
    if quarantined_count is not None:
        summary["quarantined_count"] = int(quarantined_count)
    summary["expectations"] = expectations
    return summary
