"""Tenants as dynamic partitions: registered by ingest (``register_tenants``) and by ``new_tenant_sensor`` when
events of a tenant the instance does not know yet are stored (through the logging API, a worker, plain SQL)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime

import dagster as dg

from fairness_pipeline.defs.automation import COMMIT_LAG
from fairness_pipeline.defs.partitions import TENANTS, tenant_partitions
from fairness_pipeline.defs.resources import FairnessDatabase
from fairness_pipeline.store import tenants as tenant_store
from fairness_pipeline.store.schema import transaction


def new_tenants(instance: dg.DagsterInstance, tenants: Iterable[str]) -> list[str]:
    """The tenants among ``tenants`` that are not yet partitions of the instance, sorted."""
    known = set(instance.get_dynamic_partitions(TENANTS))
    return sorted(set(tenants) - known)


def register_tenants(instance: dg.DagsterInstance, tenants: Iterable[str]) -> list[str]:
    """Add the tenants the instance does not know yet as tenant partitions; returns those added."""
    added = new_tenants(instance, tenants)
    if added:
        instance.add_dynamic_partitions(TENANTS, added)
    return added


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Events of a tenant the instance does not know add that tenant as a partition (the first tick "
    "registers every tenant already stored). The cursor is the latest created_at read.",
)
def new_tenant_sensor(context: dg.SensorEvaluationContext, database: FairnessDatabase) -> dg.SensorResult:
    until = datetime.now(UTC) - COMMIT_LAG
    after = None if context.cursor is None else datetime.fromisoformat(json.loads(context.cursor)["created_at"])
    with database.connect() as conn, transaction(conn) as cur:
        seen = tenant_store.tenants_inserted(cur, after, until)
    cursor = json.dumps({"created_at": until.isoformat()})
    added = new_tenants(context.instance, seen)
    if not added:
        return dg.SensorResult(skip_reason="no new tenant", cursor=cursor)
    context.log.info(f"{len(added)} new tenant(s): {', '.join(added)}")
    return dg.SensorResult(dynamic_partitions_requests=[tenant_partitions.build_add_request(added)], cursor=cursor)
