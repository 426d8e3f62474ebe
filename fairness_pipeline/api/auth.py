"""Who is calling: the bearer token, the tenant it may read, and whether it may change reviews.

Every route but ``/v1/health`` and ``/v1/openapi.json`` needs ``Authorization: Bearer <token>``. A tenant's token
reads that tenant only: any other tenant, existing or not, gets the same 403, so tenant names do not leak. An operator
token (created without a tenant) reads every tenant, and gets 404 for a tenant that does not exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fairness_pipeline.api.errors import ApiError
from fairness_pipeline.store.api_reads import tenant_known
from fairness_pipeline.store.api_tokens import ApiToken, authenticate

bearer = HTTPBearer(auto_error=False, description="An API token from `fairness-pipeline api token create`.")
FORBIDDEN = "this token may not read that tenant"
TENANT_MAX = 255


def database(request: Request) -> Iterator:
    """A pooled connection for the request."""
    with request.app.state.pool.connection() as conn:
        yield conn


Connection = Annotated[object, Depends(database)]


def caller(conn: Connection, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> ApiToken:
    """The active token of the request; 401 without one, with a malformed one, or with an unknown or revoked one."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, "missing bearer token: send 'Authorization: Bearer <token>'", bearer_challenge=True)
    token = authenticate(conn, credentials.credentials)
    if token is None:
        raise ApiError(401, "invalid or revoked token", bearer_challenge=True)
    return token


Caller = Annotated[ApiToken, Depends(caller)]
TenantPath = Annotated[str, Path(min_length=1, max_length=TENANT_MAX, description="Tenant id.")]


def readable_tenant(tenant: TenantPath, token: Caller, conn: Connection) -> str:
    """The path's tenant when the token may read it: 403 for another tenant's token, 404 only for operators."""
    if token.operator:
        if not tenant_known(conn, tenant):
            raise ApiError(404, "unknown tenant")
        return tenant
    if token.tenant_id != tenant:
        raise ApiError(403, FORBIDDEN)
    return tenant


def reviewing_caller(token: Caller) -> ApiToken:
    """A token of role ``review``; 403 for a read-only token."""
    if token.role != "review":
        raise ApiError(
            403, "this token may only read: requesting, acknowledging and resolving reviews need role review"
        )
    return token


Tenant = Annotated[str, Depends(readable_tenant)]
Reviewer = Annotated[ApiToken, Depends(reviewing_caller)]
