"""fairness_pipeline: watch hiring funnels for adverse impact, on PostgreSQL and Dagster."""

__version__ = "0.1.0"
