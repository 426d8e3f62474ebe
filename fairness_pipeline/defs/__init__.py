"""The Dagster layer: partitions, the database resource, assets with their checks, and jobs. Kept thin: the domain
logic lives in ``fairness_pipeline.metrics``, ``fairness_pipeline.audits``, ``fairness_pipeline.validation``, and the
database (tables, SQL, reads and writes) in ``fairness_pipeline.store``.
"""
