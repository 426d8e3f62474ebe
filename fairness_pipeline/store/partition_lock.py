"""The one concurrency rule of every partition writer: the write of (writer, day) holds a transaction-level advisory
lock on that pair, taken in the transaction that deletes and inserts the day's rows. A write of one tenant's rows
of a day (a tenant-day partition) holds the (writer, day) lock shared and the (writer, tenant, day) lock exclusive:
writes of different tenants of a day run at once, two writes of the same tenant-day wait for each other, and a write
of the whole day (no tenant) waits for, and is waited for by, every tenant's write of that day.

Two runs of the same partition at once (the nightly schedule, the late-events sensor, a UI backfill) then give the
result of one run: the second writer waits at the lock until the first commits, and its statements, each with a fresh
READ COMMITTED snapshot, see and replace the first writer's rows. Readers never wait. A writer is named after the
asset that owns the rows (``candidate_daily_stages`` also for the day arrays written with it,
``search_daily_aggregates`` for the exposure day sums); a transaction that writes stored days of other writers (windows
filling in what their days lack) locks them after its own, in ascending day order, so that two such transactions
cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

# Transaction-level advisory locks in the two-int form. The first int is ``hashtext`` of the writer's name, the second
# the day as days since 1970-01-01, so that one writer's days never collide with each other; two writers collide only
# if their names hash alike (1 in 2^32).

LOCK_PARTITION = """
SELECT pg_advisory_xact_lock(hashtext(%(writer)s), (%(day)s::date - DATE '1970-01-01')),
       current_setting('transaction_isolation')
"""
"""Wait for, then hold until the end of the transaction, the lock of (writer, day); also says the isolation level."""

LOCK_TENANT_PARTITION = """
SELECT pg_advisory_xact_lock_shared(hashtext(%(writer)s), (%(day)s::date - DATE '1970-01-01')),
       pg_advisory_xact_lock(hashtext(%(tenant_writer)s), (%(day)s::date - DATE '1970-01-01')),
       current_setting('transaction_isolation')
"""
"""The tenant-day form: (writer, day) shared, then (writer/tenant, day) exclusive, always in this order (so that two
such transactions cannot deadlock); also says the isolation level."""

PARTITION_LOCK_KEY = "SELECT hashtext(%(writer)s), (%(day)s::date - DATE '1970-01-01')"

HELD_PARTITION_LOCKS = """
SELECT l.pid, l.granted, l.classid::int8, l.objid::int8
FROM pg_locks l
WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.database = (SELECT oid FROM pg_database
                                                                   WHERE datname = current_database())
ORDER BY l.granted DESC, l.pid
"""
"""Advisory locks in the two-int form on this database: holders first, then waiters. ``classid`` and ``objid`` are
the two ints as unsigned 32-bit numbers."""


class PartitionLockError(RuntimeError):
    """A partition write was attempted where the lock cannot serialise it."""


def tenant_writer(writer: str, tenant: str) -> str:
    """The lock name of one tenant's rows of ``writer`` (hashed with the day like a writer's name)."""
    return f"{writer}/{tenant}"


def lock_partition(cur, writer: str, day: date, tenant: str | None = None) -> None:
    """Wait for and hold, until the transaction ends, the write lock of ``writer``'s partition ``day`` (of one
    ``tenant``'s rows when given, else of the whole day).

    Call it inside a transaction, before the statements that read what the write depends on. Re-entrant within a
    transaction. Raises PartitionLockError under REPEATABLE READ or SERIALIZABLE, where the snapshot taken before the
    wait would hide the rows of the writer waited for."""
    if cur.connection.autocommit:
        raise PartitionLockError("a partition lock needs a transaction; the connection is in autocommit mode")
    if tenant is None:
        cur.execute(LOCK_PARTITION, {"writer": writer, "day": day})
    else:
        cur.execute(
            LOCK_TENANT_PARTITION, {"writer": writer, "tenant_writer": tenant_writer(writer, tenant), "day": day}
        )
    *_, isolation = cur.fetchone()
    if isolation != "read committed":
        raise PartitionLockError(f"partition writes need READ COMMITTED; this transaction is {isolation.upper()}")


@contextmanager
def partition_transaction(conn, writer: str, day: date, tenant: str | None = None) -> Iterator:
    """A transaction (committed on exit, rolled back on error) and its cursor, holding the lock of (writer, day), or
    of (writer, tenant, day) when ``tenant`` is given."""
    with conn, conn.cursor() as cur:
        lock_partition(cur, writer, day, tenant)
        yield cur


def partition_lock_key(cur, writer: str, day: date) -> tuple[int, int]:
    """The lock's two ints as ``pg_locks`` shows them (``classid``, ``objid``: unsigned 32-bit)."""
    cur.execute(PARTITION_LOCK_KEY, {"writer": writer, "day": day})
    first, second = cur.fetchone()
    return first & 0xFFFFFFFF, second & 0xFFFFFFFF
