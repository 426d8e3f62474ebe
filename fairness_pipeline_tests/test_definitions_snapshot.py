"""The Dagster definitions against a checked-in snapshot, so the asset graph cannot change silently.

The snapshot (``snapshots/definitions.json``) lists asset keys with their group, partitions, backfill policy, pools,
upstream keys and partition mappings, and checks; jobs with their assets or ops; schedules with cron, timezone, job
and default status; sensors with their kind, jobs and default status. After an intended change, refresh it with

    FAIRNESS_UPDATE_SNAPSHOTS=1 .venv/bin/pytest fairness_pipeline_tests/test_definitions_snapshot.py

and commit the diff of the JSON beside the change that caused it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dagster as dg

from fairness_pipeline.definitions import defs

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"
UPDATE_ENV = "FAIRNESS_UPDATE_SNAPSHOTS"


def _mapping(mapping: dg.PartitionMapping | None) -> str | None:
    if mapping is None:
        return None
    if isinstance(mapping, dg.TimeWindowPartitionMapping):
        return f"time window {mapping.start_offset}..{mapping.end_offset}"
    if isinstance(mapping, dg.MultiPartitionMapping):  # tenant-day lineage: each dimension's own mapping
        return "; ".join(
            f"{name}: {_mapping(dimension.partition_mapping)}"
            for name, dimension in sorted(mapping.downstream_mappings_by_upstream_dimension.items())
        )
    return type(mapping).__name__


def definitions_snapshot(definitions: dg.Definitions) -> dict[str, Any]:
    """The parts of the definitions a user or a sensor depends on, as plain JSON values in a stable order."""
    graph = definitions.resolve_asset_graph()
    repository = definitions.get_repository_def()
    assets = {}
    for node in sorted(graph.asset_nodes, key=lambda n: n.key.to_user_string()):
        assets[node.key.to_user_string()] = {
            "group": node.group_name,
            "partitions": str(node.partitions_def) if node.partitions_def else None,
            "backfill_policy": str(node.backfill_policy) if node.backfill_policy else None,
            "pools": sorted(node.pools or ()),
            "automation_condition": type(node.automation_condition).__name__ if node.automation_condition else None,
            "upstream": {
                parent.to_user_string(): _mapping(node.partition_mappings.get(parent))
                for parent in sorted(node.parent_keys, key=lambda k: k.to_user_string())
            },
            "checks": sorted(key.name for key in node.check_keys),
        }
    checks = {
        f"{key.asset_key.to_user_string()}:{key.name}": {"blocking": graph.get_check_spec(key).blocking}
        for key in sorted(graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name))
    }
    jobs = {
        job.name: {
            "assets": sorted(k.to_user_string() for k in job.asset_layer.executable_asset_keys),
            "ops": [] if job.asset_layer.executable_asset_keys else sorted(job.graph.node_names()),
            "partitioned": job.partitions_def is not None,
        }
        for job in sorted(repository.get_all_jobs(), key=lambda j: j.name)
        if not job.name.startswith("__")
    }
    schedules = {
        schedule.name: {
            "cron": schedule.cron_schedule,
            "timezone": schedule.execution_timezone,
            "job": schedule.job_name,
            "default_status": schedule.default_status.value,
        }
        for schedule in sorted(repository.schedule_defs, key=lambda s: s.name)
    }
    sensors = {
        sensor.name: {
            "kind": type(sensor).__name__,
            "jobs": sorted(target.job_name for target in sensor.targets) if sensor.has_jobs else [],
            "default_status": sensor.default_status.value,
        }
        for sensor in sorted(repository.sensor_defs, key=lambda s: s.name)
    }
    return {"assets": assets, "checks": checks, "jobs": jobs, "schedules": schedules, "sensors": sensors}


def test_definitions_match_the_snapshot() -> None:
    current = json.dumps(definitions_snapshot(defs), indent=2, sort_keys=True) + "\n"
    if os.environ.get(UPDATE_ENV):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(current)
    assert SNAPSHOT.exists(), f"no snapshot yet: run with {UPDATE_ENV}=1 to write {SNAPSHOT}"
    expected = json.loads(SNAPSHOT.read_text())
    actual = json.loads(current)
    for part in expected:
        assert actual[part] == expected[part], f"the {part} differ from {SNAPSHOT.name}; if intended: {UPDATE_ENV}=1"


def test_the_snapshot_pins_what_the_readme_promises() -> None:
    """Read independently of the code above: the window lineage, the blocking check, the schedules' crons."""
    snapshot = json.loads(SNAPSHOT.read_text())
    # a tenant's window reads the per-day event layer of its day (the window's other days are checked by the store)
    assert snapshot["assets"]["selection_rate_frames"]["upstream"] == {
        "candidate_daily_stages": "MultiToSingleDimensionPartitionMapping"
    }
    assert snapshot["assets"]["fairness_trends"]["upstream"]["impact_ratios"] is None  # the same tenant-day
    assert snapshot["assets"]["candidate_daily_stages"]["partitions"].startswith("Daily")
    assert snapshot["assets"]["fairness_reports"]["partitions"].startswith("Multi-partitioned")
    assert snapshot["checks"]["validated_selection_events:event_suite_passes"] == {"blocking": True}
    assert snapshot["schedules"]["nightly_schedule"]["cron"] == "0 2 * * *"
    assert snapshot["schedules"]["alert_delivery_schedule"]["cron"] == "*/5 * * * *"
    assert {s["default_status"] for s in [*snapshot["schedules"].values(), *snapshot["sensors"].values()]} == {
        "RUNNING"
    }
    assert {a["group"] for a in snapshot["assets"].values()} == {"events", "metrics", "audits", "risk"}
