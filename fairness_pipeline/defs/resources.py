"""The PostgreSQL database as a Dagster resource."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import Field

from fairness_pipeline import settings
from fairness_pipeline.store import urls


class FairnessDatabase(dg.ConfigurableResource):
    """The project's database: ``FAIRNESS_DATABASE_URL`` when set, else the embedded server (started on demand).

    Pending migrations are applied on first use in each process.
    """

    url: str | None = Field(default=None, description="PostgreSQL URL; empty means FAIRNESS_DATABASE_URL / embedded.")

    def resolved_url(self) -> str:
        from fairness_pipeline.store.connection import database_url

        if self.url:
            return urls.libpq_url(self.url)
        if settings.external_database_url():
            return urls.libpq_url(settings.external_database_url() or "")
        return database_url()

    @contextmanager
    def connect(self) -> Iterator:
        """A psycopg2 connection, closed on exit; pending migrations are applied on the first connection of the
        process to this URL. Scope transactions with ``with conn:``."""
        import psycopg2

        from fairness_pipeline.store.migrations import migrate_once

        url = self.resolved_url()
        conn = psycopg2.connect(url)
        try:
            migrate_once(conn, url)
            yield conn
        finally:
            conn.close()
