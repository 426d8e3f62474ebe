"""Getting selection events into PostgreSQL without losing any: every row is stored, a duplicate, or rejected."""
