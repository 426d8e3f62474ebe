"""The transparency API application: FastAPI on Starlette, one pool of database connections, JSON errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI

from fairness_pipeline.api.errors import MAX_BODY_BYTES, BodyLimitMiddleware, install_error_handlers
from fairness_pipeline.api.routes import router
from fairness_pipeline.store.api_pool import DEFAULT_SIZE, ConnectionPool

OPENAPI_PATH = "/v1/openapi.json"
DESCRIPTION = """Compliance status, impact ratios, audits, reports and human reviews of the fairness pipeline, per
tenant. Send `Authorization: Bearer <token>` (tokens come from `fairness-pipeline api token create`). A tenant's token
reads that tenant only; an operator token reads every tenant. Errors are JSON: `{"status": ..., "error": ...}`."""


def package_version() -> str:
    try:
        return version("fairness_pipeline")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without an install
        return "0"


def create_app(database_url: str, *, pool_size: int = DEFAULT_SIZE, max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """The API on the database at ``database_url`` (already migrated); the pool opens with the app and closes
    with it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = ConnectionPool(database_url, size=pool_size)
        try:
            yield
        finally:
            app.state.pool.close()

    app = FastAPI(
        title="fairness_pipeline transparency API",
        version=package_version(),
        description=DESCRIPTION,
        openapi_url=OPENAPI_PATH,
        docs_url=None,  # the interactive pages load scripts from a CDN; the document itself is enough
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.version = package_version()
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    app.include_router(router)
    return app
