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

PRELOADED_MODULES = ("fairness_pipeline.definitions", "fairlearn.metrics", "jsonschema_rs")
"""Imported once per run by the executor's fork server; each step's process is forked from it. Started fresh
(``spawn``, Dagster's default) a step imports all of them again: about 5 s of a tenant-day's 1-4 s steps."""

step_executor = dg.multiprocess_executor.configured(
    {"start_method": {"forkserver": {"preload_modules": list(PRELOADED_MODULES)}}}, name="forked_multiprocess"
)
"""Runs launched by the daemon or the UI: each step in its own process (independent steps side by side), forked
from a server that has the project imported. ``run --local`` and the tests run in one process."""


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
        executor=step_executor,
    )


defs = build_definitions()
