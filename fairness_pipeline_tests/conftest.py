"""Real PostgreSQL for the tests: an embedded server in a temporary directory, or ``FAIRNESS_TEST_DATABASE_URL``.

Each test that asks for ``db_url`` gets a fresh database cloned from a migrated template.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql

from fairness_pipeline.store import embedded, urls
from fairness_pipeline.store.migrations import migrate

TEMPLATE = "fairness_test_template"


def _with_database(url: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _admin(url: str, statement: sql.Composable) -> None:
    conn = psycopg2.connect(url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """URL of a maintenance database on a server the tests may create databases on."""
    external = os.environ.get("FAIRNESS_TEST_DATABASE_URL")
    if external:
        yield urls.libpq_url(external)
        return
    # The project's own embedded server (private socket, peer authentication). As root it runs as a system user that
    # must be able to enter the directory: pytest's base directory is private (0700), so the server gets its own.
    base = Path(tempfile.mkdtemp(prefix="fairness-test-pg-"))
    base.chmod(0o711)
    pgdata = base / "pgdata"
    try:
        yield embedded.start(pgdata)
    finally:
        embedded.stop(pgdata)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def template_url(pg_admin_url: str) -> str:
    _admin(pg_admin_url, sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(TEMPLATE)))
    _admin(pg_admin_url, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
    url = _with_database(pg_admin_url, TEMPLATE)
    conn = psycopg2.connect(url)
    try:
        migrate(conn)
    finally:
        conn.close()
    return url


@pytest.fixture
def db_url(pg_admin_url: str, template_url: str) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    name = f"fairness_test_{uuid.uuid4().hex[:12]}"
    _admin(
        pg_admin_url,
        sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(TEMPLATE)),
    )
    yield _with_database(pg_admin_url, name)
    _admin(pg_admin_url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def conn(db_url: str) -> Iterator:
    connection = psycopg2.connect(db_url)
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture
def empty_db_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh database with no migrations applied."""
    name = f"fairness_empty_{uuid.uuid4().hex[:12]}"
    _admin(pg_admin_url, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield _with_database(pg_admin_url, name)
    _admin(pg_admin_url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
