"""PostgreSQL, owned here: every table declared once (``schema.Table``, listed in ``catalog``) beside the SQL that
reads and writes it and the functions that run that SQL, by table family: ``events``, ``validation``, ``analysis``,
``audits``, ``reports`` (risk and reports), ``alerts``; plus the embedded server, connections and URLs, the migration
runner and the per-partition write lock. Code outside this package calls these functions instead of writing SQL."""
