"""The Dagster home directory of this project: the project's ``dagster.yaml`` with storage on PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path

from fairness_pipeline import settings


def _project_dagster_yaml() -> Path:
    for candidate in (settings.PACKAGE_DIR / "dagster.yaml", settings.PROJECT_DIR / "dagster.yaml"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError("dagster.yaml not found beside the package or in the project directory")


def prepare_dagster_home() -> Path:
    """Create ``$FAIRNESS_HOME/dagster_home`` holding the project's ``dagster.yaml`` (which reads URLs from env)."""
    home = settings.dagster_home()
    source = _project_dagster_yaml()
    target = home / "dagster.yaml"
    if not target.exists() or target.read_bytes() != source.read_bytes():
        shutil.copyfile(source, target)
    return home
