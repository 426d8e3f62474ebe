"""Connections to the project's PostgreSQL database, embedded or external."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from fairness_pipeline import settings
from fairness_pipeline.store import embedded, urls


@cache
def database_url() -> str:
    """The libpq URL of the project's database: ``FAIRNESS_DATABASE_URL``, else the embedded server (started)."""
    external = settings.external_database_url()
    if external:
        return urls.libpq_url(external)
    return embedded.start()


@contextmanager
def connect(url: str | None = None) -> Iterator:
    """A psycopg2 connection, closed on exit. Callers scope transactions with ``with conn:``."""
    import psycopg2

    conn = psycopg2.connect(url or database_url())
    try:
        yield conn
    finally:
        conn.close()


def child_environment(url: str | None = None) -> dict[str, str]:
    """Environment for Dagster processes: the resolved database, its SQLAlchemy URL and ``DAGSTER_HOME``."""
    from fairness_pipeline.orchestration_home import prepare_dagster_home

    resolved = url or database_url()
    env = dict(os.environ)
    env[settings.DATABASE_URL_ENV] = resolved
    env[settings.DAGSTER_STORAGE_URL_ENV] = urls.sqlalchemy_url(resolved)
    env["DAGSTER_HOME"] = str(prepare_dagster_home())
    return env
