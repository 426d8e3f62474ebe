"""Tenants on the command line: ingest registers the tenants it stored as partitions of the Dagster instance."""

from __future__ import annotations


def register_ingested_tenants(tenants: list[str]) -> list[str]:
    """Ingest's hook: the stored events' tenants become tenant partitions of the project's instance at once (the
    ``new_tenant_sensor`` would add them on its next tick); returns those added."""
    from fairness_pipeline.cli.runs import dagster_instance
    from fairness_pipeline.defs.tenants import register_tenants

    with dagster_instance() as instance:
        return register_tenants(instance, tenants)
