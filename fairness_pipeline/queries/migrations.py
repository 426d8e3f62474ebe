"""SQL of the migration runner."""

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
