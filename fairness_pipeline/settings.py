"""Where the project keeps its state, read from the environment.

``FAIRNESS_DATABASE_URL``  an external PostgreSQL 14+ server (``postgresql://user@host/db``); unset -> embedded.
``FAIRNESS_HOME``          state directory (embedded data directory, Dagster home); default ``<project>/.fairness``.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent

DATABASE_URL_ENV = "FAIRNESS_DATABASE_URL"
HOME_ENV = "FAIRNESS_HOME"
DAGSTER_STORAGE_URL_ENV = "FAIRNESS_DAGSTER_STORAGE_URL"
"""Read by ``dagster.yaml``; the CLI sets it from the database URL so no password sits in a file."""


def home_dir() -> Path:
    """The project's state directory, created on demand."""
    configured = os.environ.get(HOME_ENV)
    home = Path(configured).expanduser() if configured else PROJECT_DIR / ".fairness"
    home.mkdir(parents=True, exist_ok=True)
    return home.resolve()


def dagster_home() -> Path:
    """``DAGSTER_HOME`` for this project: holds a copy of the project's ``dagster.yaml``."""
    path = home_dir() / "dagster_home"
    path.mkdir(parents=True, exist_ok=True)
    return path


def external_database_url() -> str | None:
    """The user's database URL, or None when the embedded server should be used."""
    url = os.environ.get(DATABASE_URL_ENV, "").strip()
    return url or None
