"""Every table the store declares, by name: the list a test checks against the migrated database."""

from __future__ import annotations

from fairness_pipeline.store import (
    alerts,
    analysis,
    api_tokens,
    attributes,
    audits,
    events,
    lifecycle,
    migrations,
    reports,
    validation,
)
from fairness_pipeline.store.schema import Table

TABLES: dict[str, Table] = {
    table.name: table
    for module in (events, validation, analysis, audits, reports, alerts, migrations, attributes, api_tokens, lifecycle)
    for table in vars(module).values()
    if isinstance(table, Table)
}
"""The declared tables, keyed by name (each declared once, in the module holding its SQL)."""
