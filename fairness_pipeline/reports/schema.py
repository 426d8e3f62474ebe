"""The JSON Schema of a report (``schema.json``) and a validator.

Reports are validated by ``jsonschema-rs`` (JSON Schema 2020-12 with format checks, compiled once): a tenant-day's
report holds tens of thousands of values, which the pure-Python ``jsonschema`` took seconds to walk. The tests hold
both validators to the same verdicts.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).with_name("schema.json")


class ReportSchemaError(ValueError):
    """A report that does not match ``schema.json``: where (a JSON pointer into the report) and why."""

    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(f"report does not match its schema at {pointer or '/'}: {message}")
        self.pointer, self.message = pointer, message


@functools.cache
def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@functools.cache
def _validator() -> Any:
    import jsonschema_rs

    return jsonschema_rs.validator_for(load_schema(), validate_formats=True)


def validate_report(report: dict[str, Any]) -> None:
    """Raise ``ReportSchemaError`` when the report (internal or published) does not match the schema."""
    import jsonschema_rs

    try:
        _validator().validate(report)
    except jsonschema_rs.ValidationError as error:
        pointer = "".join(f"/{part}" for part in error.instance_path)
        raise ReportSchemaError(pointer, error.message) from None


def copy_report(report: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a report. A report is a JSON document (no NaN, dates as strings), so a round trip through
    ``json`` copies it, several times faster than ``copy.deepcopy``."""
    return json.loads(json.dumps(report, allow_nan=False))
