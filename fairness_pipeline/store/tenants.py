"""The tenants the events name: what the tenant partitions of the Dagster graph are built from."""

from __future__ import annotations

from datetime import datetime

TENANTS_INSERTED = """
SELECT DISTINCT tenant_id
FROM selection_events
WHERE (%(after)s::timestamptz IS NULL OR created_at > %(after)s) AND created_at <= %(until)s
ORDER BY tenant_id
"""
"""Tenants of the events stored after ``after`` (all of them when it is NULL) up to ``until``."""


def tenants_inserted(cur, after: datetime | None, until: datetime) -> list[str]:
    """The tenants of events stored in (``after``, ``until``], every tenant when ``after`` is None."""
    cur.execute(TENANTS_INSERTED, {"after": after, "until": until})
    return [row[0] for row in cur.fetchall()]
