"""SQL of the partition write locks (``store.partition_lock``): transaction-level advisory locks in the two-int form.

The first int is ``hashtext`` of the writer's name, the second the day as days since 1970-01-01, so that one writer's
days never collide with each other; two writers collide only if their names hash alike (1 in 2^32).
"""

LOCK_PARTITION = """
SELECT pg_advisory_xact_lock(hashtext(%(writer)s), (%(day)s::date - DATE '1970-01-01')),
       current_setting('transaction_isolation')
"""
"""Wait for, then hold until the end of the transaction, the lock of (writer, day); also says the isolation level."""

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
