"""The CLI's door to the database: a migrated connection, or one line saying why there is none."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from fairness_pipeline.cli.output import EXIT_USAGE, console, fail, first_line

MAX_LISTED_TENANTS = 20


def resolve_url() -> str:
    """The database's libpq URL (starting the embedded server if needed), or one line saying why there is none."""
    import psycopg2

    from fairness_pipeline.store.connection import database_url
    from fairness_pipeline.store.embedded import EmbeddedServerError

    try:
        return database_url()
    except ValueError as exc:
        fail(f"FAIRNESS_DATABASE_URL: {exc}", EXIT_USAGE)
    except EmbeddedServerError as exc:
        fail(str(exc))
    except psycopg2.OperationalError as exc:
        fail(f"cannot connect to the embedded server: {first_line(exc)}")


@contextmanager
def open_database(announce_migrations: bool = True) -> Iterator:
    """A connection to the project's database (``FAIRNESS_DATABASE_URL`` or the embedded server) after applying
    pending migrations; fails with one line when the URL is invalid or no server can be reached."""
    import psycopg2

    from fairness_pipeline.store import urls
    from fairness_pipeline.store.connection import connect
    from fairness_pipeline.store.migrations import MigrationError, migrate_once

    url = resolve_url()
    with ExitStack() as stack:
        try:
            conn = stack.enter_context(connect(url))
        except psycopg2.OperationalError as exc:
            fail(f"cannot connect to the database {urls.redacted(url)}: {first_line(exc)}")
        try:
            applied = migrate_once(conn, url)
        except MigrationError as exc:
            fail(str(exc))
        if announce_migrations:
            for migration in applied:
                console.print(f"applied migration {migration.path.name}")
        yield conn


def require_tenant(conn, tenant: str) -> None:
    """Fail (exit 2) unless some events, report or alert belong to ``tenant``, listing the tenants that exist."""
    from fairness_pipeline.store import events

    known, names = events.check_tenant(conn, tenant)
    if known:
        return
    if not names:
        fail(f"unknown tenant {tenant!r}: the database holds no tenant yet (ingest events first)", EXIT_USAGE)
    listed = ", ".join(repr(name) for name in names[:MAX_LISTED_TENANTS])
    more = f" and {len(names) - MAX_LISTED_TENANTS} more" if len(names) > MAX_LISTED_TENANTS else ""
    fail(f"unknown tenant {tenant!r}; tenants: {listed}{more}", EXIT_USAGE)
