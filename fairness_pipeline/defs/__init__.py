"""The Dagster layer: partitions, the database resource, assets with their checks, and jobs. Kept thin: the domain
logic lives in ``fairness_pipeline.metrics``, ``fairness_pipeline.validation`` and SQL in ``fairness_pipeline.queries``.
"""
