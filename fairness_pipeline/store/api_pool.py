"""A bounded pool of psycopg2 connections for the API's worker threads: a request waits for a free connection
instead of failing when all are in use, and a connection that broke is replaced."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

DEFAULT_SIZE = 8
DEFAULT_WAIT_SECONDS = 10.0


class PoolTimeoutError(RuntimeError):
    """No connection became free in time."""


class ConnectionPool:
    def __init__(self, url: str, size: int = DEFAULT_SIZE, wait_seconds: float = DEFAULT_WAIT_SECONDS) -> None:
        from psycopg2.pool import ThreadedConnectionPool

        self._pool = ThreadedConnectionPool(0, size, url)
        self._slots = threading.BoundedSemaphore(size)
        self._wait = wait_seconds

    @contextmanager
    def connection(self) -> Iterator:
        """A connection for one request; callers end their transactions (``with conn:``) before leaving."""
        if not self._slots.acquire(timeout=self._wait):
            raise PoolTimeoutError(f"no database connection free within {self._wait:.0f} s")
        try:
            conn = self._pool.getconn()
            try:
                yield conn
            finally:
                self._pool.putconn(conn, close=not _reusable(conn))
        finally:
            self._slots.release()

    def close(self) -> None:
        self._pool.closeall()


def _reusable(conn) -> bool:
    """Roll back a transaction left open; False when the connection is closed or broken."""
    import psycopg2
    from psycopg2.extensions import TRANSACTION_STATUS_IDLE

    if conn.closed:
        return False
    if conn.info.transaction_status != TRANSACTION_STATUS_IDLE:
        try:
            conn.rollback()
        except psycopg2.Error:
            return False
    return True
