"""Database URLs as users write them, and as each driver wants them."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

_ACCEPTED_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg")


def _split(url: str):
    parts = urlsplit(url)
    if parts.scheme not in _ACCEPTED_SCHEMES:
        raise ValueError(
            f"unsupported database URL scheme {parts.scheme!r}: write postgresql://user:password@host:port/database"
        )
    return parts


def libpq_url(url: str) -> str:
    """The URL in the form libpq and psycopg2 accept (``postgresql://``)."""
    return urlunsplit(_split(url)._replace(scheme="postgresql"))


def sqlalchemy_url(url: str) -> str:
    """The URL with the ``postgresql+psycopg2`` prefix SQLAlchemy 2.1 (and so dagster-postgres) needs."""
    return urlunsplit(_split(url)._replace(scheme="postgresql+psycopg2"))


def redacted(url: str) -> str:
    """The URL with any password replaced by ``***``, for messages and logs."""
    parts = _split(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)
