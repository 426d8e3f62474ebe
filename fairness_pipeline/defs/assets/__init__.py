"""Daily-partitioned assets, grouped by layer: ``events`` (raw -> validated -> per-candidate days) and ``metrics``."""
