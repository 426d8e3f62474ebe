"""The loaded definitions: every schedule and sensor the README calls on is running by default."""

from __future__ import annotations

import dagster as dg

from fairness_pipeline.definitions import defs


def test_every_schedule_and_sensor_runs_by_default() -> None:
    repository = defs.get_repository_def()
    schedules = {s.name: s.default_status for s in repository.schedule_defs}
    sensors = {s.name: s.default_status for s in repository.sensor_defs}
    assert schedules == {
        "nightly_schedule": dg.DefaultScheduleStatus.RUNNING,
        "alert_delivery_schedule": dg.DefaultScheduleStatus.RUNNING,
        "retention_schedule": dg.DefaultScheduleStatus.RUNNING,
    }
    assert sensors == {
        "late_events_sensor": dg.DefaultSensorStatus.RUNNING,
        "run_failure_sensor": dg.DefaultSensorStatus.RUNNING,
        "risk_alert_sensor": dg.DefaultSensorStatus.RUNNING,
        "automation_condition_sensor": dg.DefaultSensorStatus.RUNNING,
        "erasure_recompute_sensor": dg.DefaultSensorStatus.RUNNING,
        "new_tenant_sensor": dg.DefaultSensorStatus.RUNNING,
    }


def test_the_reports_data_source_is_the_whole_sentence() -> None:
    from fairness_pipeline.defs.assets.risk import RiskConfig
    from fairness_pipeline.reports.facts import PACKAGED_FACTS, load_facts

    assert RiskConfig().data_source is None  # the reports state the facts file's data source
    assert load_facts(PACKAGED_FACTS).data_source == (
        "selection_events logged by the search product (shown, clicked, shortlisted, contacted, interviewed, hired), "
        "validated with the project's Great Expectations suite"
    )
