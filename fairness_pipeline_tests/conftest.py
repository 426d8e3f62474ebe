"""Real PostgreSQL for the tests: an embedded server in a temporary directory, or ``FAIRNESS_TEST_DATABASE_URL``.

Each test that asks for ``db_url`` gets a fresh database cloned from a migrated template (``second_db_url``: another
one, ``module_db_url``: one per test module, ``empty_db_url``: one without migrations). ``instance`` is a Dagster
instance storing on ``db_url``, ``module_instance`` on ``module_db_url``; ``external_db`` points the CLI at ``db_url``
through the environment, as a user would (``cli_database`` does it for any URL).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql

from fairness_pipeline.store import connection, embedded, urls
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


@contextmanager
def _fresh_database(admin_url: str, prefix: str, template: str | None = TEMPLATE) -> Iterator[str]:
    """A new database named ``prefix_<random>``, cloned from ``template`` (None: empty), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        create = sql.SQL("{} TEMPLATE {}").format(create, sql.Identifier(template))
    _admin(admin_url, create)
    try:
        yield _with_database(admin_url, name)
    finally:
        _admin(admin_url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def db_url(pg_admin_url: str, template_url: str) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    with _fresh_database(pg_admin_url, "fairness_test") as url:
        yield url


@pytest.fixture
def second_db_url(pg_admin_url: str, template_url: str) -> Iterator[str]:
    """Another fresh, migrated database on the same server (a second deployment)."""
    with _fresh_database(pg_admin_url, "fairness_test") as url:
        yield url


@pytest.fixture(scope="module")
def module_db_url(pg_admin_url: str, template_url: str) -> Iterator[str]:
    """A fresh, migrated database shared by the tests of one module (for a graph that runs once per module)."""
    with _fresh_database(pg_admin_url, "fairness_module") as url:
        yield url


@pytest.fixture
def conn(db_url: str) -> Iterator:
    database_connection = psycopg2.connect(db_url)
    try:
        yield database_connection
    finally:
        database_connection.close()


@pytest.fixture
def empty_db_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh database with no migrations applied."""
    with _fresh_database(pg_admin_url, "fairness_empty", template=None) as url:
        yield url


@contextmanager
def _dagster_instance(url: str) -> Iterator:
    import dagster as dg

    with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_url": urls.sqlalchemy_url(url)}}}) as inst:
        yield inst


@pytest.fixture
def instance(db_url: str) -> Iterator:
    """A Dagster instance whose runs and event log are stored in ``db_url``."""
    with _dagster_instance(db_url) as dagster_instance:
        yield dagster_instance


@pytest.fixture(scope="module")
def module_instance(module_db_url: str) -> Iterator:
    """A Dagster instance stored in ``module_db_url``."""
    with _dagster_instance(module_db_url) as dagster_instance:
        yield dagster_instance


@contextmanager
def cli_database(url: str, monkeypatch: pytest.MonkeyPatch, home: Path) -> Iterator[str]:
    """Point the CLI at a database as a user would, through FAIRNESS_DATABASE_URL (and FAIRNESS_HOME at ``home``)."""
    monkeypatch.setenv("FAIRNESS_DATABASE_URL", url)
    monkeypatch.setenv("FAIRNESS_HOME", str(home))
    connection.database_url.cache_clear()
    yield url
    connection.database_url.cache_clear()


@pytest.fixture
def external_db(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """The CLI on the test database."""
    with cli_database(db_url, monkeypatch, tmp_path / "home") as url:
        yield url
