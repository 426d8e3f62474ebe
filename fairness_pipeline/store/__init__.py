"""PostgreSQL: the embedded server, connections and the migration runner."""
