"""Fairness reports of one tenant and day: internal JSON, published JSON, HTML and markdown.

Pure Python on the metric tables and the risk assessment; no Dagster, no database.

- ``build_report``: the internal JSON (unsuppressed), valid against ``schema.json`` (``validate_report``).
- ``publish_report``: the published JSON (cells under ``min_cell`` suppressed).
- ``render_html`` / ``render_markdown``: published renderings (self-contained HTML; markdown with one chart).
"""

from fairness_pipeline.reports.builder import SCHEMA_VERSION, build_report
from fairness_pipeline.reports.html import render_html
from fairness_pipeline.reports.markdown import render_markdown
from fairness_pipeline.reports.publish import publish_report
from fairness_pipeline.reports.schema import ReportSchemaError, load_schema, validate_report

__all__ = [
    "SCHEMA_VERSION",
    "ReportSchemaError",
    "build_report",
    "load_schema",
    "publish_report",
    "render_html",
    "render_markdown",
    "validate_report",
]
