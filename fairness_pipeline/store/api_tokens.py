"""Tokens of the transparency API (table ``api_tokens``, migration 018): create, list, revoke, authenticate.

A token is ``fpt_`` followed by 43 URL-safe characters (32 random bytes). It is returned once by
:func:`create_token`; the table keeps only its SHA-256 digest, which is what :func:`authenticate` looks up. Plain
SHA-256 (no slow key derivation) is enough because a token carries 256 bits of randomness: there is nothing to guess.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fairness_pipeline.store.schema import Column, Table

API_TOKENS = Table(
    "api_tokens",
    description="Transparency API tokens: SHA-256 digests only, the tenant read (NULL: operator) and the role.",
    columns=(
        Column("id", "bigint", nullable=False),
        Column("token_sha256", "bytea", nullable=False),
        Column("name", "text", nullable=False),
        Column("tenant_id", "character varying(255)"),
        Column("role", "text", nullable=False),
        Column("created_at", "timestamp with time zone", nullable=False),
        Column("revoked_at", "timestamp with time zone"),
    ),
    key=("id",),
    unique=(("token_sha256",),),
)


TOKEN_PREFIX = "fpt_"
ROLES = ("read", "review")
MAX_NAME = 200

INSERT_TOKEN = """
INSERT INTO api_tokens (token_sha256, name, tenant_id, role, created_at)
VALUES (%(digest)s, %(name)s, %(tenant_id)s, %(role)s, %(now)s)
RETURNING id, name, tenant_id, role, created_at, revoked_at
"""

TOKEN_COLUMNS = "id, name, tenant_id, role, created_at, revoked_at"

ACTIVE_TOKEN_BY_DIGEST = (
    f"SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_sha256 = %(digest)s AND revoked_at IS NULL"
)

LIST_TOKENS = f"""
SELECT {TOKEN_COLUMNS} FROM api_tokens
WHERE %(include_revoked)s OR revoked_at IS NULL
ORDER BY id
"""

REVOKE_TOKEN = f"""
UPDATE api_tokens SET revoked_at = %(now)s
WHERE id = %(token_id)s AND revoked_at IS NULL
RETURNING {TOKEN_COLUMNS}
"""


@dataclass(frozen=True)
class ApiToken:
    """A token's row, without its digest."""

    id: int
    name: str
    tenant_id: str | None
    """None: an operator token, for every tenant."""
    role: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def operator(self) -> bool:
        return self.tenant_id is None

    @property
    def reviewer(self) -> str:
        """The name recorded in the review history for changes made with this token."""
        return f"{self.name} (api token {self.id})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "tenant_id": self.tenant_id,
            "role": self.role,
            "created_at": self.created_at.astimezone(UTC).isoformat(),
            "revoked_at": self.revoked_at.astimezone(UTC).isoformat() if self.revoked_at else None,
        }


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def create_token(
    conn, name: str, tenant_id: str | None, role: str = "read", now: datetime | None = None
) -> tuple[ApiToken, str]:
    """Store a new token's digest; returns its row and the token itself (the only time it is available)."""
    name = " ".join((name or "").split())
    if not name or len(name) > MAX_NAME:
        raise ValueError(f"a token's name is 1 to {MAX_NAME} characters")
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected {' or '.join(ROLES)}")
    if tenant_id is not None and not tenant_id.strip():
        raise ValueError("a tenant id cannot be empty")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    params = {
        "digest": token_digest(token),
        "name": name,
        "tenant_id": tenant_id,
        "role": role,
        "now": now or datetime.now(UTC),
    }
    with conn, conn.cursor() as cur:
        cur.execute(INSERT_TOKEN, params)
        row = cur.fetchone()
    return ApiToken(*row), token


def authenticate(conn, token: str) -> ApiToken | None:
    """The active (not revoked) token whose digest matches, else None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    with conn, conn.cursor() as cur:
        cur.execute(ACTIVE_TOKEN_BY_DIGEST, {"digest": token_digest(token)})
        row = cur.fetchone()
    return ApiToken(*row) if row else None


def list_tokens(conn, include_revoked: bool = False) -> list[ApiToken]:
    with conn, conn.cursor() as cur:
        cur.execute(LIST_TOKENS, {"include_revoked": include_revoked})
        return [ApiToken(*row) for row in cur.fetchall()]


def revoke_token(conn, token_id: int, now: datetime | None = None) -> ApiToken | None:
    """Revoke an active token; None when no active token has that id."""
    with conn, conn.cursor() as cur:
        cur.execute(REVOKE_TOKEN, {"token_id": token_id, "now": now or datetime.now(UTC)})
        row = cur.fetchone()
    return ApiToken(*row) if row else None
