"""A small migration runner for the numbered SQL files in ``migrations/``.

Each pending file is applied in version order inside its own transaction, and recorded in ``schema_migrations`` with
its SHA-256 checksum and the time it was applied. A file whose checksum no longer matches the recorded one stops the
runner before anything is applied: applied migrations are history and are never edited; add a new file instead.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from fairness_pipeline import settings
from fairness_pipeline.store.schema import Column, Table

SCHEMA_MIGRATIONS = Table(
    "schema_migrations",
    description="The applied migration files with their checksums.",
    columns=(
        Column("version", "integer", nullable=False),
        Column("name", "text", nullable=False),
        Column("checksum", "character(64)", nullable=False),
        Column("applied_at", "timestamp with time zone", nullable=False),
    ),
    key=("version",),
)


CREATE_HISTORY_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    checksum    CHAR(64) NOT NULL,
    applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""

# An arbitrary constant key shared by every migrating process.
LOCK = "SELECT pg_advisory_lock(7254031)"
UNLOCK = "SELECT pg_advisory_unlock(7254031)"

APPLIED = "SELECT version, name, checksum FROM schema_migrations ORDER BY version"

RECORD = "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)"

HISTORY_EXISTS = "SELECT to_regclass('schema_migrations') IS NOT NULL"

_FILE_PATTERN = re.compile(r"^(\d{3,})_[a-z0-9_]+\.sql$")


class MigrationError(RuntimeError):
    """The database's migration history does not match the files on disk."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def migrations_dir() -> Path:
    """The bundled migrations (inside an installed wheel) or the project's ``migrations/`` folder."""
    for candidate in (settings.PACKAGE_DIR / "migrations", settings.PROJECT_DIR / "migrations"):
        if candidate.is_dir():
            return candidate
    raise MigrationError("migrations directory not found")


def discover(directory: Path | None = None) -> list[Migration]:
    """Migration files in version order; refuses duplicate versions and misnamed files."""
    directory = directory or migrations_dir()
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_PATTERN.match(path.name)
        if not match:
            raise MigrationError(f"{path}: migration files are named NNN_description.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{path}: version {version} is also used by {found[version].path.name}")
        found[version] = Migration(version, path.stem, path)
    return [found[v] for v in sorted(found)]


def migrate(conn, directory: Path | None = None) -> list[Migration]:
    """Apply pending migrations and return them; a no-op when the database is current.

    Holds an advisory lock so two processes starting at once apply each file once.
    """
    available = discover(directory)
    with conn, conn.cursor() as cur:  # `with conn` commits the transaction, or rolls it back on error
        cur.execute(LOCK)
        cur.execute(CREATE_HISTORY_TABLE)
        cur.execute(APPLIED)
        applied = {version: (name, checksum) for version, name, checksum in cur.fetchall()}
    try:
        _check_history(available, applied)
        pending = [m for m in available if m.version not in applied]
        for migration in pending:
            with conn, conn.cursor() as cur:
                cur.execute(migration.sql)
                cur.execute(RECORD, (migration.version, migration.name, migration.checksum))
        return pending
    finally:
        with conn, conn.cursor() as cur:
            cur.execute(UNLOCK)


_MIGRATED_URLS: set[str] = set()
_MIGRATED_LOCK = threading.Lock()


def migrate_once(conn, url: str) -> list[Migration]:
    """:func:`migrate` the first time this process connects to ``url``; later calls return [] without a query."""
    with _MIGRATED_LOCK:
        if url in _MIGRATED_URLS:
            return []
        applied = migrate(conn)
        _MIGRATED_URLS.add(url)
        return applied


def _check_history(available: list[Migration], applied: dict[int, tuple[str, str]]) -> None:
    on_disk = {m.version: m for m in available}
    for version, (name, checksum) in sorted(applied.items()):
        migration = on_disk.get(version)
        if migration is None:
            raise MigrationError(
                f"migration {version:03d} ({name}) is recorded in schema_migrations but its file is missing"
            )
        if migration.checksum != checksum:
            raise MigrationError(
                f"migration {migration.path.name} was changed after it was applied "
                f"(recorded checksum {checksum[:12]}, file now {migration.checksum[:12]}); "
                "restore the file and add a new migration for the change"
            )


def status(conn, directory: Path | None = None) -> list[tuple[Migration, bool]]:
    """Each migration on disk and whether it is applied."""
    with conn.cursor() as cur:
        cur.execute(HISTORY_EXISTS)
        exists = cur.fetchone()[0]
        applied: set[int] = set()
        if exists:
            cur.execute(APPLIED)
            applied = {row[0] for row in cur.fetchall()}
    return [(m, m.version in applied) for m in discover(directory)]
