"""Tenants on the command line: ingest registers the tenants it stored as partitions of the Dagster instance, and
``fairness-pipeline tenants sync`` registers every tenant already in the database (a database that predates tenant
partitions, or events stored while the daemon's ``new_tenant_sensor`` was off)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from fairness_pipeline.cli.database import open_database

tenants_app = typer.Typer(
    help="Tenants as partitions of the Dagster instance.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
)


def register_ingested_tenants(tenants: list[str]) -> list[str]:
    """Ingest's hook: the stored events' tenants become tenant partitions of the project's instance at once (the
    ``new_tenant_sensor`` would add them on its next tick); returns those added."""
    from fairness_pipeline.cli.runs import dagster_instance
    from fairness_pipeline.defs.tenants import register_tenants

    with dagster_instance() as instance:
        return register_tenants(instance, tenants)


@tenants_app.command("sync")
def tenants_sync(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Add every tenant of the stored events that the Dagster instance does not know yet as a tenant partition."""
    from fairness_pipeline.store import tenants as tenant_store
    from fairness_pipeline.store.schema import transaction

    with open_database() as conn, transaction(conn) as cur:
        stored = tenant_store.tenants_inserted(cur, None, datetime.now(UTC))
    added = register_ingested_tenants(stored)
    if as_json:
        print(json.dumps({"tenants": len(stored), "added": added}))
    else:
        print(f"{len(stored)} tenant(s) in the events; added {len(added)}: {', '.join(added) or 'none'}")
