"""Errors as JSON (``{"status": ..., "error": ...}``), never a stack trace, and the bound on request bodies."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger("fairness_pipeline.api")

MAX_BODY_BYTES = 16 * 1024
"""Largest request body accepted (a review request or note is at most a few kilobytes)."""


class ApiError(Exception):
    """An answer other than 2xx, with one sentence for the caller."""

    def __init__(self, status: int, message: str, *, bearer_challenge: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = {"WWW-Authenticate": "Bearer"} if bearer_challenge else None


def error_response(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"status": status, "error": message, **extra}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404 and message == "Not Found":
            message = "no such endpoint; the endpoints are listed in /v1/openapi.json"
        return error_response(exc.status_code, message, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"location": list(e.get("loc", ())), "message": e.get("msg", "")} for e in exc.errors()]
        where = "; ".join(f"{'.'.join(map(str, d['location']))}: {d['message']}" for d in details)
        return error_response(422, f"invalid request: {where}", details=details)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        from fairness_pipeline.store.api_pool import PoolTimeoutError

        if isinstance(exc, PoolTimeoutError) or type(exc).__name__ == "OperationalError":
            logger.warning("database unavailable for %s %s: %s", request.method, request.url.path, type(exc).__name__)
            return error_response(503, "the database is unavailable; try again later")
        # The type only: messages of database errors may quote data.
        logger.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path)
        return error_response(500, "internal error")


class BodyTooLargeError(StarletteHTTPException):
    """Raised while a body is read: FastAPI passes HTTP exceptions on, so the error handler answers 413."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body over {max_bytes} bytes")


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413, by the declared length or while reading a chunked body."""

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        received = 0
        started = False

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError(self.max_bytes)
            return message

        async def tracking_send(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLargeError:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send) -> None:
        body = json.dumps({"status": 413, "error": f"request body over {self.max_bytes} bytes"}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
