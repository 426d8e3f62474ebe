"""Dagster entry point (``workspace.yaml`` and ``[tool.dagster]`` load ``defs`` from here)."""

import dagster as dg

from fairness_pipeline.defs import assets
from fairness_pipeline.defs.alerting import (
    alert_delivery_schedule,
    alert_job,
    alert_resources,
    deliver_and_escalate_job,
)
from fairness_pipeline.defs.automation import (
    automation_condition_sensor,
    late_events_sensor,
    nightly_schedule,
    risk_alert_sensor,
    run_failure_sensor,
)
from fairness_pipeline.defs.jobs import event_days_job, metrics_job
from fairness_pipeline.defs.resources import FairnessDatabase
from fairness_pipeline.defs.retention import erasure_recompute_sensor, retention_job, retention_schedule
from fairness_pipeline.defs.tenants import new_tenant_sensor


def build_definitions(database: FairnessDatabase | None = None) -> dg.Definitions:
    """The project's definitions; ``database`` defaults to FAIRNESS_DATABASE_URL or the embedded server."""
    return dg.Definitions(
        assets=dg.load_assets_from_package_module(assets),
        asset_checks=dg.load_asset_checks_from_package_module(assets),
        jobs=[event_days_job, metrics_job, alert_job, deliver_and_escalate_job, retention_job],
        schedules=[nightly_schedule, alert_delivery_schedule, retention_schedule],
        sensors=[
            late_events_sensor,
            run_failure_sensor,
            risk_alert_sensor,
            automation_condition_sensor,
            erasure_recompute_sensor,
            new_tenant_sensor,
        ],
        resources={"database": database or FairnessDatabase(), **alert_resources()},
    )


defs = build_definitions()
